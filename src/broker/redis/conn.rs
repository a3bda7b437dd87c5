//! Connecting to Redis with fred: a client per use (one for commands, one for the blocking
//! `XREAD` that would hold up anything queued behind it), connected with our backoff and then
//! kept up by fred's own reconnect policy. Which failures are the transport's (retry, the
//! outcome of a write unknown) and which are Redis's answer is decided here.
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::prelude::{Builder, Client, Error, ErrorKind, ReconnectPolicy};

use fred::types::config::Config as FredConfig;

use crate::broker::plane::backoff::Backoff;

/// How to reach Redis, from `[redis]`.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    pub url: String,
    pub timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl ConnSettings {
    pub fn from_config(config: &crate::config::RedisConfig) -> Self {
        Self {
            url: config.url.clone(),
            timeout: Duration::from_millis(config.request_timeout_ms),
            backoff_initial: Duration::from_millis(config.backoff_initial_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
        }
    }

    pub fn backoff(&self, seed: u64) -> Backoff {
        Backoff::new(self.backoff_initial, self.backoff_max, seed)
    }
}

/// A new client, not connected. `extra_timeout` is added to each command's deadline (a
/// blocking `XREAD` waits up to its `BLOCK` on purpose).
fn build(settings: &ConnSettings, extra_timeout: Duration) -> Result<Client, Error> {
    let config = FredConfig::from_url(&settings.url)?;
    let min = u32::try_from(settings.backoff_initial.as_millis()).unwrap_or(u32::MAX);
    let max = u32::try_from(settings.backoff_max.as_millis()).unwrap_or(u32::MAX);
    let timeout = settings.timeout;
    Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
            // A command cut off by a lost connection fails instead of being sent again on the
            // next one: whether to repeat a write is the caller's decision (it knows whether
            // the publisher holds an idempotency key).
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| p.default_command_timeout = timeout + extra_timeout)
        // After the first connection, fred reconnects by itself, forever, with backoff.
        .set_policy(ReconnectPolicy::new_exponential(
            0,
            min.max(1),
            max.max(1),
            2,
        ))
        .build()
}

/// One connection attempt, bounded by the request timeout.
pub async fn try_connect(
    settings: &ConnSettings,
    extra_timeout: Duration,
) -> Result<Client, String> {
    let client = build(settings, extra_timeout).map_err(|e| describe(&e))?;
    match tokio::time::timeout(settings.timeout, client.init()).await {
        Ok(Ok(_task)) => Ok(client),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => {
            let _ = client.quit().await;
            Err("redis: connecting timed out".to_owned())
        }
    }
}

/// True when the failure is the connection's (lost, refused, timed out), not Redis's answer.
pub fn is_transport(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Backpressure
    )
}

/// The error as a log line and a client-facing reason.
pub fn describe(err: &Error) -> String {
    format!("redis: {err}")
}

/// Send a pipeline and collect each command's answer, with one socket write per batch.
///
/// fred (10.1) flushes the socket after every command of a pipeline unless another command
/// waits behind it: the router takes the pipeline off its queue, then finds the queue empty at
/// each command. That is one `write` system call per command (half of the sink thread's time at
/// a few hundred entries per batch, and as many reads for Redis). A PING queued right behind the
/// pipeline makes fred feed the commands and flush every `max_feed_count` (200) of them and at
/// the PING. Its answer only says the connection worked; the commands' answers decide.
pub async fn send_pipeline(
    client: &Client,
    pipeline: &fred::clients::Pipeline<Client>,
) -> Vec<Result<fred::types::Value, Error>> {
    let (answers, _) = futures_lite::future::zip(
        pipeline.try_all::<fred::types::Value>(),
        client.ping::<fred::types::Value>(None),
    )
    .await;
    answers
}
