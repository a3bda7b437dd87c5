//! [`BrokerPlane`]: the shard's handle on its broker thread (two rtrb rings and the wakeups),
//! and [`spawn`], which starts that thread with a tokio current-thread runtime.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::thread::JoinHandle;

use super::events::{PlaneCommand, PlaneEvent};
use super::sink::{EventSink, Shared};

/// The shard side of a broker plane. It lives on the shard (one owner; not `Sync`) and never
/// blocks: events are popped, commands pushed, and the shard's task sleeps on the waker set
/// with [`BrokerPlane::set_waker`]. Dropping it stops the plane.
pub struct BrokerPlane {
    events: rtrb::Consumer<PlaneEvent>,
    commands: rtrb::Producer<PlaneCommand>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BrokerPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerPlane")
            .field("pending_events", &self.events.slots())
            .finish_non_exhaustive()
    }
}

/// Start a plane thread for `shard`: pinned to `cpu` when given, running a tokio current-thread
/// runtime and, on it, the future `worker` builds from the plane's end of the rings. `name` is
/// the thread's name (`kafka-0`, `redis-1`).
///
/// Errors only when the thread or runtime cannot be created.
pub fn spawn<W, F>(
    name: String,
    shard: usize,
    cpu: Option<usize>,
    ring_capacity: usize,
    worker: W,
) -> std::io::Result<(BrokerPlane, JoinHandle<()>)>
where
    W: FnOnce(EventSink, rtrb::Consumer<PlaneCommand>, Arc<Shared>) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + 'static,
{
    let capacity = ring_capacity.max(16);
    let (event_tx, event_rx) = rtrb::RingBuffer::new(capacity);
    let (command_tx, command_rx) = rtrb::RingBuffer::new(capacity);
    let shared = Arc::new(Shared::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sink = EventSink::new(event_tx, Arc::clone(&shared));
    let worker_shared = Arc::clone(&shared);
    let thread_name = name.clone();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        if let Some(cpu) = cpu {
            if let Err(err) = pin_to_cpu(cpu) {
                tracing::warn!(shard, cpu, %err, plane = %thread_name, "broker plane: cannot pin to CPU; running unpinned");
            }
        }
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, worker(sink, command_rx, worker_shared));
    })?;
    let plane = BrokerPlane {
        events: event_rx,
        commands: command_tx,
        shared,
    };
    Ok((plane, thread))
}

impl BrokerPlane {
    /// The next event, if one is waiting.
    pub fn try_recv(&mut self) -> Option<PlaneEvent> {
        let event = self.events.pop().ok()?;
        self.after_pop();
        Some(event)
    }

    /// Move up to `max` waiting events into `out`; returns how many.
    pub fn drain_into(&mut self, out: &mut Vec<PlaneEvent>, max: usize) -> usize {
        let mut moved = 0;
        while moved < max {
            match self.events.pop() {
                Ok(event) => {
                    out.push(event);
                    moved += 1;
                }
                Err(_) => break,
            }
        }
        if moved > 0 {
            self.after_pop();
        }
        moved
    }

    /// Push a command; a full ring gives it back (the caller decides: retry later, or 503).
    pub fn send(&mut self, command: PlaneCommand) -> Result<(), PlaneCommand> {
        match self.commands.push(command) {
            Ok(()) => {
                self.shared.commands.notify_one();
                Ok(())
            }
            Err(rtrb::PushError::Full(command)) => Err(command),
        }
    }

    /// Wake `waker` when the next event arrives. Register, then check [`BrokerPlane::try_recv`]
    /// once more before sleeping (an event pushed in between has already woken the old one).
    pub fn set_waker(&self, waker: &Waker) {
        self.shared.shard_waker.register(waker);
    }

    /// True once the plane thread has ended and every event it sent has been read.
    pub fn is_finished(&self) -> bool {
        self.events.is_abandoned() && self.events.is_empty()
    }

    /// The plane waits on a full ring; tell it there is room.
    fn after_pop(&self) {
        if self.shared.wants_space.load(Ordering::Acquire)
            && self.shared.wants_space.swap(false, Ordering::AcqRel)
        {
            self.shared.space.notify_waiters();
        }
    }
}

impl Drop for BrokerPlane {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
    }
}

/// Pin the calling thread to `cpu`. The one unsafe call of the plane: `sched_setaffinity`
/// has no safe wrapper in the crates we use.
#[allow(unsafe_code)]
pub(crate) fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // cpu_set_t is a fixed bit array of CPU_SETSIZE bits; CPU_SET past it would index out of
    // bounds, so refuse first.
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: cpu_set_t is plain data for which all-zero is the empty set; CPU_ZERO/CPU_SET
    // only write inside it (cpu < CPU_SETSIZE checked above); sched_setaffinity(0, ...)
    // reads `size_of::<cpu_set_t>()` bytes from a valid reference and affects this thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
