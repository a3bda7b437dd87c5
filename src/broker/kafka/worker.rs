//! The plane's entry point: [`Worker::run`] starts the supervisor and serves the shard's
//! commands (produce, catch-up fetch, shutdown), each in a task of its own.

use std::rc::Rc;
use std::sync::Arc;

use super::settings::Settings;
use super::state::Inner;
use super::supervisor::supervise;
use super::{fetch, produce};
use crate::broker::plane::events::PlaneCommand;
use crate::broker::plane::sink::{serve_commands, EventSink, Shared};

pub(crate) struct Worker {
    inner: Rc<Inner>,
    commands: rtrb::Consumer<PlaneCommand>,
}

impl Worker {
    pub fn new(
        settings: Settings,
        sink: EventSink,
        commands: rtrb::Consumer<PlaneCommand>,
        shared: Arc<Shared>,
    ) -> Self {
        let inner = Rc::new(Inner::new(settings, sink, shared));
        Self { inner, commands }
    }

    /// Run until shut down. Returning drops the `LocalSet`, which cancels every fetch loop.
    pub async fn run(self) {
        let supervisor = tokio::task::spawn_local(supervise(Rc::clone(&self.inner)));
        command_loop(Rc::clone(&self.inner), self.commands).await;
        supervisor.abort();
        // Wake anything waiting on the link so it sees the shutdown.
        self.inner.link.send_modify(|l| l.up = false);
        tracing::debug!(shard = self.inner.settings.shard, "kafka plane stopped");
    }
}

async fn command_loop(inner: Rc<Inner>, mut commands: rtrb::Consumer<PlaneCommand>) {
    let shared = Arc::clone(&inner.shared);
    serve_commands(&mut commands, &shared, |command| match command {
        PlaneCommand::Produce {
            request_id,
            topic,
            partition,
            records,
        } => {
            let task = produce::run(Rc::clone(&inner), request_id, topic, partition, records);
            tokio::task::spawn_local(task);
        }
        PlaneCommand::Fetch {
            request_id,
            topic,
            partition,
            offset,
            max_bytes,
        } => {
            let task = fetch::catch_up(
                Rc::clone(&inner),
                request_id,
                topic,
                partition,
                offset,
                max_bytes,
            );
            tokio::task::spawn_local(task);
        }
        PlaneCommand::Shutdown => {}
    })
    .await;
}
