//! systemd's readiness protocol (`Type=notify`): datagrams such as `READY=1` sent to the socket
//! named by `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`). Without
//! `$NOTIFY_SOCKET` (not started by systemd) nothing is sent.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `"READY=1"`) to the service manager. Returns whether one was there.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), &path)?;
    }
    Ok(true)
}
