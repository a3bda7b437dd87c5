//! The SSRF guard for outbound webhook requests: which IP addresses a delivery may connect to.
//!
//! A webhook URL is chosen by a subscriber, so without this check the gateway would POST to
//! whatever the subscriber's DNS says: the cloud metadata service, a database on the private
//! network, the gateway's own admin port. Every address a URL resolves to is checked here
//! before any connect; special-purpose ranges (IANA's IPv4 and IPv6 registries) are refused
//! unless the operator allows a CIDR that contains the address. IPv6 forms that carry an IPv4
//! address (mapped, compatible, NAT64, 6to4) are judged by that IPv4 address, so
//! `::ffff:127.0.0.1` is loopback. Pure: no I/O, no clock.

mod cidr;
mod ranges;

use std::net::{IpAddr, Ipv4Addr};

pub use cidr::{Cidr, CidrError};
pub use ranges::Range;

/// Where webhook deliveries may connect: everything public, plus the allowed CIDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<Cidr>,
}

/// An address a delivery must not connect to, and the special-purpose range it is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.addr, .embedded, .range))]
pub struct ForbiddenAddress {
    pub addr: IpAddr,
    /// The IPv4 address an IPv6 address carries, which is what was judged.
    pub embedded: Option<Ipv4Addr>,
    pub range: Range,
}

fn describe(addr: &IpAddr, embedded: &Option<Ipv4Addr>, range: &Range) -> String {
    match embedded {
        Some(v4) => format!("{addr} embeds {v4}, which is {range}"),
        None => format!("{addr} is {range}"),
    }
}

impl AddressPolicy {
    /// Refuse the special-purpose ranges except inside `allow` (e.g. `10.20.0.0/16` for
    /// receivers on the private network).
    pub fn new(allow: Vec<Cidr>) -> Self {
        AddressPolicy { allow }
    }

    /// `Ok` when a delivery may connect to `addr`.
    pub fn check(&self, addr: IpAddr) -> Result<(), ForbiddenAddress> {
        let embedded = ranges::embedded_v4(addr);
        let judged = embedded.map_or(addr, IpAddr::V4);
        // The allow list is matched against the address as written and as judged, so allowing
        // 127.0.0.1/32 also allows ::ffff:127.0.0.1 (the same socket on a dual-stack host).
        if self.allowed(addr) || self.allowed(judged) {
            return Ok(());
        }
        match ranges::classify(judged) {
            None => Ok(()),
            Some(range) => Err(ForbiddenAddress {
                addr,
                embedded,
                range,
            }),
        }
    }

    fn allowed(&self, addr: IpAddr) -> bool {
        self.allow.iter().any(|c| c.contains(addr))
    }
}

#[cfg(test)]
mod tests;
