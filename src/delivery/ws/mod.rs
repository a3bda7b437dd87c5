//! WebSocket (RFC 6455): the upgrade, how events and notices are framed (JSON envelopes or raw
//! data, each encoded once per event and shared by every WebSocket subscriber), the client's
//! side (pings, pongs, close, protocol errors) and its requests (publish, subscribe,
//! unsubscribe). The session is the shared `delivery::session`; the wire format is `codec::ws`.
pub mod framing;
pub mod ops;
pub mod peer;
pub mod subscriptions;
pub mod upgrade;
