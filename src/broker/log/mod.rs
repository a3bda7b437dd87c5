//! The durable embedded log's on-disk format, as pure functions over bytes.
//!
//! Records ([`record`]), the recovery scan ([`segment_scan`]), the sparse offset index
//! ([`index`]) and segment file names ([`naming`]). The glommio I/O around them (appending with
//! `DmaFile`, syncing, sealing, reading back) lives elsewhere and stays thin: every rule about
//! what the bytes mean is here, tested without a file.
//!
//! # Files
//! A partition's log is a directory of segments. Segment `B` (its *base offset*: its records
//! have offsets `>= B` and below the next segment's base) is two files:
//! - `{B:020}.log`: records back to back from byte 0; no file header, nothing between records.
//!   After the last record only zero bytes may follow (direct I/O writes whole blocks; the
//!   writer rewrites the partial tail block rather than padding records).
//! - `{B:020}.idx`: its sparse index. Optional: rebuilt from the log when missing or refused.
//!
//! Twenty digits, zero-padded (the width of `u64::MAX`), so names sort in offset order;
//! [`naming::parse_name`] refuses any other name.
//!
//! # Record
//! All integers little-endian; `at` counts from the record's first byte.
//!
//! | at   | size       | field                                                             |
//! |------|------------|-------------------------------------------------------------------|
//! | 0    | 4          | `body_len` (u32): bytes after this 8-byte header                  |
//! | 4    | 4          | `crc32c` (u32): CRC32C (Castagnoli) of the body                   |
//! | 8    | 8          | `offset` (u64)                                                    |
//! | 16   | 8          | `timestamp_ms` (i64, Unix time the owner appended it)             |
//! | 24   | 1          | `format_version` = 1                                              |
//! | 25   | 1          | `flags`: bit 0 type, 1 idempotency key, 2 key present; others 0   |
//! | 26   | 2 + n      | event type, if bit 0: u16 n, n bytes UTF-8                        |
//! |      | 2 + n      | idempotency key, if bit 1: u16 n, n bytes UTF-8                   |
//! |      | 4 + n      | key, if bit 2: u32 n, n bytes                                     |
//! |      | 2          | header count (u16)                                                |
//! |      | per header | u16 n, n bytes UTF-8 name; u32 m, m bytes value                   |
//! |      | 4 + n      | data: u32 n, n bytes UTF-8                                        |
//!
//! The flags keep an absent field apart from an empty one. The fields use up the body exactly.
//! The smallest record is 32 bytes; the largest [`record::MAX_RECORD_LEN`] (64 MiB, header
//! included).
//!
//! # What decoding checks, in this order
//! So that no length is used before it is bounded ([`record::decode`]):
//! 1. the 8 header bytes are there, else `Incomplete`;
//! 2. `body_len` is not 0: zero fill (a preallocated or never written block) never reads as a
//!    record;
//! 3. the whole record is at most `MAX_RECORD_LEN`, and the body at least the fixed fields;
//! 4. the body is all there, else `Incomplete { needed }` (the record's whole length);
//! 5. the CRC32C of the body;
//! 6. the version, no unknown flag, every length within what is left of the body, every text
//!    field UTF-8 (data included), no bytes left over.
//!
//! The CRC does not cover `body_len`; step 6 catches any change to it (a shorter length cuts
//! the last field, a longer one leaves bytes over). So a change to any one byte of a record,
//! or any burst of up to 32 bits (CRC32C's guarantee), is always detected. Not checked:
//! damage that happens to leave a valid CRC over a valid body (odds 2^-32 for random damage
//! wider than 4 bytes), whether the offset belongs here (the scan checks order), whether the
//! timestamp is sane.
//!
//! # Recovery
//! [`segment_scan::scan_segment`] walks a segment from byte 0. A record is good when it decodes
//! and its offset is above the previous record's (the first: at or above the base offset).
//! Offsets may skip; they never repeat or go back. The walk stops at the first record that is
//! not good: `valid_len` is the length of the good records before it; the I/O layer truncates
//! the file there and appends from there, at `last_offset + 1`. The bytes after `valid_len` are
//! reported as `damaged_bytes` (up to the last non-zero byte) and `padding_bytes` (the zeroes
//! after it), so "dropped N damaged bytes" is logged for real damage only. A length field that
//! is itself damaged can make a record look torn (`Torn`) rather than `Corrupt`; both truncate.
//!
//! For the I/O layer, not checkable here:
//! - `Corrupt(UnsupportedVersion)` has a good CRC: another version of the gateway wrote it.
//!   Refuse to start rather than truncate the log over it.
//! - Only the last segment may have a torn tail; damage in an earlier one is worth an error.
//! - Offsets must also stay below the next segment's base (it knows the listing).
//!
//! # Index
//! | at     | size | field                                                          |
//! |--------|------|----------------------------------------------------------------|
//! | 0      | 4    | magic `SGIX`                                                   |
//! | 4      | 4    | version = 1 (u32)                                              |
//! | 8      | 8    | base offset of its segment (u64)                               |
//! | 16     | 4    | entry count n (u32)                                            |
//! | 20     | 8n   | entries: u32 `offset - base`, u32 file position of that record |
//! | 20+8n  | 4    | CRC32C of bytes `0..20+8n`                                     |
//!
//! Then only zero bytes (whole direct-I/O blocks). [`index::SparseIndex::maybe_add`] keeps a
//! record's position when it is at least `index_interval_bytes` past the previous entry
//! (position 0 is implicit), so reading from [`index::SparseIndex::lookup`]'s answer finds an
//! offset within about one interval. Entries strictly increase in both fields. Decoding refuses
//! anything else (magic, version, base, CRC, count against length, order, trailing bytes): a
//! refused or missing index is rebuilt by a scan ([`index::SparseIndex::rebuild`]), never
//! partly trusted. An index is only as new as its last write: at recovery, rebuild the last
//! segment's index, or any whose last entry lies past the recovered `valid_len`. A segment
//! up to 4 GiB and 2^32 offsets from its base is fully indexed; past that no entries are kept
//! (lookups stay correct, they scan further).
pub mod index;
pub mod naming;
pub mod record;
pub mod segment_scan;

#[cfg(test)]
mod testing;

pub use index::{IndexEntry, IndexError, SparseIndex};
pub use naming::{index_name, list_segments, log_name, parse_name, SegmentFileKind, SegmentFiles};
pub use record::{
    decode, encode, encoded_len, Corruption, Decoded, EncodeError, HeaderIter, Headers, Record,
    RecordRef, RecordView, MAX_RECORD_LEN,
};
pub use segment_scan::{scan_segment, scan_segment_with, Records, ScanOutcome, ScanStop};
