//! A Kafka-aware TCP proxy for fault tests: it forwards every request to the broker and, while
//! told to, swallows the broker's answers to Produce requests. The broker then writes the
//! records but the client never hears so: the "sent, no acknowledgement" case, forced
//! deterministically instead of hoping a kill lands between request and answer.
//!
//! Kafka frames are a 4-byte big-endian length and a payload; a request payload starts with
//! api_key (i16), api_version (i16), correlation_id (i32), an answer with the correlation id.
//! Std threads only: two per connection.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Kafka's api key of Produce.
const PRODUCE: i16 = 0;

#[derive(Default)]
struct Flags {
    swallow_produce_acks: AtomicBool,
    swallowed: AtomicU32,
    stop: AtomicBool,
}

/// A proxy listening on `127.0.0.1:port`, forwarding to `upstream`. Dropping it stops
/// accepting (open connections end when either side closes).
pub struct KafkaProxy {
    port: u16,
    flags: Arc<Flags>,
}

impl KafkaProxy {
    pub fn start(port: u16, upstream: String) -> KafkaProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the kafka proxy");
        let flags = Arc::new(Flags::default());
        let accept_flags = Arc::clone(&flags);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_flags.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                connect_pair(client, server, Arc::clone(&accept_flags));
            }
        });
        KafkaProxy { port, flags }
    }

    /// The address clients should use (also what the broker advertises).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// While true, answers to Produce requests sent from now on are dropped.
    pub fn swallow_produce_acks(&self, on: bool) {
        self.flags.swallow_produce_acks.store(on, Ordering::SeqCst);
    }

    /// How many Produce answers were dropped so far.
    pub fn swallowed(&self) -> u32 {
        self.flags.swallowed.load(Ordering::SeqCst)
    }
}

impl Drop for KafkaProxy {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn connect_pair(client: TcpStream, server: TcpStream, flags: Arc<Flags>) {
    let doomed: Arc<Mutex<HashSet<i32>>> = Arc::default();
    let (Ok(client_r), Ok(server_r)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up_flags = Arc::clone(&flags);
    let up_doomed = Arc::clone(&doomed);
    std::thread::spawn(move || {
        // Requests: note the correlation id of a Produce to swallow before forwarding it, so
        // its answer cannot arrive first.
        let _ = pump(client_r, &server, |frame| {
            let api_key = frame.get(0..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
            if api_key == Some(PRODUCE) && up_flags.swallow_produce_acks.load(Ordering::SeqCst) {
                if let Some(id) = correlation_id(frame, 4) {
                    up_doomed.lock().expect("proxy lock").insert(id);
                }
            }
            true
        });
        let _ = server.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        let _ = pump(server_r, &client, |frame| {
            let Some(id) = correlation_id(frame, 0) else {
                return true;
            };
            let swallow = doomed.lock().expect("proxy lock").remove(&id);
            if swallow {
                flags.swallowed.fetch_add(1, Ordering::SeqCst);
            }
            !swallow
        });
        let _ = client.shutdown(Shutdown::Both);
    });
}

fn correlation_id(frame: &[u8], at: usize) -> Option<i32> {
    let b = frame.get(at..at + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Copy length-prefixed frames from `from` to `to`, forwarding those `keep` says to, until
/// either side closes.
fn pump(
    mut from: TcpStream,
    mut to: &TcpStream,
    mut keep: impl FnMut(&[u8]) -> bool,
) -> io::Result<()> {
    loop {
        let mut len = [0u8; 4];
        from.read_exact(&mut len)?;
        let n = usize::try_from(i32::from_be_bytes(len).max(0)).unwrap_or(0);
        let mut frame = vec![0u8; n];
        from.read_exact(&mut frame)?;
        if keep(&frame) {
            to.write_all(&len)?;
            to.write_all(&frame)?;
        }
    }
}
