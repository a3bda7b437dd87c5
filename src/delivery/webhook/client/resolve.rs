//! Finding the address to connect to: DNS off the shard's thread, then the SSRF check on every
//! address, before any packet goes to the host.
//!
//! The address picked here is the one connected to (pinned for the attempt): checking one
//! lookup and then letting the connect look the name up again would let a DNS server answer
//! "public" to the check and "private" to the connect (DNS rebinding).

use std::net::{SocketAddr, ToSocketAddrs};

use super::url::Url;
use super::AttemptError;
use crate::policy::ssrf::AddressPolicy;

/// The first resolved address of `url` the policy permits. A literal IP skips DNS.
pub(super) async fn resolve(url: &Url, policy: &AddressPolicy) -> Result<SocketAddr, AttemptError> {
    let port = url.port();
    if let Some(ip) = url.ip() {
        return pick(&[SocketAddr::new(ip, port)], policy);
    }
    let host = url.host().to_owned();
    // getaddrinfo blocks; glommio runs it on the executor's blocking thread.
    let lookup = glommio::executor()
        .spawn_blocking(move || {
            (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>)
                .map_err(|e| e.to_string())
        })
        .await;
    let addrs =
        lookup.map_err(|e| AttemptError::Resolve(format!("resolving {}: {e}", url.host())))?;
    if addrs.is_empty() {
        return Err(AttemptError::Resolve(format!(
            "{} resolved to no address",
            url.host()
        )));
    }
    pick(&addrs, policy)
}

/// The first permitted address, or the refusal of the first one when none is permitted.
pub(super) fn pick(
    addrs: &[SocketAddr],
    policy: &AddressPolicy,
) -> Result<SocketAddr, AttemptError> {
    let mut first_refusal = None;
    for addr in addrs {
        match policy.check(addr.ip()) {
            Ok(()) => return Ok(*addr),
            Err(e) => {
                first_refusal.get_or_insert(e);
            }
        }
    }
    Err(match first_refusal {
        Some(e) => AttemptError::Forbidden(e),
        None => AttemptError::Resolve("no address to connect to".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn the_first_permitted_address_is_used() {
        let policy = AddressPolicy::default();
        let got = pick(
            &addrs(&["10.0.0.1:80", "8.8.8.8:80", "1.1.1.1:80"]),
            &policy,
        );
        assert_eq!(got.unwrap(), "8.8.8.8:80".parse().unwrap());
    }

    #[test]
    fn all_forbidden_reports_the_first_refusal() {
        let policy = AddressPolicy::default();
        let err = pick(&addrs(&["127.0.0.1:80", "[::1]:80"]), &policy).unwrap_err();
        assert_eq!(err.to_string(), "refused to connect: 127.0.0.1 is loopback");
    }
}
