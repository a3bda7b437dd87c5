//! Building rskafka clients with our timeouts, sorting their errors into "the broker is
//! unreachable" and "the broker said no", and the start-up check.

use std::time::Duration;

use rskafka::client::error::{Error as RsError, ProtocolError};
use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;

use crate::config::KafkaConfig;

use super::KafkaError;

/// rskafka retries internally (leader moves, reconnects) until this deadline; past it the error
/// comes to us, so the plane notices an outage and runs its own, logged backoff.
const INNER_RETRY_DEADLINE: Duration = Duration::from_secs(1);

fn inner_backoff() -> BackoffConfig {
    BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        base: 2.0,
        deadline: Some(INNER_RETRY_DEADLINE),
    }
}

/// Connect to the bootstrap brokers and load the cluster metadata, within `timeout`.
pub(crate) async fn build_client(
    bootstrap: &[String],
    client_id: &str,
    timeout: Duration,
) -> Result<Client, String> {
    let builder = ClientBuilder::new(bootstrap.to_vec())
        .client_id(client_id)
        .backoff_config(inner_backoff());
    match tokio::time::timeout(timeout, builder.build()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(err)) => Err(describe(&err)),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// True when the error means the connection (not the request) failed: the plane then reports
/// the broker down and reconnects. A broker's error code answers a request; it is not an outage.
pub(crate) fn is_transport(err: &RsError) -> bool {
    !matches!(
        err,
        RsError::ServerError { .. } | RsError::InvalidResponse(_)
    )
}

/// The Kafka error code of a broker answer, if it was one.
pub(crate) fn protocol_error(err: &RsError) -> Option<&ProtocolError> {
    match err {
        RsError::ServerError { protocol_error, .. } => Some(protocol_error),
        _ => None,
    }
}

/// A one-line reason. rskafka's `ServerError` display includes the whole request context;
/// the protocol error and message are what an operator needs.
pub(crate) fn describe(err: &RsError) -> String {
    match err {
        RsError::ServerError {
            protocol_error,
            error_message,
            ..
        } => match error_message {
            Some(message) => format!("broker error {protocol_error}: {message}"),
            None => format!("broker error {protocol_error}"),
        },
        other => other.to_string(),
    }
}

/// Check, before the gateway starts serving, that a bootstrap broker answers within `timeout`
/// and that every configured topic exists (unless `create_topics`, in which case the planes
/// create them). Builds a short-lived runtime of its own; call it from `main`, not from a
/// runtime thread.
pub fn check_bootstrap(config: &KafkaConfig, timeout: Duration) -> Result<(), KafkaError> {
    if !config.enabled() {
        return Err(KafkaError::Config(
            "kafka.bootstrap: no bootstrap brokers configured".to_owned(),
        ));
    }
    with_client(config, timeout, |client| async move {
        let unreachable = |reason| unreachable(config, timeout, reason);
        let topics = match tokio::time::timeout(timeout, client.list_topics()).await {
            Ok(Ok(topics)) => topics,
            Ok(Err(err)) => return Err(unreachable(describe(&err))),
            Err(_) => return Err(unreachable("metadata request timed out".to_owned())),
        };
        if config.create_topics {
            return Ok(());
        }
        for wanted in &config.topics {
            if !topics.iter().any(|t| &t.name == wanted) {
                return Err(KafkaError::UnknownTopic {
                    topic: wanted.clone(),
                });
            }
        }
        Ok(())
    })
}

/// The brokers of `config` did not answer within `timeout`: why.
pub(crate) fn unreachable(config: &KafkaConfig, timeout: Duration, reason: String) -> KafkaError {
    KafkaError::Unreachable {
        brokers: config.bootstrap.join(", "),
        timeout_ms: timeout.as_millis() as u64,
        reason,
    }
}

/// Run `work` with a client of the bootstrap brokers, on a current-thread runtime of the
/// calling thread (start-up, before any shard runs).
pub(crate) fn with_client<T, F, Fut>(
    config: &KafkaConfig,
    timeout: Duration,
    work: F,
) -> Result<T, KafkaError>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, KafkaError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = build_client(&config.bootstrap, &config.client_id, timeout)
            .await
            .map_err(|reason| unreachable(config, timeout, reason))?;
        work(client).await
    })
}
