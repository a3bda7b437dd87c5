//! Topic ACLs: patterns like `orders.*`, `user.{sub}.**`, parsed once at config time and
//! matched per request without allocating.

use std::fmt;

use crate::codec::topic::MAX_TOPIC_LEN;

/// Why a topic pattern (or a list of them) does not parse. Positions are byte offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The pattern has no bytes.
    #[error("topic pattern is empty")]
    Empty,
    /// Longer than any topic can be, so it could only be a mistake.
    #[error("topic pattern is {len} bytes, longer than the {MAX_TOPIC_LEN} a topic may have")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// `a..b`, a leading or a trailing '.'.
    #[error(
        "empty segment at byte {at} (a pattern may not start or end with '.' or contain '..')"
    )]
    EmptySegment {
        /// Where the empty segment is.
        at: usize,
    },
    /// `a.**.b`: `**` swallows the rest, so anything after it is meaningless.
    #[error("'**' at byte {at} is only allowed as the last segment")]
    DoubleStarNotLast {
        /// Where the `**` segment starts.
        at: usize,
    },
    /// `a*`, `*b`, `***`: wildcards are whole segments only.
    #[error("'*' in the segment at byte {at} must be a whole segment ('*' or a final '**')")]
    PartialWildcard {
        /// Where the segment starts.
        at: usize,
    },
    /// `x{sub}`, `{sub`, `a}`: placeholders are whole segments only.
    #[error("'{{' or '}}' in the segment at byte {at}: a placeholder must be a whole segment, like 'user.{{sub}}'")]
    PartialPlaceholder {
        /// Where the segment starts.
        at: usize,
    },
    /// `{name}` other than `{sub}`.
    #[error("unknown placeholder '{{{}}}' at byte {at} (only '{{sub}}' is supported)", name.escape_debug())]
    UnknownPlaceholder {
        /// The text between the braces.
        name: String,
        /// Where the segment starts.
        at: usize,
    },
    /// A character no topic may contain.
    #[error(
        "'{}' at byte {at} is not allowed in a topic pattern (letters, digits, '.', '_', '-', '*' and '{{sub}}' are)",
        found.escape_debug()
    )]
    BadChar {
        /// The first offending character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// One pattern of a list failed; says which.
    #[error("topic pattern #{} {pattern:?}: {error}", index + 1)]
    InList {
        /// Its index in the list (the message counts from 1).
        index: usize,
        /// The pattern's text.
        pattern: String,
        /// What is wrong with it.
        error: Box<AclError>,
    },
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    /// Matches exactly this text.
    Literal(Box<str>),
    /// `*`: any one non-empty segment.
    Star,
    /// `{sub}`: the principal's `sub`, literally.
    Sub,
}

/// A parsed topic pattern: '.'-separated literal, `*` or `{sub}` segments, optionally ending
/// in `**` (zero or more further segments). `Display` gives back the canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPattern {
    /// The segments before any trailing `**`.
    segments: Box<[Segment]>,
    /// Whether the pattern ends in `**`.
    tail: bool,
    /// Whether any segment is `{sub}` (so the sub must be checked before matching).
    uses_sub: bool,
}

impl TopicPattern {
    /// Parses `text`; the error names the problem and its byte offset.
    pub fn parse(text: &str) -> Result<TopicPattern, AclError> {
        if text.is_empty() {
            return Err(AclError::Empty);
        }
        if text.len() > MAX_TOPIC_LEN {
            return Err(AclError::TooLong { len: text.len() });
        }
        let mut segments = Vec::new();
        let mut tail = false;
        let mut at = 0;
        let mut parts = text.split('.').peekable();
        while let Some(part) = parts.next() {
            let is_last = parts.peek().is_none();
            match parse_segment(part, at)? {
                Parsed::DoubleStar if is_last => tail = true,
                Parsed::DoubleStar => return Err(AclError::DoubleStarNotLast { at }),
                Parsed::One(seg) => segments.push(seg),
            }
            at += part.len() + 1;
        }
        let uses_sub = segments.contains(&Segment::Sub);
        Ok(TopicPattern {
            segments: segments.into_boxed_slice(),
            tail,
            uses_sub,
        })
    }

    /// Whether `topic` matches, for a principal whose `sub` claim is `sub`. A pattern with
    /// `{sub}` matches nothing unless `sub` is one whole, non-empty topic segment (see
    /// [`is_safe_sub`]): a sub of `*` or `a.b` must never widen access.
    pub fn matches(&self, topic: &str, sub: Option<&str>) -> bool {
        self.matches_with(topic, sub.filter(|s| is_safe_sub(s)))
    }

    /// Whether any segment is `{sub}`.
    pub fn uses_sub(&self) -> bool {
        self.uses_sub
    }

    /// [`matches`](Self::matches) with the sub already checked by [`is_safe_sub`] (None when
    /// absent or unsafe), so a list checks it once.
    fn matches_with(&self, topic: &str, safe_sub: Option<&str>) -> bool {
        if self.uses_sub && safe_sub.is_none() {
            return false;
        }
        let mut parts = topic.split('.');
        for seg in self.segments.iter() {
            let Some(part) = parts.next() else {
                return false;
            };
            let ok = match seg {
                Segment::Literal(lit) => part == &**lit,
                Segment::Star => !part.is_empty(),
                Segment::Sub => safe_sub == Some(part),
            };
            if !ok {
                return false;
            }
        }
        // Leftover segments are fine only under a trailing `**`.
        self.tail || parts.next().is_none()
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "." };
            first = false;
            f.write_str(s)
        };
        for seg in self.segments.iter() {
            sep(f)?;
            match seg {
                Segment::Literal(lit) => f.write_str(lit)?,
                Segment::Star => f.write_str("*")?,
                Segment::Sub => f.write_str("{sub}")?,
            }
        }
        if self.tail {
            sep(f)?;
            f.write_str("**")?;
        }
        Ok(())
    }
}

/// What one segment's text is, before we know whether it is the last.
enum Parsed {
    One(Segment),
    DoubleStar,
}

/// Parses one segment starting at byte `at` of the pattern.
fn parse_segment(part: &str, at: usize) -> Result<Parsed, AclError> {
    match part {
        "" => return Err(AclError::EmptySegment { at }),
        "**" => return Ok(Parsed::DoubleStar),
        "*" => return Ok(Parsed::One(Segment::Star)),
        "{sub}" => return Ok(Parsed::One(Segment::Sub)),
        _ => {}
    }
    if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        return Err(placeholder_error(name, at));
    }
    // Report the first problem from the left, so the offset points at it.
    for (i, c) in part.char_indices() {
        match c {
            '*' => return Err(AclError::PartialWildcard { at }),
            '{' | '}' => return Err(AclError::PartialPlaceholder { at }),
            c if is_segment_char(c) => {}
            found => return Err(AclError::BadChar { found, at: at + i }),
        }
    }
    Ok(Parsed::One(Segment::Literal(part.into())))
}

/// The error for a whole-segment `{name}` that is not `{sub}`.
fn placeholder_error(name: &str, at: usize) -> AclError {
    if name.contains(['{', '}']) {
        return AclError::PartialPlaceholder { at };
    }
    if name.contains('*') {
        return AclError::PartialWildcard { at };
    }
    // `{a b}` is not a placeholder with a strange name but a bad character.
    match name.char_indices().find(|&(_, c)| !is_segment_char(c)) {
        Some((i, found)) => AclError::BadChar {
            found,
            at: at + 1 + i,
        },
        None => AclError::UnknownPlaceholder {
            name: name.to_owned(),
            at,
        },
    }
}

/// A topic character other than '.', the separator.
fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `sub` may stand for a `{sub}` segment: non-empty, no '.', only topic characters,
/// and no longer than a topic. Anything else could widen what the pattern matches.
pub fn is_safe_sub(sub: &str) -> bool {
    !sub.is_empty() && sub.len() <= MAX_TOPIC_LEN && sub.chars().all(is_segment_char)
}

/// A list of topic patterns: a topic is allowed when any of them matches. Empty allows
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    patterns: Vec<TopicPattern>,
    uses_sub: bool,
}

impl Acl {
    /// Parses every pattern; the error says which one failed and why.
    pub fn parse(patterns: &[String]) -> Result<Acl, AclError> {
        let parsed = patterns
            .iter()
            .enumerate()
            .map(|(index, text)| {
                TopicPattern::parse(text).map_err(|error| AclError::InList {
                    index,
                    pattern: text.clone(),
                    error: Box::new(error),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Acl::from_patterns(parsed))
    }

    /// An ACL built from already parsed patterns.
    pub fn from_patterns(patterns: Vec<TopicPattern>) -> Acl {
        let uses_sub = patterns.iter().any(TopicPattern::uses_sub);
        Acl { patterns, uses_sub }
    }

    /// The ACL that allows nothing.
    pub fn none() -> Acl {
        Acl::default()
    }

    /// Whether any pattern matches `topic` for a principal whose `sub` claim is `sub`.
    pub fn allows(&self, topic: &str, sub: Option<&str>) -> bool {
        // Checked once here rather than once per `{sub}` pattern.
        let safe_sub = sub.filter(|s| is_safe_sub(s));
        self.patterns
            .iter()
            .any(|p| p.matches_with(topic, safe_sub))
    }

    /// Whether there are no patterns (nothing is allowed).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern has `{sub}`.
    pub fn uses_sub(&self) -> bool {
        self.uses_sub
    }

    /// The patterns, in config order.
    pub fn patterns(&self) -> &[TopicPattern] {
        &self.patterns
    }
}

#[cfg(test)]
mod tests;
