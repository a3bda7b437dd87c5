//! Which partitions a subscriber reads and how they group into subscriptions: each group has
//! its own filter and its own resume id (the cursor over the group's partitions).
//!
//! An SSE stream or a WebSocket opened with topics in its URL is one group over every
//! partition it names, so its ids are the cursors they always were. A WebSocket on plain `/ws`
//! subscribes and unsubscribes by message: each topic it adds is a group of its own, so the id
//! of an event of topic `t` resumes `t` alone and does not change shape as other topics come
//! and go.
//!
//! A partition's *slot* (its index in the subscriber's cursor) is what the registry and the
//! backfill tasks hold. Unsubscribing marks a group's slots dead rather than shifting the rest,
//! so a running backfill never writes to the wrong partition; dead slots are compacted away
//! when no backfill runs ([`Layout::compact`]).
use std::ops::Range;

use crate::broker::PartitionKey;
use crate::delivery::filter::EventFilter;

/// One subscription within a subscriber: a run of slots and what they are filtered by.
#[derive(Debug)]
pub struct Group {
    pub slots: Range<usize>,
    pub filter: Option<EventFilter>,
    /// False once unsubscribed: its slots are dead until the next compaction.
    pub active: bool,
}

/// The slots of a subscriber and their groups.
#[derive(Debug, Default)]
pub struct Layout {
    parts: Vec<PartitionKey>,
    /// Per slot: its group. Empty while there is one group (every SSE stream), which then owns
    /// every slot: the common case carries no per-slot table.
    group_of: Vec<u32>,
    groups: Vec<Group>,
}

impl Layout {
    /// One group over `parts` (a subscription named in the request).
    pub fn single(parts: Vec<PartitionKey>, filter: Option<EventFilter>) -> Self {
        if parts.is_empty() {
            // A WebSocket on plain `/ws`: no subscription until it asks for one.
            return Self::default();
        }
        let slots = 0..parts.len();
        Self {
            parts,
            group_of: Vec::new(),
            groups: vec![Group {
                slots,
                filter,
                active: true,
            }],
        }
    }

    pub fn parts(&self) -> &[PartitionKey] {
        &self.parts
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// The group of `slot`.
    pub fn group(&self, slot: usize) -> &Group {
        let g = if self.group_of.is_empty() {
            0
        } else {
            self.group_of[slot] as usize
        };
        &self.groups[g]
    }

    /// Whether `slot` belongs to a subscription still in force.
    pub fn is_live_slot(&self, slot: usize) -> bool {
        slot < self.parts.len() && self.group(slot).active
    }

    /// The slots still in force, with their partitions (what the registry indexes).
    pub fn live_slots(&self) -> impl Iterator<Item = (usize, &PartitionKey)> {
        self.parts
            .iter()
            .enumerate()
            .filter(|(slot, _)| self.is_live_slot(*slot))
    }

    /// The distinct topics still subscribed, in slot order.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = Vec::new();
        for (_, key) in self.live_slots() {
            if topics.last() != Some(&&*key.topic) {
                topics.push(&key.topic);
            }
        }
        topics
    }

    /// The active group reading `topic`, if any.
    pub fn group_of_topic(&self, topic: &str) -> Option<usize> {
        let slot = self
            .live_slots()
            .find(|(_, key)| &*key.topic == topic)
            .map(|(slot, _)| slot)?;
        Some(if self.group_of.is_empty() {
            0
        } else {
            self.group_of[slot] as usize
        })
    }

    /// The topics of group `g` (several for a subscription named in a URL).
    pub fn topics_of_group(&self, g: usize) -> Vec<&str> {
        let mut topics: Vec<&str> = Vec::new();
        for key in &self.parts[self.groups[g].slots.clone()] {
            if topics.last() != Some(&&*key.topic) {
                topics.push(&key.topic);
            }
        }
        topics
    }

    /// Add a group over `parts`; returns its slots (appended after every existing slot).
    pub fn add_group(
        &mut self,
        parts: Vec<PartitionKey>,
        filter: Option<EventFilter>,
    ) -> Range<usize> {
        if self.group_of.is_empty() && !self.groups.is_empty() {
            // Leaving the one-group shape: every existing slot is group 0's.
            self.group_of = vec![0; self.parts.len()];
        }
        let start = self.parts.len();
        let slots = start..start + parts.len();
        let g = self.groups.len() as u32;
        self.group_of.extend(std::iter::repeat_n(g, parts.len()));
        self.parts.extend(parts);
        self.groups.push(Group {
            slots: slots.clone(),
            filter,
            active: true,
        });
        if self.groups.len() == 1 {
            // The first group of an empty layout: back to the one-group shape.
            self.group_of.clear();
        }
        slots
    }

    /// End group `g`: its slots are dead from now on.
    pub fn deactivate(&mut self, g: usize) {
        self.groups[g].active = false;
    }

    /// Whether any slot is dead.
    pub fn has_dead_slots(&self) -> bool {
        self.groups.iter().any(|g| !g.active && !g.slots.is_empty())
    }

    /// Drop dead slots and inactive groups; returns, per old slot, whether it was kept (so the
    /// cursor can drop the same entries). Only when no backfill task holds a slot number.
    pub fn compact(&mut self) -> Vec<bool> {
        let keep: Vec<bool> = (0..self.parts.len())
            .map(|slot| self.group(slot).active)
            .collect();
        let old = std::mem::take(self);
        let mut parts = old.parts.into_iter();
        let mut next_slot = 0;
        for group in old.groups {
            let taken: Vec<PartitionKey> = parts.by_ref().take(group.slots.len()).collect();
            debug_assert_eq!(group.slots.start, next_slot);
            next_slot = group.slots.end;
            if group.active {
                self.add_group(taken, group.filter);
            }
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts(topic: &str, n: u32) -> Vec<PartitionKey> {
        (0..n)
            .map(|p| PartitionKey {
                topic: topic.into(),
                partition: p,
            })
            .collect()
    }

    #[test]
    fn one_group_owns_every_slot_without_a_table() {
        let mut parts_ab = parts("a", 2);
        parts_ab.extend(parts("b", 1));
        let layout = Layout::single(parts_ab, None);
        assert!(layout.group_of.is_empty());
        assert_eq!(layout.group(2).slots, 0..3);
        assert_eq!(layout.topics(), ["a", "b"]);
        assert_eq!(layout.group_of_topic("b"), Some(0));
        assert_eq!(layout.topics_of_group(0), ["a", "b"]);
    }

    #[test]
    fn groups_added_and_removed_keep_slot_numbers_until_compacted() {
        let mut layout = Layout::default();
        assert_eq!(layout.add_group(parts("a", 2), None), 0..2);
        assert!(layout.group_of.is_empty(), "a single group needs no table");
        assert_eq!(layout.add_group(parts("b", 1), None), 2..3);
        assert_eq!(layout.add_group(parts("c", 2), None), 3..5);
        assert_eq!(layout.group(4).slots, 3..5);
        let b = layout.group_of_topic("b").expect("b subscribed");
        layout.deactivate(b);
        assert!(!layout.is_live_slot(2));
        assert!(
            layout.is_live_slot(3),
            "c keeps its slots while b's are dead"
        );
        assert_eq!(layout.topics(), ["a", "c"]);
        assert_eq!(layout.group_of_topic("b"), None);
        assert!(layout.has_dead_slots());
        assert_eq!(layout.compact(), [true, true, false, true, true]);
        assert!(!layout.has_dead_slots());
        assert_eq!(layout.len(), 4);
        assert_eq!(layout.group(2).slots, 2..4, "c moved down");
        assert_eq!(&*layout.parts()[2].topic, "c");
    }

    /// What a layout is made to do: add a topic's group, end one, or compact.
    #[derive(Debug, Clone)]
    enum Op {
        Add(u32),
        Remove(usize),
        Compact,
    }

    proptest! {
        /// Against a model (the active topics in order, each with its partition count): the
        /// live slots are exactly the active groups' partitions, in order; each live slot's
        /// group spans it; slot numbers never move except by compaction, which leaves no dead
        /// slot and keeps the order.
        #[test]
        fn any_sequence_of_changes_keeps_slots_and_groups_consistent(
            ops in proptest::collection::vec(
                prop_oneof![
                    (1u32..4).prop_map(Op::Add),
                    (0usize..8).prop_map(Op::Remove),
                    Just(Op::Compact),
                ],
                0..40,
            )
        ) {
            let mut layout = Layout::default();
            let mut model: Vec<(String, u32)> = Vec::new();
            let mut next_topic = 0;
            for op in ops {
                match op {
                    Op::Add(n) => {
                        let topic = format!("t{next_topic}");
                        next_topic += 1;
                        let before = layout.len();
                        let slots = layout.add_group(parts(&topic, n), None);
                        prop_assert_eq!(slots, before..before + n as usize, "appended");
                        model.push((topic, n));
                    }
                    Op::Remove(i) if !model.is_empty() => {
                        let (topic, _) = model.remove(i % model.len());
                        let g = layout.group_of_topic(&topic).expect("subscribed");
                        let numbered: Vec<(usize, PartitionKey)> =
                            layout.live_slots().map(|(s, k)| (s, k.clone())).collect();
                        layout.deactivate(g);
                        // The others keep their slot numbers.
                        for (slot, key) in numbered.iter().filter(|(_, k)| *k.topic != *topic) {
                            prop_assert!(layout.is_live_slot(*slot));
                            prop_assert_eq!(&layout.parts()[*slot], key);
                        }
                    }
                    Op::Remove(_) => {}
                    Op::Compact => {
                        let live: Vec<PartitionKey> =
                            layout.live_slots().map(|(_, k)| k.clone()).collect();
                        let keep = layout.compact();
                        prop_assert_eq!(keep.iter().filter(|&&k| k).count(), live.len());
                        prop_assert!(!layout.has_dead_slots());
                        prop_assert_eq!(layout.parts(), &live[..], "order kept");
                    }
                }
                let expected: Vec<PartitionKey> = model
                    .iter()
                    .flat_map(|(t, n)| parts(t, *n))
                    .collect();
                let live: Vec<PartitionKey> =
                    layout.live_slots().map(|(_, k)| k.clone()).collect();
                prop_assert_eq!(&live, &expected);
                let topics: Vec<&str> = model.iter().map(|(t, _)| t.as_str()).collect();
                prop_assert_eq!(layout.topics(), topics);
                for (slot, _) in layout.live_slots() {
                    prop_assert!(layout.group(slot).slots.contains(&slot));
                }
            }
        }
    }
}
