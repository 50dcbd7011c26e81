//! Kinesis Data Streams `PutRecords` behind [`PutBatch`].
//!
//! Owns: building the request (stream name, not ARN: kinesalite needs the name, and the Java
//! agent sends the name too), partition keys, reading failed records out of the answer, and,
//! for `DETERMINISTIC` keys with `kplAggregation`, the stream's shard map: fetched with
//! `ListShards`, refreshed every [`SHARD_MAP_REFRESH`] and when an answer shows the stream was
//! resharded, and plain records while it cannot be had. Grouping by shard is `shards`'s.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, PutRecordsResultEntry};
use bytes::Bytes;
use md5::{Digest, Md5};
use rand::Rng;
use tokio::time::Instant;
use tracing::{error, info};

use super::shards::{self, ListedShard, ShardGroup, ShardMap};
use super::{classify, failures, invalid_request, kpl, PutBatch, RecordFailure, SendError};
use crate::config::{PartitionKeyOption, KINESIS_MAX_RECORDS_PER_CALL};
use crate::metrics::Events;

/// How often the shard map is fetched again even when no answer showed a reshard, and how long
/// after a failed `ListShards` it is tried again (meanwhile lines go as plain records). Not an
/// AWS value: a reshard shows itself at once (an aggregated record lands on a shard other than
/// the one it was grouped for); this bounds how long a failure or an unseen change lasts, at
/// one `ListShards` call a minute per flow (the quota is 1,000 a second per stream).
pub const SHARD_MAP_REFRESH: Duration = Duration::from_secs(60);

/// `ListShards` pages read before giving up (a page holds up to 1,000 shards, and a stream at
/// most 20,000 open ones by default quota, plus closed ones).
const MAX_LIST_SHARDS_PAGES: usize = 100;

/// The code of an aggregated record's lines sent again because the stream was resharded under
/// it: the record landed on another shard than their keys now hash to.
pub const WRONG_SHARD: &str = "WrongShard";

pub struct KinesisPut {
    client: aws_sdk_kinesis::Client,
    stream: String,
    keys: PartitionKeyOption,
    /// `kplAggregation`: lines packed into aggregated records of at most this many bytes.
    aggregate: Option<usize>,
    /// Told how many Kinesis records each aggregated call got accepted.
    events: Option<Arc<dyn Events>>,
    /// `DETERMINISTIC` keys with `kplAggregation`: the stream's shard map.
    shard_map: Option<tokio::sync::Mutex<MapState>>,
}

/// The shard map as last fetched, and when to fetch it again.
#[derive(Debug, Default)]
struct MapState {
    /// None: never fetched, or the last `ListShards` failed.
    map: Option<Arc<ShardMap>>,
    fetched: Option<Instant>,
    /// An answer showed that `map` is out of date.
    stale: bool,
    /// The last `ListShards` failed, and that was logged.
    failing: bool,
}

impl MapState {
    /// Whether to call `ListShards` before grouping, at `now`.
    fn due(&self, now: Instant) -> bool {
        self.stale
            || self
                .fetched
                .is_none_or(|at| now.duration_since(at) >= SHARD_MAP_REFRESH)
    }
}

/// How the lines of one call became its Kinesis records.
enum Layout {
    /// One line per record (entry `i` is line `i`).
    Plain,
    /// `RANDOM` keys: runs of lines, one random key per aggregated record.
    Random(Vec<kpl::Group>),
    /// `DETERMINISTIC` keys: lines grouped by the shard of `map` their own key (`keys`) hashes
    /// to.
    ByShard {
        groups: Vec<ShardGroup>,
        keys: Vec<String>,
        map: Arc<ShardMap>,
    },
}

/// What the calls of one `put` got back.
struct Answer {
    /// Refused entries, by entry index.
    failed: Vec<RecordFailure>,
    /// The shard each entry landed on (None: refused), when asked for.
    shards: Vec<Option<String>>,
}

impl KinesisPut {
    /// `client` as configured, without the SDK's own retries: the sender retries (only the
    /// failed records, with the Java agent's backoff), so each call is one attempt and
    /// `RecordSendAttempts` counts the calls made (a put of more than 500 records, which only
    /// lines grouped by shard or sent plain for want of a shard map make, is several calls
    /// counted as one attempt).
    pub fn new(client: aws_sdk_kinesis::Client, stream: String, keys: PartitionKeyOption) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled());
        KinesisPut {
            client: aws_sdk_kinesis::Client::from_conf(config.build()),
            stream,
            keys,
            aggregate: None,
            events: None,
            shard_map: None,
        }
    }

    /// Packs the lines of each call into KPL aggregated records of at most `bytes` bytes
    /// (None: one line per record). A failed aggregated record fails all of its lines, which
    /// the sender sends again. With `DETERMINISTIC` keys every line keeps its own key and lines
    /// are grouped by shard, from the stream's shard map (`ListShards`).
    pub fn aggregating(mut self, bytes: Option<usize>, events: Arc<dyn Events>) -> Self {
        self.aggregate = bytes;
        self.events = bytes.map(|_| events);
        self.shard_map = (bytes.is_some() && self.keys == PartitionKeyOption::Deterministic)
            .then(|| tokio::sync::Mutex::new(MapState::default()));
        self
    }

    fn entry(
        &self,
        data: Bytes,
        key: String,
        explicit_hash_key: Option<u128>,
    ) -> Result<PutRecordsRequestEntry, SendError> {
        PutRecordsRequestEntry::builder()
            .data(Blob::from_maybe_shared(data))
            .partition_key(key)
            .set_explicit_hash_key(explicit_hash_key.map(|h| h.to_string()))
            .build()
            .map_err(invalid_request)
    }

    /// How to send `records` in this call.
    async fn layout(&self, records: &[Bytes]) -> Layout {
        let Some(bytes) = self.aggregate else {
            return Layout::Plain;
        };
        if self.shard_map.is_none() {
            return Layout::Random(kpl::group(records, bytes));
        }
        match self.current_map().await {
            Some(map) => {
                let keys: Vec<String> = records
                    .iter()
                    .map(|data| partition_key(PartitionKeyOption::Deterministic, data))
                    .collect();
                let groups = shards::group(&map, records, &keys, bytes);
                Layout::ByShard { groups, keys, map }
            }
            // Plain records keep the promise that a key always lands on its shard: Kinesis
            // routes each by its own key.
            None => Layout::Plain,
        }
    }

    fn entries(
        &self,
        records: &[Bytes],
        layout: &Layout,
    ) -> Result<Vec<PutRecordsRequestEntry>, SendError> {
        let mut entries = Vec::new();
        match layout {
            Layout::Plain => {
                entries.reserve(records.len());
                for data in records {
                    entries.push(self.entry(data.clone(), partition_key(self.keys, data), None)?);
                }
            }
            Layout::Random(groups) => {
                entries.reserve(groups.len());
                for group in groups {
                    let lines = &records[group.lines.clone()];
                    // One random key per aggregated record.
                    let key = partition_key(PartitionKeyOption::Random, &[]);
                    let data = if group.is_aggregated() {
                        kpl::encode(lines, &key)
                    } else {
                        lines[0].clone()
                    };
                    entries.push(self.entry(data, key, None)?);
                }
            }
            Layout::ByShard { groups, keys, map } => {
                entries.reserve(groups.len());
                for group in groups {
                    let first = group.lines[0];
                    let (data, explicit) = match group.shard {
                        // The explicit hash key (the shard's first) sends the record to the
                        // shard its lines were grouped for; the outer key, the first line's, is
                        // one of theirs.
                        Some(shard) if group.is_aggregated() => (
                            kpl::encode_keyed(
                                group.lines.iter().map(|&i| (&records[i], keys[i].as_str())),
                            ),
                            Some(map.shards()[shard].start),
                        ),
                        _ => (records[first].clone(), None),
                    };
                    entries.push(self.entry(data, keys[first].clone(), explicit)?);
                }
            }
        }
        Ok(entries)
    }

    /// Sends `entries` in calls of at most [`KINESIS_MAX_RECORDS_PER_CALL`] (one call unless
    /// lines grouped by shard, or sent plain for want of a shard map, make more records than a
    /// call takes). A call that fails as a whole is an error when it is the first; after one
    /// was accepted, its entries and those not sent yet are refused with its error, so that
    /// only they are sent again.
    async fn send(
        &self,
        entries: Vec<PutRecordsRequestEntry>,
        want_shards: bool,
    ) -> Result<Answer, SendError> {
        let total = entries.len();
        let mut answer = Answer {
            failed: Vec::new(),
            shards: Vec::new(),
        };
        let mut rest = entries;
        let mut sent = 0;
        while sent < total {
            let chunk = if rest.len() > KINESIS_MAX_RECORDS_PER_CALL {
                let tail = rest.split_off(KINESIS_MAX_RECORDS_PER_CALL);
                std::mem::replace(&mut rest, tail)
            } else {
                std::mem::take(&mut rest)
            };
            let len = chunk.len();
            let result = self
                .client
                .put_records()
                .stream_name(&self.stream)
                .set_records(Some(chunk))
                .send()
                .await
                .map_err(|e| classify(&e, &format!("Kinesis stream '{}'", self.stream)));
            match result {
                Ok(out) => {
                    let records = out.records();
                    answer
                        .failed
                        .extend(failed_records(records).into_iter().map(|f| RecordFailure {
                            index: f.index + sent,
                            ..f
                        }));
                    if want_shards {
                        answer.shards.extend((0..len).map(|i| {
                            records
                                .get(i)
                                .filter(|r| r.error_code().is_none())
                                .and_then(|r| r.shard_id())
                                .map(str::to_string)
                        }));
                    }
                }
                Err(err) if sent == 0 => return Err(err),
                Err(err) => {
                    answer
                        .failed
                        .extend((sent..total).map(|index| RecordFailure {
                            index,
                            code: err.code.clone(),
                            message: err.to_string(),
                        }));
                    answer.shards.resize(total, None);
                    return Ok(answer);
                }
            }
            sent += len;
        }
        Ok(answer)
    }

    /// The shard map to group by, fetched first when due; None while `ListShards` fails.
    async fn current_map(&self) -> Option<Arc<ShardMap>> {
        let state = self.shard_map.as_ref()?;
        let mut state = state.lock().await;
        if state.due(Instant::now()) {
            self.refresh(&mut state).await;
        }
        state.map.clone()
    }

    /// After an answer showed that `used` is out of date: the map fetched again (unless a call
    /// in flight did so already), or None when `ListShards` fails.
    async fn map_after_reshard(&self, used: &Arc<ShardMap>) -> Option<Arc<ShardMap>> {
        let state = self.shard_map.as_ref()?;
        let mut state = state.lock().await;
        let newer = state
            .map
            .as_ref()
            .is_some_and(|m| !Arc::ptr_eq(m, used) && !state.stale);
        if !newer {
            state.stale = true;
            self.refresh(&mut state).await;
        }
        state.map.clone()
    }

    async fn refresh(&self, state: &mut MapState) {
        let now = Instant::now();
        state.fetched = Some(now);
        state.stale = false;
        match self.list_shards().await {
            Ok(map) => {
                if state.failing {
                    info!(
                        "Kinesis stream '{}': ListShards works again ({} open shards); lines are aggregated by shard again.",
                        self.stream,
                        map.shards().len()
                    );
                }
                state.failing = false;
                state.map = Some(Arc::new(map));
            }
            Err(message) => {
                if !state.failing {
                    error!(
                        "Kinesis stream '{}': ListShards failed: {message}. DETERMINISTIC keys with kplAggregation need the stream's shard map, so lines are sent as plain records (each under its own key) until ListShards works; it is tried again every {} s. Fix: allow kinesis:ListShards on the stream to the agent's credentials (aws-kinesis-agent iam-policy prints the policy).",
                        self.stream,
                        SHARD_MAP_REFRESH.as_secs()
                    );
                }
                state.failing = true;
                state.map = None;
            }
        }
    }

    /// The open shards of the stream, every page of `ListShards` read.
    async fn list_shards(&self) -> Result<ShardMap, String> {
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_SHARDS_PAGES {
            let request = self.client.list_shards();
            // The first page names the stream, the next ones only the token (both at once is
            // an InvalidArgumentException).
            let request = match &token {
                Some(t) => request.next_token(t),
                None => request.stream_name(&self.stream),
            };
            let page = request
                .send()
                .await
                .map_err(|e| classify(&e, &format!("Kinesis stream '{}'", self.stream)))
                .map_err(|e| format!("{}: {}", e.code, e.message))?;
            listed.extend(page.shards().iter().map(|s| {
                let range = s.hash_key_range();
                ListedShard {
                    id: s.shard_id().to_string(),
                    starting_hash_key: range.map_or("", |r| r.starting_hash_key()).to_string(),
                    ending_hash_key: range.map_or("", |r| r.ending_hash_key()).to_string(),
                    open: s
                        .sequence_number_range()
                        .is_none_or(|r| r.ending_sequence_number().is_none()),
                }
            }));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return ShardMap::new(listed).map_err(|e| format!("unusable listing: {e}"));
            }
        }
        Err(format!(
            "still more shards after {MAX_LIST_SHARDS_PAGES} pages"
        ))
    }

    /// The lines to send again after a call of lines grouped by shard: those of refused
    /// records, and, when records landed on a shard other than the one they were grouped for
    /// (the stream was resharded), those of their lines whose keys do not hash to that shard by
    /// the map fetched again (all of them when it cannot be fetched).
    async fn by_shard_failures(
        &self,
        groups: &[ShardGroup],
        keys: &[String],
        map: &Arc<ShardMap>,
        answer: Answer,
    ) -> Vec<RecordFailure> {
        let mut failed: Vec<RecordFailure> = Vec::new();
        for f in answer.failed {
            for &line in groups.get(f.index).map_or(&[][..], |g| &g.lines[..]) {
                failed.push(RecordFailure {
                    index: line,
                    code: f.code.clone(),
                    message: f.message.clone(),
                });
            }
        }
        let moved: Vec<(usize, &str)> = resharded(groups, map, &answer.shards);
        if moved.is_empty() {
            return failed;
        }
        let fresh = self.map_after_reshard(map).await;
        for (entry, landed) in moved {
            let group = &groups[entry];
            if !group.is_aggregated() {
                // A plain record: Kinesis routed it by its own key.
                continue;
            }
            for &line in &group.lines {
                let right = fresh.as_ref().is_some_and(|m| {
                    m.shard_of(shards::hash_key(&keys[line]))
                        .is_some_and(|s| m.shards()[s].id == landed)
                });
                if !right {
                    failed.push(RecordFailure {
                        index: line,
                        code: WRONG_SHARD.into(),
                        message: format!(
                            "the stream was resharded: the aggregated record landed on {landed}, not on the shard of this line's key; sent again"
                        ),
                    });
                }
            }
        }
        failed
    }
}

/// The entries (index, shard landed on) that landed on another shard than the one of `map`
/// they were grouped for: the stream was resharded since `map` was fetched.
fn resharded<'a>(
    groups: &[ShardGroup],
    map: &ShardMap,
    landed: &'a [Option<String>],
) -> Vec<(usize, &'a str)> {
    groups
        .iter()
        .zip(landed)
        .enumerate()
        .filter_map(|(entry, (group, landed))| {
            let (shard, landed) = (group.shard?, landed.as_deref()?);
            (map.shards()[shard].id != landed).then_some((entry, landed))
        })
        .collect()
}

impl PutBatch for KinesisPut {
    async fn put(&self, records: &[Bytes]) -> Result<Vec<RecordFailure>, SendError> {
        let layout = self.layout(records).await;
        let entries = self.entries(records, &layout)?;
        let count = entries.len();
        let by_shard = matches!(layout, Layout::ByShard { .. });
        let answer = self.send(entries, by_shard).await?;
        if let Some(events) = &self.events {
            events.kinesis_records_sent(count.saturating_sub(answer.failed.len()) as u64);
        }
        Ok(match &layout {
            Layout::Plain => answer.failed,
            Layout::ByShard { groups, keys, map } => {
                self.by_shard_failures(groups, keys, map, answer).await
            }
            // Every line of a failed aggregated record failed.
            Layout::Random(groups) => answer
                .failed
                .into_iter()
                .filter_map(|f| Some((groups.get(f.index)?.lines.clone(), f)))
                .flat_map(|(lines, f)| {
                    lines.map(move |index| RecordFailure {
                        index,
                        code: f.code.clone(),
                        message: f.message.clone(),
                    })
                })
                .collect(),
        })
    }

    fn describe(&self) -> String {
        format!("Kinesis stream '{}' (PutRecords)", self.stream)
    }
}

/// The records of a `PutRecords` answer that carry an error code.
pub fn failed_records(entries: &[PutRecordsResultEntry]) -> Vec<RecordFailure> {
    failures(entries.iter().map(|e| (e.error_code(), e.error_message())))
}

/// `RANDOM`: a uniform number in [0, 1 000 000) written as a decimal, like the Java agent's
/// `Double.toString(nextDouble(1000000))` (here with 6 decimals, so at most 13 characters).
/// `DETERMINISTIC`: the hex MD5 of the record's bytes. The Java agent hashes its whole read
/// buffer by accident (reference 5.3), so its keys differ; ours depend on the record alone.
pub fn partition_key(option: PartitionKeyOption, data: &[u8]) -> String {
    match option {
        PartitionKeyOption::Random => {
            // The same values and text as `format!("{x:.6}")` of a uniform f64 in
            // [0, 1 000 000), without float formatting (about a tenth of the per-record cost).
            random_key(rand::rng().random_range(0..1_000_000_000_000))
        }
        PartitionKeyOption::Deterministic => {
            let digest = Md5::digest(data);
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// `micros` (below 10^12) as `<seconds>.<6 digits>`, e.g. `482913.000417`, written digit by
/// digit rather than through `format!`'s machinery.
fn random_key(micros: u64) -> String {
    let mut digits = [0u8; 13];
    let mut at = digits.len();
    let (mut whole, mut fraction) = (micros / 1_000_000, micros % 1_000_000);
    for _ in 0..6 {
        at -= 1;
        digits[at] = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    at -= 1;
    digits[at] = b'.';
    loop {
        at -= 1;
        digits[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    digits[at..].iter().map(|&d| d as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_indices_come_from_error_codes() {
        let ok = PutRecordsResultEntry::builder()
            .sequence_number("1")
            .shard_id("shardId-0")
            .build();
        let bad = PutRecordsResultEntry::builder()
            .error_code("ProvisionedThroughputExceededException")
            .error_message("Rate exceeded")
            .build();
        let failed = failed_records(&[ok.clone(), bad.clone(), ok, bad]);
        assert_eq!(
            failed.iter().map(|f| f.index).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(failed[0].code, "ProvisionedThroughputExceededException");
        assert_eq!(failed[0].message, "Rate exceeded");
    }

    #[tokio::test(start_paused = true)]
    async fn the_shard_map_is_due_at_first_every_minute_and_when_stale() {
        let mut state = MapState::default();
        assert!(state.due(Instant::now()), "never fetched");
        state.fetched = Some(Instant::now());
        assert!(!state.due(Instant::now()));
        tokio::time::advance(SHARD_MAP_REFRESH - Duration::from_millis(1)).await;
        assert!(!state.due(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(state.due(Instant::now()), "a minute later");
        state.fetched = Some(Instant::now());
        state.stale = true;
        assert!(state.due(Instant::now()), "an answer showed a reshard");
    }

    #[test]
    fn records_on_another_shard_than_grouped_for_show_a_reshard() {
        let map = ShardMap::new([
            ListedShard {
                id: "shardId-000000000000".into(),
                starting_hash_key: "0".into(),
                ending_hash_key: "99".into(),
                open: true,
            },
            ListedShard {
                id: "shardId-000000000001".into(),
                starting_hash_key: "100".into(),
                ending_hash_key: u128::MAX.to_string(),
                open: true,
            },
        ])
        .expect("a map");
        let group = |shard, lines: &[usize]| ShardGroup {
            shard,
            lines: lines.to_vec(),
        };
        let groups = [
            group(Some(0), &[0, 2]),
            group(Some(1), &[1, 3]),
            group(None, &[4]),
            group(Some(0), &[5]),
        ];
        let landed = |ids: [Option<&str>; 4]| -> Vec<Option<String>> {
            ids.iter().map(|i| i.map(str::to_string)).collect()
        };
        let as_grouped = landed([
            Some("shardId-000000000000"),
            Some("shardId-000000000001"),
            Some("shardId-000000000001"),
            Some("shardId-000000000000"),
        ]);
        assert!(resharded(&groups, &map, &as_grouped).is_empty());
        // The first shard was split into 2 and 3; a refused record (None) and a line on no
        // shard of the map say nothing.
        let after_split = landed([
            Some("shardId-000000000002"),
            Some("shardId-000000000001"),
            Some("shardId-000000000000"),
            None,
        ]);
        assert_eq!(
            resharded(&groups, &map, &after_split),
            vec![(0, "shardId-000000000002")]
        );
    }

    #[test]
    fn random_keys_are_seconds_dot_six_digits() {
        for micros in [0, 7, 999_999, 1_000_000, 482_913_000_417, 999_999_999_999] {
            assert_eq!(
                random_key(micros),
                format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
            );
        }
    }

    #[test]
    fn partition_keys() {
        let k = partition_key(PartitionKeyOption::Deterministic, b"hello\n");
        assert_eq!(k, "b1946ac92492d2347c6235b4d2611184");
        for _ in 0..1000 {
            let k = partition_key(PartitionKeyOption::Random, b"x");
            assert!(
                k.len() <= crate::config::KINESIS_KEY_RESERVE && !k.is_empty(),
                "{k}"
            );
            let v: f64 = k.parse().expect("a number");
            assert!((0.0..1_000_000.0).contains(&v));
        }
    }
}
