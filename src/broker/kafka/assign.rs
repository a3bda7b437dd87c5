//! Which shard owns which Kafka partition: a pure function, so every shard (and every gateway
//! instance) agrees without talking.
//!
//! It is the same FNV-1a mapping the embedded broker uses ([`shard_for`]), so a partition has one
//! owner whichever broker feeds it.

use crate::broker::routing::shard_for;

/// The shard (0..shards) that fetches `partition` of `topic` and frames its records.
///
/// Kafka partition ids are non-negative `i32`s; a negative id (never sent by a broker) is
/// mapped through `unsigned_abs` rather than panicking, so the function is total.
pub fn owner_of(topic: &str, partition: i32, shards: usize) -> usize {
    shard_for(topic, partition.unsigned_abs(), shards)
}

/// The partitions among `partitions` that `shard` owns, in the order given (the tests check
/// the ownership rule through it).
#[cfg(test)]
fn partitions_for_shard(
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
    shard: usize,
    shards: usize,
) -> Vec<i32> {
    partitions
        .into_iter()
        .filter(|&p| owner_of(topic, p, shards) == shard)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(
            partitions_for_shard("t", 0..8, 0, 1),
            (0..8).collect::<Vec<_>>()
        );
        assert!(partitions_for_shard("t", 0..8, 1, 1).is_empty());
    }

    #[test]
    fn agrees_with_the_memory_broker_routing() {
        for p in 0..32 {
            assert_eq!(owner_of("orders", p, 4), shard_for("orders", p as u32, 4));
        }
    }

    #[test]
    fn many_partitions_spread_over_two_shards() {
        let zero = partitions_for_shard("events", 0..64, 0, 2).len();
        let one = partitions_for_shard("events", 0..64, 1, 2).len();
        assert_eq!(zero + one, 64);
        assert!(zero > 10 && one > 10, "uneven: {zero} / {one}");
    }

    proptest! {
        #[test]
        fn every_partition_has_exactly_one_owner(
            topic in "[a-zA-Z0-9._-]{1,40}",
            count in 1i32..128,
            shards in 1usize..16,
        ) {
            let mut owned = vec![0usize; count as usize];
            for shard in 0..shards {
                for p in partitions_for_shard(&topic, 0..count, shard, shards) {
                    prop_assert_eq!(owner_of(&topic, p, shards), shard);
                    owned[p as usize] += 1;
                }
            }
            prop_assert!(owned.iter().all(|&n| n == 1), "{:?}", owned);
        }

        #[test]
        fn owner_is_in_range(topic in ".{0,40}", p in any::<i32>(), shards in 1usize..64) {
            prop_assert!(owner_of(&topic, p, shards) < shards);
        }
    }
}
