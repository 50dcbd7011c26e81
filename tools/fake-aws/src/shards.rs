//! Shards of a fake Kinesis stream: which shard a record goes to, shard ids and hash ranges, and
//! the per-second write window that enforces the per-shard limits.
//!
//! Like Kinesis, a stream of N shards splits the 128-bit hash key space into N equal ranges; a
//! record's hash key is the MD5 of its partition key read as a big-endian 128-bit number, or its
//! `ExplicitHashKey` when given.

use md5::{Digest, Md5};

/// The MD5 hash key of a partition key.
pub fn hash_key(partition_key: &[u8]) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key).into())
}

/// Parses an `ExplicitHashKey` (a decimal in 0..2^128).
pub fn parse_hash_key(text: &str) -> Option<u128> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// First hash key of shard `index` of `shards`: floor(index * 2^128 / shards), the even split
/// Kinesis makes (for 2 shards: 0 and 2^127).
fn range_start(index: u32, shards: u32) -> u128 {
    let n = u128::from(shards.max(1));
    if index == 0 || n == 1 {
        return 0;
    }
    // 2^128 = q * n + r, computed without overflowing u128.
    let (mut q, mut r) = (u128::MAX / n, u128::MAX % n + 1);
    if r == n {
        q += 1;
        r = 0;
    }
    let i = u128::from(index);
    i * q + i * r / n
}

/// The shard (0-based) that owns `hash` in a stream of `shards` shards.
pub fn shard_for(hash: u128, shards: u32) -> u32 {
    let shards = shards.max(1);
    let width = u128::MAX / u128::from(shards);
    let mut index = (hash / width).min(u128::from(shards - 1)) as u32;
    // The guess is off by at most one because of rounding.
    while index > 0 && range_start(index, shards) > hash {
        index -= 1;
    }
    while index + 1 < shards && range_start(index + 1, shards) <= hash {
        index += 1;
    }
    index
}

/// Inclusive hash key range of shard `index`.
pub fn hash_range(index: u32, shards: u32) -> (u128, u128) {
    let start = range_start(index, shards);
    let end = if index + 1 >= shards.max(1) {
        u128::MAX
    } else {
        range_start(index + 1, shards) - 1
    };
    (start, end)
}

/// The shard id as Kinesis prints it: `shardId-000000000000`.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// Records and bytes written to one shard in the current second.
#[derive(Debug, Clone, Default)]
pub struct ShardWindow {
    second: u64,
    records: u64,
    bytes: u64,
}

impl ShardWindow {
    /// Admits a record of `bytes` at second `now_sec` if the shard is still under both limits in
    /// that second.
    pub fn admit(&mut self, now_sec: u64, bytes: u64, max_records: u64, max_bytes: u64) -> bool {
        if now_sec != self.second {
            *self = ShardWindow {
                second: now_sec,
                records: 0,
                bytes: 0,
            };
        }
        if self.records + 1 > max_records || self.bytes + bytes > max_bytes {
            return false;
        }
        self.records += 1;
        self.bytes += bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hash_key_matches_kinesis() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(hash_key(b"a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }

    #[test]
    fn ranges_cover_the_key_space() {
        for shards in [1u32, 2, 3, 4, 7] {
            assert_eq!(hash_range(0, shards).0, 0);
            assert_eq!(hash_range(shards - 1, shards).1, u128::MAX);
            for i in 1..shards {
                assert_eq!(hash_range(i, shards).0, hash_range(i - 1, shards).1 + 1);
            }
            for i in 0..shards {
                let (start, end) = hash_range(i, shards);
                assert_eq!(shard_for(start, shards), i);
                assert_eq!(shard_for(end, shards), i);
            }
        }
        assert_eq!(shard_for(u128::MAX, 1), 0);
        // The splits Kinesis reports for 2 and 3 shards.
        assert_eq!(
            hash_range(0, 2).1.to_string(),
            "170141183460469231731687303715884105727"
        );
        assert_eq!(
            hash_range(1, 3).0.to_string(),
            "113427455640312821154458202477256070485"
        );
        assert_eq!(
            hash_range(2, 3).0.to_string(),
            "226854911280625642308916404954512140970"
        );
    }

    #[test]
    fn explicit_hash_keys() {
        assert_eq!(parse_hash_key("0"), Some(0));
        assert_eq!(parse_hash_key(&u128::MAX.to_string()), Some(u128::MAX));
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211456"),
            None
        );
        assert_eq!(parse_hash_key("-1"), None);
        assert_eq!(parse_hash_key(""), None);
    }

    #[test]
    fn shard_ids() {
        assert_eq!(shard_id(0), "shardId-000000000000");
        assert_eq!(shard_id(12), "shardId-000000000012");
    }

    #[test]
    fn window_limits_records_and_bytes_per_second() {
        let mut w = ShardWindow::default();
        assert!((0..3).all(|_| w.admit(5, 10, 3, 1000)));
        assert!(!w.admit(5, 10, 3, 1000));
        assert!(w.admit(6, 10, 3, 1000), "a new second starts afresh");
        assert!(w.admit(6, 990, 3, 1000));
        assert!(!w.admit(6, 1, 3, 1000));
    }
}
