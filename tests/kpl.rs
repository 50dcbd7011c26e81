//! `kplAggregation`: lines packed into KPL aggregated records, through the real binary, against
//! tools/fake-aws (with failed records) and kinesalite. Every record is de-aggregated with a
//! decoder written from the published format (tests/support/kpl.rs), magic and MD5 checked.

mod support;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::agent::{eventually, Agent};
use support::fake::FakeAws;
use support::kpl::{deaggregate, deaggregate_with_aws_module};
use support::{aws_test_env, Emulators};

const WAIT: Duration = Duration::from_secs(120);

/// `n` numbered lines of varied length, one of 60,000 bytes (more than an aggregated record
/// holds: it goes as a plain record), written to `path`.
fn write_lines(path: &Path, n: usize) -> Vec<Vec<u8>> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    let mut written = Vec::new();
    for i in 0..n {
        let pad = if i == n / 2 { 60_000 } else { i % 300 };
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
    format!(
        r#"{{ "kinesis.endpoint": "{endpoint}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "{stream}", "kplAggregation": true,
                           "maxBufferAgeMillis": 1000, "initialPosition": "START_OF_FILE" }} ] }}"#,
        file.display()
    )
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
