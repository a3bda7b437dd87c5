//! Adding and removing subscriptions on a running stream (a WebSocket subscribing by message).
//!
//! The caller takes the subscriber out of the shard's registry first and puts it back after
//! (`Registry::relayout`): slots may be renumbered here, and the registry indexes by slot.
use super::{ChangeError, Chunk, Gap, State, SubState, Subscriber};
use crate::broker::PartitionKey;
use crate::delivery::filter::EventFilter;

/// A subscription to add: its partitions and where each starts (as for a new stream).
pub struct NewSubscription {
    pub parts: Vec<PartitionKey>,
    pub start: Vec<u64>,
    pub from_live: Vec<bool>,
    pub filter: Option<EventFilter>,
    /// Partitions whose asked-for events are gone (an id from an earlier run): reported with
    /// a `reset` before anything of the subscription.
    pub gaps: Vec<Gap>,
}

impl Subscriber {
    /// Add a subscription (one group of slots). The stream goes back to catching up: the new
    /// partitions start from the shard's history (at its head for a live start), and the
    /// switch to live happens again in one step when every cursor has reached the head, so the
    /// subscriptions already running lose nothing meanwhile.
    pub fn add_subscription(&self, new: NewSubscription) -> Result<(), ChangeError> {
        let mut st = self.state.borrow_mut();
        Self::check_open(&st)?;
        for key in &new.parts {
            if st.layout.group_of_topic(&key.topic).is_some() {
                return Err(ChangeError::AlreadySubscribed(key.topic.to_string()));
            }
        }
        Self::compact_locked(&mut st);
        let first_slot = st.layout.len();
        st.layout.add_group(new.parts, new.filter);
        st.cursor.extend(&new.start, &new.from_live);
        if !new.gaps.is_empty() {
            let id = self.group_cursor_id(&st, first_slot);
            let reset = self.framing.reset(super::RESTART_REASON, &new.gaps, &id);
            st.queue.push(Chunk::Bytes(reset));
        }
        if st.phase == SubState::Live {
            st.phase = SubState::CatchingUp;
        }
        st.wake();
        Ok(())
    }

    /// End the subscriptions of `topics`. Events of them already queued still go out (before
    /// the answer the caller queues next); nothing of them is queued after.
    pub fn remove_topics(&self, topics: &[String]) -> Result<(), ChangeError> {
        let mut st = self.state.borrow_mut();
        Self::check_open(&st)?;
        let mut groups = Vec::with_capacity(topics.len());
        for topic in topics {
            let g = st
                .layout
                .group_of_topic(topic)
                .ok_or_else(|| ChangeError::NotSubscribed(topic.clone()))?;
            let together = st.layout.topics_of_group(g);
            if together
                .iter()
                .any(|t| !topics.iter().any(|asked| asked == t))
            {
                return Err(ChangeError::PartOfUrlGroup(topic.clone()));
            }
            groups.push(g);
        }
        for g in groups {
            st.layout.deactivate(g);
        }
        Self::compact_locked(&mut st);
        st.wake();
        Ok(())
    }

    /// Whether `slot` is still subscribed (a backfill of an ended subscription stops).
    pub fn is_live_slot(&self, slot: usize) -> bool {
        self.state.borrow().layout.is_live_slot(slot)
    }

    fn check_open(st: &State) -> Result<(), ChangeError> {
        if st.finished || matches!(st.phase, SubState::CutOff(_) | SubState::Draining) {
            return Err(ChangeError::Closing);
        }
        Ok(())
    }

    /// Drop dead slots, unless a backfill task still holds a slot number (then the next change
    /// does it).
    fn compact_locked(st: &mut State) {
        if st.layout.has_dead_slots() && !st.cursor.backfill_running() {
            let keep = st.layout.compact();
            st.cursor.retain(&keep);
        }
    }
}
