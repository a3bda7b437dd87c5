//! systemd's readiness protocol (`sd_notify`): datagrams such as `READY=1` sent to the unix
//! socket named by `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`). Not
//! run under systemd (no variable), nothing is sent.
use std::os::unix::net::UnixDatagram;

/// Send `state` (e.g. `READY=1`) to systemd, if it is listening. Returns whether it was sent.
pub fn notify(state: &str) -> bool {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return false;
    };
    let bytes = target.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &target),
    };
    match sent {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "sd_notify: cannot reach NOTIFY_SOCKET");
            false
        }
    }
}
