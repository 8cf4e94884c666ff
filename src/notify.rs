//! The systemd notify protocol (`sd_notify`), without libsystemd: one
//! datagram per message to the unix socket named by `NOTIFY_SOCKET`
//! (a path, or `@name` for the abstract namespace). Outside systemd the
//! variable is unset and every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::error::{Error, Result};

/// Send `state` (e.g. `READY=1\nSTATUS=serving`). Returns whether a
/// notify socket was configured.
pub fn notify(state: &str) -> Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound().map_err(|e| Error::io(format!("notify socket: {e}")))?;
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)
            .map_err(|e| Error::io(format!("NOTIFY_SOCKET: {e}")))?;
        sock.send_to_addr(state.as_bytes(), &addr)
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    sent.map_err(|e| Error::io(format!("sending {state:?} to NOTIFY_SOCKET: {e}")))?;
    Ok(true)
}

/// Log instead of failing: notification is best effort.
pub fn notify_or_log(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!(error = %e, "systemd notification failed");
    }
}

/// The watchdog period systemd expects pings within (`WATCHDOG_USEC`), when
/// it is meant for this process (`WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}
