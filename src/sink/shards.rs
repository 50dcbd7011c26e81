//! The shard map of a Kinesis stream, for `partitionKeyOption: DETERMINISTIC` with
//! `kplAggregation`: which open shard a partition key lands on, and a call's lines grouped by it
//! into aggregated records, so that every line's own key still lands on the shard Kinesis would
//! have sent it to as a plain record.
//!
//! Owns: the hash Kinesis routes by ([`hash_key`]), the map built from what `ListShards` lists
//! ([`ShardMap`]: hash key ranges of the open shards), lookups in it, and [`group`]. Pure: fetching
//! the map, deciding when to refresh it and sending are `kinesis`'s.

use bytes::Bytes;
use md5::{Digest, Md5};

use super::kpl;

/// One shard as `ListShards` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedShard {
    pub id: String,
    /// Decimal, as in the answer.
    pub starting_hash_key: String,
    pub ending_hash_key: String,
    /// No ending sequence number: the shard takes records. A closed shard (the parent of a
    /// split or merge) is listed while its records are retained, but takes none.
    pub open: bool,
}

/// An open shard: records whose hash key is in `start..=end` land on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    pub start: u128,
    pub end: u128,
}

/// The open shards of a stream, by hash key range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    /// Sorted by `start`; ranges do not overlap.
    shards: Vec<Shard>,
}

impl ShardMap {
    /// The map of the open shards of `listed` (closed ones are left out). An error says what
    /// in the listing cannot be used: a hash key that is not a 128-bit number, an inverted or
    /// overlapping range, or no open shard at all.
    pub fn new(listed: impl IntoIterator<Item = ListedShard>) -> Result<ShardMap, String> {
        let mut shards = Vec::new();
        for s in listed.into_iter().filter(|s| s.open) {
            let number = |text: &str| {
                text.parse::<u128>().map_err(|_| {
                    format!(
                        "shard {}: hash key '{text}' is not a number from 0 to 2^128-1",
                        s.id
                    )
                })
            };
            let (start, end) = (number(&s.starting_hash_key)?, number(&s.ending_hash_key)?);
            if start > end {
                return Err(format!(
                    "shard {}: starting hash key {start} is above its ending hash key {end}",
                    s.id
                ));
            }
            shards.push(Shard {
                id: s.id,
                start,
                end,
            });
        }
        if shards.is_empty() {
            return Err("no open shard is listed".into());
        }
        shards.sort_by_key(|s| s.start);
        if let Some(w) = shards.windows(2).find(|w| w[1].start <= w[0].end) {
            return Err(format!(
                "the open shards {} and {} have overlapping hash key ranges",
                w[0].id, w[1].id
            ));
        }
        Ok(ShardMap { shards })
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard (index into [`ShardMap::shards`]) whose range holds `hash`; None when no open
    /// shard covers it (a listing taken in the middle of a reshard can have a gap).
    pub fn shard_of(&self, hash: u128) -> Option<usize> {
        let after = self.shards.partition_point(|s| s.start <= hash);
        let index = after.checked_sub(1)?;
        (hash <= self.shards[index].end).then_some(index)
    }
}

/// The hash key Kinesis routes a partition key by: the MD5 of its UTF-8 bytes read as a 128-bit
/// big-endian number (the Kinesis API reference, `PutRecords`).
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// One Kinesis record of a call whose lines are grouped by shard: the lines (indices into the
/// call's lines, in file order), aggregated when there are several, and the shard they were
/// grouped for (None: a line whose hash no open shard covers; Kinesis routes it itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardGroup {
    pub shard: Option<usize>,
    pub lines: Vec<usize>,
}

impl ShardGroup {
    /// More than one line: sent as an aggregated record.
    pub fn is_aggregated(&self) -> bool {
        self.lines.len() > 1
    }
}

/// Groups `lines` (each under its own key of `keys`) by the shard of `map` their key hashes to,
/// each group as many lines, in file order, as fit in an aggregated record of [`kpl::encode_keyed`]
/// of at most `max` bytes. A line too large to share a record is a group of its own (sent as a
/// plain record under its own key, which Kinesis routes itself), as is a line on no shard.
pub fn group(map: &ShardMap, lines: &[Bytes], keys: &[String], max: usize) -> Vec<ShardGroup> {
    let mut done = Vec::new();
    // The group being filled for each shard, and its size so far.
    let mut open: Vec<(Vec<usize>, usize)> =
        vec![(Vec::new(), kpl::KEYED_OVERHEAD); map.shards.len()];
    for (i, (line, key)) in lines.iter().zip(keys).enumerate() {
        let Some(shard) = map.shard_of(hash_key(key)) else {
            done.push(ShardGroup {
                shard: None,
                lines: vec![i],
            });
            continue;
        };
        let (members, size) = &mut open[shard];
        let mut add = kpl::keyed_line_size(line.len(), key.len(), members.len());
        if !members.is_empty() && *size + add > max {
            done.push(ShardGroup {
                shard: Some(shard),
                lines: std::mem::take(members),
            });
            *size = kpl::KEYED_OVERHEAD;
            add = kpl::keyed_line_size(line.len(), key.len(), 0);
        }
        members.push(i);
        *size += add;
    }
    for (shard, (members, _)) in open.into_iter().enumerate() {
        if !members.is_empty() {
            done.push(ShardGroup {
                shard: Some(shard),
                lines: members,
            });
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u128 = u128::MAX;

    fn listed(id: &str, start: u128, end: u128, open: bool) -> ListedShard {
        ListedShard {
            id: id.into(),
            starting_hash_key: start.to_string(),
            ending_hash_key: end.to_string(),
            open,
        }
    }

    /// Two open shards splitting the space at its middle, as CreateStream with 2 shards makes
    /// them, and the closed parent they were split from.
    fn two_shards() -> ShardMap {
        let half = TOP / 2;
        ShardMap::new([
            listed("shardId-000000000002", half + 1, TOP, true),
            listed("shardId-000000000000", 0, TOP, false),
            listed("shardId-000000000001", 0, half, true),
        ])
        .expect("a map")
    }

    #[test]
    fn keys_hash_as_kinesis_hashes_them() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661.
        assert_eq!(hash_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }

    #[test]
    fn lookups_follow_the_range_edges_and_ignore_closed_shards() {
        let map = two_shards();
        let ids: Vec<&str> = map.shards().iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["shardId-000000000001", "shardId-000000000002"]);
        let half = TOP / 2;
        assert_eq!(map.shard_of(0), Some(0));
        assert_eq!(
            map.shard_of(half),
            Some(0),
            "the ending hash key is in the range"
        );
        assert_eq!(
            map.shard_of(half + 1),
            Some(1),
            "the starting hash key is too"
        );
        assert_eq!(map.shard_of(TOP), Some(1));
    }

    #[test]
    fn a_gap_in_the_listing_is_on_no_shard() {
        let map =
            ShardMap::new([listed("a", 10, 19, true), listed("b", 30, 39, true)]).expect("a map");
        assert_eq!(map.shard_of(9), None);
        assert_eq!(map.shard_of(10), Some(0));
        assert_eq!(map.shard_of(19), Some(0));
        assert_eq!(map.shard_of(20), None);
        assert_eq!(map.shard_of(29), None);
        assert_eq!(map.shard_of(30), Some(1));
        assert_eq!(map.shard_of(39), Some(1));
        assert_eq!(map.shard_of(40), None);
    }

    #[test]
    fn unusable_listings_are_errors() {
        let err = |l: Vec<ListedShard>| ShardMap::new(l).expect_err("unusable");
        assert!(err(vec![]).contains("no open shard"));
        assert!(err(vec![listed("a", 0, TOP, false)]).contains("no open shard"));
        let mut bad = listed("a", 0, 1, true);
        bad.ending_hash_key = "340282366920938463463374607431768211456".into(); // 2^128
        assert!(err(vec![bad]).contains("shard a: hash key"));
        assert!(err(vec![listed("a", 5, 4, true)]).contains("above"));
        let e = err(vec![listed("a", 0, 10, true), listed("b", 10, 20, true)]);
        assert!(e.contains("overlapping"), "{e}");
    }

    fn key_of(line: &Bytes) -> String {
        super::super::kinesis::partition_key(crate::config::PartitionKeyOption::Deterministic, line)
    }

    #[test]
    fn lines_are_grouped_by_the_shard_of_their_own_key_in_file_order() {
        let map = two_shards();
        let lines: Vec<Bytes> = (0..200)
            .map(|i| Bytes::from(format!("line {i}\n")))
            .collect();
        let keys: Vec<String> = lines.iter().map(key_of).collect();
        let groups = group(&map, &lines, &keys, 51_200);
        assert_eq!(groups.len(), 2, "{groups:?}");
        let mut seen = Vec::new();
        for g in &groups {
            let shard = g.shard.expect("every hash is covered");
            assert!(g.lines.windows(2).all(|w| w[0] < w[1]), "file order");
            for &i in &g.lines {
                assert_eq!(map.shard_of(hash_key(&keys[i])), Some(shard));
                seen.push(i);
            }
        }
        seen.sort();
        assert_eq!(seen, (0..200).collect::<Vec<_>>(), "every line once");
    }

    #[test]
    fn groups_stay_within_the_size_and_large_lines_go_alone() {
        // One shard, so the lines' order decides the groups.
        let map = ShardMap::new([listed("a", 0, TOP, true)]).expect("a map");
        let mut lines: Vec<Bytes> = (0..300)
            .map(|i| Bytes::from(format!("{i:04} {}\n", "x".repeat(i % 90))))
            .collect();
        lines[150] = Bytes::from(vec![b'y'; 5_000]);
        let keys: Vec<String> = lines.iter().map(key_of).collect();
        let max = 2_000;
        let groups = group(&map, &lines, &keys, max);
        let alone = groups
            .iter()
            .find(|g| g.lines == [150])
            .expect("the large line is a group of its own");
        assert!(!alone.is_aggregated());
        let flat: Vec<usize> = groups.iter().flat_map(|g| g.lines.clone()).collect();
        assert_eq!(flat, (0..300).collect::<Vec<_>>());
        for g in groups.iter().filter(|g| g.is_aggregated()) {
            let encoded = kpl::encode_keyed(g.lines.iter().map(|&i| (&lines[i], keys[i].as_str())));
            assert!(encoded.len() <= max, "{} > {max}", encoded.len());
            // Full: the next line would not have fitted.
            let next = g.lines[g.lines.len() - 1] + 1;
            if next < lines.len() && next != 150 {
                let more = kpl::keyed_line_size(lines[next].len(), 32, g.lines.len());
                assert!(encoded.len() + more > max);
            }
        }
    }

    #[test]
    fn a_key_whose_hash_is_a_range_edge_goes_to_the_shard_of_that_edge() {
        let lines: Vec<Bytes> = vec![
            Bytes::from_static(b"edge\n"),
            Bytes::from_static(b"other\n"),
        ];
        let keys: Vec<String> = lines.iter().map(key_of).collect();
        let h = hash_key(&keys[0]);
        let shard_of_edge_line = |map: &ShardMap| {
            let groups = group(map, &lines, &keys, 51_200);
            let g = groups
                .iter()
                .find(|g| g.lines.contains(&0))
                .expect("grouped");
            map.shards()[g.shard.expect("on a shard")].id.clone()
        };
        // The hash is the first key of the upper shard, then the last key of the lower one.
        let starts_upper = ShardMap::new([
            listed("lower", 0, h - 1, true),
            listed("upper", h, TOP, true),
        ])
        .expect("a map");
        assert_eq!(shard_of_edge_line(&starts_upper), "upper");
        let ends_lower = ShardMap::new([
            listed("lower", 0, h, true),
            listed("upper", h + 1, TOP, true),
        ])
        .expect("a map");
        assert_eq!(shard_of_edge_line(&ends_lower), "lower");
    }

    #[test]
    fn a_line_on_no_shard_goes_alone_and_unaggregated() {
        let lines: Vec<Bytes> = (0..50).map(|i| Bytes::from(format!("{i}\n"))).collect();
        let keys: Vec<String> = lines.iter().map(key_of).collect();
        // Only the lower half of the hash space is covered.
        let map = ShardMap::new([listed("low", 0, TOP / 2, true)]).expect("a map");
        let groups = group(&map, &lines, &keys, 51_200);
        for g in &groups {
            for &i in &g.lines {
                let covered = hash_key(&keys[i]) <= TOP / 2;
                assert_eq!(g.shard.is_some(), covered);
                if !covered {
                    assert_eq!(g.lines.len(), 1);
                }
            }
        }
        assert!(groups.iter().any(|g| g.shard.is_none()));
        assert_eq!(groups.iter().filter(|g| g.shard.is_some()).count(), 1);
    }
}
