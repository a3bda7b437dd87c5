//! Fuzz the WebSub form decoder and hub-request reader on arbitrary bytes: they answer (an error,
//! almost always) and never panic, and what they accept keeps their promises.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluicegate::codec::websub_form::{
    form_pairs, parse_hub_request, MAX_FORM_FIELDS, MAX_SECRET_LEN,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(pairs) = form_pairs(data) {
        assert!(pairs.len() <= MAX_FORM_FIELDS);
    }
    if let Ok(req) = parse_hub_request(data) {
        assert!(!req.topic.is_empty() && !req.callback.is_empty());
        if let Some(secret) = &req.secret {
            assert!(!secret.is_empty() && secret.len() <= MAX_SECRET_LEN);
        }
    }
});
