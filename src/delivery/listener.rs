//! The accept loop of one shard (each shard binds the same port with SO_REUSEPORT).
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future::or;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpListener;

use super::connection::{self, Served};
use super::policy_gate::denied;
use super::response::Response;
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// Accept connections until shutdown; each runs as its own task on this shard.
pub async fn accept_loop(ctx: Rc<ShardContext>, listener: TcpListener) {
    loop {
        let accepted = or(async { Some(listener.accept().await) }, async {
            ctx.shutdown.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                // Typically EMFILE: back off briefly instead of spinning on the error.
                tracing::warn!(shard = ctx.id, error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        ShardMetrics::add(&ctx.metrics().connections_accepted_total, 1);
        let ctx2 = ctx.clone();
        let ip = stream.peer_addr().map(|a| a.ip());
        let permit = match ip.map(|ip| ctx.policy.admit_connection(ip, Instant::now())) {
            Ok(Ok(permit)) => permit,
            Ok(Err(denial)) => {
                let refusal = denied(&ctx, &denial);
                glommio::spawn_local(async move {
                    let mut stream = stream;
                    let mut out = Vec::new();
                    refusal.write(&mut out, ctx2.id, None, false);
                    // The client has likely sent its request already: close gently, or the
                    // kernel's reset can destroy the answer before it is read.
                    if stream.write_all(&out).await.is_ok() {
                        connection::linger(&mut stream).await;
                    }
                })
                .detach();
                continue;
            }
            // No peer address (the client is already gone): nothing to count it against.
            Err(_) => None,
        };
        if ctx.open_connections.get() >= ctx.config().http.max_connections_per_shard {
            glommio::spawn_local(async move {
                let mut stream = stream;
                let mut out = Vec::new();
                Response::text(503, "too many connections")
                    .with_header("retry-after", "1")
                    .write(&mut out, ctx2.id, None, false);
                if stream.write_all(&out).await.is_ok() {
                    connection::linger(&mut stream).await;
                }
            })
            .detach();
            continue;
        }
        ctx.open_connections.set(ctx.open_connections.get() + 1);
        ShardMetrics::add(&ctx.metrics().connections_open, 1);
        glommio::spawn_local(async move {
            if let Served::Stream(stream, open) = connection::serve(ctx2.clone(), stream).await {
                glommio::spawn_local(async move {
                    connection::stream_events(&ctx2, stream, open).await;
                    connection_closed(&ctx2);
                    drop(permit);
                })
                .detach();
            } else {
                connection_closed(&ctx2);
                drop(permit);
            }
        })
        .detach();
    }
}

fn connection_closed(ctx: &ShardContext) {
    ctx.open_connections.set(ctx.open_connections.get() - 1);
    ShardMetrics::sub(&ctx.metrics().connections_open, 1);
}
