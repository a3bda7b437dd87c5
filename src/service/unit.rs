//! The systemd unit `sluicegate --print-systemd-unit` prints, for the binary and config file it
//! was run with.
use std::path::Path;

/// A unit for `binary`, started with `--config config` when one is given.
pub fn systemd_unit(binary: &Path, config: Option<&Path>) -> String {
    let config_arg = config.map_or(String::new(), |c| format!(" --config {}", c.display()));
    format!(
        "\
[Unit]
Description=Sluicegate event gateway (SSE, WebSocket, webhooks)
Documentation=https://github.com/sluicegate/sluicegate
After=network-online.target
Wants=network-online.target

[Service]
# Ready (sd_notify READY=1) once every shard listens and /readyz would answer 200 (with
# Kafka: once every configured topic's partitions are known); STOPPING=1 when it drains.
Type=notify
NotifyAccess=main
ExecStart={binary}{config_arg}
# SIGHUP reloads keys, ACLs, rate limits, hooks and secret files; SIGTERM drains (clients are told to
# reconnect), then exits.
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=1
# One descriptor per client connection, plus the log's segment files.
LimitNOFILE=1048576
# io_uring (glommio) registers its buffers in locked memory.
LimitMEMLOCK=infinity
# The durable embedded log (storage.data_dir = \"sluicegate-data\", relative to this).
StateDirectory=sluicegate
WorkingDirectory=/var/lib/sluicegate
DynamicUser=yes
AmbientCapabilities=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
# CPU pinning: one shard per CPU given here, in order (server.cpus); keep the CPUs that take
# the NIC's interrupts out of this list on a busy box, e.g. CPUAffinity=2-15 with --cpus 2-15.
#CPUAffinity=

[Install]
WantedBy=multi-user.target
",
        binary = binary.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_starts_this_binary_with_its_config_and_waits_for_readiness() {
        let unit = systemd_unit(
            Path::new("/usr/local/bin/sluicegate"),
            Some(Path::new("/etc/sluicegate.toml")),
        );
        assert!(
            unit.contains("ExecStart=/usr/local/bin/sluicegate --config /etc/sluicegate.toml\n")
        );
        for line in [
            "Type=notify",
            "LimitNOFILE=",
            "LimitMEMLOCK=infinity",
            "ExecReload=",
        ] {
            assert!(unit.contains(line), "{line}");
        }
        let bare = systemd_unit(Path::new("/opt/sg"), None);
        assert!(bare.contains("ExecStart=/opt/sg\n"));
    }
}
