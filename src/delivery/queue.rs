//! A subscriber's outgoing queue: shared frames in order, byte accounting, partial writes and
//! the slow-consumer cut-off. Pure and synchronous (no runtime, no socket), so every transport
//! (SSE today, WebSocket and webhooks next) uses the same one, and a proptest can check it.
use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;

use bytes::Bytes;

use crate::broker::FramedEvent;

/// Which of a shared event's encodings a subscriber's transport sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// The SSE frame.
    Sse,
    /// A WebSocket text frame with the JSON envelope.
    WsJson,
    /// A WebSocket text frame with just the data.
    WsRaw,
}

/// One piece of the outgoing stream.
pub enum Chunk {
    /// A shared frame, id included: the same bytes for every subscriber of that wire.
    Event(Rc<FramedEvent>, Wire),
    /// This subscriber's own id part (an SSE id line; a WebSocket frame header and envelope
    /// head), then the shared rest of the frame (a cursor over several partitions cannot be
    /// framed once for everyone).
    EventWithId {
        id_line: Bytes,
        event: Rc<FramedEvent>,
        wire: Wire,
    },
    /// Anything else: `retry:`, comments, heartbeats, `reset` events.
    Bytes(Bytes),
}

impl Chunk {
    /// The chunk's bytes as up to two slices (the second may be empty).
    pub fn slices(&self) -> [&[u8]; 2] {
        match self {
            Chunk::Event(e, Wire::Sse) => [&e.frame[..], &[]],
            Chunk::Event(e, Wire::WsJson) => [e.ws_json(), &[]],
            Chunk::Event(e, Wire::WsRaw) => [e.ws_raw(), &[]],
            Chunk::EventWithId {
                id_line,
                event,
                wire,
            } => {
                let rest = match wire {
                    Wire::Sse => event.body(),
                    Wire::WsJson => event.ws_json_tail(),
                    Wire::WsRaw => event.ws_raw(),
                };
                [&id_line[..], rest]
            }
            Chunk::Bytes(b) => [&b[..], &[]],
        }
    }

    fn len(&self) -> usize {
        let [a, b] = self.slices();
        a.len() + b.len()
    }
}

/// Most slices one gathered write takes (well under Linux's IOV_MAX of 1024). The slices live
/// in a stack array of this size, so a write allocates nothing.
pub const MAX_SLICES: usize = 256;
/// The iovec array a short queue is written with (see [`FrameQueue::write_with`]).
const FEW_SLICES: usize = 8;

/// Frames waiting for one connection, bounded by `max_bytes`.
pub struct FrameQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes not yet written (the front chunk counts only its unwritten part).
    queued_bytes: usize,
    /// Bytes of the front chunk already written.
    front_written: usize,
    max_bytes: usize,
}

impl FrameQueue {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            queued_bytes: 0,
            front_written: 0,
            max_bytes,
        }
    }

    /// Queue a chunk. Returns false when the queue is now over its limit: the caller decides
    /// (an event queue cuts the subscriber off; control chunks may go over).
    pub fn push(&mut self, chunk: Chunk) -> bool {
        self.queued_bytes += chunk.len();
        self.chunks.push_back(chunk);
        self.queued_bytes <= self.max_bytes
    }

    /// Bytes not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Drop everything not yet started, keeping a partly written frame so the stream stays
    /// well-formed, then queue `last_words` (why the connection is closing).
    pub fn cut_off(&mut self, last_words: Bytes) {
        let keep = usize::from(self.front_written > 0);
        self.chunks.truncate(keep);
        self.queued_bytes = self
            .chunks
            .front()
            .map_or(0, |c| c.len() - self.front_written);
        self.push(Chunk::Bytes(last_words));
    }

    /// Call `send` with up to `max` (at most [`MAX_SLICES`]) slices of what is queued, the
    /// front one minus what was already written; account for the bytes it reports written.
    /// Nothing is allocated: the slices are a stack array.
    pub fn write_with<E>(
        &mut self,
        max: usize,
        send: impl FnOnce(&[IoSlice<'_>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let max = max.clamp(1, MAX_SLICES);
        // A chunk is at most two slices. Most writes carry a few frames (a live subscriber
        // usually has one or two queued), and zeroing a MAX_SLICES iovec array (4 KiB) per
        // write cost more than the rest of the fan-out's per-subscriber work: use a small
        // array when it is enough.
        if max <= FEW_SLICES || self.chunks.len() * 2 <= FEW_SLICES {
            self.gather_and_send::<FEW_SLICES, E>(max.min(FEW_SLICES), send)
        } else {
            self.gather_and_send::<MAX_SLICES, E>(max, send)
        }
    }

    /// [`FrameQueue::write_with`] with an array of `N` slices.
    fn gather_and_send<const N: usize, E>(
        &mut self,
        max: usize,
        send: impl FnOnce(&[IoSlice<'_>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let mut slices = [IoSlice::new(&[]); N];
        let mut count = 0;
        let mut skip = self.front_written;
        'fill: for chunk in &self.chunks {
            for s in chunk.slices() {
                if s.len() <= skip {
                    skip -= s.len();
                    continue;
                }
                slices[count] = IoSlice::new(&s[skip..]);
                count += 1;
                skip = 0;
                if count >= max {
                    break 'fill;
                }
            }
        }
        if count == 0 {
            return Ok(0);
        }
        let written = send(&slices[..count])?;
        self.consume(written);
        Ok(written)
    }

    /// `n` more bytes left the queue's front.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.queued_bytes);
        self.queued_bytes -= n;
        let mut at = self.front_written + n;
        while let Some(front) = self.chunks.front() {
            let len = front.len();
            if at < len {
                break;
            }
            at -= len;
            self.chunks.pop_front();
        }
        self.front_written = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &'static str) -> Chunk {
        Chunk::Bytes(Bytes::from_static(s.as_bytes()))
    }

    fn write_all(q: &mut FrameQueue) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = q.write_with(MAX_SLICES, |s| {
            for x in s {
                out.extend_from_slice(x);
            }
            Ok::<usize, ()>(out.len())
        });
        out
    }

    #[test]
    fn partial_writes_resume_mid_chunk() {
        let mut q = FrameQueue::new(1024);
        assert!(q.push(bytes("abc")));
        assert!(q.push(bytes("defg")));
        assert_eq!(q.write_with(8, |_| Ok::<usize, ()>(4)), Ok(4));
        assert_eq!(q.queued_bytes(), 3);
        assert_eq!(write_all(&mut q), b"efg");
        assert!(q.is_empty());
        assert_eq!(q.queued_bytes(), 0);
    }

    #[test]
    fn push_reports_going_over_the_limit() {
        let mut q = FrameQueue::new(5);
        assert!(q.push(bytes("abcde")));
        assert!(!q.push(bytes("f")));
    }

    #[test]
    fn cut_off_keeps_a_started_frame_and_appends_the_reason() {
        let mut q = FrameQueue::new(1024);
        q.push(bytes("first"));
        q.push(bytes("second"));
        let _ = q.write_with(8, |_| Ok::<usize, ()>(2));
        q.cut_off(Bytes::from_static(b"!bye"));
        assert_eq!(q.queued_bytes(), 3 + 4);
        assert_eq!(write_all(&mut q), b"rst!bye");
        let mut q = FrameQueue::new(1024);
        q.push(bytes("unstarted"));
        q.cut_off(Bytes::from_static(b"!bye"));
        assert_eq!(write_all(&mut q), b"!bye");
    }

    #[test]
    fn write_errors_consume_nothing() {
        let mut q = FrameQueue::new(1024);
        q.push(bytes("abc"));
        assert_eq!(q.write_with(8, |_| Err::<usize, &str>("full")), Err("full"));
        assert_eq!(q.queued_bytes(), 3);
        assert_eq!(write_all(&mut q), b"abc");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            /// Queue a chunk of this many bytes.
            Push(usize),
            /// A write that takes at most `budget` bytes from up to `slices` slices.
            Write {
                slices: usize,
                budget: usize,
            },
            /// A write that fails (the socket would block).
            Blocked,
            CutOff,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (1usize..40).prop_map(Op::Push),
                4 => (1usize..6, 0usize..90).prop_map(|(slices, budget)| Op::Write { slices, budget }),
                1 => Just(Op::Blocked),
                1 => Just(Op::CutOff),
            ]
        }

        proptest! {
            /// For any pushes, partial writes and cut-offs: the queued byte count is what was
            /// queued and not yet written, and what comes out is the chunks, whole and in order
            /// (after a cut-off: the started chunk finished, then the reason).
            #[test]
            fn accounting_and_order_hold_for_any_sequence(ops in prop::collection::vec(op(), 0..60)) {
                let mut q = FrameQueue::new(1 << 20);
                // Model: the chunks still queued, and how much of the first was written.
                let mut model: VecDeque<Vec<u8>> = VecDeque::new();
                let mut model_front = 0usize;
                let mut expected_out = Vec::new();
                let mut out = Vec::new();
                let mut next_tag = 0u8;
                for op in ops {
                    match op {
                        Op::Push(len) => {
                            next_tag = next_tag.wrapping_add(1);
                            let data = vec![next_tag; len];
                            q.push(Chunk::Bytes(Bytes::from(data.clone())));
                            model.push_back(data);
                        }
                        Op::Write { slices, budget } => {
                            let got = q.write_with(slices, |s| {
                                prop_assert!(s.len() <= slices.max(1));
                                let mut left = budget;
                                for x in s {
                                    let n = x.len().min(left);
                                    out.extend_from_slice(&x[..n]);
                                    left -= n;
                                }
                                Ok(budget - left)
                            })?;
                            // Model the same write: bytes leave from the front.
                            let mut n = got;
                            while n > 0 {
                                let front_len = model.front().map_or(0, Vec::len);
                                let take = n.min(front_len - model_front);
                                if let Some(front) = model.front() {
                                    expected_out.extend_from_slice(&front[model_front..model_front + take]);
                                }
                                model_front += take;
                                n -= take;
                                if model_front == front_len {
                                    model.pop_front();
                                    model_front = 0;
                                }
                            }
                        }
                        Op::Blocked => {
                            let r = q.write_with(4, |_| Err::<usize, ()>(()));
                            prop_assert!(r.is_err() || q.is_empty());
                        }
                        Op::CutOff => {
                            q.cut_off(Bytes::from_static(b"!"));
                            let keep = usize::from(model_front > 0);
                            model.truncate(keep);
                            if keep == 0 {
                                model_front = 0;
                            }
                            model.push_back(b"!".to_vec());
                        }
                    }
                    let model_queued: usize = model.iter().map(Vec::len).sum::<usize>() - model_front;
                    prop_assert_eq!(q.queued_bytes(), model_queued);
                    prop_assert_eq!(q.is_empty(), model.is_empty());
                    prop_assert_eq!(&out, &expected_out);
                }
                // Whatever is left comes out whole.
                let rest = write_all(&mut q);
                for (i, chunk) in model.iter().enumerate() {
                    let from = if i == 0 { model_front } else { 0 };
                    expected_out.extend_from_slice(&chunk[from..]);
                }
                out.extend_from_slice(&rest);
                prop_assert_eq!(out, expected_out);
                prop_assert_eq!(q.queued_bytes(), 0);
            }
        }
    }
}
