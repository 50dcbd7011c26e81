//! Tells systemd (a `Type=notify` unit) when the agent is ready and when it is stopping.
//!
//! The protocol is one datagram to the socket named by `NOTIFY_SOCKET`; no library needed.
//! Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (one or more `KEY=value` lines, e.g. `READY=1\nSTATUS=...`) to systemd, if the
/// agent runs under it; a failure is logged (at most once per process: the socket does not
/// come back), and the agent goes on. Without `READY=1` a `Type=notify` unit is stopped after
/// `TimeoutStartSec`, so the log line says where to look.
pub fn tell(state: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(e) = notify(state) {
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let socket = std::env::var_os("NOTIFY_SOCKET").unwrap_or_default();
            tracing::warn!(
                "Agent: cannot notify systemd on NOTIFY_SOCKET={} ({e}); a Type=notify unit will time out waiting for READY=1. Run the agent with the packaged unit, or unset NOTIFY_SOCKET when starting it by hand.",
                socket.to_string_lossy()
            );
        }
    }
}

/// Sends `state` (e.g. `READY=1`) to systemd, if the agent runs under it. Failures are returned
/// for logging; they never stop the agent.
pub fn notify(state: &str) -> std::io::Result<()> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path, state),
        None => Ok(()),
    }
}

/// Sends `state` to the notification socket at `path` (`@name` for an abstract socket).
pub fn notify_to(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket (Linux): the name is the rest, with a leading NUL.
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_datagram_to_the_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        notify_to(path.as_os_str(), "READY=1").expect("send");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
    }
}
