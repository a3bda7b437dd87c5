//! Webhook delivery: pushing events to subscribers' HTTP endpoints.
// The delivery engine that calls the client is being written alongside; until it lands,
// nothing outside the tests uses the client. Remove this allow when it does.
#[allow(dead_code, unused_imports)]
pub mod client;
