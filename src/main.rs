//! The `aws-kinesis-agent` command: options, logging, exit codes. The only place that decides
//! how the process ends: 0 after a clean shutdown, 1 when the configuration or start-up fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use kinesis_agent::config::{self, Environment, DEFAULT_CONFIG_FILE, DEFAULT_FLOWS_DIR};
use kinesis_agent::{agent, aws, logging, shutdown};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, Level};

/// Ships log files to Amazon Kinesis Data Streams and Kinesis Data Firehose.
/// A drop-in replacement for the Java Amazon Kinesis Agent: same configuration file, same keys.
#[derive(Debug, Parser)]
#[command(name = "aws-kinesis-agent", version)]
struct Options {
    #[command(subcommand)]
    command: Option<Command>,

    /// Configuration file.
    #[arg(short = 'c', long = "configuration", value_name = "PATH", default_value = DEFAULT_CONFIG_FILE, global = true)]
    configuration: PathBuf,

    /// Directory whose files each add flows (every regular file's "flows" array is appended).
    #[arg(long = "flows-dir", value_name = "DIR", default_value = DEFAULT_FLOWS_DIR, global = true)]
    flows_dir: PathBuf,

    /// The agent's own log file (created if missing; falls back to standard error if it cannot be opened).
    #[arg(short = 'l', long = "log-file", value_name = "PATH", default_value = logging::DEFAULT_LOG_FILE)]
    log_file: PathBuf,

    /// Log level: TRACE, DEBUG, INFO, WARN or ERROR.
    #[arg(short = 'L', long = "log-level", value_name = "LEVEL", env = "AGENT_LOG_LEVEL", default_value = "INFO", value_parser = parse_level)]
    log_level: Level,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show the running agent's flows, files, offsets, lag and last error (exit 3 when it is not running).
    Status {
        /// Read this status file instead of the one next to the configuration's checkpoint database.
        #[arg(long = "status-file", value_name = "PATH")]
        status_file: Option<PathBuf>,
        /// Print the raw JSON snapshot.
        #[arg(long)]
        json: bool,
    },
}

/// `status`: exit 0 and print when the agent runs, 3 when it does not, 1 when the
/// configuration cannot be read.
fn status(options: &Options, status_file: Option<&Path>, raw: bool) -> ExitCode {
    let path = match status_file {
        Some(p) => p.to_path_buf(),
        None => match config::load(
            &options.configuration,
            Some(&options.flows_dir),
            &Environment::from_host(),
        ) {
            Ok(plan) => kinesis_agent::metrics::status::status_path(&plan.checkpoint_file),
            Err(e) => {
                eprintln!("aws-kinesis-agent: configuration error: {e}");
                return ExitCode::from(1);
            }
        },
    };
    match kinesis_agent::metrics::status::read_running(&path) {
        Ok(value) => {
            if raw {
                println!("{value:#}");
            } else {
                print!("{}", kinesis_agent::metrics::status::render(&value));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::from(3)
        }
    }
}

fn parse_level(s: &str) -> Result<Level, String> {
    match s.trim().to_ascii_uppercase().as_str() {
        // An empty AGENT_LOG_LEVEL= line in the environment file means "not set".
        "" => Ok(Level::INFO),
        "TRACE" => Ok(Level::TRACE),
        "DEBUG" => Ok(Level::DEBUG),
        "INFO" => Ok(Level::INFO),
        "WARN" | "WARNING" => Ok(Level::WARN),
        "ERROR" => Ok(Level::ERROR),
        _ => Err(format!(
            "expected one of TRACE, DEBUG, INFO, WARN, ERROR, got '{s}'"
        )),
    }
}

fn main() -> ExitCode {
    let options = match Options::try_parse() {
        Ok(o) => o,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Some(Command::Status { status_file, json }) = &options.command {
        return status(&options, status_file.as_deref(), *json);
    }
    if let Err(msg) = check_readable(&options.configuration) {
        eprintln!("aws-kinesis-agent: {msg}");
        return ExitCode::from(1);
    }
    // Logging first (it reads the local UTC offset, which is only possible while single-threaded).
    let _guard = logging::init(&options.log_file, options.log_level);
    info!(
        "Reading configuration from file: {}",
        options.configuration.display()
    );
    let plan = match config::load(
        &options.configuration,
        Some(&options.flows_dir),
        &Environment::from_host(),
    ) {
        Ok(plan) => plan,
        Err(e) => {
            error!("Configuration error: {e}");
            eprintln!("aws-kinesis-agent: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("agent-worker")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aws-kinesis-agent: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let clients = match aws::clients(&plan).await {
            Ok(c) => c,
            Err(e) => {
                error!("{e}");
                eprintln!("aws-kinesis-agent: {e}");
                return ExitCode::from(1);
            }
        };
        let checkpoints = match agent::open_checkpoints(&plan) {
            Ok(c) => c,
            Err(e) => {
                error!("Failed to create or connect to the checkpoint database: {e}");
                eprintln!("aws-kinesis-agent: failed to create or connect to the checkpoint database: {e}");
                return ExitCode::from(1);
            }
        };
        let stop = CancellationToken::new();
        let signals = stop.clone();
        tokio::spawn(async move {
            match shutdown::stop_requested().await {
                Ok(reason) => info!("Agent: stop requested ({reason:?})."),
                Err(e) => error!("cannot listen for stop signals: {e}; stopping."),
            }
            signals.cancel();
        });
        agent::run(plan, clients, checkpoints, stop).await;
        ExitCode::SUCCESS
    })
}

/// The Java agent's checks on `-c`, with its wording.
fn check_readable(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Err(format!(
            "Parameter -c points to a file that doesn't exist: {}",
            path.display()
        ));
    }
    std::fs::File::open(path).map(drop).map_err(|e| {
        format!(
            "Parameter -c points to a file that's not accessible: {} ({e})",
            path.display()
        )
    })
}
