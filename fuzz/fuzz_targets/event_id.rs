//! Fuzz the `Last-Event-ID` cursor parser: never panics, and whatever it accepts formats back to
//! an id that parses to the same cursor.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluicegate::codec::event_id::{format_cursor, parse_cursor};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cursor) = parse_cursor(text) {
        let again = format_cursor(cursor.epoch, &cursor.next);
        assert_eq!(parse_cursor(&again), Ok(cursor));
    }
});
