//! What differs between the servers under test: the subscribe and publish requests. The event
//! payload is the same for all of them, so loss and latency are counted identically.

use std::io::Write;

use crate::body::Transport;
use crate::subs::WsOpen;
use crate::wsframe::{client_key, upgrade_request};

/// The server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    /// `GET|POST /topics/{t}/events`; WebSocket `GET /topics/{t}/ws` (`?mode=raw`).
    Sluicegate,
    /// nginx + nchan: `GET /sub/{t}` (EventSource or WebSocket), `POST /pub/{t}`.
    Nchan,
    /// Pushpin: `GET /topics/{t}/events` (WebSocket: `/topics/{t}/ws`, WebSocket-over-HTTP)
    /// through the proxy to a GRIP origin, publish with `POST /publish/` on the control port.
    Pushpin,
}

impl Server {
    /// The request that opens subscription `i` to `topic`, and for a WebSocket what its answer
    /// is checked against and how its frames are read.
    pub fn subscribe_request(
        self,
        host: &str,
        topic: &str,
        transport: Transport,
        i: usize,
    ) -> (Vec<u8>, Option<WsOpen>) {
        if transport != Transport::Sse {
            let path = match (self, transport) {
                (Server::Sluicegate, Transport::WsRaw) => format!("/topics/{topic}/ws?mode=raw"),
                (Server::Sluicegate | Server::Pushpin, _) => format!("/topics/{topic}/ws"),
                (Server::Nchan, _) => format!("/sub/{topic}"),
            };
            let key = client_key(i);
            let request = upgrade_request(host, &path, &key);
            // Only Sluicegate wraps events in an envelope; the others send the data alone.
            let envelope = self == Server::Sluicegate && transport == Transport::Ws;
            return (request, Some(WsOpen { key, envelope }));
        }
        let path = match self {
            Server::Sluicegate | Server::Pushpin => format!("/topics/{topic}/events"),
            Server::Nchan => format!("/sub/{topic}"),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
             Cache-Control: no-cache\r\n\r\n"
        );
        (request.into_bytes(), None)
    }

    /// Appends one keep-alive request publishing `data` (ASCII, no line breaks) to `topic`.
    pub fn publish_request(self, host: &str, topic: &str, data: &str, out: &mut Vec<u8>) {
        // Writes into a Vec cannot fail.
        let _ = match self {
            Server::Sluicegate => write!(
                out,
                "POST /topics/{topic}/events HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{data}",
                data.len()
            ),
            Server::Nchan => write!(
                out,
                "POST /pub/{topic} HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{data}",
                data.len()
            ),
            Server::Pushpin => {
                // The payload is digits, spaces and 'x', so it needs no JSON escaping. Both
                // formats go in every item: SSE streams take one, WebSockets the other.
                let body = format!(
                    "{{\"items\":[{{\"channel\":\"{topic}\",\"formats\":{{\"http-stream\":\
                     {{\"content\":\"event: message\\ndata: {data}\\n\\n\"}},\
                     \"ws-message\":{{\"content\":\"{data}\"}}}}}}]}}"
                );
                write!(
                    out,
                    "POST /publish/ HTTP/1.1\r\nHost: {host}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        };
    }
}

/// The event payload: sequence number, scheduled send time (ns since the run's start) and
/// padding up to `size` bytes.
pub fn payload(seq: u64, sched_ns: u64, size: usize, out: &mut String) {
    out.clear();
    out.push_str(&seq.to_string());
    out.push(' ');
    out.push_str(&sched_ns.to_string());
    out.push(' ');
    while out.len() < size {
        out.push('x');
    }
}

/// Reads `(seq, sched_ns)` back from a payload; `None` for anything else.
pub fn parse_payload(data: &str) -> Option<(u64, u64)> {
    let mut it = data.split(' ');
    let seq = it.next()?.parse().ok()?;
    let sched = it.next()?.parse().ok()?;
    Some((seq, sched))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_has_the_size() {
        let mut s = String::new();
        payload(42, 123_456_789, 100, &mut s);
        assert_eq!(s.len(), 100);
        assert_eq!(parse_payload(&s), Some((42, 123_456_789)));
        assert_eq!(parse_payload("hello"), None);
    }

    #[test]
    fn pushpin_publish_is_json_with_content_length() {
        let mut out = Vec::new();
        Server::Pushpin.publish_request("h", "t1", "1 2 xx", &mut out);
        let text = String::from_utf8(out).expect("utf8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["items"][0]["channel"], "t1");
        assert_eq!(
            v["items"][0]["formats"]["http-stream"]["content"],
            "event: message\ndata: 1 2 xx\n\n"
        );
        assert_eq!(v["items"][0]["formats"]["ws-message"]["content"], "1 2 xx");
    }

    #[test]
    fn websocket_subscriptions_per_server() {
        let (req, ws) = Server::Sluicegate.subscribe_request("h", "t", Transport::WsRaw, 3);
        let text = String::from_utf8(req).expect("utf8");
        assert!(text.starts_with("GET /topics/t/ws?mode=raw HTTP/1.1\r\n"));
        assert!(text.contains("Upgrade: websocket\r\n"));
        assert!(!ws.expect("ws").envelope);
        let (_, ws) = Server::Sluicegate.subscribe_request("h", "t", Transport::Ws, 3);
        assert!(ws.expect("ws").envelope);
        let (req, ws) = Server::Nchan.subscribe_request("h", "t", Transport::Ws, 3);
        assert!(req.starts_with(b"GET /sub/t HTTP/1.1"));
        assert!(!ws.expect("ws").envelope);
        let (_, ws) = Server::Nchan.subscribe_request("h", "t", Transport::Sse, 3);
        assert!(ws.is_none());
    }
}
