//! Unit tests of a subscriber: heartbeats, cut-off, drain while catching up, composite ids.
use super::*;
use crate::broker::memory::HistoryLimits;
use crate::delivery::sse::SSE;
use std::time::Instant;

fn key() -> PartitionKey {
    PartitionKey {
        topic: "t".into(),
        partition: 0,
    }
}

fn event(offset: u64) -> Rc<FramedEvent> {
    Rc::new(FramedEvent {
        key: key(),
        offset,
        frame: Bytes::from_static(b"id: x-1\ndata: a\n\n"),
        id_len: 8,
        meta: Default::default(),
        wire: Default::default(),
    })
}

fn live_subscriber(max_queue: usize) -> Subscriber {
    let sub = Subscriber::new(1, SubscriptionSpec::live(vec![key()]), 7, max_queue, &SSE);
    sub.refill(&HashMap::new(), 1, Instant::now());
    assert_eq!(sub.state(), SubState::Live);
    sub
}

/// Write everything queued; the bytes that went out.
fn take_all(sub: &Subscriber) -> String {
    let mut out = Vec::new();
    let _ = sub.write_with(64, |s| {
        for x in s {
            out.extend_from_slice(x);
        }
        Ok::<usize, ()>(out.len())
    });
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn busy_streams_skip_the_next_heartbeat() {
    let sub = live_subscriber(1 << 20);
    assert!(
        sub.idle_since_last_beat(),
        "nothing sent yet: needs a heartbeat"
    );
    assert_ne!(sub.offer_live(0, &event(0), Instant::now()), Offer::Skipped);
    take_all(&sub);
    assert!(
        !sub.idle_since_last_beat(),
        "an event went out this interval"
    );
    assert!(
        sub.idle_since_last_beat(),
        "a whole interval without events"
    );
}

#[test]
fn cut_off_keeps_a_partly_written_frame_and_says_why() {
    let sub = live_subscriber(40);
    assert_ne!(sub.offer_live(0, &event(0), Instant::now()), Offer::Skipped);
    // Write 3 bytes of the first frame, then overflow the queue.
    let _ = sub.write_with(64, |_| Ok::<usize, ()>(3));
    assert_ne!(sub.offer_live(0, &event(1), Instant::now()), Offer::Skipped);
    assert_ne!(sub.offer_live(0, &event(2), Instant::now()), Offer::Skipped);
    assert_eq!(sub.state(), SubState::CutOff(CutOffReason::TooSlow));
    let text = take_all(&sub);
    assert!(
        text.starts_with(" x-1\ndata: a\n\n:"),
        "rest of the partly written frame: {text:?}"
    );
    assert!(text.contains("fell too far behind"), "{text:?}");
    assert!(
        !text.contains("data: a\n\nid:"),
        "queued frames after the partial one are dropped: {text:?}"
    );
}

#[test]
fn drain_while_catching_up_waits_for_the_history_head() {
    let mut histories = HashMap::new();
    let mut history = History::new(HistoryLimits {
        max_events: 16,
        max_bytes: 1 << 20,
    });
    for offset in 0..3 {
        history.append(event(offset));
    }
    histories.insert(key(), history);
    let spec = SubscriptionSpec {
        parts: vec![key()],
        start: vec![0],
        from_live: vec![false],
        filter: None,
        log_backed: false,
    };
    let sub = Subscriber::new(1, spec, 7, 1 << 20, &SSE);
    sub.drain(500);
    assert_eq!(
        sub.state(),
        SubState::CatchingUp,
        "not closed before it has its events"
    );
    // A refill that stops short of the head (one frame's worth) keeps it catching up.
    sub.refill(&histories, 1, Instant::now());
    assert_eq!(sub.state(), SubState::CatchingUp);
    sub.refill(&histories, 1 << 20, Instant::now());
    assert_eq!(sub.state(), SubState::Draining);
    let text = take_all(&sub);
    assert_eq!(text.matches("data: a").count(), 3, "{text:?}");
    assert!(text.ends_with("retry: 500\n: gateway shutting down; reconnect to resume\n\n"));
}

#[test]
fn composite_subscribers_get_their_own_cursor_before_the_shared_body() {
    let other = PartitionKey {
        topic: "u".into(),
        partition: 0,
    };
    let sub = Subscriber::new(
        1,
        SubscriptionSpec::live(vec![key(), other]),
        7,
        1 << 20,
        &SSE,
    );
    sub.refill(&HashMap::new(), 1, Instant::now());
    assert_ne!(sub.offer_live(0, &event(0), Instant::now()), Offer::Skipped);
    assert_ne!(sub.offer_live(0, &event(1), Instant::now()), Offer::Skipped);
    assert_eq!(
        take_all(&sub),
        "id: 7-1.0\ndata: a\n\nid: 7-2.0\ndata: a\n\n"
    );
}

fn part(topic: &str) -> PartitionKey {
    PartitionKey {
        topic: topic.into(),
        partition: 0,
    }
}

fn event_of(key: PartitionKey, offset: u64) -> Rc<FramedEvent> {
    Rc::new(FramedEvent {
        key,
        offset,
        frame: Bytes::from_static(b"id: x-1\ndata: a\n\n"),
        id_len: 8,
        meta: Default::default(),
        wire: Default::default(),
    })
}

fn new_subscription(key: PartitionKey, start: u64) -> NewSubscription {
    NewSubscription {
        parts: vec![key],
        start: vec![start],
        from_live: vec![false],
        filter: None,
        gaps: Vec::new(),
    }
}

#[test]
fn a_subscription_added_to_a_live_stream_catches_up_without_pausing_the_others() {
    let sub = live_subscriber(1 << 20);
    let mut histories = HashMap::new();
    let mut u = History::new(HistoryLimits {
        max_events: 16,
        max_bytes: 1 << 20,
    });
    for offset in 0..3 {
        u.append(event_of(part("u"), offset));
    }
    histories.insert(part("u"), u);
    sub.add_subscription(new_subscription(part("u"), 1))
        .expect("added");
    assert_eq!(sub.state(), SubState::CatchingUp, "u has events to replay");
    assert_eq!(
        sub.add_subscription(new_subscription(part("u"), 0)),
        Err(ChangeError::AlreadySubscribed("u".into()))
    );
    // t's events meanwhile are in the history too: the refill sends them.
    let mut t = History::new(HistoryLimits {
        max_events: 16,
        max_bytes: 1 << 20,
    });
    t.append(event(0));
    histories.insert(key(), t);
    sub.refill(&histories, 1 << 20, Instant::now());
    assert_eq!(sub.state(), SubState::Live);
    assert_eq!(sub.live_slots().len(), 2);
    // u's two missed events, then t's; each with its own one-partition id (the shared frame).
    assert_eq!(take_all(&sub).matches("id: x-1\ndata: a").count(), 3);
    assert_eq!(sub.topics(), ["t", "u"]);
}

#[test]
fn removed_slots_keep_their_numbers_while_a_backfill_holds_one() {
    // Kafka-backed: a resume below this shard's history starts a backfill of that slot.
    let spec = SubscriptionSpec {
        parts: vec![part("a")],
        start: vec![5],
        from_live: vec![false],
        filter: None,
        log_backed: true,
    };
    let sub = Subscriber::new(1, spec, 0, 1 << 20, &SSE);
    sub.add_subscription(new_subscription(part("b"), 0))
        .expect("b");
    sub.add_subscription(new_subscription(part("c"), 0))
        .expect("c");
    let mut histories = HashMap::new();
    let mut b = History::new(HistoryLimits {
        max_events: 16,
        max_bytes: 1 << 20,
    });
    b.append(event_of(part("b"), 0));
    histories.insert(part("b"), b);
    let refill = sub.refill(&histories, 1 << 20, Instant::now());
    assert!(
        refill.backfill.iter().any(|&(slot, _)| slot == 2),
        "c (slot 2) is fetched back: {refill:?}"
    );
    sub.remove_topics(&["b".into()]).expect("b removed");
    assert!(!sub.is_live_slot(1));
    assert_eq!(
        sub.part_key(2),
        Some(part("c")),
        "c keeps slot 2 while fetched"
    );
    sub.finish_backfill(2, true, Some(0));
    sub.finish_backfill(0, true, Some(5));
    // The next change compacts: c moves down to slot 1.
    sub.remove_topics(&["a".into()]).expect("a removed");
    assert_eq!(sub.live_slots(), vec![(0, part("c"))]);
    assert_eq!(
        sub.remove_topics(&["a".into()]),
        Err(ChangeError::NotSubscribed("a".into()))
    );
}
