//! Every webhook subscription as this shard knows it, rebuilt from the state and progress
//! records (pure: no I/O). Every shard applies every state record, so any shard answers the
//! endpoints API; only the owner shard drives a subscription.
use std::collections::{BTreeMap, HashMap};

use super::model::{CursorMap, StateRecord, Subscription};

/// One subscription and the newest cursor known for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub sub: Subscription,
    pub cursor: CursorMap,
    /// When `cursor` was written (Unix ms): an older cursor never replaces it.
    pub cursor_at: u64,
}

/// What applying a record changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new subscription, or its definition changed: (re)start it.
    Defined,
    /// Send again from these positions.
    Replayed(CursorMap),
    Removed,
    /// Only its progress (or a checkpoint equal to what is known).
    Progress,
    /// Older than what is known, or about an unknown subscription.
    Ignored,
}

/// The subscriptions, by id.
#[derive(Debug, Default)]
pub struct Table {
    entries: BTreeMap<String, Entry>,
    /// Deleted ids and when: a record older than the deletion does not bring one back.
    deleted: HashMap<String, u64>,
}

impl Table {
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Apply one record.
    pub fn apply(&mut self, record: StateRecord) -> Change {
        let at = record.at();
        if self.deleted.get(record.id()).is_some_and(|&d| d >= at) {
            return Change::Ignored;
        }
        match record {
            StateRecord::Put { sub, cursor, at } => {
                let sub = *sub;
                let id = sub.id.clone();
                match self.entries.get_mut(&id) {
                    // A checkpoint of an older definition (written while a change was on its
                    // way) moves the cursor at most.
                    Some(e) if sub.version < e.sub.version => {
                        if at > e.cursor_at {
                            e.cursor = cursor;
                            e.cursor_at = at;
                        }
                        Change::Progress
                    }
                    Some(e) => {
                        let defined = e.sub != sub;
                        e.sub = sub;
                        if at >= e.cursor_at {
                            e.cursor = cursor;
                            e.cursor_at = at;
                        }
                        if defined {
                            Change::Defined
                        } else {
                            Change::Progress
                        }
                    }
                    None => {
                        self.deleted.remove(&id);
                        self.entries.insert(
                            id,
                            Entry {
                                sub,
                                cursor,
                                cursor_at: at,
                            },
                        );
                        Change::Defined
                    }
                }
            }
            StateRecord::Progress { id, cursor, at } => match self.entries.get_mut(&id) {
                Some(e) if at > e.cursor_at => {
                    e.cursor.extend(cursor);
                    e.cursor_at = at;
                    Change::Progress
                }
                _ => Change::Ignored,
            },
            StateRecord::Replay { id, cursor, at } => match self.entries.get_mut(&id) {
                Some(e) => {
                    e.cursor.extend(cursor.clone());
                    e.cursor_at = e.cursor_at.max(at);
                    Change::Replayed(cursor)
                }
                None => Change::Ignored,
            },
            StateRecord::Delete { id, at } => {
                self.deleted.insert(id.clone(), at);
                match self.entries.remove(&id) {
                    Some(_) => Change::Removed,
                    None => Change::Ignored,
                }
            }
        }
    }

    /// Rebuild from everything the log holds of the state and progress topics: the records
    /// of both in the order they were written (`at`), so the newest word on each
    /// subscription wins whichever topic it is in.
    pub fn load(records: impl IntoIterator<Item = StateRecord>) -> Self {
        let mut all: Vec<StateRecord> = records.into_iter().collect();
        all.sort_by_key(StateRecord::at);
        let mut table = Table::default();
        for r in all {
            table.apply(r);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::webhook::model::{FilterSpec, Kind};
    use proptest::prelude::*;

    fn sub(id: &str, url: &str) -> Subscription {
        Subscription {
            id: id.into(),
            kind: Kind::Endpoint,
            url: url.into(),
            topics: vec!["t".into()],
            filter: FilterSpec::default(),
            secret: None,
            previous_secret: None,
            disabled: None,
            created_at: 0,
            lease_expires: None,
            topic_url: None,
            owner: String::new(),
            ordering: Default::default(),
            version: 0,
        }
    }

    fn cursor(next: u64) -> CursorMap {
        [("t:0".to_owned(), next)].into()
    }

    fn put(id: &str, url: &str, next: u64, at: u64) -> StateRecord {
        StateRecord::Put {
            sub: Box::new(sub(id, url)),
            cursor: cursor(next),
            at,
        }
    }

    #[test]
    fn a_delete_is_not_undone_by_an_older_checkpoint() {
        let t = Table::load([
            put("a", "http://x/", 1, 10),
            StateRecord::Delete {
                id: "a".into(),
                at: 30,
            },
            put("a", "http://x/", 5, 20),
        ]);
        assert!(t.get("a").is_none());
        let t = Table::load([
            StateRecord::Delete {
                id: "a".into(),
                at: 30,
            },
            put("a", "http://y/", 1, 40),
        ]);
        assert_eq!(t.get("a").map(|e| e.sub.url.as_str()), Some("http://y/"));
    }

    #[test]
    fn the_newest_cursor_wins_across_topics() {
        let t = Table::load([
            put("a", "http://x/", 1, 10),
            StateRecord::Progress {
                id: "a".into(),
                cursor: cursor(7),
                at: 25,
            },
            put("a", "http://x/", 5, 20),
        ]);
        assert_eq!(t.get("a").map(|e| e.cursor["t:0"]), Some(7));
    }

    #[test]
    fn changes_say_what_to_do() {
        let mut t = Table::default();
        assert_eq!(t.apply(put("a", "http://x/", 0, 1)), Change::Defined);
        assert_eq!(t.apply(put("a", "http://x/", 3, 2)), Change::Progress);
        assert_eq!(t.apply(put("a", "http://z/", 3, 3)), Change::Defined);
        let replay = StateRecord::Replay {
            id: "a".into(),
            cursor: cursor(0),
            at: 4,
        };
        assert_eq!(t.apply(replay), Change::Replayed(cursor(0)));
        assert_eq!(
            t.apply(StateRecord::Delete {
                id: "a".into(),
                at: 5
            }),
            Change::Removed
        );
        assert_eq!(
            t.apply(StateRecord::Progress {
                id: "a".into(),
                cursor: cursor(9),
                at: 6
            }),
            Change::Ignored
        );
    }

    #[test]
    fn a_checkpoint_of_an_older_version_does_not_undo_a_change() {
        let mut t = Table::default();
        t.apply(put("a", "http://old/", 0, 1));
        let mut changed = sub("a", "http://new/");
        changed.version = 1;
        let change = StateRecord::Put {
            sub: Box::new(changed),
            cursor: cursor(2),
            at: 2,
        };
        assert_eq!(t.apply(change), Change::Defined);
        // Built from the old definition before the change was applied, stored after it.
        assert_eq!(t.apply(put("a", "http://old/", 5, 3)), Change::Progress);
        let e = t.get("a").expect("entry");
        assert_eq!((e.sub.url.as_str(), e.cursor["t:0"]), ("http://new/", 5));
    }

    proptest! {
        /// Whatever order the records are read in, loading gives what applying them in
        /// write order gives (the two topics interleave arbitrarily at start).
        #[test]
        fn load_is_order_independent(
            ops in proptest::collection::vec((0u8..4, 0u8..3, 0u64..50), 0..40),
            seed in any::<u64>(),
        ) {
            let records: Vec<StateRecord> = ops
                .iter()
                .enumerate()
                .map(|(i, &(op, id, next))| {
                    let id = format!("s{id}");
                    let at = i as u64 + 1;
                    match op {
                        0 => put(&id, &format!("http://h/{next}"), next, at),
                        1 => StateRecord::Progress { id, cursor: cursor(next), at },
                        2 => StateRecord::Delete { id, at },
                        _ => put(&id, "http://h/", next, at),
                    }
                })
                .collect();
            let mut in_order = Table::default();
            for r in records.clone() {
                in_order.apply(r);
            }
            let mut shuffled = records;
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let loaded = Table::load(shuffled);
            prop_assert_eq!(
                loaded.iter().cloned().collect::<Vec<_>>(),
                in_order.iter().cloned().collect::<Vec<_>>()
            );
        }
    }
}
