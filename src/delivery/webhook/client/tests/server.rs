//! A tiny HTTP/1.1 server on std threads for the client tests: it counts connections and
//! requests and answers in the way a test asks (over plain TCP or rustls).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::codec::http1::{Limits, RequestDecoder};

/// How the server answers each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply {
    /// 200 with a Content-Length body naming the request's number and path.
    KeepAlive,
    /// 200 with a chunked body "hello world", extension and trailer included.
    Chunked,
    /// 200 with `Connection: close`, then close.
    Close,
    /// Read the request, never answer.
    Silent,
    /// Answer like `KeepAlive`, then close the connection as if its idle timer ran out.
    CloseWhenIdle,
}

#[derive(Default)]
pub(super) struct Counters {
    pub accepted: AtomicUsize,
    pub requests: AtomicUsize,
    /// Connections the server closed after answering (`CloseWhenIdle`).
    pub closed: AtomicUsize,
}

pub(super) struct TestServer {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
}

impl TestServer {
    /// Plain HTTP on 127.0.0.1.
    pub(super) fn start(reply: Reply) -> TestServer {
        Self::start_with(reply, |tcp, reply, counters| serve(tcp, reply, &counters))
    }

    /// Accept on 127.0.0.1 and hand each connection to `handle` on its own thread. The threads
    /// live until the test process ends.
    pub(super) fn start_with(
        reply: Reply,
        handle: impl Fn(TcpStream, Reply, Arc<Counters>) + Send + Sync + Clone + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                c.accepted.fetch_add(1, Ordering::SeqCst);
                let (c, handle) = (c.clone(), handle.clone());
                std::thread::spawn(move || handle(tcp, reply, c));
            }
        });
        TestServer { addr, counters }
    }

    pub(super) fn accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    pub(super) fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    pub(super) fn closed(&self) -> usize {
        self.counters.closed.load(Ordering::SeqCst)
    }
}

/// Read requests off `stream` and answer each per `reply` until the client goes away.
pub(super) fn serve(mut stream: impl Read + Write, reply: Reply, counters: &Counters) {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        let request = match decoder.decode(&mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
            },
            Err(_) => return,
        };
        let n = counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = match reply {
            Reply::KeepAlive | Reply::CloseWhenIdle => {
                let body = format!("request {n} {} {}", request.target, request.body.len());
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            Reply::Chunked => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                               5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
                .to_owned(),
            Reply::Close => {
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_owned()
            }
            Reply::Silent => {
                // Hold the connection open, answering nothing, until the client drops it.
                while let Ok(n) = stream.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
        };
        if stream.write_all(answer.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
        match reply {
            Reply::Close => return,
            Reply::CloseWhenIdle => {
                // Let the client read the answer and park the connection first.
                std::thread::sleep(Duration::from_millis(50));
                drop(stream);
                counters.closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => {}
        }
    }
}
