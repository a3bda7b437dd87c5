//! Running as a bare-metal service: the systemd unit the binary prints
//! (`--print-systemd-unit`) and the readiness notifications it sends to systemd
//! (`Type=notify`: `READY=1` once `/readyz` would answer 200, `STOPPING=1` when draining).
pub mod notify;
pub mod unit;
