//! One partition of a subscription: read it in order, skip what the filter rejects, deliver
//! the rest, and move the cursor only past events done with. With `ordering = "partition"`
//! one delivery is in flight; with `"key"`, deliveries of different keys run side by side
//! (`ordering::KeyWindow`) and the cursor waits for the oldest.
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::driver::{deliver, Delivery, Driver};
use super::engine::WebhookEngine;
use super::feed::{Next, PartitionFeed};
use super::ordering::{KeyWindow, Ordering};
use super::signal::Signal;
use crate::broker::PartitionKey;
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// Run the lane of `key` from offset `from` until the driver stops.
pub async fn run(
    ctx: &Rc<ShardContext>,
    engine: &Rc<WebhookEngine>,
    driver: &Rc<Driver>,
    key: PartitionKey,
    from: u64,
) {
    let _listening = Listening::new(ctx, &key.topic);
    let mut feed = PartitionFeed::new(key.clone(), from);
    let window = Rc::new(RefCell::new(KeyWindow::new(
        engine.settings().max_in_flight,
    )));
    let finished = Rc::new(Signal::default());
    // The next offset read: with nothing in flight, the cursor.
    let read_next = Rc::new(Cell::new(from));
    let stop = || driver.stop.is_set() || ctx.shutdown.is_triggered();
    loop {
        // A lane waiting at the head for the next event must also end when its driver is
        // stopped (a change, a deletion): the stop flag wakes it.
        let next = futures_lite::future::or(feed.next(ctx, &stop), async {
            driver.stop.wait().await;
            None
        });
        let Some(next) = next.await else {
            return;
        };
        let event = match next {
            Next::Gap { requested, oldest } => {
                tracing::warn!(subscription = %driver.id(), topic = %key.topic, partition = key.partition, requested, oldest, "webhook subscription skipped events that are no longer retained");
                let skipped = oldest.saturating_sub(requested);
                ShardMetrics::add(&ctx.metrics().webhook_events_skipped_total, skipped);
                engine.board_update(driver.id(), |s| s.skipped += skipped);
                read_next.set(oldest);
                driver.done_with(&key, window.borrow().cursor(oldest));
                continue;
            }
            Next::Event(event) => event,
        };
        read_next.set(event.offset + 1);
        if driver.filter().is_some_and(|f| !f.matches(&event.meta)) {
            driver.done_with(&key, window.borrow().cursor(event.offset + 1));
            continue;
        }
        if driver.sub.ordering == Ordering::Partition {
            match deliver(ctx, engine, driver, &event).await {
                Delivery::Done => driver.done_with(&key, event.offset + 1),
                Delivery::Stopped => return,
            }
            continue;
        }
        // Per key: wait for room and for the previous delivery of this key.
        let event_key = event.meta.key.clone();
        loop {
            if stop() {
                return;
            }
            if window.borrow().can_start(event_key.as_ref()) {
                break;
            }
            let seen = finished.generation();
            futures_lite::future::or(finished.changed(seen), driver.stop.wait()).await;
        }
        window.borrow_mut().start(event.offset, event_key);
        driver.task_started();
        let (ctx, engine, driver) = (ctx.clone(), engine.clone(), driver.clone());
        let (window, finished, read_next, key) = (
            window.clone(),
            finished.clone(),
            read_next.clone(),
            key.clone(),
        );
        glommio::spawn_local(async move {
            if let Delivery::Done = deliver(&ctx, &engine, &driver, &event).await {
                window.borrow_mut().finish(event.offset);
                driver.done_with(&key, window.borrow().cursor(read_next.get()));
            }
            finished.notify();
            driver.task_ended();
        })
        .detach();
    }
}

/// A lane of a system topic counts as a listener of it while it runs (system events are only
/// built while someone listens).
struct Listening {
    interest: std::sync::Arc<crate::telemetry::system_events::SystemInterest>,
    topic: std::sync::Arc<str>,
}

impl Listening {
    fn new(ctx: &ShardContext, topic: &std::sync::Arc<str>) -> Self {
        let interest = ctx.shared.system_interest.clone();
        interest.add(topic);
        Self {
            interest,
            topic: topic.clone(),
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.interest.remove(&self.topic);
    }
}
