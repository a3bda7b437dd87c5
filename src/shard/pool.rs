//! Start one pinned glommio executor per shard, run them, and drain them on shutdown.
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::future::or;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

use super::broker_link::{self, BrokerLink, LinkSettings};
use super::context::{ShardContext, Shared};
use super::mesh::{build_mesh, Doorbell, MeshEndpoint};
use super::shutdown::GlobalShutdown;
use crate::broker::durable::recovery::Recovered;
use crate::broker::kafka::{check_bootstrap, spawn_plane, KafkaError};
use crate::broker::plane::BrokerPlane;
use crate::config::Config;
use crate::delivery::hooks::Plugins;
use crate::delivery::listener::accept_loop;
use crate::delivery::webhook::engine::{load_table, WebhookEngine};
use crate::delivery::webhook::model::is_state_topic;
use crate::delivery::webhook::table::Table;
use crate::policy::engine::Policy;
use crate::telemetry::ShardMetrics;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("shard {shard}: cannot listen on {addr}: {source}")]
    Bind {
        shard: usize,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("shard {shard}: cannot start its executor: {message}")]
    Executor { shard: usize, message: String },
    #[error("shard {0} stopped unexpectedly")]
    Crashed(usize),
    #[error("{0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    Storage(#[from] crate::broker::durable::StorageError),
    #[error("shard {shard}: {message}")]
    Webhooks { shard: usize, message: String },
    #[error("redis plane: {0}")]
    Redis(std::io::Error),
}

/// The epoch stamped into ids when events come from Kafka or Redis (broker mode): their
/// offsets outlive the process and are the same on every instance.
pub const KAFKA_EPOCH: u64 = 0;

/// A running gateway: its shared state and the doorbells that wake each shard.
pub struct Gateway {
    shared: Arc<Shared>,
    bells: Arc<[Doorbell]>,
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
    /// The durable log's directory, locked while the gateway runs.
    _data_dir: Option<crate::broker::durable::data_dir::DataDir>,
}

impl Gateway {
    /// Bind every shard's listener and start serving. Returns once all shards listen.
    pub fn start(config: Config) -> Result<Self, PoolError> {
        Self::start_with(config, Plugins::default())
    }

    /// [`Gateway::start`] with native hooks (plugins), which run before the configured HTTP
    /// hooks.
    pub fn start_with(config: Config, plugins: Plugins) -> Result<Self, PoolError> {
        let shards = config.effective_shards().max(1);
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpus: Vec<usize> = if config.server.cpus.is_empty() {
            (0..shards).map(|i| i % online).collect()
        } else {
            config.server.cpus.clone()
        };
        // Keys and ACLs first: a bad key file should stop the start before anything listens.
        let policy = Policy::from_config(&config, shards).map_err(PoolError::Policy)?;
        // Recovered before any shard starts: appends continue where the log ends.
        let storage = super::storage::open(&config)?;
        let (endpoints, bells) = build_mesh(shards, config.mesh.ring_capacity);
        // Kafka offsets outlive the process, so ids need no incarnation; the durable log's
        // epoch is its identity (kept in its directory); the memory broker's ids carry its
        // start time.
        let epoch = if config.kafka.enabled() || config.redis.is_broker() {
            KAFKA_EPOCH
        } else if let Some(s) = &storage {
            s.dir.identity().epoch
        } else {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        let mut planes: Vec<Option<BrokerPlane>> = Vec::with_capacity(shards);
        let mut kafka_state = None;
        if config.kafka.enabled() {
            // A broker that is down is an outage, not a configuration error: serve clients and
            // keep retrying (the plane logs when it connects). What the broker *says* (no such
            // topic) is a configuration error and stops the start.
            let timeout = Duration::from_millis(config.kafka.request_timeout_ms);
            match check_bootstrap(&config.kafka, timeout) {
                // With Kafka, the webhook subscriptions and their progress are kept in Kafka:
                // read them back before any shard starts.
                Ok(()) => kafka_state = Some(Arc::new(load_kafka_state(&config)?)),
                Err(e @ KafkaError::Unreachable { .. }) => {
                    tracing::error!("{e}; starting anyway and retrying in the background; webhook subscriptions are not loaded until a restart with Kafka up");
                }
                Err(e) => return Err(e.into()),
            }
            for shard in 0..shards {
                let cpu = cpus[shard % cpus.len()];
                let (plane, _thread) = spawn_plane(&config.kafka, shard, shards, Some(cpu))?;
                planes.push(Some(plane));
            }
        } else if config.redis.is_broker() {
            // An unreachable Redis is an outage, not a configuration error: the planes
            // retry, and /readyz says 503 until each has connected.
            for shard in 0..shards {
                let cpu = cpus[shard % cpus.len()];
                let (plane, _thread) = crate::broker::redis::spawn_broker_plane(
                    &config.redis,
                    shard,
                    shards,
                    Some(cpu),
                )
                .map_err(PoolError::Redis)?;
                planes.push(Some(plane));
            }
        } else {
            planes.resize_with(shards, || None);
        }
        let hooks_config = std::sync::RwLock::new((0, config.hooks.clone()));
        let shared = Arc::new(Shared {
            hooks_config,
            config,
            metrics: (0..shards).map(|_| ShardMetrics::default()).collect(),
            shutdown: GlobalShutdown::default(),
            epoch,
            policy,
            latency: (0..shards).map(|_| Default::default()).collect(),
            webhook_status: Default::default(),
            system_interest: Default::default(),
            plugins,
        });
        let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, PoolError>>();
        let mut handles = Vec::with_capacity(shards);
        for (endpoint, plane) in endpoints.into_iter().zip(planes) {
            let shard = endpoint.shard();
            let shared2 = shared.clone();
            let ready = ready_tx.clone();
            let state = kafka_state.clone();
            let restore = storage.as_ref().map(|s| Restore {
                root: s.dir.path().to_owned(),
                block_bytes: s.dir.block_bytes(),
                recovered: s.recovered.clone(),
            });
            let handle = LocalExecutorBuilder::new(Placement::Fixed(cpus[shard % cpus.len()]))
                .name(&format!("shard-{shard}"))
                .spawn(move || shard_main(shared2, endpoint, plane, restore, state, ready))
                .map_err(|e| PoolError::Executor {
                    shard,
                    message: e.to_string(),
                })?;
            handles.push(handle);
        }
        drop(ready_tx);
        let gateway = Self {
            shared,
            bells,
            handles,
            _data_dir: storage.map(|s| s.dir),
        };
        for _ in 0..shards {
            match ready_rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    gateway.request_shutdown();
                    gateway.join_quietly();
                    return Err(e);
                }
                Err(_) => {
                    gateway.request_shutdown();
                    return Err(PoolError::Crashed(usize::MAX));
                }
            }
        }
        Ok(gateway)
    }

    /// What a SIGHUP handler calls (from any thread).
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            shared: self.shared.clone(),
        }
    }

    /// Whether the gateway would answer `/readyz` with 200 (from any thread: systemd's
    /// readiness notification).
    pub fn readiness(&self) -> Readiness {
        Readiness {
            shared: self.shared.clone(),
        }
    }

    /// Ask every shard to drain and stop (safe from any thread, e.g. a signal handler thread).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
            bells: self.bells.clone(),
        }
    }

    fn request_shutdown(&self) {
        self.shutdown_handle().request();
    }

    fn join_quietly(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }

    /// Wait for every shard to finish (after a shutdown request).
    pub fn join(self) -> Result<(), PoolError> {
        let mut result = Ok(());
        for (shard, h) in self.handles.into_iter().enumerate() {
            if h.join().is_err() && result.is_ok() {
                result = Err(PoolError::Crashed(shard));
            }
        }
        result
    }
}

/// Reloads what can change without a restart (the JWT key files, webhook secrets), from any
/// thread.
#[derive(Clone)]
pub struct ReloadHandle {
    shared: Arc<Shared>,
}

impl ReloadHandle {
    /// Re-read the key and secret files (JWT keys, webhook receiver secrets); what was
    /// reloaded. On an error what is in use stays.
    pub fn reload(&self) -> Result<Vec<String>, String> {
        self.shared.policy.reload()
    }

    /// Take what can change without a restart from `config` (the config file read again on
    /// SIGHUP): API keys, anonymous access and ACLs, rate limits, sync hooks; then re-read the
    /// key and secret files. What changed, for the log line; on an error what is in use stays.
    /// Everything else in `config` needs a restart.
    pub fn reload_config(&self, config: &Config) -> Result<Vec<String>, String> {
        config.validate().map_err(|e| e.to_string())?;
        let mut changed = self.shared.policy.reload_from(config)?;
        let mut hooks = match self.shared.hooks_config.write() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        if hooks.1 != config.hooks {
            changed.push(format!(
                "hooks: {} publish, {} subscribe",
                config.hooks.publish.len(),
                config.hooks.subscribe.len()
            ));
            *hooks = (hooks.0 + 1, config.hooks.clone());
        }
        Ok(changed)
    }
}

/// Tells, from any thread, whether the gateway is ready.
#[derive(Clone)]
pub struct Readiness {
    shared: Arc<Shared>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        !self.shared.shutdown.is_requested() && self.shared.not_ready().is_none()
    }
}

/// Requests shutdown from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    bells: Arc<[Doorbell]>,
}

impl ShutdownHandle {
    pub fn request(&self) {
        self.shared.shutdown.request();
        for bell in self.bells.iter() {
            bell.ring();
        }
    }
}

/// The webhook state kept in Kafka (its topics created when missing).
fn load_kafka_state(config: &Config) -> Result<Vec<bytes::Bytes>, KafkaError> {
    let (state, progress) = config.webhooks.kafka_state_topics();
    crate::broker::kafka::state_topics::load(&config.kafka, &[&state, &progress])
}

/// What a shard takes over from the recovered durable log.
struct Restore {
    root: std::path::PathBuf,
    block_bytes: u64,
    recovered: Arc<Recovered>,
}

async fn shard_main(
    shared: Arc<Shared>,
    endpoint: MeshEndpoint,
    plane: Option<BrokerPlane>,
    restore: Option<Restore>,
    kafka_state: Option<Arc<Vec<bytes::Bytes>>>,
    ready: mpsc::Sender<Result<usize, PoolError>>,
) {
    let shard = endpoint.shard();
    let shards = endpoint.shards();
    let addr = shared.config.server.listen;
    let link = plane.map(|p| {
        let settings = if shared.config.kafka.enabled() {
            LinkSettings::kafka(&shared.config.kafka)
        } else {
            LinkSettings::redis(&shared.config.redis)
        };
        BrokerLink::new(p, settings)
    });
    let durable = restore.as_ref().map(|r| {
        super::storage::durable_for_shard(
            &shared.config,
            &r.root,
            r.block_bytes,
            shard,
            shards,
            &r.recovered,
        )
    });
    let ctx = Rc::new(ShardContext::new(shared, endpoint, link, durable));
    if ctx.config().redis.is_sink() {
        let config = ctx.config();
        let cpu = if config.server.cpus.is_empty() {
            let online = std::thread::available_parallelism().map_or(1, |n| n.get());
            shard % online
        } else {
            config.server.cpus[shard % config.server.cpus.len()]
        };
        match super::redis_sink::RedisSink::start(&config.redis, shard, Some(cpu)) {
            Ok(sink) => {
                let _ = ctx.redis_sink.set(sink);
                glommio::spawn_local(super::redis_sink::report_metrics(ctx.clone())).detach();
            }
            Err(e) => {
                let _ = ready.send(Err(PoolError::Redis(e)));
                return;
            }
        }
    }
    // With Kafka the webhook state comes from Kafka (read at start), whatever the data
    // directory still holds of it.
    let shared_kafka = ctx.config().kafka.enabled();
    let mut webhook_table = match &kafka_state {
        Some(values) => load_table(values.iter().cloned()),
        None => Table::default(),
    };
    if let Some(r) = restore {
        crate::broker::durable::data_dir::probe_direct_io(&r.root).await;
        ctx.restore(&r.recovered);
        if !shared_kafka {
            webhook_table = load_table(
                r.recovered
                    .partitions
                    .iter()
                    .filter(|p| is_state_topic(&p.key.topic))
                    .flat_map(|p| p.tail.iter().map(|record| record.data.clone())),
            );
        }
        // The recovered tails are in the histories now: let go of this shard's reference.
        drop(r);
        glommio::spawn_local(super::commit::run(ctx.clone())).detach();
        glommio::spawn_local(super::commit::retention_loop(ctx.clone())).detach();
    }
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            let source = std::io::Error::other(e.to_string());
            let _ = ready.send(Err(PoolError::Bind {
                shard,
                addr,
                source,
            }));
            return;
        }
    };
    let hooks_config = match ctx.shared.hooks_config.read() {
        Ok(c) => c.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    match ctx.build_hooks(&hooks_config.1) {
        Ok(hooks) => ctx.set_hooks(hooks_config.0, hooks),
        Err(message) => {
            let _ = ready.send(Err(PoolError::Webhooks { shard, message }));
            return;
        }
    }
    let engine = WebhookEngine::new(
        ctx.config(),
        shard,
        shards,
        ctx.shared.webhook_status.clone(),
        webhook_table,
    );
    match engine {
        Ok(engine) => {
            let engine = Rc::new(engine);
            let _ = ctx.webhooks.set(engine.clone());
            engine.start(&ctx);
        }
        Err(message) => {
            let _ = ready.send(Err(PoolError::Webhooks { shard, message }));
            return;
        }
    }
    glommio::spawn_local(mesh_loop(ctx.clone())).detach();
    glommio::spawn_local(heartbeat_loop(ctx.clone())).detach();
    glommio::spawn_local(super::system_events::run(ctx.clone())).detach();
    let writer_ctx = ctx.clone();
    glommio::spawn_local(async move {
        let (metrics, latency) = (writer_ctx.metrics(), writer_ctx.latency());
        writer_ctx.writer.run(metrics, latency).await
    })
    .detach();
    if ctx.broker_link.is_some() {
        glommio::spawn_local(broker_link::run(ctx.clone())).detach();
    }
    if ctx.shared.policy.has_shared_limits() {
        glommio::spawn_local(rebalance_loop(ctx.clone())).detach();
    }
    let _ = ready.send(Ok(shard));
    drop(ready);
    accept_loop(ctx.clone(), listener).await;
    drain(&ctx).await;
    if let Some(sink) = ctx.redis_sink.get() {
        let within = Duration::from_millis(ctx.config().server.drain_timeout_ms);
        sink.finish(within).await;
    }
}

/// Move this shard's shares of the cross-shard rate limits toward its demand, every
/// `limits.rebalance_ms`, until shutdown.
async fn rebalance_loop(ctx: Rc<ShardContext>) {
    let every = ctx.shared.policy.rebalance_interval();
    while !ctx.shutdown.is_triggered() {
        glommio::timer::sleep(every).await;
        ctx.policy.rebalance(std::time::Instant::now());
    }
}

/// Drain inbound rings into this shard; sleep on the doorbell when there is nothing to do.
async fn mesh_loop(ctx: Rc<ShardContext>) {
    let bells = ctx.mesh.borrow().bells();
    let bell = &bells[ctx.id];
    let mut batch = Vec::with_capacity(1024);
    loop {
        bell.reset();
        if ctx.shared.shutdown.is_requested() && !ctx.shutdown.is_triggered() {
            // Publishes waiting for the disk are acknowledged and fanned out before the fence:
            // their events are ahead of it in every ring (appends are refused from now on).
            if let Some(log) = &ctx.durable {
                // Bounded: a disk that hangs must not hold the shutdown forever.
                let limit = Duration::from_millis(ctx.config().server.drain_timeout_ms);
                or(super::commit::idle(log), glommio::timer::sleep(limit)).await;
            }
            ctx.begin_shutdown();
        }
        let n = ctx.mesh.borrow_mut().drain_into(&mut batch, 1024);
        for msg in batch.drain(..) {
            ctx.on_mesh_message(msg);
        }
        let parked = {
            let mut mesh = ctx.mesh.borrow_mut();
            let parked = mesh.flush_backlog();
            mesh.ring_pending();
            ShardMetrics::add(&ctx.metrics().mesh_parked_total, mesh.take_parked());
            parked
        };
        if n > 0 {
            // Let the sessions just woken write what was queued before draining more: they
            // run first, and each writes everything queued so far in one system call.
            futures_lite::future::yield_now().await;
        } else if parked {
            glommio::timer::sleep(Duration::from_micros(200)).await;
        } else {
            bell.wait().await;
        }
    }
}

/// Queue a heartbeat comment, every `sse.heartbeat_ms`, to each subscriber that sent nothing in
/// the last interval.
async fn heartbeat_loop(ctx: Rc<ShardContext>) {
    let every = Duration::from_millis(ctx.config().sse.heartbeat_ms);
    loop {
        glommio::timer::sleep(every).await;
        if ctx.shutdown.is_triggered() {
            return;
        }
        // Only streams that sent nothing for a whole interval get one: a busy stream needs no
        // keep-alive, and skipping it avoids a burst of one write per subscriber per interval.
        for sub in ctx.subscribers.borrow().subscribers() {
            if let Some(beat) = sub.heartbeat() {
                if sub.idle_since_last_beat() {
                    sub.push_control(beat);
                }
            }
        }
    }
}

/// Wait until no other shard can send an event for an acknowledged publish, tell every SSE
/// client to reconnect elsewhere once it has what it is owed, then wait for connections to close.
async fn drain(ctx: &ShardContext) {
    let deadline = Instant::now() + Duration::from_millis(ctx.config().server.drain_timeout_ms);
    let barrier_passed = or(
        async {
            ctx.drain_barrier.wait().await;
            true
        },
        async {
            glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
            false
        },
    )
    .await;
    if !barrier_passed {
        tracing::warn!(
            shard = ctx.id,
            "drain: not every shard fenced within server.drain_timeout_ms; closing streams anyway"
        );
    }
    ctx.streams_draining.set(true);
    let retry = ctx.config().sse.retry_ms;
    for sub in ctx.subscribers.borrow().subscribers() {
        sub.drain(retry);
    }
    while ctx.open_connections.get() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}
