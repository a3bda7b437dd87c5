//! When the webhook engine tries a delivery again, and when it stops: a pure judgement over one
//! attempt's outcome, with the clock and the randomness passed in.
//!
//! The budget is counted in failed attempts, not in time, so a subscriber that is down for a day
//! gets the same number of knocks whatever the delays add up to. Two answers do not spend it:
//! 2xx (done) and 429 (the subscriber is up and asked us to slow down). 410 ends the
//! subscription. Everything else, redirects included (a hub does not follow a callback's
//! redirects), is a failure that waits its turn in the schedule.

use std::time::Duration;

/// Longest single delay a schedule may hold: seven days. Beyond that a "retry" is a new
/// delivery, and `Duration` arithmetic with jitter stays far from overflow.
pub const MAX_DELAY_SECS: u64 = 7 * 24 * 3600;

/// Shortest wait for a server-given `Retry-After`. `Retry-After: 0` on a 429 (which costs no
/// budget) would otherwise have us retry in a loop as fast as the server can answer.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Default cap on a server-given `Retry-After`: one hour.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The default delays, in seconds: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h.
/// Quick retries for a blip, then backing off to a few knocks a day; 85 355 s ≈ 23.7 h before
/// the eleventh failure gives up.
pub const DEFAULT_DELAYS_SECS: [u64; 10] =
    [5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800, 28_800];

/// Default jitter: each delay is spread uniformly over ±20% so subscriptions that failed
/// together (a subscriber restart) do not come back together.
pub const DEFAULT_JITTER: f64 = 0.2;

/// Why a schedule could not be built; `Display` says what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Clone)]
pub enum ScheduleError {
    #[error("retry schedule is empty; give at least one delay")]
    Empty,
    #[error("retry delay {index} is 0 s; every delay must be at least 1 s")]
    ZeroDelay { index: usize },
    #[error("retry delay {index} is {secs} s; the longest allowed is {MAX_DELAY_SECS} s")]
    DelayTooLong { index: usize, secs: u64 },
    #[error("retry jitter {jitter} is outside [0, 1)")]
    BadJitter { jitter: f64 },
    #[error("the Retry-After cap must be at least {} s", MIN_RETRY_AFTER.as_secs())]
    RetryAfterCapTooSmall,
}

/// The delays between counted failures, their jitter, and the cap on `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    /// `delays[i]` is the wait after the `i + 1`-th counted failure.
    delays: Vec<Duration>,
    /// Fraction in [0, 1): a delay `d` becomes uniform in `[d·(1−j), d·(1+j))`.
    jitter: f64,
    /// A server-given `Retry-After` longer than this is cut to it, so a hostile or broken server
    /// cannot park a subscription for years.
    max_retry_after: Duration,
}

impl Default for RetrySchedule {
    /// [`DEFAULT_DELAYS_SECS`] with [`DEFAULT_JITTER`] and [`DEFAULT_MAX_RETRY_AFTER`].
    fn default() -> Self {
        RetrySchedule {
            delays: DEFAULT_DELAYS_SECS.map(Duration::from_secs).to_vec(),
            jitter: DEFAULT_JITTER,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The subscriber answered; `retry_after` is its `Retry-After`, already parsed (see
    /// [`parse_retry_after`]) and `None` when absent or unreadable.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: timeout, connection refused or reset, TLS failure, an address egress policy
    /// forbids.
    Failed,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: the event is delivered, move on.
    Delivered,
    /// Try the same delivery again after `after`; `counts` says whether this attempt spent
    /// budget (the caller adds one to its count when it does).
    Retry { after: Duration, counts: bool },
    /// The budget is spent; `reason` is for the dead-letter record and the logs.
    GiveUp { reason: String },
    /// 410 Gone: the subscriber ended the subscription; drop it.
    Gone,
}

impl RetrySchedule {
    /// A schedule from delays in seconds and a jitter fraction, with the default `Retry-After`
    /// cap. Delays must be 1 s to [`MAX_DELAY_SECS`]; jitter in [0, 1) so a delay never
    /// shrinks to zero.
    pub fn new(delays_secs: &[u64], jitter: f64) -> Result<Self, ScheduleError> {
        if delays_secs.is_empty() {
            return Err(ScheduleError::Empty);
        }
        for (index, &secs) in delays_secs.iter().enumerate() {
            if secs == 0 {
                return Err(ScheduleError::ZeroDelay { index });
            }
            if secs > MAX_DELAY_SECS {
                return Err(ScheduleError::DelayTooLong { index, secs });
            }
        }
        // `contains` is false for NaN too.
        if !(0.0..1.0).contains(&jitter) {
            return Err(ScheduleError::BadJitter { jitter });
        }
        Ok(RetrySchedule {
            delays: delays_secs
                .iter()
                .copied()
                .map(Duration::from_secs)
                .collect(),
            jitter,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        })
    }

    /// The same schedule with another cap on server-given `Retry-After` (at least
    /// [`MIN_RETRY_AFTER`]).
    pub fn with_max_retry_after(mut self, cap: Duration) -> Result<Self, ScheduleError> {
        if cap < MIN_RETRY_AFTER {
            return Err(ScheduleError::RetryAfterCapTooSmall);
        }
        self.max_retry_after = cap;
        Ok(self)
    }

    /// The delays before jitter.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The jitter fraction.
    #[cfg(test)]
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The cap on server-given `Retry-After`.
    #[cfg(test)]
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Judge one attempt. `attempts_counted` is how many earlier attempts of this delivery spent
    /// budget; `rng` gives uniform `u64`s for the jitter. A delivery is therefore tried at most
    /// `delays().len() + 1` times, not counting 429 answers.
    pub fn judge(
        &self,
        outcome: &AttemptOutcome,
        attempts_counted: u32,
        rng: &mut impl FnMut() -> u64,
    ) -> Verdict {
        let (status, retry_after) = match *outcome {
            AttemptOutcome::Status {
                status,
                retry_after,
            } => (Some(status), retry_after),
            AttemptOutcome::Failed => (None, None),
        };
        match status {
            Some(200..=299) => return Verdict::Delivered,
            Some(410) => return Verdict::Gone,
            // Rate limited: the subscriber is up and answering, so this is not a failure of
            // delivery. Honour its pace without spending budget.
            Some(429) => {
                let after = match retry_after {
                    Some(given) => self.server_delay(given),
                    None => self.jittered(self.delay_for(attempts_counted), rng),
                };
                return Verdict::Retry {
                    after,
                    counts: false,
                };
            }
            _ => {}
        }
        let index = usize::try_from(attempts_counted).unwrap_or(usize::MAX);
        let Some(&base) = self.delays.get(index) else {
            let attempts = u64::from(attempts_counted) + 1;
            let last = match status {
                Some(code) => format!("last answer {code}"),
                None => "last attempt got no answer".to_owned(),
            };
            return Verdict::GiveUp {
                reason: format!("gave up after {attempts} failed attempts: {last}"),
            };
        };
        let after = match (status, retry_after) {
            // 503 with Retry-After: the server says when it will be back; believe it (capped),
            // but the attempt still failed and counts.
            (Some(503), Some(given)) => self.server_delay(given),
            _ => self.jittered(base, rng),
        };
        Verdict::Retry {
            after,
            counts: true,
        }
    }

    /// The schedule's delay after `attempts_counted` counted failures, the last one once the
    /// schedule is used up (only a 429 asks then, as it never gives up).
    fn delay_for(&self, attempts_counted: u32) -> Duration {
        let index = usize::try_from(attempts_counted).unwrap_or(usize::MAX);
        let last = self.delays.len().saturating_sub(1);
        self.delays
            .get(index.min(last))
            .copied()
            .unwrap_or(MIN_RETRY_AFTER)
    }

    /// A server-given delay between the floor and the cap. Not jittered: the server chose it.
    fn server_delay(&self, given: Duration) -> Duration {
        given.clamp(MIN_RETRY_AFTER, self.max_retry_after)
    }

    /// `base` spread uniformly over `[base·(1−j), base·(1+j))`.
    fn jittered(&self, base: Duration, rng: &mut impl FnMut() -> u64) -> Duration {
        // The top 53 bits make an f64 in [0, 1) with every value equally likely.
        let unit = (rng() >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        // `base` is at most MAX_DELAY_SECS and factor below 2, so this cannot overflow; the
        // fallback only keeps the function total.
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }
}

/// Read a `Retry-After` value (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, relative to
/// `now_unix`. A date in the past is zero; anything unreadable is `None` (the caller falls back
/// to the schedule). All three HTTP-date formats are accepted, as §5.6.7 asks of recipients.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31.
        return Some(Duration::from_secs(value.parse().unwrap_or(1 << 31)));
    }
    let at = parse_http_date(value, now_unix)?;
    let ahead = at.saturating_sub(now_unix);
    Some(Duration::from_secs(u64::try_from(ahead).unwrap_or(0)))
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date as Unix seconds. The weekday must be a weekday name but is not checked against
/// the date (the date is what we use).
fn parse_http_date(s: &str, now_unix: i64) -> Option<i64> {
    if let Some((day, rest)) = s.split_once(", ") {
        if DAYS.contains(&day) {
            // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
            let mut f = rest.split(' ');
            let (d, m, y, t, z) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || z != "GMT" || d.len() != 2 || y.len() != 4 {
                return None;
            }
            return unix_time(num(y)?, month(m)?, num(d)?, t);
        }
        if LONG_DAYS.contains(&day) {
            // Obsolete RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT".
            let (date, rest) = rest.split_once(' ')?;
            let (t, z) = rest.split_once(' ')?;
            let mut f = date.split('-');
            let (d, m, y) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || z != "GMT" || d.len() != 2 || y.len() != 2 {
                return None;
            }
            return unix_time(two_digit_year(num(y)?, now_unix), month(m)?, num(d)?, t);
        }
        return None;
    }
    // Obsolete asctime: "Sun Nov  6 08:49:37 1994" (a one-digit day is padded with a space).
    let (day, rest) = s.split_once(' ')?;
    let (m, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut f = rest.split(' ');
    let (d, t, y) = (f.next()?, f.next()?, f.next()?);
    if f.next().is_some() || !DAYS.contains(&day) || d.is_empty() || d.len() > 2 || y.len() != 4 {
        return None;
    }
    unix_time(num(y)?, month(m)?, num(d)?, t)
}

/// RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past century.
fn two_digit_year(yy: i64, now_unix: i64) -> i64 {
    // 31 556 952 s is the mean Gregorian year; a year-level answer is all the rule needs.
    let this_year = 1970 + now_unix.div_euclid(31_556_952);
    let century = this_year - this_year.rem_euclid(100);
    let year = century + yy;
    if year > this_year + 50 {
        year - 100
    } else {
        year
    }
}

fn month(m: &str) -> Option<i64> {
    let i = MONTHS.iter().position(|&name| name == m)?;
    i64::try_from(i + 1).ok()
}

/// Digits only, at most four (no sign, no spaces).
fn num(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `hh:mm:ss` on a proleptic Gregorian date, as Unix seconds; `None` for impossible dates.
fn unix_time(year: i64, month: i64, day: i64, time: &str) -> Option<i64> {
    let mut f = time.split(':');
    let (h, m, s) = (f.next()?, f.next()?, f.next()?);
    if f.next().is_some() || h.len() != 2 || m.len() != 2 || s.len() != 2 {
        return None;
    }
    let (h, m, s) = (num(h)?, num(m)?, num(s)?);
    // 60 is a leap second, which HTTP-date allows.
    if h > 23 || m > 59 || s > 60 || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
