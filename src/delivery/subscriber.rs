//! An SSE subscriber's state on its shard: its partitions, its resume cursor, its bounded queue
//! of shared frames.
//!
//! The queue holds references to frames that were encoded once at the partition owner
//! ([`Chunk`]); nothing here copies a payload. A subscriber is either *catching up* (replaying
//! from the shard's history, refilled by its session as the socket drains, live events ignored
//! because they are in the history too) or *live* (fed by [`Subscriber::offer_live`]). The switch
//! from one to the other happens in one synchronous step when the cursor reaches the history's
//! head, so nothing is missed or sent twice.
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::rc::Rc;
use std::task::Waker;

use bytes::{Bytes, BytesMut};

use super::filter::EventFilter;
use crate::broker::memory::History;
use crate::broker::{FramedEvent, PartitionKey};
use crate::codec::event_id;
use crate::codec::sse::{encode_comment, encode_event, SseEvent};

/// One piece of the outgoing stream.
pub enum Chunk {
    /// A shared frame, id line included.
    Event(Rc<FramedEvent>),
    /// This subscriber's own id line, then the shared frame without its id line.
    EventWithId {
        id_line: Bytes,
        event: Rc<FramedEvent>,
    },
    /// Anything else: `retry:`, comments, heartbeats, `reset` events.
    Bytes(Bytes),
}

impl Chunk {
    fn slices(&self) -> [&[u8]; 2] {
        match self {
            Chunk::Event(e) => [&e.frame[..], &[]],
            Chunk::EventWithId { id_line, event } => [&id_line[..], event.body()],
            Chunk::Bytes(b) => [&b[..], &[]],
        }
    }

    fn len(&self) -> usize {
        let [a, b] = self.slices();
        a.len() + b.len()
    }
}

/// Where a subscriber is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubState {
    /// Replaying history; live events are ignored (the history has them).
    CatchingUp,
    /// Receiving live events.
    Live,
    /// Fell too far behind: send what is queued (a final comment) and close.
    CutOff,
    /// The gateway is draining: send what is queued (a `retry:` hint) and close.
    Draining,
}

/// The `reason` of a reset caused by history trimming.
pub const GAP_REASON: &str = "events after Last-Event-ID are no longer retained";
/// The `reason` of a reset caused by an id from an earlier run of the gateway.
pub const RESTART_REASON: &str =
    "Last-Event-ID is from an earlier run of the gateway; its events are lost";

/// One SSE connection's subscription.
pub struct Subscriber {
    pub id: u64,
    parts: Vec<PartitionKey>,
    epoch: u64,
    next: RefCell<Vec<u64>>,
    state: Cell<SubState>,
    queue: RefCell<VecDeque<Chunk>>,
    queued_bytes: Cell<usize>,
    front_written: Cell<usize>,
    max_queue_bytes: usize,
    waker: RefCell<Option<Waker>>,
    finished: Cell<bool>,
    /// An event was queued since the last heartbeat tick: the stream is not idle.
    event_since_beat: Cell<bool>,
    filter: Option<EventFilter>,
    /// A drain asked for while catching up, with its `retry` hint: it takes effect when the
    /// cursor reaches the history head, so the client first gets every event it is owed.
    drain_pending: Cell<Option<u32>>,
    /// Per partition: no position asked for and no history when subscribed, so the first
    /// event this shard holds is where the subscription starts (not offset 0).
    from_live: RefCell<Vec<bool>>,
    /// Where events missing from this shard's history come from: `Some` with Kafka (fetched
    /// back by a backfill task), `None` with the embedded broker (they are gone: `reset`).
    backfill: Option<RefCell<BackfillState>>,
}

/// Per-partition backfill bookkeeping of a Kafka-backed subscriber.
#[derive(Debug, Default)]
struct BackfillState {
    /// A backfill task is fetching this partition.
    running: Vec<bool>,
    /// The cursor is known to be at or past what Kafka held when the subscription started
    /// (live subscribers start settled; resumes settle when a backfill reaches the end).
    settled: Vec<bool>,
}

/// What a subscription reads and where it starts.
#[derive(Debug, Default)]
pub struct SubscriptionSpec {
    /// The partitions, in cursor order.
    pub parts: Vec<PartitionKey>,
    /// Per partition: the next offset to send.
    pub start: Vec<u64>,
    /// Per partition: no position was asked for and the shard held nothing of it, so the
    /// first event that arrives is where it starts.
    pub from_live: Vec<bool>,
    pub filter: Option<EventFilter>,
    /// Events missing from the shard's history are fetched back from Kafka (else: `reset`).
    pub kafka_backed: bool,
}

impl SubscriptionSpec {
    /// Live from offset 0 of each partition, no filter, embedded broker.
    pub fn live(parts: Vec<PartitionKey>) -> Self {
        let n = parts.len();
        Self {
            parts,
            start: vec![0; n],
            from_live: vec![true; n],
            filter: None,
            kafka_backed: false,
        }
    }
}

/// What [`Subscriber::refill`] did besides queueing events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refill {
    /// Partitions whose asked-for events were gone (a `reset` was queued for each).
    pub gaps: Vec<Gap>,
    /// Partitions (index, from offset) whose missing events must be fetched from the broker:
    /// the caller starts a backfill task for each.
    pub backfill: Vec<(usize, u64)>,
}

/// What [`Subscriber::refill`] found: partitions whose asked-for events are gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Gap {
    pub key: PartitionKey,
    pub requested: u64,
    pub oldest: u64,
}

impl Subscriber {
    /// A subscriber positioned as `spec` says, catching up from history first.
    pub fn new(id: u64, spec: SubscriptionSpec, epoch: u64, max_queue_bytes: usize) -> Self {
        let SubscriptionSpec {
            parts,
            start,
            from_live,
            filter,
            kafka_backed,
        } = spec;
        debug_assert_eq!(parts.len(), start.len());
        debug_assert_eq!(parts.len(), from_live.len());
        let n = parts.len();
        let backfill = kafka_backed.then(|| {
            RefCell::new(BackfillState {
                running: vec![false; n],
                settled: from_live.clone(),
            })
        });
        Self {
            filter,
            from_live: RefCell::new(from_live),
            backfill,
            id,
            parts,
            epoch,
            next: RefCell::new(start),
            state: Cell::new(SubState::CatchingUp),
            queue: RefCell::new(VecDeque::new()),
            queued_bytes: Cell::new(0),
            front_written: Cell::new(0),
            max_queue_bytes,
            waker: RefCell::new(None),
            finished: Cell::new(false),
            event_since_beat: Cell::new(false),
            drain_pending: Cell::new(None),
        }
    }

    pub fn parts(&self) -> &[PartitionKey] {
        &self.parts
    }

    pub fn state(&self) -> SubState {
        self.state.get()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.get()
    }

    pub fn is_composite(&self) -> bool {
        self.parts.len() > 1
    }

    /// The resume id for the current cursor.
    pub fn cursor_id(&self) -> String {
        event_id::format_cursor(self.epoch, &self.next.borrow())
    }

    /// Remember the session task to wake when there is something to write.
    pub fn set_waker(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        if let Some(w) = &*self.waker.borrow() {
            w.wake_by_ref();
        }
    }

    fn push(&self, chunk: Chunk) {
        self.queued_bytes.set(self.queued_bytes.get() + chunk.len());
        self.queue.borrow_mut().push_back(chunk);
    }

    fn push_event(&self, idx: usize, event: &Rc<FramedEvent>) {
        self.from_live.borrow_mut()[idx] = false;
        self.event_since_beat.set(true);
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !f.matches(&event.meta))
        {
            // Not wanted, but seen: the cursor moves on so a resume does not look at it again.
            self.next.borrow_mut()[idx] = event.offset + 1;
            return;
        }
        let chunk = if self.is_composite() {
            let mut next = self.next.borrow_mut();
            next[idx] = event.offset + 1;
            let id = event_id::format_cursor(self.epoch, &next);
            let id_line = Bytes::from(format!("id: {id}\n"));
            Chunk::EventWithId {
                id_line,
                event: event.clone(),
            }
        } else {
            self.next.borrow_mut()[idx] = event.offset + 1;
            Chunk::Event(event.clone())
        };
        self.push(chunk);
    }

    /// A live event of `parts[idx]`. Returns true if it was queued.
    pub fn offer_live(&self, idx: usize, event: &Rc<FramedEvent>) -> bool {
        if self.state.get() != SubState::Live {
            return false;
        }
        if event.offset < self.next.borrow()[idx] {
            return false; // already sent during catch-up
        }
        self.push_event(idx, event);
        if self.queued_bytes.get() > self.max_queue_bytes {
            self.cut_off();
        }
        self.wake();
        true
    }

    /// Queue a control chunk (retry, comment, heartbeat, reset) and wake the session.
    pub fn push_control(&self, bytes: Bytes) {
        self.push(Chunk::Bytes(bytes));
        self.wake();
    }

    /// Queue a `reset` event saying which partitions lost events; its id is the cursor after it.
    pub fn push_reset(&self, reason: &str, gaps: &[Gap]) {
        // `reason` is one of our own fixed sentences: no JSON escaping needed.
        let mut data = format!("{{\"reason\":\"{reason}\",\"partitions\":[");
        for (i, g) in gaps.iter().enumerate() {
            if i > 0 {
                data.push(',');
            }
            // Topic names are validated to [A-Za-z0-9._-]: no JSON escaping needed.
            data.push_str(&format!(
                "{{\"topic\":\"{}\",\"partition\":{},\"requested\":{},\"oldest\":{}}}",
                g.key.topic, g.key.partition, g.requested, g.oldest
            ));
        }
        data.push_str("]}");
        let id = self.cursor_id();
        let mut out = BytesMut::new();
        let ev = SseEvent {
            id: Some(&id),
            event: Some("reset"),
            data: data.as_bytes(),
            retry_ms: None,
        };
        if encode_event(&mut out, &ev).is_ok() {
            self.push_control(out.freeze());
        }
    }

    /// Fell too far behind: drop what is queued (but a partly written frame), say why, close.
    pub fn cut_off(&self) {
        self.state.set(SubState::CutOff);
        let mut queue = self.queue.borrow_mut();
        let keep = usize::from(self.front_written.get() > 0);
        while queue.len() > keep {
            queue.pop_back();
        }
        let kept: usize = queue.iter().map(Chunk::len).sum();
        drop(queue);
        self.queued_bytes
            .set(kept.saturating_sub(self.front_written.get()));
        let mut out = BytesMut::new();
        encode_comment(
            &mut out,
            "disconnected: this client fell too far behind; reconnect with Last-Event-ID to resume",
        );
        self.push_control(out.freeze());
    }

    /// The gateway is draining: tell the client to come back after `retry_ms` and close. A
    /// subscriber still catching up first replays the rest of the history (the events it was
    /// owed when the drain began; no more arrive by then), so the close comes when it is live.
    pub fn drain(&self, retry_ms: u32) {
        match self.state.get() {
            SubState::CutOff | SubState::Draining => return,
            SubState::CatchingUp => {
                self.drain_pending.set(Some(retry_ms));
                self.wake();
                return;
            }
            SubState::Live => {}
        }
        self.state.set(SubState::Draining);
        self.push_control(Bytes::from(format!(
            "retry: {retry_ms}\n: gateway shutting down; reconnect to resume\n\n"
        )));
    }

    /// While catching up: queue history events until `high` bytes are queued. Moves to live when
    /// every partition's cursor has reached its history head. Partitions whose wanted events are
    /// not in the history are either reported for backfill (Kafka-backed) or jump to the oldest
    /// retained event with a `reset` event (embedded broker).
    pub fn refill(&self, histories: &HashMap<PartitionKey, History>, high: usize) -> Refill {
        let mut out = Refill::default();
        if self.state.get() != SubState::CatchingUp {
            return out;
        }
        let mut caught_up = true;
        for (idx, key) in self.parts.iter().enumerate() {
            if let Some(b) = &self.backfill {
                if b.borrow().running[idx] {
                    caught_up = false;
                    continue;
                }
            }
            let wanted = self.next.borrow()[idx];
            let history = histories.get(key);
            let missing = match history {
                Some(h) => wanted < h.oldest(),
                None => self
                    .backfill
                    .as_ref()
                    .is_some_and(|b| !b.borrow().settled[idx]),
            };
            if missing {
                if self.from_live.borrow()[idx] {
                    // Everything this shard holds arrived after the subscription: start there.
                    if let Some(h) = history {
                        self.next.borrow_mut()[idx] = h.oldest();
                    }
                } else if let Some(b) = &self.backfill {
                    let mut b = b.borrow_mut();
                    b.running[idx] = true;
                    b.settled[idx] = false;
                    out.backfill.push((idx, wanted));
                    caught_up = false;
                    continue;
                } else if let Some(h) = history {
                    let gap = Gap {
                        key: key.clone(),
                        requested: wanted,
                        oldest: h.oldest(),
                    };
                    self.next.borrow_mut()[idx] = h.oldest();
                    // Before this partition's replayed events, so the client learns of the hole
                    // where it is.
                    self.push_reset(GAP_REASON, std::slice::from_ref(&gap));
                    out.gaps.push(gap);
                }
            }
            let Some(history) = history else { continue };
            let from = self.next.borrow()[idx];
            for event in history.since(from) {
                if self.queued_bytes.get() >= high {
                    break;
                }
                self.push_event(idx, event);
            }
            if self.next.borrow()[idx] < history.head() {
                caught_up = false;
            }
        }
        if caught_up {
            self.state.set(SubState::Live);
            if let Some(retry_ms) = self.drain_pending.take() {
                self.drain(retry_ms);
            }
        }
        out
    }

    /// An event fetched back from the broker for partition `idx` (by a backfill task).
    pub fn push_backfilled(&self, idx: usize, event: &Rc<FramedEvent>) {
        if event.offset >= self.next.borrow()[idx] {
            self.push_event(idx, event);
            self.wake();
        }
    }

    /// A backfill of partition `idx` ended; `settled` when it reached the broker's end or
    /// this shard's history (the session's next refill carries on from there).
    pub fn finish_backfill(&self, idx: usize, settled: bool, next: Option<u64>) {
        if let Some(b) = &self.backfill {
            let mut b = b.borrow_mut();
            b.running[idx] = false;
            b.settled[idx] = settled;
        }
        if let Some(n) = next {
            self.advance_cursor(idx, n);
        }
        self.wake();
    }

    /// Set partition `idx`'s cursor back to `next` (a cursor past the broker's end).
    pub fn rewind_cursor(&self, idx: usize, next: u64) {
        let mut cursor = self.next.borrow_mut();
        cursor[idx] = cursor[idx].min(next);
    }

    /// Move partition `idx`'s cursor forward to `next` (never back).
    pub fn advance_cursor(&self, idx: usize, next: u64) {
        let mut cursor = self.next.borrow_mut();
        cursor[idx] = cursor[idx].max(next);
    }

    /// The next offset the client has not seen in partition `idx`.
    pub fn next_offset(&self, idx: usize) -> u64 {
        self.next.borrow()[idx]
    }

    /// The session ended: backfill tasks stop at their next step.
    pub fn is_finished(&self) -> bool {
        self.finished.get()
    }

    pub fn mark_finished(&self) {
        self.finished.set(true);
    }

    /// Call `send` with up to `max` slices of what is queued (the front one minus what was
    /// already written), then account for the bytes it reports written.
    pub fn write_with<E>(
        &self,
        max: usize,
        send: impl FnOnce(&[IoSlice<'_>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let queue = self.queue.borrow();
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(max.min(queue.len() * 2));
        let mut skip = self.front_written.get();
        'fill: for chunk in queue.iter() {
            for s in chunk.slices() {
                if s.len() <= skip {
                    skip -= s.len();
                    continue;
                }
                slices.push(IoSlice::new(&s[skip..]));
                skip = 0;
                if slices.len() >= max {
                    break 'fill;
                }
            }
        }
        if slices.is_empty() {
            return Ok(0);
        }
        let written = send(&slices)?;
        drop(slices);
        drop(queue);
        self.consume(written);
        Ok(written)
    }

    fn consume(&self, mut n: usize) {
        self.queued_bytes
            .set(self.queued_bytes.get().saturating_sub(n));
        let mut queue = self.queue.borrow_mut();
        n += self.front_written.get();
        while let Some(front) = queue.front() {
            let len = front.len();
            if n >= len {
                n -= len;
                queue.pop_front();
            } else {
                break;
            }
        }
        self.front_written.set(n);
    }

    /// A heartbeat tick: true when no event was queued since the previous tick and nothing is
    /// waiting (the stream needs a heartbeat); starts the next interval either way.
    pub fn idle_since_last_beat(&self) -> bool {
        !self.event_since_beat.replace(false) && self.is_queue_empty()
    }

    pub fn is_queue_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }
}

/// All subscribers of one shard, indexed by partition.
#[derive(Default)]
pub struct Registry {
    by_part: HashMap<PartitionKey, Vec<(usize, Rc<Subscriber>)>>,
    all: HashMap<u64, Rc<Subscriber>>,
    next_id: u64,
}

impl Registry {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add(&mut self, sub: Rc<Subscriber>) {
        for (idx, key) in sub.parts().iter().enumerate() {
            self.by_part
                .entry(key.clone())
                .or_default()
                .push((idx, sub.clone()));
        }
        self.all.insert(sub.id, sub);
    }

    pub fn remove(&mut self, sub: &Subscriber) {
        self.all.remove(&sub.id);
        for key in sub.parts() {
            if let Some(list) = self.by_part.get_mut(key) {
                list.retain(|(_, s)| s.id != sub.id);
                if list.is_empty() {
                    self.by_part.remove(key);
                }
            }
        }
    }

    /// Offer a live event to every subscriber of its partition; returns how many queued it.
    pub fn deliver(&self, event: &Rc<FramedEvent>) -> u64 {
        let Some(list) = self.by_part.get(&event.key) else {
            return 0;
        };
        list.iter()
            .filter(|(idx, sub)| sub.offer_live(*idx, event))
            .count() as u64
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn subscribers(&self) -> impl Iterator<Item = &Rc<Subscriber>> {
        self.all.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(offset: u64) -> Rc<FramedEvent> {
        Rc::new(FramedEvent {
            key: PartitionKey {
                topic: "t".into(),
                partition: 0,
            },
            offset,
            frame: Bytes::from_static(b"id: x-1\ndata: a\n\n"),
            id_len: 8,
            meta: Default::default(),
        })
    }

    fn live_subscriber() -> Subscriber {
        let sub = Subscriber::new(
            1,
            SubscriptionSpec::live(vec![event(0).key.clone()]),
            7,
            1 << 20,
        );
        sub.refill(&HashMap::new(), 1);
        assert_eq!(sub.state(), SubState::Live);
        sub
    }

    fn drain(sub: &Subscriber) -> usize {
        sub.write_with(64, |s| Ok::<usize, ()>(s.iter().map(|x| x.len()).sum()))
            .unwrap_or(0)
    }

    #[test]
    fn busy_streams_skip_the_next_heartbeat() {
        let sub = live_subscriber();
        assert!(
            sub.idle_since_last_beat(),
            "nothing sent yet: needs a heartbeat"
        );
        assert!(sub.offer_live(0, &event(0)));
        drain(&sub);
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
    fn drain_while_catching_up_waits_for_the_history_head() {
        let key = event(0).key.clone();
        let mut histories = HashMap::new();
        let mut history = History::new(crate::broker::memory::HistoryLimits {
            max_events: 16,
            max_bytes: 1 << 20,
        });
        for offset in 0..3 {
            history.append(event(offset));
        }
        histories.insert(key.clone(), history);
        let spec = SubscriptionSpec {
            parts: vec![key],
            start: vec![0],
            from_live: vec![false],
            filter: None,
            kafka_backed: false,
        };
        let sub = Subscriber::new(1, spec, 7, 1 << 20);
        sub.drain(500);
        assert_eq!(
            sub.state(),
            SubState::CatchingUp,
            "not closed before it has its events"
        );
        // A refill that stops short of the head (one frame's worth) keeps it catching up.
        sub.refill(&histories, 1);
        assert_eq!(sub.state(), SubState::CatchingUp);
        sub.refill(&histories, 1 << 20);
        assert_eq!(sub.state(), SubState::Draining);
        let mut out = Vec::new();
        let _ = sub.write_with(64, |s| {
            for x in s {
                out.extend_from_slice(x);
            }
            Ok::<usize, ()>(out.len())
        });
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("data: a").count(), 3, "{text:?}");
        assert!(text.ends_with("retry: 500\n: gateway shutting down; reconnect to resume\n\n"));
    }

    #[test]
    fn cut_off_keeps_a_partly_written_frame_and_says_why() {
        let sub = Subscriber::new(1, SubscriptionSpec::live(vec![event(0).key.clone()]), 7, 40);
        sub.refill(&HashMap::new(), 1);
        assert!(sub.offer_live(0, &event(0)));
        // Write 3 bytes of the first frame, then overflow the queue.
        let _ = sub.write_with(64, |_| Ok::<usize, ()>(3));
        assert!(sub.offer_live(0, &event(1)));
        assert!(sub.offer_live(0, &event(2)));
        assert_eq!(sub.state(), SubState::CutOff);
        let mut out = Vec::new();
        let _ = sub.write_with(64, |s| {
            for x in s {
                out.extend_from_slice(x);
            }
            Ok::<usize, ()>(out.len())
        });
        let text = String::from_utf8_lossy(&out);
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
}
