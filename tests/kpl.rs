//! `kplAggregation`: lines packed into KPL aggregated records, through the real binary, against
//! tools/fake-aws (with failed records) and kinesalite. Every record is de-aggregated with a
//! decoder written from the published format (tests/support/kpl.rs), magic and MD5 checked.

mod support;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use md5::{Digest, Md5};
use support::agent::{eventually, Agent};
use support::fake::FakeAws;
use support::kpl::{aws_module_user_records, deaggregate, deaggregate_with_aws_module};
use support::{aws_test_env, Emulators, KinesisRecord, ListedShard};

const WAIT: Duration = Duration::from_secs(120);

/// `n` numbered lines of varied length, one of 60,000 bytes (more than an aggregated record
/// holds: it goes as a plain record), written to `path`.
fn write_lines(path: &Path, n: usize) -> Vec<Vec<u8>> {
    write_numbered(path, 0..n)
}

/// The lines numbered `numbers`, as [`write_lines`] writes them (the one in the middle of
/// 60,000 bytes), appended to `path`.
fn write_numbered(path: &Path, numbers: Range<usize>) -> Vec<Vec<u8>> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    let mut written = Vec::new();
    let middle = numbers.start + numbers.len() / 2;
    for i in numbers {
        let pad = if i == middle { 60_000 } else { i % 300 };
        let line = format!("kpl line {i:07} {}\n", "k".repeat(pad)).into_bytes();
        f.write_all(&line).expect("write");
        written.push(line);
    }
    written
}

/// The user records of every Kinesis record, by line, and how many Kinesis records there were.
/// Panics on a record that does not de-aggregate, or whose lines are not in file order.
fn lines_of(records: &[(String, Vec<u8>)]) -> (HashMap<Vec<u8>, usize>, usize) {
    let mut lines = HashMap::new();
    for (key, data) in records {
        let users = deaggregate(key, data).unwrap_or_else(|e| panic!("bad record: {e}"));
        let numbers: Vec<&[u8]> = users.iter().map(|u| &u.data[..17]).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "lines of one aggregated record in file order"
        );
        for u in users {
            assert_eq!(
                u.partition_key, *key,
                "one partition key per aggregated record"
            );
            *lines.entry(u.data).or_insert(0) += 1;
        }
    }
    (lines, records.len())
}

fn config(endpoint: &str, file: &Path, stream: &str) -> String {
    config_with(endpoint, file, stream, "RANDOM")
}

fn config_with(endpoint: &str, file: &Path, stream: &str, keys: &str) -> String {
    format!(
        r#"{{ "kinesis.endpoint": "{endpoint}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "{stream}", "kplAggregation": true,
                           "partitionKeyOption": "{keys}",
                           "maxBufferAgeMillis": 1000, "initialPosition": "START_OF_FILE" }} ] }}"#,
        file.display()
    )
}

/// The DETERMINISTIC key of a line: the hex MD5 of its bytes.
fn key_of(line: &[u8]) -> String {
    Md5::digest(line)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash key Kinesis routes a partition key by: its MD5 as a 128-bit big-endian number.
fn hash_of(key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

#[test]
fn every_line_arrives_once_in_aggregated_records_also_when_records_fail() {
    let fake = FakeAws::start(&["--stream", "kpl-stream", "--seed", "5"]);
    fake.set_faults(r#"{"fail_records": 0.3}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let written = write_lines(&file, 20_000);
    let mut agent = Agent::start(
        dir.path(),
        &config(&fake.endpoint, &file, "kpl-stream"),
        &fake.env(),
    );
    assert!(
        eventually(WAIT, || {
            let (lines, _) = lines_of(&fake.records("kpl-stream"));
            written.iter().all(|l| lines.contains_key(l))
        }),
        "stats {}; log:\n{}",
        fake.stats(),
        agent.log_text()
    );
    assert!(agent.stop().success());
    let (lines, records) = lines_of(&fake.records("kpl-stream"));
    assert_eq!(lines.len(), written.len(), "nothing else arrived");
    assert!(
        lines.values().all(|n| *n == 1),
        "a failed aggregated record is sent again whole, and only it"
    );
    println!(
        "{} lines in {records} Kinesis records; stats {}",
        written.len(),
        fake.stats()
    );
    // About 200 bytes a line, 51,200 bytes an aggregated record.
    assert!(records * 100 < written.len(), "{records} records");
    let failed = fake.stats()["destinations"]["kpl-stream"]["records_failed"]
        .as_u64()
        .unwrap_or(0);
    assert!(failed > 0, "faults were injected");
    // The progress line at shutdown counts lines as ever, then the Kinesis records they took.
    let log = agent.log_text();
    let progress = log
        .lines()
        .rfind(|l| l.contains("Tailer Progress"))
        .expect("a progress line");
    assert!(
        progress.contains(&format!("successfully sent {} records", written.len()))
            && progress.contains(&format!("They were sent in {records} Kinesis records")),
        "{progress}"
    );
}

#[test]
fn kinesalite_stores_aggregated_records_that_deaggregate_to_the_lines_written() {
    let emu = Emulators::shared();
    emu.create_stream("kpl-kinesalite", 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let written = write_lines(&file, 5_000);
    let mut agent = Agent::start(
        dir.path(),
        &config(&emu.kinesis_endpoint, &file, "kpl-kinesalite"),
        &aws_test_env(),
    );
    let stored = || -> Vec<(String, Vec<u8>)> {
        emu.kinesis_records("kpl-kinesalite")
            .into_iter()
            .map(|r| (r.partition_key, r.data))
            .collect()
    };
    assert!(
        eventually(WAIT, || {
            let (lines, _) = lines_of(&stored());
            lines.len() == written.len()
        }),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let (lines, records) = lines_of(&stored());
    assert!(written.iter().all(|l| lines.get(l) == Some(&1)));
    assert!(records * 50 < written.len(), "{records} records");

    // The AWS deaggregation module (Python, as a Lambda function would use it) gives exactly
    // the lines written.
    let mut by_aws = deaggregate_with_aws_module(&stored());
    let mut expected = written.clone();
    by_aws.sort();
    expected.sort();
    assert!(by_aws == expected, "{} user records", by_aws.len());
}

/// For each line, de-aggregated by the AWS module: (copies on a shard whose hash key range holds
/// the hash of the line's key, copies on another shard). Panics on a user record whose key is
/// not the MD5 of its line.
fn placement(
    records: &[KinesisRecord],
    shards: &[ListedShard],
) -> HashMap<Vec<u8>, (usize, usize)> {
    let pairs: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| (r.partition_key.clone(), r.data.clone()))
        .collect();
    let by_aws = aws_module_user_records(&pairs);
    // The decoder written from the format agrees with the AWS module.
    let mut ours: Vec<(String, Vec<u8>)> = pairs
        .iter()
        .flat_map(|(key, data)| deaggregate(key, data).expect("de-aggregates"))
        .map(|u| (u.partition_key, u.data))
        .collect();
    let mut theirs: Vec<(String, Vec<u8>)> = by_aws
        .iter()
        .map(|u| (u.partition_key.clone(), u.data.clone()))
        .collect();
    ours.sort();
    theirs.sort();
    assert!(
        ours == theirs,
        "{} vs {} user records",
        ours.len(),
        theirs.len()
    );
    let mut placed: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
    for u in by_aws {
        assert_eq!(
            u.partition_key,
            key_of(&u.data),
            "every line under its own key"
        );
        let shard_id = &records[u.record].shard_id;
        let shard = shards
            .iter()
            .find(|s| &s.shard_id == shard_id)
            .expect("a listed shard");
        let hash = hash_of(&u.partition_key);
        let entry = placed.entry(u.data).or_default();
        if (shard.start..=shard.end).contains(&hash) {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    placed
}

#[test]
fn deterministic_keys_land_on_the_shard_they_hash_to_also_across_a_split() {
    let emu = Emulators::shared();
    let stream = "kpl-deterministic";
    emu.create_stream(stream, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let before = write_numbered(&file, 0..3_000);
    let started = std::time::Instant::now();
    let mut agent = Agent::start(
        dir.path(),
        &config_with(&emu.kinesis_endpoint, &file, stream, "DETERMINISTIC"),
        &aws_test_env(),
    );
    let arrived = |lines: &[Vec<u8>]| {
        let placed = placement(&emu.kinesis_records(stream), &emu.list_shards(stream));
        lines.iter().all(|l| placed.get(l).is_some_and(|p| p.0 > 0))
    };
    assert!(
        eventually(WAIT, || arrived(&before)),
        "log:\n{}",
        agent.log_text()
    );
    let records = emu.kinesis_records(stream);
    let placed = placement(&records, &emu.list_shards(stream));
    assert_eq!(placed.len(), before.len(), "nothing else arrived");
    assert!(
        placed.values().all(|p| *p == (1, 0)),
        "every line once, on the shard its key hashes to"
    );
    assert!(
        records.len() * 50 < before.len(),
        "{} records",
        records.len()
    );
    let per_shard =
        |records: &[KinesisRecord], id: &str| records.iter().filter(|r| r.shard_id == id).count();
    assert!(per_shard(&records, "shardId-000000000000") > 0);
    assert!(per_shard(&records, "shardId-000000000001") > 0);

    // Split the first shard at the middle of its range while the agent runs: it learns of it
    // from the next record that lands on a child shard, and sends those lines again whose keys
    // now hash to the other child.
    let shards = emu.list_shards(stream);
    let first = &shards[0];
    emu.split_shard(
        stream,
        &first.shard_id,
        first.start + (first.end - first.start) / 2 + 1,
    );
    // Unless the agent's periodic refresh (60 s) came first, it still groups by the old map.
    let stale_map = started.elapsed() < Duration::from_secs(50);
    let after = write_numbered(&file, 3_000..6_000);
    assert!(
        eventually(WAIT, || arrived(&after)),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let records = emu.kinesis_records(stream);
    let shards = emu.list_shards(stream);
    assert_eq!(shards.iter().filter(|s| s.open).count(), 3, "{shards:?}");
    let placed = placement(&records, &shards);
    let written: Vec<&Vec<u8>> = before.iter().chain(&after).collect();
    assert_eq!(placed.len(), written.len(), "nothing else arrived");
    assert!(
        written.iter().all(|l| placed[*l].0 == 1),
        "every line once on the shard its key hashes to"
    );
    let misplaced = placed.values().filter(|p| p.1 > 0).count();
    println!(
        "{} lines in {} Kinesis records; {misplaced} lines also in a record that landed on the other child of the split",
        written.len(),
        records.len()
    );
    if stale_map {
        assert!(
            misplaced > 0,
            "the split was learnt from a record on a child shard"
        );
    }
    // Both children of the split got lines.
    for child in shards
        .iter()
        .filter(|s| s.open && s.shard_id != "shardId-000000000001")
    {
        assert!(
            per_shard(&records, &child.shard_id) > 0,
            "{}",
            child.shard_id
        );
    }
}

#[test]
fn without_list_shards_deterministic_lines_go_as_plain_records_under_their_own_keys() {
    let fake = FakeAws::start(&["--stream", "kpl-no-map", "--seed", "5"]);
    fake.set_faults(r#"{"access_denied": true, "operations": ["ListShards"]}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    // More lines than one PutRecords call takes as plain records.
    let written = write_lines(&file, 2_000);
    let mut agent = Agent::start(
        dir.path(),
        &config_with(&fake.endpoint, &file, "kpl-no-map", "DETERMINISTIC"),
        &fake.env(),
    );
    assert!(
        eventually(WAIT, || fake.records("kpl-no-map").len() >= written.len()),
        "stats {}; log:\n{}",
        fake.stats(),
        agent.log_text()
    );
    assert!(agent.stop().success());
    let records = fake.records("kpl-no-map");
    let mut got: Vec<&Vec<u8>> = Vec::new();
    for (key, data) in &records {
        assert!(
            !data.starts_with(&[0xF3, 0x89, 0x9A, 0xC2]),
            "a plain record"
        );
        assert_eq!(*key, key_of(data), "under the line's own key");
        got.push(data);
    }
    let mut expected: Vec<&Vec<u8>> = written.iter().collect();
    got.sort();
    expected.sort();
    assert!(got == expected, "{} records", got.len());
    let log = agent.log_text();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ListShards failed"))
        .collect();
    assert_eq!(said.len(), 1, "said once:\n{log}");
    assert!(
        said[0].contains("Fix: allow kinesis:ListShards"),
        "{}",
        said[0]
    );
    assert!(said[0].contains("plain records"), "{}", said[0]);
}
