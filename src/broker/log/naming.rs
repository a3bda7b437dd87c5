//! Segment file names: `{base_offset:020}.log` and `.idx`, and finding the segments of a
//! partition directory in a listing of its names.

/// Which file of a segment a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFileKind {
    Log,
    Index,
}

/// Names are zero-padded to the width of u64::MAX, so they sort the way their offsets do.
const DIGITS: usize = 20;

/// The log file name of the segment starting at `base_offset`.
pub fn log_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

/// The index file name of the segment starting at `base_offset`.
pub fn index_name(base_offset: u64) -> String {
    format!("{base_offset:020}.idx")
}

/// The base offset and kind a segment file name stands for; `None` for any other name
/// (exactly 20 ASCII digits and `.log` or `.idx`, nothing else: no sign, no other width, no
/// value past u64::MAX).
pub fn parse_name(name: &str) -> Option<(u64, SegmentFileKind)> {
    let (digits, ext) = name.split_at_checked(DIGITS)?;
    let kind = match ext {
        ".log" => SegmentFileKind::Log,
        ".idx" => SegmentFileKind::Index,
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, kind))
}

/// The files one segment has in a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentFiles {
    pub base_offset: u64,
    pub has_log: bool,
    /// An index without its log (`has_log` false) is left over from a deletion cut short.
    pub has_index: bool,
}

/// The segments named in a directory listing, sorted by base offset; other names are ignored.
pub fn list_segments<I>(names: I) -> Vec<SegmentFiles>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut found: Vec<(u64, SegmentFileKind)> = names
        .into_iter()
        .filter_map(|n| parse_name(n.as_ref()))
        .collect();
    found.sort_unstable_by_key(|&(base, _)| base);
    let mut segments: Vec<SegmentFiles> = Vec::new();
    for (base_offset, kind) in found {
        if segments.last().is_none_or(|s| s.base_offset != base_offset) {
            segments.push(SegmentFiles {
                base_offset,
                has_log: false,
                has_index: false,
            });
        }
        if let Some(segment) = segments.last_mut() {
            match kind {
                SegmentFileKind::Log => segment.has_log = true,
                SegmentFileKind::Index => segment.has_index = true,
            }
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_twenty_digits_and_parse_back() {
        assert_eq!(log_name(0), "00000000000000000000.log");
        assert_eq!(index_name(42), "00000000000000000042.idx");
        assert_eq!(log_name(u64::MAX), "18446744073709551615.log");
        for base in [0, 1, 4096, u64::MAX] {
            assert_eq!(
                parse_name(&log_name(base)),
                Some((base, SegmentFileKind::Log))
            );
            assert_eq!(
                parse_name(&index_name(base)),
                Some((base, SegmentFileKind::Index))
            );
        }
    }

    #[test]
    fn other_names_are_not_segments() {
        for name in [
            "",
            ".log",
            "0.log",
            "0000000000000000042.log",   // 19 digits
            "000000000000000000042.log", // 21 digits
            "18446744073709551616.log",  // u64::MAX + 1
            "99999999999999999999.idx",
            "+0000000000000000042.log",
            "0000000000000000004a.log",
            "00000000000000000042.LOG",
            "00000000000000000042.log.tmp",
            "00000000000000000042.lo",
            "00000000000000000042",
            "０0000000000000000042.log", // a full-width digit (multi-byte)
            "lock",
            "identity",
        ] {
            assert_eq!(parse_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn listing_pairs_files_and_sorts_by_base_offset() {
        let names = [
            index_name(200),
            "lock".to_owned(),
            log_name(200),
            log_name(3),
            index_name(7), // its log was deleted
            log_name(100),
            index_name(3),
        ];
        let seg = |base_offset, has_log, has_index| SegmentFiles {
            base_offset,
            has_log,
            has_index,
        };
        assert_eq!(
            list_segments(&names),
            [
                seg(3, true, true),
                seg(7, false, true),
                seg(100, true, false),
                seg(200, true, true),
            ]
        );
        assert!(list_segments(Vec::<String>::new()).is_empty());
    }
}
