//! One client connection: read requests (pipelined, keep-alive), answer them, or hand the
//! connection over to an SSE session.
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::cors::Cors;
use super::policy_gate::authenticate;
use super::response::{sse_head, write_bad_request, Response};
use super::routes::{route, Route};
use super::session::{self, SessionEnd, SilentPeer};
use super::sse::SSE;
use super::subscribe::Topics;
use super::subscriber::CutOffReason;
use super::subscriber::Subscriber;
use super::ws::{self, peer::WsPeer};
use super::{hook_gate, webhook, webhook_receiver};
use super::{publish, subscribe};
use crate::codec::http1::{write_continue, HttpError, Limits, Method, Request, RequestDecoder};
use crate::policy::principal::Principal;
use crate::shard::context::ShardContext;
use crate::telemetry::system_events::SystemTopic;
use crate::telemetry::{render, ShardMetrics};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;

enum ReadOutcome {
    Data,
    Eof,
    TimedOut,
    ShuttingDown,
}

/// Read more bytes into `buf`, giving up at `deadline` or (when idle) at shutdown.
async fn read_more(
    ctx: &ShardContext,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    deadline: Instant,
    idle: bool,
) -> ReadOutcome {
    let len = buf.len();
    buf.resize(len + READ_CHUNK, 0);
    let read = async {
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => (ReadOutcome::Eof, 0),
            Ok(n) => (ReadOutcome::Data, n),
        }
    };
    let timeout = async {
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
        (ReadOutcome::TimedOut, 0)
    };
    let shutdown = async {
        if idle {
            ctx.shutdown.wait().await;
        } else {
            std::future::pending::<()>().await;
        }
        (ReadOutcome::ShuttingDown, 0)
    };
    let (outcome, n) = or(read, or(timeout, shutdown)).await;
    buf.truncate(len + n);
    outcome
}

async fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok()
}

/// How the request loop ended.
pub enum Served {
    /// The connection is closed (or about to be, when this is dropped).
    Closed,
    /// The connection became an SSE stream: run [`stream_events`] on it.
    Stream(TcpStream, OpenStream),
}

/// A subscription accepted on a connection, ready to stream.
pub struct OpenStream {
    pub sub: Rc<Subscriber>,
    /// The response head (SSE: 200 with the request's CORS answer; WebSocket: 101).
    pub head: Vec<u8>,
    /// When the credential it was opened with expires (Unix seconds): the stream ends then.
    pub expires_at: Option<u64>,
    /// What handles the client's side of the stream.
    pub peer: PeerKind,
    /// Who opened it (the principal's name), for `gateway.subscriber.*`.
    pub principal: Arc<str>,
}

/// The client's side of a stream, by transport.
pub enum PeerKind {
    /// SSE: the client sends nothing more.
    Sse,
    /// WebSocket: frames to decode, pings, requests.
    Ws(Box<WsPeer>),
}

/// Serve one accepted connection's requests until it closes or becomes an SSE stream.
pub async fn serve(ctx: Rc<ShardContext>, mut stream: TcpStream) -> Served {
    let _ = stream.set_nodelay(true);
    let client = stream
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let cfg = &ctx.config().http;
    let limits = Limits {
        max_head_bytes: cfg.max_head_bytes,
        max_headers: cfg.max_headers,
        max_uri_bytes: cfg.max_uri_bytes,
        max_body_bytes: cfg.max_body_bytes,
    };
    let idle_timeout = Duration::from_millis(cfg.idle_timeout_ms);
    let request_timeout = Duration::from_millis(cfg.header_timeout_ms);
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    // Set when the first byte of a request arrives: the whole request must be in by then.
    let mut request_deadline: Option<Instant> = None;
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(req)) => {
                request_deadline = None;
                let keep_alive = req.keep_alive && !ctx.shutdown.is_triggered();
                match handle(&ctx, &req, client).await {
                    Handled::Respond(mut resp) => {
                        if req.method == Method::Head {
                            resp = resp.for_head();
                        }
                        if resp.status >= 400 && resp.status < 500 {
                            ShardMetrics::add(&ctx.metrics().http_client_errors_total, 1);
                        }
                        out.clear();
                        resp.write(
                            &mut out,
                            ctx.id,
                            Cors::for_request(&ctx.config().http, &req),
                            keep_alive,
                        );
                        if !write_all(&mut stream, &out).await || !keep_alive {
                            return Served::Closed;
                        }
                    }
                    Handled::Stream(open) => {
                        // The stream's session runs as a task of its own and this one ends, so a
                        // long-lived stream does not keep the request loop's state (decoder,
                        // buffers, this future's larger frame) alive: per-connection memory.
                        return Served::Stream(stream, open);
                    }
                }
                continue;
            }
            Ok(None) => {
                if decoder.take_continue() {
                    out.clear();
                    write_continue(&mut out);
                    if !write_all(&mut stream, &out).await {
                        return Served::Closed;
                    }
                }
            }
            Err(err) => {
                reject(&ctx, &mut stream, &err).await;
                return Served::Closed;
            }
        }
        let idle = buf.is_empty();
        let deadline = if idle {
            Instant::now() + idle_timeout
        } else {
            *request_deadline.get_or_insert_with(|| Instant::now() + request_timeout)
        };
        match read_more(&ctx, &mut stream, &mut buf, deadline, idle).await {
            ReadOutcome::Data => {
                if request_deadline.is_none() {
                    request_deadline = Some(Instant::now() + request_timeout);
                }
            }
            ReadOutcome::Eof | ReadOutcome::ShuttingDown => return Served::Closed,
            ReadOutcome::TimedOut => {
                if !idle {
                    ShardMetrics::add(&ctx.metrics().http_client_errors_total, 1);
                    out.clear();
                    Response::text(408, "request not received in time")
                        .write(&mut out, ctx.id, None, false);
                    let _ = write_all(&mut stream, &out).await;
                }
                return Served::Closed;
            }
        }
    }
}

async fn reject(ctx: &ShardContext, stream: &mut TcpStream, err: &HttpError) {
    ShardMetrics::add(&ctx.metrics().http_client_errors_total, 1);
    let mut out = Vec::new();
    write_bad_request(&mut out, err);
    if write_all(stream, &out).await {
        linger(stream).await;
    }
}

/// Close gently after an error answer sent while the client may still be sending (a body over
/// the limit, say): closing with unread bytes makes the kernel send a reset, which can destroy
/// the answer before the client reads it. So: half-close, then read and discard for a moment.
pub(super) async fn linger(stream: &mut TcpStream) {
    const LINGER: Duration = Duration::from_millis(500);
    const MAX_DISCARD: usize = 1 << 20;
    if stream.shutdown(std::net::Shutdown::Write).await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut discarded = 0;
    let mut scratch = vec![0u8; READ_CHUNK];
    while discarded < MAX_DISCARD {
        let read = async { stream.read(&mut scratch).await.unwrap_or(0) };
        let timeout = async {
            glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
            0
        };
        match or(read, timeout).await {
            0 => return,
            n => discarded += n,
        }
    }
}

enum Handled {
    Respond(Response),
    /// A subscription to stream.
    Stream(OpenStream),
}

async fn handle(ctx: &Rc<ShardContext>, req: &Request, client: IpAddr) -> Handled {
    let r = route(req.path());
    if r == Route::NotFound {
        return Handled::Respond(Response::text(
            404,
            format!("no such endpoint: {}", req.path()),
        ));
    }
    if !r.allows(req.method) {
        return Handled::Respond(
            Response::text(
                405,
                format!("method not allowed here; allowed: {}", r.allowed()),
            )
            .with_header("allow", r.allowed()),
        );
    }
    if req.method == Method::Options {
        return Handled::Respond(preflight(ctx, req, &r));
    }
    let resp = match r {
        Route::Health => Response::text(200, "ok"),
        Route::Ready => {
            if ctx.shutdown.is_triggered() {
                Response::text(503, "draining")
            } else if let Some(why) = ctx.shared.not_ready() {
                Response::text(503, why)
            } else {
                Response::text(200, "ready")
            }
        }
        Route::Metrics => Response::new(200, "text/plain; version=0.0.4", {
            let mut text = render(&ctx.shared.metrics);
            crate::telemetry::latency::render(&ctx.shared.latency, &mut text);
            text
        }),
        Route::TopicEvents(segment) if req.method == Method::Post => match authenticate(ctx, req) {
            Ok(principal) => publish::handle(ctx, req, segment, &principal, client).await,
            Err(refused) => refused,
        },
        Route::TopicEvents(segment) => {
            return subscribe_or_respond(ctx, req, Some(segment), client).await
        }
        Route::MultiEvents => return subscribe_or_respond(ctx, req, None, client).await,
        Route::TopicWs(segment) => {
            return upgrade_or_respond(ctx, req, Some(segment), client).await
        }
        Route::Ws => return upgrade_or_respond(ctx, req, None, client).await,
        Route::WebhookReceiver => webhook_receiver::handle(ctx, req, client).await,
        Route::Webhooks(rest) => match webhook::api::Target::parse(rest) {
            Some(target) => webhook::api::handle(ctx, req, target).await,
            None => Response::text(404, format!("no such endpoint: {}", req.path())),
        },
        Route::Hub => webhook::hub::handle(ctx, req).await,
        Route::NotFound => Response::text(404, "no such endpoint"),
    };
    Handled::Respond(resp)
}

/// Every shard knows the partitions of every configured Kafka topic (a client may land on any).
/// A new stream needs a gateway that is not draining and a credential: its principal, or
/// the answer that refuses it.
fn stream_principal(ctx: &ShardContext, req: &Request) -> Result<Arc<Principal>, Response> {
    if ctx.shutdown.is_triggered() {
        return Err(Response::text(503, "gateway is shutting down").with_header("retry-after", "1"));
    }
    authenticate(ctx, req)
}

async fn subscribe_or_respond(
    ctx: &ShardContext,
    req: &Request,
    segment: Option<&str>,
    client: IpAddr,
) -> Handled {
    let principal = match stream_principal(ctx, req) {
        Ok(p) => p,
        Err(refused) => return Handled::Respond(refused),
    };
    if let Err(refused) = subscribe::check_accept(req) {
        return Handled::Respond(refused);
    }
    let sub = match subscribe::open(ctx, req, segment, &principal, &SSE, Topics::Required) {
        Ok(sub) => sub,
        Err(resp) => return Handled::Respond(resp),
    };
    let topics = sub.topics();
    if let Err(refused) = hook_gate::subscribe(ctx, &principal, client, &topics, "sse").await {
        return Handled::Respond(refused);
    }
    Handled::Stream(OpenStream {
        sub,
        head: sse_head(ctx.id, Cors::for_request(&ctx.config().http, req)),
        expires_at: principal.expires_at,
        peer: PeerKind::Sse,
        principal: principal.name.clone(),
    })
}

async fn upgrade_or_respond(
    ctx: &Rc<ShardContext>,
    req: &Request,
    segment: Option<&str>,
    client: IpAddr,
) -> Handled {
    let principal = match stream_principal(ctx, req) {
        Ok(p) => p,
        Err(refused) => return Handled::Respond(refused),
    };
    match ws::upgrade::open(ctx, req, segment, principal.clone(), client) {
        Ok(open) => {
            // Plain `/ws` may open with no topic: its subscribe messages ask the hooks.
            let topics = open.sub.topics();
            if !topics.is_empty() {
                let asked = hook_gate::subscribe(ctx, &principal, client, &topics, "ws").await;
                if let Err(refused) = asked {
                    return Handled::Respond(refused);
                }
            }
            Handled::Stream(open)
        }
        Err(resp) => Handled::Respond(resp),
    }
}

fn preflight(ctx: &ShardContext, req: &Request, r: &Route<'_>) -> Response {
    if Cors::for_request(&ctx.config().http, req).is_none() {
        return Response::text(204, "").with_header("allow", r.allowed());
    }
    Response::new(204, "text/plain", Vec::new())
        .with_header("access-control-allow-methods", r.allowed())
        .with_header(
            "access-control-allow-headers",
            "content-type, last-event-id, authorization, sluicegate-event, sluicegate-id, sluicegate-key",
        )
        .with_header("access-control-max-age", "600")
}

/// Write the SSE head, register the subscriber, run the session, unregister.
pub async fn stream_events(ctx: &Rc<ShardContext>, mut stream: TcpStream, open: OpenStream) {
    let stream = &mut stream;
    let OpenStream {
        sub,
        head,
        expires_at,
        peer,
        principal,
    } = open;
    if !write_all(stream, &head).await {
        return;
    }
    ctx.subscribers.borrow_mut().add(sub.clone());
    let m = ctx.metrics();
    let (gauge, transport) = match peer {
        PeerKind::Sse => (&m.sse_subscribers, "sse"),
        PeerKind::Ws(_) => (&m.ws_connections, "ws"),
    };
    let describe = |sub: &Subscriber| {
        serde_json::json!({
            "subscriber": sub.id,
            "shard": ctx.id,
            "transport": transport,
            "topics": sub.topics(),
            "principal": &*principal,
        })
    };
    ctx.emit(SystemTopic::SubscriberConnected, || describe(&sub));
    ShardMetrics::add(gauge, 1);
    if ctx.streams_draining.get() {
        sub.drain(ctx.config().sse.retry_ms);
    }
    let expires_at = expires_at.map(instant_of_unix);
    let end = match peer {
        PeerKind::Sse => {
            session::run(ctx, stream, &sub, expires_at, &mut SilentPeer::default()).await
        }
        PeerKind::Ws(mut ws) => session::run(ctx, stream, &sub, expires_at, &mut *ws).await,
    };
    ctx.emit(SystemTopic::SubscriberDisconnected, || {
        let mut event = describe(&sub);
        event["reason"] = serde_json::json!(end_reason(&end));
        event
    });
    sub.mark_finished();
    ctx.subscribers.borrow_mut().remove(&sub);
    ShardMetrics::sub(gauge, 1);
    ShardMetrics::add(&m.egress_events_dropped_total, sub.take_dropped_count());
    if let SessionEnd::CutOff(why) = end {
        let counter = match why {
            CutOffReason::TooSlow => &m.slow_consumer_disconnects_total,
            CutOffReason::TokenExpired => &m.token_expired_closes_total,
            CutOffReason::EgressLimit => &m.egress_disconnects_total,
            CutOffReason::Protocol(..) => &m.ws_protocol_closes_total,
        };
        ShardMetrics::add(counter, 1);
        tracing::debug!(
            shard = ctx.id,
            subscriber = sub.id,
            ?why,
            "subscriber cut off"
        );
    }
}

/// Why a stream ended, as `gateway.subscriber.disconnected` says it.
fn end_reason(end: &SessionEnd) -> &'static str {
    match end {
        SessionEnd::ClientClosed => "closed",
        SessionEnd::WriteError => "write error",
        SessionEnd::Drained => "drained",
        SessionEnd::CutOff(CutOffReason::TooSlow) => "slow",
        SessionEnd::CutOff(CutOffReason::TokenExpired) => "token expired",
        SessionEnd::CutOff(CutOffReason::EgressLimit) => "egress limit",
        SessionEnd::CutOff(CutOffReason::Protocol(..)) => "protocol error",
    }
}

/// The monotonic instant of a Unix time in seconds (now, if it has passed).
fn instant_of_unix(unix_s: u64) -> Instant {
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Instant::now() + Duration::from_secs(unix_s).saturating_sub(now_unix)
}
