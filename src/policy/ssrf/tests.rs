//! Per-range refusals, the embedded-IPv4 forms, the allow list, CIDR parsing, and properties:
//! an IPv4 address and its mapped form get the same verdict; an allowed CIDR always admits.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn refused(policy: &AddressPolicy, addr: &str) -> Range {
    policy.check(ip(addr)).expect_err(addr).range
}

#[test]
fn every_special_ipv4_range_is_refused_by_default() {
    let p = AddressPolicy::default();
    let cases = [
        ("0.0.0.0", Range::Unspecified),
        ("0.1.2.3", Range::ThisNetwork),
        ("10.0.0.1", Range::Private),
        ("10.255.255.255", Range::Private),
        ("100.64.0.1", Range::SharedCgnat),
        ("100.127.255.254", Range::SharedCgnat),
        ("127.0.0.1", Range::Loopback),
        ("127.255.0.9", Range::Loopback),
        ("169.254.169.254", Range::CloudMetadata),
        ("169.254.0.1", Range::LinkLocal),
        ("172.16.0.1", Range::Private),
        ("172.31.255.255", Range::Private),
        ("192.0.0.8", Range::ProtocolAssignments),
        ("192.0.2.1", Range::Documentation),
        ("192.88.99.1", Range::Reserved),
        ("192.168.1.1", Range::Private),
        ("198.18.0.1", Range::Benchmarking),
        ("198.19.255.255", Range::Benchmarking),
        ("198.51.100.7", Range::Documentation),
        ("203.0.113.9", Range::Documentation),
        ("224.0.0.1", Range::Multicast),
        ("239.255.255.250", Range::Multicast),
        ("240.0.0.1", Range::Reserved),
        ("255.255.255.255", Range::Broadcast),
    ];
    for (addr, range) in cases {
        assert_eq!(refused(&p, addr), range, "{addr}");
    }
}

#[test]
fn every_special_ipv6_range_is_refused_by_default() {
    let p = AddressPolicy::default();
    let cases = [
        ("::", Range::Unspecified),
        ("::1", Range::Loopback),
        ("64:ff9b:1::5", Range::LocalNat64),
        ("100::1", Range::Reserved),
        ("2001::1", Range::Teredo),
        ("2001:2::1", Range::Benchmarking),
        ("2001:db8::1", Range::Documentation),
        ("2001:10::1", Range::ProtocolAssignments),
        ("3fff::1", Range::Documentation),
        ("fc00::1", Range::Private),
        ("fd00:ec2::254", Range::Private),
        ("fe80::1", Range::LinkLocal),
        ("fec0::1", Range::Reserved),
        ("ff02::1", Range::Multicast),
    ];
    for (addr, range) in cases {
        assert_eq!(refused(&p, addr), range, "{addr}");
    }
}

#[test]
fn ipv6_forms_carrying_ipv4_are_judged_by_the_ipv4_address() {
    let p = AddressPolicy::default();
    for (addr, v4, range) in [
        ("::ffff:127.0.0.1", "127.0.0.1", Range::Loopback),
        ("::ffff:0:10.0.0.1", "10.0.0.1", Range::Private),
        ("::169.254.169.254", "169.254.169.254", Range::CloudMetadata),
        ("64:ff9b::192.168.0.1", "192.168.0.1", Range::Private),
        ("2002:7f00:1::", "127.0.0.1", Range::Loopback),
        ("2002:a9fe:a9fe::1", "169.254.169.254", Range::CloudMetadata),
    ] {
        let e = p.check(ip(addr)).expect_err(addr);
        assert_eq!(
            (e.range, e.embedded),
            (range, Some(v4.parse().unwrap())),
            "{addr}"
        );
    }
    for public in ["::ffff:8.8.8.8", "64:ff9b::1.1.1.1", "2002:0808:0808::1"] {
        assert_eq!(p.check(ip(public)), Ok(()), "{public}");
    }
}

#[test]
fn public_addresses_pass() {
    let p = AddressPolicy::default();
    for addr in [
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700::1111",
    ] {
        assert_eq!(p.check(ip(addr)), Ok(()), "{addr}");
    }
}

#[test]
fn the_allow_list_admits_exactly_its_blocks() {
    let p = AddressPolicy::new(vec![
        "127.0.0.1/32".parse().unwrap(),
        "10.20.0.0/16".parse().unwrap(),
        "fd00::/8".parse().unwrap(),
    ]);
    for ok in ["127.0.0.1", "::ffff:127.0.0.1", "10.20.3.4", "fd12::1"] {
        assert_eq!(p.check(ip(ok)), Ok(()), "{ok}");
    }
    for no in ["127.0.0.2", "10.21.0.1", "fc00::1", "::1"] {
        assert!(p.check(ip(no)).is_err(), "{no}");
    }
}

#[test]
fn messages_name_the_address_and_the_range() {
    let p = AddressPolicy::default();
    let e = p.check(ip("169.254.169.254")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "169.254.169.254 is link-local (cloud metadata)"
    );
    let e = p.check(ip("::ffff:127.0.0.1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "::ffff:127.0.0.1 embeds 127.0.0.1, which is loopback"
    );
}

#[test]
fn cidrs_parse_and_contain() {
    let c: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(c.contains(ip("10.9.8.7")) && !c.contains(ip("11.0.0.0")));
    assert!(
        !c.contains(ip("::ffff:10.0.0.1")),
        "families never mix in a block"
    );
    let one: Cidr = "::1".parse().unwrap();
    assert_eq!(one.to_string(), "::1/128");
    assert_eq!("1.2.3.4".parse::<Cidr>().unwrap().to_string(), "1.2.3.4/32");
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("255.1.2.3")));
}

#[test]
fn cidr_errors_say_what_is_wrong() {
    let err = |s: &str| s.parse::<Cidr>().unwrap_err();
    assert!(matches!(err("10.0.0/8"), CidrError::Address { .. }));
    assert!(matches!(err("example.com"), CidrError::Address { .. }));
    assert!(matches!(err("10.0.0.0/"), CidrError::Prefix { .. }));
    assert!(matches!(err("10.0.0.0/+8"), CidrError::Prefix { .. }));
    assert_eq!(
        err("10.0.0.0/33"),
        CidrError::PrefixTooLong {
            prefix: 33,
            max: 32
        }
    );
    assert_eq!(
        err("::/129"),
        CidrError::PrefixTooLong {
            prefix: 129,
            max: 128
        }
    );
    assert_eq!(
        err("10.1.2.3/8").to_string(),
        "10.1.2.3/8 has host bits set; the network is 10.0.0.0/8"
    );
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|b| IpAddr::V4(Ipv4Addr::from_bits(b))),
        any::<u128>().prop_map(|b| IpAddr::V6(Ipv6Addr::from_bits(b))),
    ]
}

/// The block of `prefix` bits around `addr`, written as configuration would.
fn block_around(addr: IpAddr, prefix: u8) -> Cidr {
    let (masked, prefix) = match addr {
        IpAddr::V4(a) => {
            let p = prefix % 33;
            let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask)), p)
        }
        IpAddr::V6(a) => {
            let p = prefix % 129;
            let mask = u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0);
            (IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask)), p)
        }
    };
    format!("{masked}/{prefix}").parse().unwrap()
}

proptest! {
    #[test]
    fn an_ipv4_address_and_its_mapped_form_get_the_same_verdict(
        bits in any::<u32>(),
        allow in prop::collection::vec((any::<u32>(), 0u8..=32), 0..3),
    ) {
        let allow = allow
            .into_iter()
            .map(|(b, p)| block_around(IpAddr::V4(Ipv4Addr::from_bits(b)), p))
            .collect();
        let policy = AddressPolicy::new(allow);
        let a = Ipv4Addr::from_bits(bits);
        let plain = policy.check(IpAddr::V4(a)).map_err(|e| e.range);
        let mapped = policy.check(IpAddr::V6(a.to_ipv6_mapped())).map_err(|e| e.range);
        prop_assert_eq!(plain, mapped);
    }

    #[test]
    fn a_cidr_containing_the_address_always_admits_it(addr in any_ip(), prefix in any::<u8>()) {
        let cidr = block_around(addr, prefix);
        prop_assert!(cidr.contains(addr));
        prop_assert_eq!(AddressPolicy::new(vec![cidr]).check(addr), Ok(()));
    }

    #[test]
    fn cidr_display_parses_back(addr in any_ip(), prefix in any::<u8>()) {
        let cidr = block_around(addr, prefix);
        prop_assert_eq!(cidr.to_string().parse::<Cidr>(), Ok(cidr));
    }
}
