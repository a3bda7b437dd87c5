//! What the tasks of one plane share: the link to the brokers (up or down, and which
//! connection generation), the supervisor's control connection with its partition clients,
//! what discovery has seen per topic, and [`Inner::request`], the one way a task sends a
//! request on a connection (timeout, report a transport failure, map the error).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::error::{Error as RsError, ProtocolError};
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::Client;
use tokio::sync::{watch, Notify};

use super::connect::{describe, is_transport, protocol_error};
use super::settings::Settings;
use crate::broker::plane::sink::{EventSink, Shared};

/// The connection state every task can watch. `generation` counts successful connects.
#[derive(Clone, Debug, Default)]
pub(crate) struct Link {
    pub generation: u64,
    pub up: bool,
    pub reason: String,
}

/// The supervisor's client: metadata, produce and catch-up fetches go through it. Fetch
/// loops have their own clients (own connections), so a long-polling fetch never queues a
/// produce behind it on the broker.
struct Control {
    generation: u64,
    client: Arc<Client>,
    partitions: HashMap<(Arc<str>, i32), Arc<PartitionClient>>,
}

#[derive(Default)]
struct TopicState {
    /// Partitions seen so far; `None` until the first successful discovery.
    partitions: Option<BTreeSet<i32>>,
    error_reported: bool,
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// Not connected: nothing was sent.
    Down(String),
    /// Sent, but no answer came within the timeout. Counts as a transport failure.
    TimedOut(String),
    /// rskafka gave up on the connection, or the broker answered with an error code.
    Failed(RsError),
}

impl RequestError {
    /// True when the connection (not the request) failed, or nothing could be sent.
    pub fn is_transport(&self) -> bool {
        match self {
            Self::Down(_) | Self::TimedOut(_) => true,
            Self::Failed(err) => is_transport(err),
        }
    }

    /// The Kafka error code of a broker answer, if it was one.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        match self {
            Self::Failed(err) => protocol_error(err),
            Self::Down(_) | Self::TimedOut(_) => None,
        }
    }

    /// A one-line reason for logs and error messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Down(reason) | Self::TimedOut(reason) => reason.clone(),
            Self::Failed(err) => describe(err),
        }
    }
}

/// `request` bounded by `timeout`, reporting nothing: for best-effort requests whose failure
/// must not take the link down. `what` names the request in the timeout's reason.
pub(crate) async fn answer_within<T>(
    timeout: Duration,
    what: &str,
    request: impl Future<Output = Result<T, RsError>>,
) -> Result<T, RequestError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(err)) => Err(RequestError::Failed(err)),
        Err(_) => Err(RequestError::TimedOut(format!(
            "{what} got no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub sink: EventSink,
    pub shared: Arc<Shared>,
    pub link: watch::Sender<Link>,
    control: RefCell<Option<Control>>,
    trouble: Notify,
    trouble_reason: RefCell<Option<String>>,
    topics: RefCell<HashMap<Arc<str>, TopicState>>,
    round_robin: Cell<u32>,
}

impl Inner {
    pub fn new(settings: Settings, sink: EventSink, shared: Arc<Shared>) -> Self {
        let (link, _) = watch::channel(Link {
            reason: "not connected yet".to_owned(),
            ..Link::default()
        });
        Self {
            settings,
            sink,
            shared,
            link,
            control: RefCell::new(None),
            trouble: Notify::new(),
            trouble_reason: RefCell::new(None),
            topics: RefCell::new(HashMap::new()),
            round_robin: Cell::new(0),
        }
    }

    pub fn link(&self) -> Link {
        self.link.borrow().clone()
    }

    /// The supervisor connected: `client` is the control connection of `generation`, and
    /// the link is up.
    pub fn connected(&self, generation: u64, client: Arc<Client>) {
        *self.trouble_reason.borrow_mut() = None;
        *self.control.borrow_mut() = Some(Control {
            generation,
            client,
            partitions: HashMap::new(),
        });
        self.link.send_modify(|l| {
            l.generation = generation;
            l.up = true;
        });
    }

    /// Wait until a task reports a failure of the current connection.
    pub async fn trouble(&self) {
        self.trouble.notified().await;
    }

    /// The supervisor gives up the current connection: drop the control client (and its
    /// partition clients) and say why, for the down report.
    pub fn disconnected(&self) -> String {
        *self.control.borrow_mut() = None;
        self.trouble_reason
            .borrow_mut()
            .take()
            .unwrap_or_else(|| "connection failed".to_owned())
    }

    /// A task saw the connection fail. Only a failure on the current connection counts, so
    /// tasks still finishing on an old client do not take a fresh one down.
    pub fn report_failure(&self, generation: u64, reason: String) {
        let link = self.link.borrow();
        if link.up && link.generation == generation {
            *self.trouble_reason.borrow_mut() = Some(reason);
            self.trouble.notify_one();
        }
    }

    /// Send one request on the connection of `generation`, bounded by
    /// `kafka.request_timeout_ms`. A timeout or a transport failure is reported against that
    /// generation (so the supervisor reconnects) before the error comes back; a broker's error
    /// code is an answer, not an outage, and is only returned.
    pub async fn request<T>(
        &self,
        generation: u64,
        what: &str,
        request: impl Future<Output = Result<T, RsError>>,
    ) -> Result<T, RequestError> {
        let timeout = self.settings.request_timeout;
        self.request_within(timeout, generation, what, request)
            .await
    }

    /// [`Inner::request`] with another bound (a long-polling fetch may wait
    /// `fetch_max_wait_ms` on top of the request timeout).
    pub async fn request_within<T>(
        &self,
        timeout: Duration,
        generation: u64,
        what: &str,
        request: impl Future<Output = Result<T, RsError>>,
    ) -> Result<T, RequestError> {
        let answer = answer_within(timeout, what, request).await;
        if let Err(err) = &answer {
            if err.is_transport() {
                self.report_failure(generation, err.describe());
            }
        }
        answer
    }

    /// Wait until connected with a generation newer than `generation`; `None` if the plane
    /// stops first.
    pub async fn wait_up_after(&self, generation: u64) -> Option<u64> {
        let mut rx = self.link.subscribe();
        loop {
            {
                let link = rx.borrow_and_update();
                if link.up && link.generation > generation {
                    return Some(link.generation);
                }
            }
            if self.shared.is_shutting_down() || rx.changed().await.is_err() {
                return None;
            }
        }
    }

    /// Next round-robin partition for records without a key.
    pub fn next_round_robin(&self, count: u32) -> u32 {
        let n = self.round_robin.get();
        self.round_robin.set(n.wrapping_add(1));
        n % count.max(1)
    }

    /// The control connection's client and generation, or why there is none.
    fn control_client(&self) -> Result<(u64, Arc<Client>), RequestError> {
        match self.control.borrow().as_ref() {
            Some(c) => Ok((c.generation, Arc::clone(&c.client))),
            None => Err(RequestError::Down(self.link().reason)),
        }
    }

    /// A partition client on the control connection, created on first use per connection.
    pub async fn control_partition(
        &self,
        topic: &Arc<str>,
        partition: i32,
    ) -> Result<(u64, Arc<PartitionClient>), RequestError> {
        let cached = self.control.borrow().as_ref().and_then(|c| {
            let pc = c.partitions.get(&(Arc::clone(topic), partition))?;
            Some((c.generation, Arc::clone(pc)))
        });
        if let Some(found) = cached {
            return Ok(found);
        }
        let (generation, client) = self.control_client()?;
        let lookup =
            client.partition_client(topic.as_ref(), partition, UnknownTopicHandling::Error);
        let pc = Arc::new(
            self.request(generation, "partition leader lookup", lookup)
                .await?,
        );
        if let Some(control) = self.control.borrow_mut().as_mut() {
            if control.generation == generation {
                control
                    .partitions
                    .insert((Arc::clone(topic), partition), Arc::clone(&pc));
            }
        }
        Ok((generation, pc))
    }

    /// Partition count of `topic`: known from discovery, else asked of the broker.
    pub async fn partition_count(&self, topic: &Arc<str>) -> Result<Option<u32>, RequestError> {
        if let Some(known) = self
            .topics
            .borrow()
            .get(topic)
            .and_then(|t| t.partitions.as_ref())
        {
            return Ok(Some(known.len() as u32));
        }
        let (generation, client) = self.control_client()?;
        let topics = self
            .request(generation, "metadata request", client.list_topics())
            .await?;
        Ok(topics
            .iter()
            .find(|t| t.name == topic.as_ref())
            .map(|t| t.partitions.len() as u32))
    }

    /// Note that `topic` cannot be read; true the first time since it last could (so it is
    /// reported once).
    pub fn topic_failed(&self, topic: &Arc<str>) -> bool {
        let mut topics = self.topics.borrow_mut();
        let state = topics.entry(Arc::clone(topic)).or_default();
        !std::mem::replace(&mut state.error_reported, true)
    }

    /// Note the partitions discovery found for `topic`: returns those not seen before, and
    /// whether this is the first time any were seen.
    pub fn topic_partitions(
        &self,
        topic: &Arc<str>,
        partitions: &BTreeSet<i32>,
    ) -> (Vec<i32>, bool) {
        let mut topics = self.topics.borrow_mut();
        let state = topics.entry(Arc::clone(topic)).or_default();
        state.error_reported = false;
        let known = state.partitions.get_or_insert_with(BTreeSet::new);
        let first_sight = known.is_empty();
        let new: Vec<i32> = partitions.difference(known).copied().collect();
        known.extend(new.iter().copied());
        (new, first_sight)
    }
}
