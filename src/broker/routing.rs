//! Pure routing functions: which shard owns a partition, which partition a key goes to.
//!
//! Both are FNV-1a hashes with fixed seeds (not `RandomState`), so every shard, every restart and
//! every instance behind the same broker computes the same answer.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The shard (0..shards) that owns `partition` of `topic`: it assigns offsets and frames events.
pub fn shard_for(topic: &str, partition: u32, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let hash = fnv1a(
        fnv1a(FNV_OFFSET, topic.as_bytes()),
        &partition.to_le_bytes(),
    );
    // Fold the high bits in: FNV's low bits alone spread short names poorly.
    ((hash ^ (hash >> 32)) % shards as u64) as usize
}

/// The partition (0..partitions) that events with this key go to.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    let hash = fnv1a(FNV_OFFSET, key);
    ((hash ^ (hash >> 32)) % u64::from(partitions)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_do_not_drift() {
        // If these change, every deployed client's partition/shard mapping changes with them.
        assert_eq!(shard_for("orders", 0, 1), 0);
        let a = shard_for("orders", 0, 8);
        assert_eq!(a, shard_for("orders", 0, 8));
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn topics_spread_over_shards() {
        let mut seen = [0usize; 4];
        for i in 0..400 {
            seen[shard_for(&format!("topic-{i}"), 0, 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "uneven spread: {seen:?}");
    }

    proptest! {
        #[test]
        fn shard_is_in_range_and_stable(topic in "[a-z0-9._-]{1,40}", p in 0u32..64, n in 1usize..64) {
            let s = shard_for(&topic, p, n);
            prop_assert!(s < n);
            prop_assert_eq!(s, shard_for(&topic, p, n));
        }

        #[test]
        fn partition_is_in_range_and_stable(key in proptest::collection::vec(any::<u8>(), 0..64), n in 1u32..256) {
            let p = partition_for_key(&key, n);
            prop_assert!(p < n);
            prop_assert_eq!(p, partition_for_key(&key, n));
        }
    }
}
