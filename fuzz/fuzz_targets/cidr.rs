//! Fuzz the SSRF allow-list CIDR parser: never panic, a parsed block prints back to itself and
//! contains its own network address, and the policy admits every address the block contains.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluicegate::internals::policy::{AddressPolicy, Cidr};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cidr) = text.parse::<Cidr>() else {
        return;
    };
    let printed = cidr.to_string();
    assert_eq!(printed.parse::<Cidr>(), Ok(cidr), "{text:?} printed as {printed:?}");
    let network = printed
        .split_once('/')
        .and_then(|(a, _)| a.parse().ok())
        .expect("a printed block starts with its address");
    assert!(cidr.contains(network));
    assert_eq!(AddressPolicy::new(vec![cidr]).check(network), Ok(()));
});
