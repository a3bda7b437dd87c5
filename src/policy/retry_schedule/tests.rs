//! Tests for the retry schedule: the verdict for each kind of answer, the budget, jitter bounds,
//! and `Retry-After` in both forms.
use super::*;
use proptest::prelude::*;

/// 1994-11-06T08:49:37Z, the RFC's example date.
const RFC_EXAMPLE: i64 = 784_111_777;

fn status(status: u16) -> AttemptOutcome {
    AttemptOutcome::Status {
        status,
        retry_after: None,
    }
}

fn with_retry_after(status: u16, secs: u64) -> AttemptOutcome {
    AttemptOutcome::Status {
        status,
        retry_after: Some(Duration::from_secs(secs)),
    }
}

/// An RNG that always lands in the middle, so a jittered delay equals its base (within float
/// rounding).
fn middle() -> u64 {
    1 << 63
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn retry(after: Duration, counts: bool) -> Verdict {
    Verdict::Retry { after, counts }
}

/// Within a microsecond: the jitter arithmetic goes through f64.
fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) < Duration::from_micros(1)
}

#[test]
fn default_spans_about_a_day() {
    let s = RetrySchedule::default();
    assert_eq!(s.delays().len(), 10);
    let total: Duration = s.delays().iter().sum();
    assert_eq!(total, secs(85_355));
    assert_eq!(s.jitter(), 0.2);
    assert_eq!(s.max_retry_after(), secs(3600));
    assert_eq!(
        RetrySchedule::new(&DEFAULT_DELAYS_SECS, DEFAULT_JITTER),
        Ok(s)
    );
}

#[test]
fn constructor_says_what_is_wrong() {
    let e = RetrySchedule::new(&[], 0.1).expect_err("empty");
    assert_eq!(e, ScheduleError::Empty);
    assert!(e.to_string().contains("empty"), "{e}");

    let e = RetrySchedule::new(&[5, 0], 0.1).expect_err("zero");
    assert_eq!(e, ScheduleError::ZeroDelay { index: 1 });
    assert!(e.to_string().contains("delay 1 is 0 s"), "{e}");

    let e = RetrySchedule::new(&[MAX_DELAY_SECS + 1], 0.1).expect_err("long");
    assert_eq!(
        e,
        ScheduleError::DelayTooLong {
            index: 0,
            secs: MAX_DELAY_SECS + 1
        }
    );
    assert!(e.to_string().contains("604800"), "{e}");
    assert!(RetrySchedule::new(&[MAX_DELAY_SECS], 0.99).is_ok());

    for jitter in [1.0, -0.1, f64::NAN, f64::INFINITY] {
        let e = RetrySchedule::new(&[5], jitter).expect_err("jitter");
        assert!(
            matches!(e, ScheduleError::BadJitter { .. }),
            "{jitter}: {e:?}"
        );
        assert!(e.to_string().contains("[0, 1)"), "{e}");
    }
    assert!(RetrySchedule::new(&[5], 0.0).is_ok());

    let e = RetrySchedule::default()
        .with_max_retry_after(Duration::from_millis(999))
        .expect_err("cap");
    assert_eq!(e, ScheduleError::RetryAfterCapTooSmall);
    assert!(e.to_string().contains("at least 1 s"), "{e}");
}

#[test]
fn answers_map_to_verdicts() {
    let s = RetrySchedule::new(&[10, 20], 0.0).expect("valid");
    let mut rng = middle;
    assert_eq!(s.judge(&status(200), 0, &mut rng), Verdict::Delivered);
    assert_eq!(s.judge(&status(204), 5, &mut rng), Verdict::Delivered);
    assert_eq!(s.judge(&status(410), 0, &mut rng), Verdict::Gone);
    assert_eq!(s.judge(&status(410), 99, &mut rng), Verdict::Gone);
    // Redirects are failures: the schedule's delay, and they count.
    for code in [301, 302, 307, 308, 400, 404, 500, 502, 503, 504, 100, 999] {
        assert_eq!(
            s.judge(&status(code), 1, &mut rng),
            retry(secs(20), true),
            "{code}"
        );
    }
    assert_eq!(
        s.judge(&AttemptOutcome::Failed, 0, &mut rng),
        retry(secs(10), true)
    );
}

#[test]
fn too_many_requests_does_not_count() {
    let s = RetrySchedule::new(&[10, 20], 0.0).expect("valid");
    let mut rng = middle;
    // With Retry-After, the server's pace.
    assert_eq!(
        s.judge(&with_retry_after(429, 42), 0, &mut rng),
        retry(secs(42), false)
    );
    // Without, the schedule's current delay; and never a give-up, even past the budget.
    assert_eq!(s.judge(&status(429), 1, &mut rng), retry(secs(20), false));
    assert_eq!(s.judge(&status(429), 2, &mut rng), retry(secs(20), false));
    assert_eq!(
        s.judge(&status(429), u32::MAX, &mut rng),
        retry(secs(20), false)
    );
}

#[test]
fn retry_after_is_honoured_for_503_only_and_bounded() {
    let s = RetrySchedule::new(&[10], 0.0)
        .expect("valid")
        .with_max_retry_after(secs(600))
        .expect("cap");
    let mut rng = middle;
    assert_eq!(
        s.judge(&with_retry_after(503, 120), 0, &mut rng),
        retry(secs(120), true)
    );
    // A 500 or a redirect with Retry-After still follows the schedule.
    assert_eq!(
        s.judge(&with_retry_after(500, 120), 0, &mut rng),
        retry(secs(10), true)
    );
    assert_eq!(
        s.judge(&with_retry_after(301, 120), 0, &mut rng),
        retry(secs(10), true)
    );
    // Years become the cap; zero becomes the floor.
    let years = with_retry_after(503, 10 * 365 * 86_400);
    assert_eq!(s.judge(&years, 0, &mut rng), retry(secs(600), true));
    let years = with_retry_after(429, 10 * 365 * 86_400);
    assert_eq!(s.judge(&years, 0, &mut rng), retry(secs(600), false));
    assert_eq!(
        s.judge(&with_retry_after(429, 0), 0, &mut rng),
        retry(MIN_RETRY_AFTER, false)
    );
    // A 503 past the budget gives up, Retry-After or not.
    assert!(matches!(
        s.judge(&with_retry_after(503, 5), 1, &mut rng),
        Verdict::GiveUp { .. }
    ));
}

#[test]
fn give_up_says_why() {
    let s = RetrySchedule::default();
    let mut rng = middle;
    assert_eq!(
        s.judge(&status(500), 10, &mut rng),
        Verdict::GiveUp {
            reason: "gave up after 11 failed attempts: last answer 500".into()
        }
    );
    assert_eq!(
        s.judge(&AttemptOutcome::Failed, 10, &mut rng),
        Verdict::GiveUp {
            reason: "gave up after 11 failed attempts: last attempt got no answer".into()
        }
    );
    let Verdict::GiveUp { reason } = s.judge(&status(302), u32::MAX, &mut rng) else {
        panic!("expected a give-up");
    };
    assert_eq!(
        reason,
        "gave up after 4294967296 failed attempts: last answer 302"
    );
}

#[test]
fn jitter_uses_the_whole_range() {
    let s = RetrySchedule::new(&[100], 0.2).expect("valid");
    let at = |r: u64| match s.judge(&AttemptOutcome::Failed, 0, &mut || r) {
        Verdict::Retry { after, .. } => after,
        other => panic!("expected a retry, got {other:?}"),
    };
    assert!(close(at(0), secs(80)), "{:?}", at(0));
    assert!(close(at(1 << 63), secs(100)), "{:?}", at(1 << 63));
    let top = at(u64::MAX);
    assert!(top <= secs(120) && close(top, secs(120)), "{top:?}");
}

#[test]
fn retry_after_delta_seconds() {
    let now = RFC_EXAMPLE;
    assert_eq!(parse_retry_after("120", now), Some(secs(120)));
    assert_eq!(parse_retry_after("0", now), Some(secs(0)));
    assert_eq!(parse_retry_after(" \t7 ", now), Some(secs(7)));
    assert_eq!(parse_retry_after("007", now), Some(secs(7)));
    // Too big to represent: 2^31, as RFC 9111 says for delta-seconds.
    assert_eq!(
        parse_retry_after("99999999999999999999999", now),
        Some(secs(1 << 31))
    );
    for bad in ["", " ", "-5", "+5", "1.5", "5s", "1 2", "0x10", "١٢"] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
    }
}

#[test]
fn retry_after_http_dates() {
    let now = RFC_EXAMPLE - 100;
    // The three formats of RFC 9110 §5.6.7, all the same instant.
    for date in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        assert_eq!(parse_retry_after(date, now), Some(secs(100)), "{date}");
    }
    // A date in the past, or now, is zero.
    let past = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_eq!(parse_retry_after(past, RFC_EXAMPLE), Some(secs(0)));
    assert_eq!(parse_retry_after(past, RFC_EXAMPLE + 5000), Some(secs(0)));
    assert_eq!(
        parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", RFC_EXAMPLE),
        Some(secs(0))
    );
    // Leap day, year end, a far future (the cap is the engine's business).
    assert_eq!(
        parse_retry_after("Tue, 29 Feb 2000 23:59:59 GMT", 951_868_799 - 1),
        Some(secs(1))
    );
    assert_eq!(
        parse_retry_after("Tue, 01 Dec 2026 12:00:00 GMT", 1_796_126_400 - 3600),
        Some(secs(3600))
    );
}

#[test]
fn retry_after_rfc850_years_follow_the_fifty_year_rule() {
    // In 2026, "69" is 2069 (43 years ahead) and "77" is 1977 (2077 would be 51 ahead).
    let now = 1_796_126_400;
    assert_eq!(
        parse_retry_after("Tuesday, 01-Jan-69 00:00:00 GMT", now),
        Some(secs(3_124_224_000 - 1_796_126_400))
    );
    assert_eq!(
        parse_retry_after("Saturday, 01-Jan-77 00:00:00 GMT", now),
        Some(secs(0))
    );
}

#[test]
fn malformed_dates_are_none() {
    let now = RFC_EXAMPLE;
    for bad in [
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Mon, 29 Feb 1900 00:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Funday, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov +994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Xyz Nov  6 08:49:37 1994",
        "tomorrow",
    ] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
    }
    // A leap second is a valid time of day.
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:60 GMT", now),
        Some(secs(23))
    );
}

fn schedule() -> impl Strategy<Value = RetrySchedule> {
    (
        proptest::collection::vec(1..=MAX_DELAY_SECS, 1..16),
        0.0..1.0f64,
    )
        .prop_map(|(delays, jitter)| RetrySchedule::new(&delays, jitter).expect("valid"))
}

proptest! {
    #[test]
    fn jitter_stays_within_bounds(s in schedule(), counted in 0u32..16, r in any::<u64>()) {
        let Verdict::Retry { after, counts: true } =
            s.judge(&AttemptOutcome::Failed, counted, &mut || r)
        else {
            // Past the budget: nothing to check here (the next property covers it).
            prop_assert!(counted as usize >= s.delays().len());
            return Ok(());
        };
        let base = s.delays()[counted as usize].as_secs_f64();
        let (lo, hi) = (base * (1.0 - s.jitter()), base * (1.0 + s.jitter()));
        let got = after.as_secs_f64();
        // A nanosecond of slack for the conversion to Duration.
        prop_assert!(got >= lo - 1e-9 && got <= hi + 1e-9, "{} not in [{}, {}]", got, lo, hi);
    }

    #[test]
    fn gives_up_after_exactly_the_schedule(
        s in schedule(),
        answers in proptest::collection::vec(
            prop_oneof![
                Just(AttemptOutcome::Failed),
                (300u16..600).prop_filter("counted", |c| *c != 410 && *c != 429).prop_map(status),
                (0u64..100_000).prop_map(|r| with_retry_after(503, r)),
                Just(status(429)),
                (0u64..100_000).prop_map(|r| with_retry_after(429, r)),
            ],
            40..60,
        ),
        seed in any::<u64>(),
    ) {
        let mut state = seed;
        let mut rng = move || { state = state.wrapping_mul(6364136223846793005).wrapping_add(1); state };
        let mut counted = 0u32;
        let mut counted_retries = 0usize;
        let mut gave_up = false;
        // Cycle the answers until the verdict is GiveUp; a 429 never moves it closer.
        for answer in answers.iter().cycle().take(2000) {
            match s.judge(answer, counted, &mut rng) {
                Verdict::Retry { counts: true, .. } => { counted += 1; counted_retries += 1; }
                Verdict::Retry { counts: false, .. } => {
                    let is_429 = matches!(answer, AttemptOutcome::Status { status: 429, .. });
                    prop_assert!(is_429);
                }
                Verdict::GiveUp { .. } => { gave_up = true; break; }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        let all_429 = answers
            .iter()
            .all(|a| matches!(a, AttemptOutcome::Status { status: 429, .. }));
        if all_429 {
            prop_assert!(!gave_up);
            prop_assert_eq!(counted_retries, 0);
        } else {
            prop_assert!(gave_up);
            prop_assert_eq!(counted_retries, s.delays().len());
        }
    }

    #[test]
    fn too_many_requests_never_counts(
        s in schedule(),
        counted in any::<u32>(),
        retry_after in proptest::option::of(0u64..u64::MAX / 2),
        r in any::<u64>(),
    ) {
        let outcome = AttemptOutcome::Status { status: 429, retry_after: retry_after.map(secs) };
        let verdict = s.judge(&outcome, counted, &mut || r);
        let Verdict::Retry { after, counts: false } = verdict else {
            return Err(TestCaseError::fail(format!("429 gave {verdict:?}")));
        };
        prop_assert!(after > Duration::ZERO);
        if retry_after.is_some() {
            prop_assert!(after <= s.max_retry_after() && after >= MIN_RETRY_AFTER);
        }
    }

    #[test]
    fn success_is_always_delivered(
        s in schedule(),
        code in 200u16..300,
        counted in any::<u32>(),
        retry_after in proptest::option::of(any::<u64>()),
    ) {
        let outcome = AttemptOutcome::Status { status: code, retry_after: retry_after.map(secs) };
        prop_assert_eq!(s.judge(&outcome, counted, &mut || 0), Verdict::Delivered);
    }

    #[test]
    fn imf_fixdates_read_back(at in 0i64..253_402_300_799, ahead in 0i64..400_000) {
        // Format with an independent formatter (civil_from_days) and read it back.
        let text = imf_fixdate(at);
        prop_assert_eq!(
            parse_retry_after(&text, at - ahead),
            Some(secs(u64::try_from(ahead).expect("non-negative"))),
            "{}", text
        );
    }

    #[test]
    fn any_text_answers_without_panic(text in "(?s).{0,40}", now in any::<i64>()) {
        let _ = parse_retry_after(&text, now);
    }
}

/// Unix seconds as an IMF-fixdate, by Hinnant's `civil_from_days` (the inverse of what the
/// parser uses, written separately).
fn imf_fixdate(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let tod = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}
