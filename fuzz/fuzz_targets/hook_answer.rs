//! Fuzz the sync hook answer parser: arbitrary status and body never panic, and an accepted
//! rejection always carries a 4xx/5xx status.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluicegate::codec::hook_answer::{parse_hook_answer, HookAnswer};

fuzz_target!(|input: &[u8]| {
    let Some((head, body)) = input.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_le_bytes(*head);
    if let Ok(HookAnswer::Reject { status, .. }) = parse_hook_answer(status, body) {
        assert!((400..600).contains(&status));
    }
});
