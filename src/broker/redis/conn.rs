//! Connecting to Redis with fred: a client per use (one for commands, one for the blocking
//! `XREAD` that would hold up anything queued behind it), connected with our backoff. fred's own
//! reconnect policy is off on purpose: while it reconnects, fred keeps commands that already
//! timed out for their caller (a pipeline's timeout does not mark its commands) and writes them
//! once connected, so a write we answered "failed" (and retry, or answered 504) would land later,
//! again. Instead a client that failed is dropped and a new one made, so nothing given up on is
//! ever written. Which failures are the transport's, which are Redis saying "not now", and which
//! refuse the command itself is decided here.
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::prelude::{Builder, Client, Error, ErrorKind};

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

/// What a failed command tells its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The connection failed or timed out after the command may have been sent: its outcome is
    /// unknown. Drop the client.
    Transport,
    /// Redis (or fred, before sending) said "not now": loading, out of memory, a read-only
    /// replica, busy, not authenticated, no route. Nothing was written; retrying later may work.
    NotNow,
    /// Redis refused this command itself (wrong key type, bad argument, an id below the
    /// stream's top): retrying the same command cannot work.
    Refused,
}

/// Sort a fred error. Redis's error replies keep their prefix in `details`: only `ERR ...` and
/// `WRONGTYPE ...` are about the command; `LOADING`, `OOM`, `READONLY`, `BUSY`, `MASTERDOWN`,
/// `TRYAGAIN`, `NOAUTH` are about the server's state.
pub fn sort(err: &Error) -> Failure {
    match err.kind() {
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled => Failure::Transport,
        ErrorKind::InvalidArgument | ErrorKind::InvalidCommand => Failure::Refused,
        _ if err.details().starts_with("ERR ") || err.details().starts_with("WRONGTYPE") => {
            Failure::Refused
        }
        _ => Failure::NotNow,
    }
}

/// `MAXLEN ~ n` for `XADD`, or no trimming for 0.
pub fn cap(config: &crate::config::RedisConfig) -> fred::types::streams::XCap {
    let n = i64::try_from(config.maxlen).unwrap_or(i64::MAX);
    if n == 0 {
        return None::<()>.into();
    }
    ("MAXLEN", "~", n)
        .try_into()
        .unwrap_or_else(|_| None::<()>.into())
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
    commands: usize,
) -> Vec<Result<fred::types::Value, Error>> {
    let (mut answers, _) = futures_lite::future::zip(
        pipeline.try_all::<fred::types::Value>(),
        client.ping::<fred::types::Value>(None),
    )
    .await;
    // When fred fails the pipeline as a whole (a timeout, no connection), it answers with one
    // error however many commands there were: that error is every command's.
    if answers.len() == 1 && commands > 1 {
        if let Some(Err(e)) = answers.first() {
            let e = e.clone();
            answers = (0..commands).map(|_| Err(e.clone())).collect();
        }
    }
    answers
}
