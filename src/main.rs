//! The `aws-kinesis-agent` command: options, logging, exit codes. The only place that decides
//! how the process ends: 0 after a clean shutdown, 1 when the configuration or start-up fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use kinesis_agent::config::{self, AgentPlan, Environment, DEFAULT_CONFIG_FILE, DEFAULT_FLOWS_DIR};
use kinesis_agent::{agent, aws, check, iam_policy, logging, shutdown};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Level};

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

    /// Run the flows but print each record that would be sent (after processing) to standard
    /// output instead of sending it; no checkpoint is read or written and AWS is not contacted.
    /// Logs go to standard error unless -l is given.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

/// How long a dry run lets a batch wait before printing it (instead of `maxBufferAgeMillis`):
/// the records are the same, they only show up sooner.
const DRY_RUN_BUFFER_AGE: Duration = Duration::from_secs(1);

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
    /// Check the configuration, whether the service's user can read every file it names, and
    /// (with --aws) the credentials and streams. Exit 1 when something needs fixing.
    Check {
        /// The user to check for [default: aws-kinesis-agent-user when it exists, else you].
        #[arg(long = "user", value_name = "NAME")]
        user: Option<String>,
        /// Also check that the AWS credentials resolve and that every stream and delivery
        /// stream exists and is ACTIVE (calls DescribeStreamSummary / DescribeDeliveryStream),
        /// and say which Firehose delivery streams read each Kinesis stream (when
        /// ListDeliveryStreams is allowed).
        #[arg(long)]
        aws: bool,
    },
    /// Print the least-privilege IAM policy (JSON) for the configuration.
    IamPolicy {
        /// AWS account id in the ARNs [default: *].
        #[arg(long = "account", value_name = "ID", value_parser = iam_policy::parse_account)]
        account: Option<String>,
        /// Region in the ARNs [default: kinesis.region, else the region of a standard endpoint host, else *].
        #[arg(long = "region", value_name = "R", value_parser = iam_policy::parse_name)]
        region: Option<String>,
        /// ARN partition [default: aws, or aws-cn / aws-us-gov for those regions].
        #[arg(long = "partition", value_name = "P", value_parser = iam_policy::parse_name)]
        partition: Option<String>,
        #[command(flatten)]
        delivery_role: Box<DeliveryRoleArgs>,
    },
}

/// `iam-policy --firehose-role`: the delivery role of a Firehose stream that reads the agent's
/// Kinesis stream and delivers to S3.
#[derive(Debug, clap::Args)]
struct DeliveryRoleArgs {
    /// Print the policy of the Firehose delivery role instead of the agent's (needs --bucket,
    /// or --trust).
    #[arg(long = "firehose-role")]
    firehose_role: bool,
    /// With --firehose-role: print the role's trust policy (Firehose may assume it for your
    /// account; needs --account).
    #[arg(long = "trust", requires_all = ["firehose_role", "account"])]
    trust: bool,
    /// The S3 bucket the delivery stream writes to.
    #[arg(long = "bucket", value_name = "NAME", requires = "firehose_role", value_parser = iam_policy::delivery_role::parse_bucket)]
    bucket: Option<String>,
    /// The Kinesis stream the delivery stream reads (repeatable) [default: the configuration's
    /// Kinesis streams; when given, the configuration is not read].
    #[arg(long = "source-stream", value_name = "NAME", requires = "firehose_role", value_parser = iam_policy::delivery_role::parse_stream)]
    source_stream: Vec<String>,
    /// The KMS key ARN the bucket's objects are encrypted with (SSE-KMS).
    #[arg(long = "kms-key", value_name = "ARN", requires = "firehose_role", value_parser = iam_policy::delivery_role::parse_kms_key)]
    kms_key: Option<String>,
    /// The KMS key ARN the source stream is encrypted with.
    #[arg(long = "stream-kms-key", value_name = "ARN", requires = "firehose_role", value_parser = iam_policy::delivery_role::parse_kms_key)]
    stream_kms_key: Option<String>,
    /// The Lambda function that transforms the records (name or ARN).
    #[arg(long = "lambda", value_name = "NAME|ARN", requires = "firehose_role", value_parser = iam_policy::delivery_role::parse_lambda)]
    lambda: Option<String>,
    /// The Glue database of record format conversion (with --glue-table).
    #[arg(long = "glue-database", value_name = "DB", requires_all = ["firehose_role", "glue_table"], value_parser = iam_policy::delivery_role::parse_glue_name)]
    glue_database: Option<String>,
    /// The Glue table of record format conversion (with --glue-database).
    #[arg(long = "glue-table", value_name = "T", requires = "glue_database", value_parser = iam_policy::delivery_role::parse_glue_name)]
    glue_table: Option<String>,
    /// The delivery stream's error log group (CloudWatch Logs).
    #[arg(long = "log-group", value_name = "NAME", requires = "firehose_role", value_parser = iam_policy::delivery_role::parse_log_group)]
    log_group: Option<String>,
}

fn load_plan(options: &Options) -> Result<AgentPlan, config::ConfigError> {
    config::load(
        &options.configuration,
        Some(&options.flows_dir),
        &Environment::from_host(),
    )
}

/// `check`: exit 0 when all is well, 1 with `check: N problem(s)` when not.
fn check(options: &Options, user: Option<&str>, with_aws: bool) -> ExitCode {
    let plan = match load_plan(options) {
        Ok(plan) => plan,
        Err(e) => {
            println!("configuration: {}", options.configuration.display());
            println!("  PROBLEM: {e}");
            println!("check: 1 problem(s)");
            return ExitCode::from(1);
        }
    };
    let accounts = check::Accounts::from_host();
    let user = match check::resolve_user(user, &accounts) {
        Ok(user) => user,
        Err(e) => {
            eprintln!("aws-kinesis-agent: check: {e}");
            return ExitCode::from(1);
        }
    };
    let mut report = check::Report::default();
    check::report_config(&plan, &mut report);
    check::report_files(&plan, &user, &accounts, &mut report);
    if with_aws {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(check::report_aws(&plan, &mut report)),
            Err(e) => {
                eprintln!("aws-kinesis-agent: cannot start the async runtime: {e}");
                return ExitCode::from(1);
            }
        }
    }
    print!("{}", report.text);
    println!();
    println!("{}", report.summary());
    if report.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `iam-policy`: the policy on standard output, notes about wildcards on standard error.
fn iam_policy(options: &Options, policy_options: iam_policy::PolicyOptions) -> ExitCode {
    let plan = match load_plan(options) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("aws-kinesis-agent: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    let policy = iam_policy::policy(&plan, &policy_options);
    for note in &policy.notes {
        eprintln!("note: {note}");
    }
    print_policy(&policy.document)
}

/// `iam-policy --firehose-role`: the delivery role's permissions policy (or with `--trust` its
/// trust policy) on standard output, notes on standard error.
fn delivery_role_policy(
    options: &Options,
    policy_options: &iam_policy::PolicyOptions,
    args: &DeliveryRoleArgs,
) -> ExitCode {
    if args.trust {
        // clap makes --trust require --account.
        let account = policy_options.account.as_deref().unwrap_or("*");
        return match iam_policy::delivery_role::delivery_role_trust(account) {
            Ok(document) => print_policy(&document),
            Err(e) => {
                eprintln!("aws-kinesis-agent: iam-policy --firehose-role: {e}");
                ExitCode::from(1)
            }
        };
    }
    let Some(bucket) = &args.bucket else {
        eprintln!("aws-kinesis-agent: iam-policy --firehose-role needs --bucket NAME (or --trust)");
        return ExitCode::from(1);
    };
    let (source_streams, config_region) = if args.source_stream.is_empty() {
        match load_plan(options) {
            Ok(plan) => (
                iam_policy::kinesis_streams_of(&plan),
                iam_policy::kinesis_region_of(&plan),
            ),
            Err(e) => {
                eprintln!("aws-kinesis-agent: configuration error: {e} (or name the stream with --source-stream NAME)");
                return ExitCode::from(1);
            }
        }
    } else {
        (args.source_stream.clone(), None)
    };
    let role = iam_policy::delivery_role::DeliveryRole {
        bucket: bucket.clone(),
        source_streams,
        kms_key: args.kms_key.clone(),
        stream_kms_key: args.stream_kms_key.clone(),
        lambda: args.lambda.clone(),
        glue: args.glue_database.clone().zip(args.glue_table.clone()),
        log_group: args.log_group.clone(),
    };
    let region = policy_options.region.clone().or(config_region);
    match iam_policy::delivery_role::delivery_role_policy(&role, policy_options, region.as_deref())
    {
        Ok(policy) => {
            for note in &policy.notes {
                eprintln!("note: {note}");
            }
            print_policy(&policy.document)
        }
        Err(e) => {
            eprintln!("aws-kinesis-agent: iam-policy --firehose-role: {e}");
            ExitCode::from(1)
        }
    }
}

fn print_policy(document: &serde_json::Value) -> ExitCode {
    match serde_json::to_string_pretty(document) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aws-kinesis-agent: cannot print the policy: {e}");
            ExitCode::from(1)
        }
    }
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
            Ok(plan) => kinesis_agent::status::status_path(&plan.checkpoint_file),
            Err(e) => {
                eprintln!("aws-kinesis-agent: configuration error: {e}");
                return ExitCode::from(1);
            }
        },
    };
    match kinesis_agent::status::read_running(&path) {
        Ok(value) => {
            if raw {
                println!("{value:#}");
            } else {
                print!("{}", kinesis_agent::status::render(&value));
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
    kinesis_agent::sys::tune_malloc();
    let parsed = Options::command()
        .try_get_matches()
        .and_then(|matches| Ok((Options::from_arg_matches(&matches)?, matches)));
    let (options, matches) = match parsed {
        Ok(o) => o,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match &options.command {
        Some(Command::Status { status_file, json }) => {
            return status(&options, status_file.as_deref(), *json)
        }
        Some(Command::Check { user, aws }) => return check(&options, user.as_deref(), *aws),
        Some(Command::IamPolicy {
            account,
            region,
            partition,
            delivery_role,
        }) => {
            let policy_options = iam_policy::PolicyOptions {
                account: account.clone(),
                region: region.clone(),
                partition: partition.clone(),
            };
            if delivery_role.firehose_role {
                return delivery_role_policy(&options, &policy_options, delivery_role);
            }
            return iam_policy(&options, policy_options);
        }
        None => {}
    }
    if let Err(msg) = check_readable(&options.configuration) {
        eprintln!("aws-kinesis-agent: {msg}");
        return ExitCode::from(1);
    }
    // Logging first (it reads the local UTC offset, which is only possible while single-threaded).
    let log_file_given = matches.value_source("log_file") == Some(ValueSource::CommandLine);
    let _guard = if options.dry_run && !log_file_given {
        logging::init_stderr(options.log_level)
    } else {
        logging::init(&options.log_file, options.log_level)
    };
    info!(
        "Reading configuration from file: {}",
        options.configuration.display()
    );
    match kinesis_agent::sys::raise_open_files_limit() {
        Some(l) if l.soft > l.soft_before => info!(
            "Open files limit: soft {} raised to the hard limit {}.",
            l.soft_before, l.hard
        ),
        Some(l) => info!("Open files limit: soft {}, hard {}.", l.soft, l.hard),
        None => warn!("Open files limit: cannot read it (getrlimit failed)."),
    }
    let mut plan = match load_plan(&options) {
        Ok(plan) => plan,
        Err(e) => {
            error!("Configuration error: {e}");
            eprintln!("aws-kinesis-agent: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    // One worker thread runs every flow's tasks (blocking DNS lookups and slow checkpoint saves
    // run on threads of their own). Measured on the 1,000,000-line backlog (README,
    // "Benchmark"): with one worker instead of one per core the agent used 10-20 % less CPU per
    // record (no wake-ups across threads) and about 6 MiB less memory, and still sent it in
    // about 1.3 s; one core sends ~750,000 records a second, far more than a host's logs need.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
    if options.dry_run {
        for flow in &mut plan.flows {
            flow.max_buffer_age = DRY_RUN_BUFFER_AGE;
        }
        return runtime.block_on(async move {
            agent::dry_run(plan, stop_on_signal()).await;
            ExitCode::SUCCESS
        });
    }
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
        agent::run(plan, clients, checkpoints, stop_on_signal()).await;
        ExitCode::SUCCESS
    })
}

/// A token cancelled at SIGTERM or SIGINT (call inside the runtime).
fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let signals = stop.clone();
    tokio::spawn(async move {
        match shutdown::stop_requested().await {
            Ok(reason) => info!("Agent: stop requested ({reason:?})."),
            Err(e) => error!("cannot listen for stop signals: {e}; stopping."),
        }
        signals.cancel();
    });
    stop
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
