//! The special-purpose address ranges a webhook may not reach (IANA's IPv4 and IPv6
//! special-purpose registries, plus multicast), and the IPv6 forms that carry an IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused: the range it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Unspecified,
    /// 0.0.0.0/8: "this network"; Linux connects 0.x addresses to the local host.
    ThisNetwork,
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, and IPv6 unique local fc00::/7.
    Private,
    /// 100.64/10, carrier-grade NAT (also where some clouds put their metadata service).
    SharedCgnat,
    LinkLocal,
    /// 169.254.169.254, the metadata service of most clouds (credentials live there).
    CloudMetadata,
    Multicast,
    Broadcast,
    /// 240/4, and IPv6 ranges with no global meaning (discard-only, deprecated site-local).
    Reserved,
    /// 198.18/15 and 2001:2::/48.
    Benchmarking,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 192.0.0/24 and 2001::/23: protocol-specific addresses, not hosts.
    ProtocolAssignments,
    /// 2001::/32: the IPv4 address inside is obfuscated, so it cannot be judged; refused.
    Teredo,
    /// 64:ff9b:1::/48, NAT64 prefixes for use inside one network.
    LocalNat64,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Range::Unspecified => "unspecified",
            Range::ThisNetwork => "in 0.0.0.0/8 (this network)",
            Range::Loopback => "loopback",
            Range::Private => "private",
            Range::SharedCgnat => "shared address space (carrier-grade NAT)",
            Range::LinkLocal => "link-local",
            Range::CloudMetadata => "link-local (cloud metadata)",
            Range::Multicast => "multicast",
            Range::Broadcast => "broadcast",
            Range::Reserved => "reserved",
            Range::Benchmarking => "for benchmarking",
            Range::Documentation => "for documentation",
            Range::ProtocolAssignments => "an IETF protocol assignment",
            Range::Teredo => "Teredo (IPv4 inside not checkable)",
            Range::LocalNat64 => "local-use NAT64",
        })
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    Ipv4Addr::new(a, b, c, d).to_bits()
}

const fn v6(segments: [u16; 8]) -> u128 {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Addr::new(a, b, c, d, e, f, g, h).to_bits()
}

/// First match wins, so the narrow ranges come before the blocks that contain them.
const V4_RANGES: &[(u32, u8, Range)] = &[
    (v4(255, 255, 255, 255), 32, Range::Broadcast),
    (v4(169, 254, 169, 254), 32, Range::CloudMetadata),
    (v4(0, 0, 0, 0), 32, Range::Unspecified),
    (v4(0, 0, 0, 0), 8, Range::ThisNetwork),
    (v4(10, 0, 0, 0), 8, Range::Private),
    (v4(100, 64, 0, 0), 10, Range::SharedCgnat),
    (v4(127, 0, 0, 0), 8, Range::Loopback),
    (v4(169, 254, 0, 0), 16, Range::LinkLocal),
    (v4(172, 16, 0, 0), 12, Range::Private),
    (v4(192, 0, 0, 0), 24, Range::ProtocolAssignments),
    (v4(192, 0, 2, 0), 24, Range::Documentation),
    // The deprecated 6to4 relay anycast block (RFC 7526).
    (v4(192, 88, 99, 0), 24, Range::Reserved),
    (v4(192, 168, 0, 0), 16, Range::Private),
    (v4(198, 18, 0, 0), 15, Range::Benchmarking),
    (v4(198, 51, 100, 0), 24, Range::Documentation),
    (v4(203, 0, 113, 0), 24, Range::Documentation),
    (v4(224, 0, 0, 0), 4, Range::Multicast),
    (v4(240, 0, 0, 0), 4, Range::Reserved),
];

/// Checked after the IPv4-carrying forms have been judged by their IPv4 address.
const V6_RANGES: &[(u128, u8, Range)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0]), 128, Range::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1]), 128, Range::Loopback),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48, Range::LocalNat64),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, Range::Reserved),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32, Range::Teredo),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0]), 48, Range::Benchmarking),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]),
        32,
        Range::Documentation,
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0]),
        23,
        Range::ProtocolAssignments,
    ),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20, Range::Documentation),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, Range::Private),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, Range::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10, Range::Reserved),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, Range::Multicast),
];

/// The range `addr` is in, or `None` for an ordinary (public unicast) address. IPv6 forms
/// carrying an IPv4 address must be passed as that address (see [`embedded_v4`]).
pub(super) fn classify(addr: IpAddr) -> Option<Range> {
    match addr {
        IpAddr::V4(a) => {
            let bits = a.to_bits();
            V4_RANGES
                .iter()
                .find(|(net, prefix, _)| bits & mask32(*prefix) == *net)
                .map(|(_, _, range)| *range)
        }
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            V6_RANGES
                .iter()
                .find(|(net, prefix, _)| bits & mask128(*prefix) == *net)
                .map(|(_, _, range)| *range)
        }
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one:
/// IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`, IPv4-compatible `::/96`
/// (except `::` and `::1`), NAT64 `64:ff9b::/96`, and 6to4 `2002::/16` (bits 16-48). The
/// kernel, a NAT64 gateway or a 6to4 relay delivers these to that IPv4 host.
pub(super) fn embedded_v4(addr: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(a) = addr else {
        return None;
    };
    let bits = a.to_bits();
    let low32 = Ipv4Addr::from_bits(bits as u32);
    let prefixes96 = [
        v6([0, 0, 0, 0, 0, 0xffff, 0, 0]),
        v6([0, 0, 0, 0, 0xffff, 0, 0, 0]),
        v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]),
    ];
    if prefixes96.contains(&(bits & mask128(96))) {
        return Some(low32);
    }
    if bits & mask128(96) == 0 && bits > 1 {
        return Some(low32);
    }
    if bits & mask128(16) == v6([0x2002, 0, 0, 0, 0, 0, 0, 0]) {
        return Some(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    None
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}
