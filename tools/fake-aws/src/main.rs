//! `fake-aws`: parses the flags, binds 127.0.0.1, prints the one line tests wait for, serves.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;
use fake_aws::batch::validate_name;
use fake_aws::cli::Cli;
use fake_aws::server::{serve, App};
use fake_aws::store::Store;
use fake_aws::tls::Tls;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fake-aws: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let faults = cli.faults()?;
    let streams = cli.streams()?;
    let record_file = match &cli.record_file {
        None => None,
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open --record-file {}: {e}", path.display()))?,
        ),
    };
    let mut store = Store::new(cli.settings(), faults, record_file);
    for (name, shards) in streams {
        validate_name(&name, "--stream", 128).map_err(|e| e.message)?;
        store.create(&name, shards);
    }

    let tls = if cli.tls {
        let tls = Tls::generate()?;
        if let Some(path) = &cli.cert_out {
            std::fs::write(path, &tls.ca_pem)
                .map_err(|e| format!("cannot write --cert-out {}: {e}", path.display()))?;
        }
        Some(tls.acceptor)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, cli.port))
        .map_err(|e| format!("cannot bind 127.0.0.1:{}: {e}", cli.port))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;

    if cli.exit_on_stdin_eof {
        // The parent holds our stdin; when it dies or closes it, we go too.
        std::thread::spawn(|| {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }

    let app = Arc::new(App::new(store));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| format!("cannot register the listener: {e}"))?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "fake-aws listening on {scheme}://127.0.0.1:{port}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        match serve(listener, app, tls).await {}
    })
}
