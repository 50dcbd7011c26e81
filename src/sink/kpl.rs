//! KPL aggregated records (`kplAggregation`): many lines in one Kinesis record, in the format
//! the Kinesis Producer Library writes and the KCL, the AWS deaggregation modules and Firehose
//! (with a Kinesis stream as its source) read: 4 magic bytes `F3 89 9A C2`, a protobuf
//! `AggregatedRecord` (partition key table, explicit hash key table, records), then the MD5 of
//! the protobuf bytes.
//!
//! Owns: grouping a batch's lines into aggregated records of at most a given size, and encoding
//! them, under one partition key ([`encode`]) or one per line ([`encode_keyed`], with its size
//! rules [`KEYED_OVERHEAD`] and [`keyed_line_size`]). Does not own: making partition keys,
//! grouping by shard (`shards`) or sending.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use prost::Message;

/// The first bytes of every aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Bytes an aggregated record adds to its lines besides their framing: magic, checksum and the
/// partition key table's one entry (a `RANDOM` key is at most 13 characters; 64 leaves room).
const AGGREGATE_OVERHEAD: usize = MAGIC.len() + 16 + 2 + 64;

/// Bytes an aggregated record with one partition key per line adds besides its lines: magic
/// and checksum (each line's key is counted by [`keyed_line_size`]).
pub const KEYED_OVERHEAD: usize = MAGIC.len() + 16;

/// The protobuf message (proto2), as published in the KPL's `aggregation-format.md`.
#[derive(Clone, PartialEq, Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<UserRecord>,
}

#[derive(Clone, PartialEq, Message)]
struct UserRecord {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", required, tag = "3")]
    data: Bytes,
}

/// One Kinesis record of a call: the lines `lines` of the batch, aggregated, or a single line
/// sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub lines: Range<usize>,
}

impl Group {
    /// More than one line: sent as an aggregated record.
    pub fn is_aggregated(&self) -> bool {
        self.lines.len() > 1
    }
}

/// The size of one line inside an aggregated record, framing included.
fn framed(line: usize) -> usize {
    let data = 1 + varint_len(line as u64) + line;
    let inner = 2 + data;
    1 + varint_len(inner as u64) + inner
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// The bytes a line of `line` bytes under its own key of `key` bytes adds to an aggregated
/// record of [`encode_keyed`] in which it is the `index`th line (0-based): its framing, the
/// extra bytes of a partition key index above 127, and its entry in the partition key table.
pub fn keyed_line_size(line: usize, key: usize, index: usize) -> usize {
    let data = 1 + varint_len(line as u64) + line;
    let inner = 1 + varint_len(index as u64) + data;
    let record = 1 + varint_len(inner as u64) + inner;
    record + 1 + varint_len(key as u64) + key
}

/// Splits `lines` into groups, in order: each as many lines as fit in an aggregated record of
/// at most `max` bytes. A line too large to share a record (or alone) is a group of its own,
/// sent as a plain record.
pub fn group(lines: &[Bytes], max: usize) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut size = AGGREGATE_OVERHEAD;
    for (i, line) in lines.iter().enumerate() {
        let add = framed(line.len());
        if i > start && size + add > max {
            groups.push(Group { lines: start..i });
            start = i;
            size = AGGREGATE_OVERHEAD;
        }
        size += add;
    }
    if start < lines.len() {
        groups.push(Group {
            lines: start..lines.len(),
        });
    }
    groups
}

/// The aggregated record of `lines`, all under the partition key `key`.
pub fn encode(lines: &[Bytes], key: &str) -> Bytes {
    let message = AggregatedRecord {
        partition_key_table: vec![key.to_string()],
        explicit_hash_key_table: Vec::new(),
        records: lines
            .iter()
            .map(|data| UserRecord {
                partition_key_index: 0,
                explicit_hash_key_index: None,
                data: data.clone(),
            })
            .collect(),
    };
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(MAGIC.len() + len + 16);
    out.put_slice(&MAGIC);
    message.encode_raw(&mut out);
    let digest = Md5::digest(&out[MAGIC.len()..]);
    out.put_slice(&digest);
    out.freeze()
}

/// The aggregated record of `lines`, each under its own partition key (`keys`, one per line, in
/// the same order): the partition key table holds the keys in line order, line `i` points at
/// entry `i`. Duplicate keys (identical lines) are not merged: the table may repeat a key.
pub fn encode_keyed<'a>(lines: impl IntoIterator<Item = (&'a Bytes, &'a str)>) -> Bytes {
    let mut message = AggregatedRecord {
        partition_key_table: Vec::new(),
        explicit_hash_key_table: Vec::new(),
        records: Vec::new(),
    };
    for (index, (data, key)) in lines.into_iter().enumerate() {
        message.partition_key_table.push(key.to_string());
        message.records.push(UserRecord {
            partition_key_index: index as u64,
            explicit_hash_key_index: None,
            data: data.clone(),
        });
    }
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(MAGIC.len() + len + 16);
    out.put_slice(&MAGIC);
    message.encode_raw(&mut out);
    let digest = Md5::digest(&out[MAGIC.len()..]);
    out.put_slice(&digest);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(sizes: &[usize]) -> Vec<Bytes> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, n)| Bytes::from(vec![b'a' + i as u8; *n]))
            .collect()
    }

    #[test]
    fn groups_fill_each_record_up_to_the_limit_and_keep_order() {
        let l = lines(&[100; 10]);
        let per = framed(100);
        let max = AGGREGATE_OVERHEAD + 4 * per;
        let g = group(&l, max);
        assert_eq!(
            g,
            vec![
                Group { lines: 0..4 },
                Group { lines: 4..8 },
                Group { lines: 8..10 }
            ]
        );
        for grp in &g {
            let encoded = encode(&l[grp.lines.clone()], "123456.123456");
            assert!(encoded.len() <= max, "{} > {max}", encoded.len());
        }
    }

    #[test]
    fn a_line_too_large_to_share_a_record_is_a_group_of_its_own() {
        let l = lines(&[10, 5000, 10, 10]);
        let g = group(&l, 1000);
        assert_eq!(
            g,
            vec![
                Group { lines: 0..1 },
                Group { lines: 1..2 },
                Group { lines: 2..4 }
            ]
        );
        assert!(!g[1].is_aggregated());
        assert!(g[2].is_aggregated());
    }

    #[test]
    fn framing_is_counted_as_prost_encodes_it() {
        for n in [0, 1, 100, 127, 128, 16_383, 16_384, 60_000] {
            let record = UserRecord {
                partition_key_index: 0,
                explicit_hash_key_index: None,
                data: Bytes::from(vec![0; n]),
            };
            let message = AggregatedRecord {
                partition_key_table: Vec::new(),
                explicit_hash_key_table: Vec::new(),
                records: vec![record],
            };
            assert_eq!(message.encoded_len(), framed(n), "line of {n} bytes");
            // At most: the record's tag and length (1 + 3 for up to 1 MiB), its partition key
            // index (2), its data's tag and length (1 + 3).
            assert!(framed(n) - n <= crate::config::KPL_LINE_OVERHEAD);
        }
    }

    #[test]
    fn keyed_sizes_add_up_to_what_is_encoded() {
        // Across the partition key index's one- to two-byte boundary (128 lines).
        let l: Vec<Bytes> = (0..200).map(|i| Bytes::from(vec![b'x'; i * 7])).collect();
        let keys: Vec<String> = (0..l.len()).map(|i| format!("{i:032x}")).collect();
        let mut size = KEYED_OVERHEAD;
        for n in 1..=l.len() {
            size += keyed_line_size(l[n - 1].len(), keys[n - 1].len(), n - 1);
            let encoded = encode_keyed(l[..n].iter().zip(keys.iter().map(String::as_str)));
            assert_eq!(encoded.len(), size, "{n} lines");
        }
        let decoded = AggregatedRecord::decode(
            &encode_keyed(l.iter().zip(keys.iter().map(String::as_str)))[4..][..size - 20],
        )
        .expect("decodes");
        assert_eq!(decoded.partition_key_table, keys);
        for (i, r) in decoded.records.iter().enumerate() {
            assert_eq!(r.partition_key_index, i as u64);
            assert_eq!(r.data, l[i]);
        }
    }
}
