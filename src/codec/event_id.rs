//! Event ids: the SSE `id:` text that lets a client resume exactly where it left off.
//!
//! An id is a *cursor*: `{epoch}-{next}` for a subscription that reads one partition, or
//! `{epoch}-{next_0}.{next_1}...` for one that reads several (several topics, or a topic with
//! several partitions), listing for each partition of the subscription, in subscription order,
//! the offset of the next event the client has not seen yet. `epoch` names the broker's
//! incarnation (the embedded broker's start time, base 36), so an id from before a restart is
//! recognised as such instead of being read as a position in a new, unrelated log.
//!
//! Why a cursor and not the event's own offset: a client that reads several partitions can only
//! send back one id, and only a cursor over all of them resumes every partition without loss or
//! duplicates. Single-partition subscribers (the common case) get the id that the owner framed
//! once into the shared frame; multi-partition subscribers get a per-connection id line written
//! in front of the shared rest of the frame, so the payload is still never copied.

use std::fmt::Write as _;

/// Most partitions one cursor may name (bounds the work a hostile id can cause).
pub const MAX_CURSOR_PARTS: usize = 4096;

/// A parsed cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The broker incarnation the offsets belong to.
    pub epoch: u64,
    /// Per partition of the subscription: the next offset the client has not seen.
    pub next: Vec<u64>,
}

/// Why a `Last-Event-ID` could not be read as a cursor.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventIdError {
    #[error("event id is empty")]
    Empty,
    #[error("event id has no '-' between epoch and offsets")]
    MissingDash,
    #[error("event id epoch is not base-36")]
    BadEpoch,
    #[error("event id offset #{0} is not a decimal number")]
    BadOffset(usize),
    #[error("event id names more than {MAX_CURSOR_PARTS} partitions")]
    TooManyParts,
}

/// Append the base-36 text of `epoch` (lower case) to `out`.
pub fn write_epoch(out: &mut String, mut epoch: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut tmp = [0u8; 13];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = DIGITS[(epoch % 36) as usize];
        epoch /= 36;
        if epoch == 0 {
            break;
        }
    }
    for &b in &tmp[i..] {
        out.push(b as char);
    }
}

/// The id of a single-partition cursor, e.g. `lx3k9a2-42`.
pub fn format_single(epoch: u64, next: u64) -> String {
    format_cursor(epoch, &[next])
}

/// The id of a cursor over several partitions, e.g. `lx3k9a2-42.0.7`.
pub fn format_cursor(epoch: u64, next: &[u64]) -> String {
    let mut out = String::with_capacity(16 + next.len() * 4);
    write_epoch(&mut out, epoch);
    out.push('-');
    for (i, n) in next.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let _ = write!(out, "{n}");
    }
    out
}

/// Read an id produced by [`format_cursor`].
pub fn parse_cursor(text: &str) -> Result<Cursor, EventIdError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(EventIdError::Empty);
    }
    let (epoch_text, offsets) = text.split_once('-').ok_or(EventIdError::MissingDash)?;
    let epoch = parse_base36(epoch_text).ok_or(EventIdError::BadEpoch)?;
    let mut next = Vec::new();
    for (i, part) in offsets.split('.').enumerate() {
        if i >= MAX_CURSOR_PARTS {
            return Err(EventIdError::TooManyParts);
        }
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EventIdError::BadOffset(i));
        }
        next.push(
            part.parse::<u64>()
                .map_err(|_| EventIdError::BadOffset(i))?,
        );
    }
    Ok(Cursor { epoch, next })
}

fn parse_base36(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 13 {
        return None;
    }
    let mut value: u64 = 0;
    for b in text.bytes() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        value = value.checked_mul(36)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_partition_id_reads_back() {
        let id = format_single(1_700_000_000_000, 42);
        assert_eq!(
            parse_cursor(&id),
            Ok(Cursor {
                epoch: 1_700_000_000_000,
                next: vec![42]
            })
        );
    }

    #[test]
    fn malformed_ids_are_named() {
        assert_eq!(parse_cursor(""), Err(EventIdError::Empty));
        assert_eq!(parse_cursor("abc"), Err(EventIdError::MissingDash));
        assert_eq!(parse_cursor("AB-1"), Err(EventIdError::BadEpoch));
        assert_eq!(parse_cursor("ab-1.x"), Err(EventIdError::BadOffset(1)));
        assert_eq!(parse_cursor("ab-1..2"), Err(EventIdError::BadOffset(1)));
        assert_eq!(parse_cursor("ab-+1"), Err(EventIdError::BadOffset(0)));
        assert_eq!(
            parse_cursor("ab-99999999999999999999"),
            Err(EventIdError::BadOffset(0))
        );
    }

    proptest! {
        #[test]
        fn cursor_round_trips(epoch in any::<u64>(), next in proptest::collection::vec(any::<u64>(), 1..20)) {
            let id = format_cursor(epoch, &next);
            prop_assert_eq!(parse_cursor(&id), Ok(Cursor { epoch, next }));
        }

        #[test]
        fn any_text_is_rejected_or_read_without_panic(text in ".{0,64}") {
            let _ = parse_cursor(&text);
        }
    }
}
