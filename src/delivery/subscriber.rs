//! One subscription on its shard: its partitions, filter and framing, and one cell of mutable
//! state (phase, cursor, queue, waker), whatever transport carries it.
//!
//! A subscriber is either *catching up* (replaying from the shard's history, refilled by its
//! session as the socket drains, live events ignored because they are in the history too) or
//! *live* (fed by [`Subscriber::offer_live`]). The switch from one to the other happens in one
//! synchronous step when the cursor reaches the history's head, so nothing is missed or sent
//! twice. The pieces it is made of live beside it: the queue (`queue.rs`), the cursor and its
//! catch-up (`catchup.rs`), the framing of its control messages (e.g. `sse::framing`).
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IoSlice;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::catchup::{Cursor, Step};
use super::filter::EventFilter;
use super::queue::{Chunk, FrameQueue, Wire, MAX_SLICES};
use super::sendmsg::AttachedSocket;
use crate::broker::memory::History;
use crate::broker::{FramedEvent, PartitionKey};
use crate::codec::event_id;
use crate::policy::egress::{EgressLimiter, EgressVerdict};
use egress::EgressState;
use layout::Layout;

pub use super::catchup::{Gap, Refill, GAP_REASON, PAST_END_REASON, RESTART_REASON};

/// Where a subscriber is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubState {
    /// Replaying history; live events are ignored (the history has them).
    CatchingUp,
    /// Receiving live events.
    Live,
    /// Ended by the gateway (fell too far behind, token expired, over its egress limit):
    /// send what is queued (a final notice) and close.
    CutOff(CutOffReason),
    /// The gateway is draining: send what is queued (a reconnect hint) and close.
    Draining,
}

/// Why a stream was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutOffReason {
    /// Its queue passed the slow-consumer bound.
    TooSlow,
    /// The credential it was opened with expired.
    TokenExpired,
    /// An event went over its egress limit in `disconnect` mode.
    EgressLimit,
    /// The client broke the transport's protocol (WebSocket: a close code and reason), or
    /// closed it (its close was answered; the reason then says so).
    Protocol(u16, &'static str),
}

/// What [`Subscriber::offer_live`] did with an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Not for this subscriber now (catching up, closing, or already sent).
    Skipped,
    /// Queued; the subscriber is already scheduled or its session writes for it.
    Queued,
    /// Queued, and the subscriber goes into this event's batch for the shard writer.
    Schedule,
}

/// What one [`Subscriber::write_scheduled`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub writes: u64,
    pub bytes: u64,
}

/// How a transport frames what is not a shared event frame. Events themselves are framed once
/// per event at the partition owner; these are the per-subscriber pieces.
pub trait StreamFraming {
    /// Which encoding of shared events it sends.
    fn wire(&self) -> Wire;
    /// A subscriber's own id part for `event` (a cursor over several partitions), appended
    /// to `out`: what goes before the event's shared rest.
    fn id_line(&self, out: &mut BytesMut, cursor: &str, event: &FramedEvent);
    /// The first bytes of a stream, if any (SSE: the reconnect delay and a comment).
    fn opening(&self, retry_ms: u32) -> Option<Bytes>;
    /// What an idle stream gets each heartbeat interval, if anything (a transport with its
    /// own keep-alive, like WebSocket pings, returns `None`).
    fn heartbeat(&self) -> Option<Bytes>;
    /// A `reset` event saying which partitions lost events, with `cursor` as its id.
    fn reset(&self, reason: &str, gaps: &[Gap], cursor: &str) -> Bytes;
    /// The last words to a client the gateway cuts off, saying why.
    fn cut_off_notice(&self, why: CutOffReason) -> Bytes;
    /// Events were not sent (over the egress limit): how many, and the id to resume from to
    /// get them.
    fn dropped_notice(&self, count: u64, resume_from: &str) -> Bytes;
    /// The last words to a client when the gateway drains: come back after `retry_ms`.
    fn drain_notice(&self, retry_ms: u32) -> Bytes;
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
    /// Events missing from the shard's history are read back from the log, Kafka or the
    /// durable embedded log (else, memory only: `reset`).
    pub log_backed: bool,
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
            log_backed: false,
        }
    }
}

/// Bytes of id lines carved from one buffer before a new one is allocated: composite ids cost
/// no allocation per delivery.
const ID_ARENA: usize = 4096;

/// Everything about a subscriber that changes, behind one `RefCell`.
struct State {
    phase: SubState,
    /// The partitions (slots of the cursor) and the subscriptions they belong to.
    layout: Layout,
    cursor: Cursor,
    queue: FrameQueue,
    waker: Option<Waker>,
    /// The session ended: backfill tasks stop at their next step.
    finished: bool,
    /// An event was queued since the last heartbeat tick: the stream is not idle.
    event_since_beat: bool,
    /// A drain asked for while catching up, with its `retry` hint: it takes effect when the
    /// cursor reaches the history head, so the client first gets every event it is owed.
    drain_pending: Option<u32>,
    /// Where composite id lines are formatted (see [`ID_ARENA`]).
    id_arena: BytesMut,
    /// The socket the shard writer may write to directly, while the session runs.
    socket: Option<AttachedSocket>,
    /// In a batch waiting for the shard writer.
    scheduled: bool,
    /// The socket was full: the session waits for room and writes until the queue is empty;
    /// until then the writer leaves this subscriber alone.
    blocked: bool,
    /// Egress buckets and their hold and drop bookkeeping (when egress limits are set).
    egress: Option<Box<EgressState>>,
}

impl State {
    fn wake(&self) {
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }
}

/// One stream's subscriptions (one for SSE; any number for a WebSocket subscribing by message).
pub struct Subscriber {
    pub id: u64,
    epoch: u64,
    framing: &'static dyn StreamFraming,
    state: RefCell<State>,
}

/// Why a subscription could not be added to or removed from a running stream.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeError {
    /// The stream is ending (cut off, draining, or its session is over).
    Closing,
    /// The topic is already subscribed on this stream.
    AlreadySubscribed(String),
    /// The topic is not subscribed on this stream.
    NotSubscribed(String),
    /// The topic was named in the URL together with others: the group ends only as a whole.
    PartOfUrlGroup(String),
}

impl Subscriber {
    /// A subscriber positioned as `spec` says, catching up from history first.
    pub fn new(
        id: u64,
        spec: SubscriptionSpec,
        epoch: u64,
        max_queue_bytes: usize,
        framing: &'static dyn StreamFraming,
    ) -> Self {
        let SubscriptionSpec {
            parts,
            start,
            from_live,
            filter,
            log_backed,
        } = spec;
        debug_assert_eq!(parts.len(), start.len());
        Self {
            id,
            epoch,
            framing,
            state: RefCell::new(State {
                phase: SubState::CatchingUp,
                layout: Layout::single(parts, filter),
                cursor: Cursor::new(start, from_live, log_backed),
                queue: FrameQueue::new(max_queue_bytes),
                waker: None,
                finished: false,
                event_since_beat: false,
                drain_pending: None,
                id_arena: BytesMut::new(),
                socket: None,
                scheduled: false,
                blocked: false,
                egress: None,
            }),
        }
    }

    /// The slots still subscribed and their partitions (what the registry indexes).
    pub fn live_slots(&self) -> Vec<(usize, PartitionKey)> {
        let st = self.state.borrow();
        st.layout
            .live_slots()
            .map(|(slot, key)| (slot, key.clone()))
            .collect()
    }

    /// The partition of `slot`, while it is subscribed.
    pub fn part_key(&self, slot: usize) -> Option<PartitionKey> {
        let st = self.state.borrow();
        st.layout
            .is_live_slot(slot)
            .then(|| st.layout.parts()[slot].clone())
    }

    /// The topics subscribed.
    pub fn topics(&self) -> Vec<String> {
        let st = self.state.borrow();
        st.layout.topics().into_iter().map(str::to_owned).collect()
    }

    pub fn state(&self) -> SubState {
        self.state.borrow().phase
    }

    pub fn queued_bytes(&self) -> usize {
        self.state.borrow().queue.queued_bytes()
    }

    pub fn is_queue_empty(&self) -> bool {
        self.state.borrow().queue.is_empty()
    }

    /// The resume id of the subscription `slot` belongs to, at the current cursor.
    fn group_cursor_id(&self, st: &State, slot: usize) -> String {
        let slots = st.layout.group(slot).slots.clone();
        event_id::format_cursor(self.epoch, &st.cursor.positions()[slots])
    }

    /// Remember the session task to wake when there is something to write.
    pub fn set_waker(&self, waker: &Waker) {
        let mut st = self.state.borrow_mut();
        match &st.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => st.waker = Some(waker.clone()),
        }
    }

    /// Give this subscriber egress buckets (before it is registered).
    pub fn set_egress(&self, limiter: Option<EgressLimiter>) {
        self.state.borrow_mut().egress = limiter.map(|l| Box::new(EgressState::new(l)));
    }

    /// Queue event `event` of `parts[idx]` (or just move past it when the filter refuses it,
    /// or the egress limit drops it). `now` is the caller's clock reading for this event.
    fn push_event(&self, st: &mut State, idx: usize, event: &Rc<FramedEvent>, now: Instant) {
        st.event_since_beat = true;
        st.cursor.passed(idx, event.offset);
        let group = st.layout.group(idx);
        if group
            .filter
            .as_ref()
            .is_some_and(|f| !f.matches(&event.meta))
        {
            // Not wanted, but seen: the cursor moved on so a resume does not look at it again.
            return;
        }
        if st.egress.is_some() && !self.pass_egress(st, idx, event, now) {
            return;
        }
        let wire = self.framing.wire();
        let slots = st.layout.group(idx).slots.clone();
        let chunk = if slots.len() > 1 && wire != Wire::WsRaw {
            let id = event_id::format_cursor(self.epoch, &st.cursor.positions()[slots]);
            // An SSE id line, or a WebSocket header plus `{"topic":..,"id":..`.
            let room = id.len() + event.key.topic.len() + 48;
            if st.id_arena.capacity() < room {
                st.id_arena.reserve(ID_ARENA.max(room));
            }
            self.framing.id_line(&mut st.id_arena, &id, event);
            Chunk::EventWithId {
                id_line: st.id_arena.split().freeze(),
                event: event.clone(),
                wire,
            }
        } else {
            Chunk::Event(event.clone(), wire)
        };
        if !st.queue.push(chunk) {
            self.cut_off_locked(st, CutOffReason::TooSlow);
        }
    }

    /// The egress limit's verdict on an event that passed the filter: false when it is not to
    /// be queued (dropped, or the stream was cut off). A queued event after drops is preceded
    /// by the `dropped` notice. Kept out of line: most subscribers have no egress limit, and
    /// the fan-out's per-subscriber path stays small without this body in it.
    #[inline(never)]
    fn pass_egress(&self, st: &mut State, idx: usize, event: &FramedEvent, now: Instant) -> bool {
        let Some(egress) = st.egress.as_mut() else {
            return true;
        };
        match egress.admit(event.frame.len(), now) {
            EgressVerdict::Send | EgressVerdict::Hold(_) => {}
            EgressVerdict::Drop => {
                if egress.dropped == 0 {
                    // Resuming from here replays this event and the ones dropped after it.
                    let slots = st.layout.group(idx).slots.clone();
                    let mut positions = st.cursor.positions().to_vec();
                    positions[idx] = event.offset;
                    egress.resume_from =
                        Some(event_id::format_cursor(self.epoch, &positions[slots]));
                }
                egress.dropped += 1;
                egress.dropped_total += 1;
                return false;
            }
            EgressVerdict::Disconnect => {
                self.cut_off_locked(st, CutOffReason::EgressLimit);
                return false;
            }
        }
        if egress.dropped > 0 {
            let from = egress.resume_from.take().unwrap_or_default();
            let notice = self.framing.dropped_notice(egress.dropped, &from);
            egress.dropped = 0;
            st.queue.push(Chunk::Bytes(notice));
        }
        true
    }

    /// A live event of `parts[idx]`, offered at `now`. A live subscriber whose socket took
    /// everything so far is written by the shard's writer (no task wake-up per delivery); one
    /// whose socket is full, that is held by its egress limit, or that was cut off by this
    /// event, is handed to its session.
    pub fn offer_live(&self, idx: usize, event: &Rc<FramedEvent>, now: Instant) -> Offer {
        let mut st = self.state.borrow_mut();
        if st.phase != SubState::Live || event.offset < st.cursor.next(idx) {
            // Not live (catching up reads the history; closing takes nothing new), or already
            // sent during catch-up.
            return Offer::Skipped;
        }
        self.push_event(&mut st, idx, event, now);
        let held = st.egress.as_mut().is_some_and(|e| e.is_held(now));
        if st.phase != SubState::Live || st.blocked || st.socket.is_none() || held {
            st.wake();
            return Offer::Queued;
        }
        if std::mem::replace(&mut st.scheduled, true) {
            Offer::Queued
        } else {
            Offer::Schedule
        }
    }

    /// Let the shard writer write to `socket` (the session's stream) from now on.
    pub fn attach_socket(&self, socket: AttachedSocket) {
        self.state.borrow_mut().socket = Some(socket);
    }

    /// The shard writer's turn: write what is queued straight to the socket. A full socket
    /// hands the subscriber to its session (which waits for room); so does a queue that
    /// emptied while closing (the session ends the stream).
    pub fn write_scheduled(&self) -> Flushed {
        let mut out = Flushed::default();
        let mut st = self.state.borrow_mut();
        st.scheduled = false;
        let Some(socket) = st.socket else {
            return out;
        };
        if st.blocked {
            return out;
        }
        if st.egress.as_ref().is_some_and(|e| e.held_until.is_some()) {
            // Held by the egress limit since it was scheduled: its session writes when the
            // hold ends.
            st.wake();
            return out;
        }
        while !st.queue.is_empty() {
            match st
                .queue
                .write_with(MAX_SLICES, |slices| socket.send(slices))
            {
                Ok(n) => {
                    out.writes += 1;
                    out.bytes += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Full (the session registers for room) or broken (the session sees the
                    // error on its own write and ends).
                    if e.kind() == std::io::ErrorKind::WouldBlock {
                        st.blocked = true;
                    }
                    st.wake();
                    return out;
                }
            }
        }
        if st.phase != SubState::Live {
            st.wake();
        }
        out
    }

    /// The session wrote everything queued: the writer may take over again.
    pub fn session_caught_up(&self) {
        self.state.borrow_mut().blocked = false;
    }

    /// Queue a control chunk (retry, comment, heartbeat, reset) and wake the session.
    pub fn push_control(&self, bytes: Bytes) {
        let mut st = self.state.borrow_mut();
        st.queue.push(Chunk::Bytes(bytes));
        st.wake();
    }

    /// Queue a `reset` event saying which partitions lost events (of one subscription); its
    /// id is that subscription's cursor after it.
    pub fn push_reset(&self, reason: &str, gaps: &[Gap]) {
        let mut st = self.state.borrow_mut();
        let slot = gaps.first().and_then(|gap| {
            st.layout
                .live_slots()
                .find(|(_, key)| **key == gap.key)
                .map(|(slot, _)| slot)
        });
        let Some(slot) = slot else { return };
        let id = self.group_cursor_id(&st, slot);
        st.queue
            .push(Chunk::Bytes(self.framing.reset(reason, gaps, &id)));
        st.wake();
    }

    /// End the stream for `why`: drop what is queued (but a partly written frame), say why,
    /// close. The client resumes with the last id it received.
    pub fn cut_off(&self, why: CutOffReason) {
        let mut st = self.state.borrow_mut();
        self.cut_off_locked(&mut st, why);
    }

    fn cut_off_locked(&self, st: &mut State, why: CutOffReason) {
        if matches!(st.phase, SubState::CutOff(_)) {
            return;
        }
        st.phase = SubState::CutOff(why);
        if let Some(e) = st.egress.as_mut() {
            e.held_until = None;
        }
        let notice = self.framing.cut_off_notice(why);
        match why {
            // What is queued was within the limit: it goes out before the notice.
            CutOffReason::EgressLimit => {
                st.queue.push(Chunk::Bytes(notice));
            }
            // Too far behind (the queue is the problem), no longer authorized, or a client
            // that broke the protocol.
            CutOffReason::TooSlow | CutOffReason::TokenExpired | CutOffReason::Protocol(..) => {
                st.queue.cut_off(notice)
            }
        }
        st.wake();
    }

    /// Until when the egress limit holds this subscriber's writes (`delay` mode).
    pub fn held_until(&self) -> Option<Instant> {
        self.state
            .borrow()
            .egress
            .as_ref()
            .and_then(|e| e.held_until)
    }

    /// The hold is over (the session saw its time pass).
    pub fn release_hold(&self) {
        if let Some(e) = self.state.borrow_mut().egress.as_mut() {
            e.held_until = None;
        }
    }

    /// Events dropped over the egress limit since the last call (for the shard's metrics).
    pub fn take_dropped_count(&self) -> u64 {
        self.state
            .borrow_mut()
            .egress
            .as_mut()
            .map_or(0, |e| std::mem::take(&mut e.dropped_total))
    }

    /// The gateway is draining: tell the client to come back after `retry_ms` and close. A
    /// subscriber still catching up first replays the rest of the history (the events it was
    /// owed when the drain began; no more arrive by then), so the close comes when it is live.
    pub fn drain(&self, retry_ms: u32) {
        let mut st = self.state.borrow_mut();
        self.drain_locked(&mut st, retry_ms);
    }

    fn drain_locked(&self, st: &mut State, retry_ms: u32) {
        match st.phase {
            SubState::CutOff(_) | SubState::Draining => return,
            SubState::CatchingUp => st.drain_pending = Some(retry_ms),
            SubState::Live => {
                st.phase = SubState::Draining;
                st.queue
                    .push(Chunk::Bytes(self.framing.drain_notice(retry_ms)));
            }
        }
        st.wake();
    }

    /// While catching up: queue history events until `high` bytes are queued. Moves to live when
    /// every partition's cursor has reached its history head. Partitions whose wanted events are
    /// not in the history are either reported for backfill (Kafka-backed) or jump to the oldest
    /// retained event with a `reset` event (embedded broker).
    pub fn refill(
        &self,
        histories: &HashMap<PartitionKey, History>,
        high: usize,
        now: Instant,
    ) -> Refill {
        let mut out = Refill::default();
        let mut st = self.state.borrow_mut();
        if st.phase != SubState::CatchingUp {
            return out;
        }
        let mut caught_up = true;
        for idx in 0..st.layout.len() {
            if !st.layout.is_live_slot(idx) {
                continue;
            }
            let key = &st.layout.parts()[idx];
            let history = histories.get(key);
            let key = key.clone();
            match st.cursor.step(idx, &key, history) {
                Step::Wait => {
                    caught_up = false;
                    continue;
                }
                Step::Backfill(from) => {
                    out.backfill.push((idx, from));
                    caught_up = false;
                    continue;
                }
                Step::Nothing => continue,
                Step::Read { gap } => {
                    if let Some(gap) = gap {
                        // Before this partition's replayed events, so the client learns of the
                        // hole where it is.
                        let id = self.group_cursor_id(&st, idx);
                        let reset = self
                            .framing
                            .reset(GAP_REASON, std::slice::from_ref(&gap), &id);
                        st.queue.push(Chunk::Bytes(reset));
                        out.gaps.push(gap);
                    }
                }
            }
            let Some(history) = history else { continue };
            for event in history.since(st.cursor.next(idx)) {
                if st.queue.queued_bytes() >= high || matches!(st.phase, SubState::CutOff(_)) {
                    break;
                }
                self.push_event(&mut st, idx, event, now);
            }
            if st.cursor.next(idx) < history.head() {
                caught_up = false;
            }
        }
        if caught_up && st.phase == SubState::CatchingUp {
            st.phase = SubState::Live;
            if let Some(retry_ms) = st.drain_pending.take() {
                self.drain_locked(&mut st, retry_ms);
            }
        }
        out
    }

    /// An event fetched back from the broker for partition `idx` (by a backfill task).
    pub fn push_backfilled(&self, idx: usize, event: &Rc<FramedEvent>, now: Instant) {
        let mut st = self.state.borrow_mut();
        if st.layout.is_live_slot(idx) && event.offset >= st.cursor.next(idx) {
            self.push_event(&mut st, idx, event, now);
            st.wake();
        }
    }

    /// A backfill of partition `idx` ended; `settled` when it reached the broker's end or
    /// this shard's history (the session's next refill carries on from there).
    pub fn finish_backfill(&self, idx: usize, settled: bool, next: Option<u64>) {
        let mut st = self.state.borrow_mut();
        st.cursor.finish_backfill(idx, settled);
        if let Some(n) = next {
            st.cursor.advance(idx, n);
        }
        st.wake();
    }

    /// Set partition `idx`'s cursor back to `next` (a cursor past the broker's end).
    pub fn rewind_cursor(&self, idx: usize, next: u64) {
        self.state.borrow_mut().cursor.rewind(idx, next);
    }

    /// Move partition `idx`'s cursor forward to `next` (never back).
    pub fn advance_cursor(&self, idx: usize, next: u64) {
        self.state.borrow_mut().cursor.advance(idx, next);
    }

    /// The next offset the client has not seen in partition `idx`.
    pub fn next_offset(&self, idx: usize) -> u64 {
        self.state.borrow().cursor.next(idx)
    }

    /// The session ended: backfill tasks stop at their next step.
    pub fn is_finished(&self) -> bool {
        self.state.borrow().finished
    }

    /// The session ended: detach the socket (in the same step as the stream closes, see
    /// [`AttachedSocket`]) and stop backfill tasks.
    pub fn mark_finished(&self) {
        let mut st = self.state.borrow_mut();
        st.finished = true;
        st.socket = None;
    }

    /// Call `send` with up to `max` slices of what is queued (the front one minus what was
    /// already written), then account for the bytes it reports written.
    pub fn write_with<E>(
        &self,
        max: usize,
        send: impl FnOnce(&[IoSlice<'_>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.state.borrow_mut().queue.write_with(max, send)
    }

    /// The heartbeat bytes of this subscriber's transport, if it uses the shard's heartbeat.
    pub fn heartbeat(&self) -> Option<Bytes> {
        self.framing.heartbeat()
    }

    /// A heartbeat tick: true when no event was queued since the previous tick and nothing is
    /// waiting (the stream needs a heartbeat); starts the next interval either way.
    pub fn idle_since_last_beat(&self) -> bool {
        let mut st = self.state.borrow_mut();
        let busy = std::mem::replace(&mut st.event_since_beat, false);
        !busy && st.queue.is_empty()
    }
}

mod change;
mod egress;
mod layout;
#[cfg(test)]
mod tests;

pub use change::NewSubscription;
