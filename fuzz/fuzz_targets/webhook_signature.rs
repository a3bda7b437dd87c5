//! Fuzz webhook signature checks with arbitrary headers, secrets and bodies: they answer (an
//! error, almost always) and never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluicegate::internals::policy::{verify_hub_signature, verify_standard, StandardHeaders};

fuzz_target!(|data: &[u8]| {
    // `secret \0 header \0 id \0 timestamp \0 signature \0 body`, text parts skipped unless UTF-8.
    let mut parts = data.splitn(6, |&b| b == 0);
    let mut text = || parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let (Some(secret), header, id, ts, sig) = (text(), text(), text(), text(), text()) else {
        return;
    };
    let body = data.rsplit(|&b| b == 0).next().unwrap_or_default();
    let _ = verify_hub_signature(secret.as_bytes(), header, body);
    let headers = StandardHeaders {
        id,
        timestamp: ts,
        signature: sig,
    };
    let _ = verify_standard(secret, headers, body, 1_700_000_000, 300);
});
