//! Signals to a domain event: the agent is asked to stop.

use tokio::signal::unix::{signal, SignalKind};

/// Why the agent stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM (systemd stop, `kill`).
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

/// Waits for SIGTERM or SIGINT.
pub async fn stop_requested() -> std::io::Result<StopReason> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => StopReason::Terminate,
        _ = int.recv() => StopReason::Interrupt,
    })
}
