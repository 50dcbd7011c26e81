//! The agent end to end: the real binary, real files, kinesalite and moto on loopback.

mod support;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::agent::{eventually, run_to_exit, Agent};
use support::{aws_test_env, Emulators};

const WAIT: Duration = Duration::from_secs(90);

fn append(path: &Path, lines: &[String]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log file");
    for line in lines {
        f.write_all(line.as_bytes()).expect("write");
    }
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix} line {i:06} {}\n", "x".repeat(i % 50)))
        .collect()
}

fn kinesis_data(emu: &Emulators, stream: &str) -> Vec<String> {
    emu.kinesis_records(stream)
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect()
}

/// Firehose delivers to S3 (moto writes one object per call, the records concatenated).
fn firehose_lines(emu: &Emulators, bucket: &str) -> Vec<String> {
    let mut all = Vec::new();
    for (_, body) in emu.s3_objects(bucket, "") {
        all.extend_from_slice(&body);
    }
    String::from_utf8_lossy(&all)
        .split_inclusive('\n')
        .map(str::to_string)
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn endpoints(emu: &Emulators) -> String {
    format!(
        r#""kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "firehose.endpoint": "{}", "cloudwatch.emitMetrics": false,"#,
        emu.kinesis_endpoint, emu.moto_endpoint
    )
}

#[test]
fn release_sample_config_ships_every_line_once_to_both_destinations() {
    let emu = Emulators::shared();
    emu.create_stream("sample-stream", 2);
    emu.create_delivery_stream("sample-delivery", "sample-bucket", "");
    let dir = tempfile::tempdir().expect("tempdir");
    let pattern = dir.path().join("app.log*");
    // The Java agent's release sample, with the endpoints pointing at the emulators.
    let config = format!(
        r#"{{
          "cloudwatch.emitMetrics": true,
          "kinesis.endpoint": "{}",
          "firehose.endpoint": "{}",
          "kinesis.region": "us-east-1",
          "flows": [
            {{ "filePattern": "{p}", "kinesisStream": "sample-stream", "partitionKeyOption": "RANDOM" }},
            {{ "filePattern": "{p}", "deliveryStream": "sample-delivery" }}
          ]
        }}"#,
        emu.kinesis_endpoint,
        emu.moto_endpoint,
        p = pattern.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);

    // 1,200 lines: two full batches of 500 go out by count; the last 200 wait for the
    // 60 s buffer age, so stopping the agent must send them.
    let written = lines("sample", 1200);
    append(&dir.path().join("app.log"), &written);
    assert!(
        eventually(WAIT, || kinesis_data(emu, "sample-stream").len() >= 1000
            && firehose_lines(emu, "sample-bucket").len() >= 1000),
        "two full batches did not arrive; log:\n{}",
        agent.log_text()
    );
    let status = agent.stop();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        agent.log_text()
    );

    let expected = sorted(written);
    assert_eq!(
        sorted(kinesis_data(emu, "sample-stream")),
        expected,
        "Kinesis, byte for byte, exactly once"
    );
    assert_eq!(
        sorted(firehose_lines(emu, "sample-bucket")),
        expected,
        "Firehose, byte for byte, exactly once"
    );
    let log = agent.log_text();
    assert!(
        log.contains("Tailer Progress: Tailer has parsed 1200 records"),
        "log:\n{log}"
    );
    assert!(
        log.contains("has successfully sent 1200 records to destination."),
        "log:\n{log}"
    );
    assert!(log.contains("Agent: Shut down completed in"), "log:\n{log}");
}

#[test]
fn every_live_file_under_a_pattern_ships_and_start_of_file_reads_existing_lines() {
    let emu = Emulators::shared();
    emu.create_stream("multi-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let before = lines("before", 3);
    append(&logs.join("a.log"), &before);
    let config = format!(
        r#"{{ {} "flows": [ {{ "filePattern": "{}/*.log", "kinesisStream": "multi-stream",
             "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000 }} ] }}"#,
        endpoints(emu),
        logs.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let mut expected = before.clone();
    for round in 0..3 {
        for name in ["a", "b", "c"] {
            let batch = lines(&format!("{name}-{round}"), 20);
            append(&logs.join(format!("{name}.log")), &batch);
            expected.extend(batch);
        }
    }
    let expected = sorted(expected);
    assert!(
        eventually(WAIT, || kinesis_data(emu, "multi-stream").len()
            >= expected.len()),
        "not everything arrived; log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    assert_eq!(sorted(kinesis_data(emu, "multi-stream")), expected);
}

/// Files written all the time are read on a timer instead of following write events (one per
/// `write`); a file created meanwhile is still found, and once the files go quiet the agent
/// follows write events again, so a single later line still arrives.
#[test]
fn busy_files_are_read_on_a_timer_and_a_quiet_flow_follows_writes_again() {
    let emu = Emulators::shared();
    emu.create_stream("busy-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let names: Vec<String> = (0..50).map(|i| format!("f{i:02}")).collect();
    for name in &names {
        append(&logs.join(format!("{name}.log")), &[]);
    }
    let config = format!(
        r#"{{ {} "flows": [ {{ "filePattern": "{}/*.log", "kinesisStream": "busy-stream",
             "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000 }} ] }}"#,
        endpoints(emu),
        logs.display()
    );
    let mut env = aws_test_env();
    env.push(("AGENT_LOG_LEVEL".into(), "DEBUG".into()));
    let mut agent = Agent::start(dir.path(), &config, &env);
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let mut expected = Vec::new();
    // 50 writes a second to each file (2,500 in all), one line per `write`, for three seconds.
    for round in 0..75 {
        for name in &names {
            let line = lines(&format!("{name}-{round:02}"), 2);
            append(&logs.join(format!("{name}.log")), &line);
            expected.extend(line);
        }
        if round == 50 {
            let late = lines("late", 5);
            append(&logs.join("late.log"), &late);
            expected.extend(late);
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    agent.wait_for_log("instead of following write events", WAIT);
    agent.wait_for_log("following write events again", WAIT);
    let quiet = lines("after quiet", 1);
    append(&logs.join("f07.log"), &quiet);
    expected.extend(quiet);
    let expected = sorted(expected);
    assert!(
        eventually(WAIT, || kinesis_data(emu, "busy-stream").len()
            >= expected.len()),
        "not everything arrived; log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    assert_eq!(sorted(kinesis_data(emu, "busy-stream")), expected);
}

#[test]
fn end_of_file_skips_what_was_there_and_sends_what_comes_after() {
    let emu = Emulators::shared();
    emu.create_stream("eof-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("svc.log");
    append(&file, &lines("old", 10));
    // A partial last line: it is sent once completed (Java END_OF_FILE semantics).
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open")
        .write_all(b"half ")
        .expect("write");
    let config = format!(
        r#"{{ {} "flows": [ {{ "filePattern": "{}", "kinesisStream": "eof-stream", "maxBufferAgeMillis": 1000 }} ] }}"#,
        endpoints(emu),
        file.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("for parsing at offset", WAIT);
    let mut new = vec!["line\n".to_string()];
    new.extend(lines("new", 5));
    append(&file, &new);
    assert!(
        eventually(WAIT, || kinesis_data(emu, "eof-stream").len() >= 6),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let mut expected = vec!["half line\n".to_string()];
    expected.extend(lines("new", 5));
    assert_eq!(sorted(kinesis_data(emu, "eof-stream")), sorted(expected));
}

#[test]
fn a_missing_stream_is_named_in_the_log_and_other_flows_keep_shipping() {
    let emu = Emulators::shared();
    emu.create_stream("good-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let config = format!(
        r#"{{ {} "flows": [
            {{ "filePattern": "{f}", "kinesisStream": "no-such-stream", "maxBufferAgeMillis": 1000, "retryMaxBackoffMillis": 1000 }},
            {{ "filePattern": "{f}", "kinesisStream": "good-stream", "maxBufferAgeMillis": 1000 }} ] }}"#,
        endpoints(emu),
        f = file.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let written = lines("good", 30);
    append(&file, &written);
    assert!(
        eventually(WAIT, || kinesis_data(emu, "good-stream").len() >= 30),
        "log:\n{}",
        agent.log_text()
    );
    agent.wait_for_log("ResourceNotFoundException", WAIT);
    let log = agent.log_text();
    let complaint = log
        .lines()
        .find(|l| l.contains("ResourceNotFoundException"))
        .expect("the error line");
    assert!(
        complaint.contains("[ERROR]") && complaint.contains("no-such-stream"),
        "{complaint}"
    );
    assert!(
        complaint.contains("does not exist") && complaint.contains("Fix:"),
        "{complaint}"
    );
    // Reported once, not once per record or per retry.
    assert_eq!(
        log.matches("ResourceNotFoundException").count(),
        1,
        "log:\n{log}"
    );
    assert!(agent.stop().success());
    assert_eq!(sorted(kinesis_data(emu, "good-stream")), sorted(written));
}

#[test]
fn oversize_lines_are_truncated_and_binary_bytes_ship_unchanged() {
    let emu = Emulators::shared();
    emu.create_stream("odd-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("odd.log");
    let config = format!(
        r#"{{ {} "flows": [ {{ "filePattern": "{}", "kinesisStream": "odd-stream", "maxBufferAgeMillis": 1000 }} ] }}"#,
        endpoints(emu),
        file.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let mut bytes = b"before\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'y', 10 * 1024 * 1024));
    bytes.extend_from_slice(b"\n\x00\xff\xfe not utf-8 \x01\n");
    bytes.extend_from_slice(b"after\n");
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .expect("open")
        .write_all(&bytes)
        .expect("write");
    assert!(
        eventually(WAIT, || emu.kinesis_records("odd-stream").len() >= 4),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let records: BTreeMap<usize, Vec<u8>> = emu
        .kinesis_records("odd-stream")
        .into_iter()
        .map(|r| (r.data.len(), r.data))
        .collect();
    let datas: Vec<&Vec<u8>> = records.values().collect();
    assert_eq!(datas.len(), 4);
    assert!(datas.contains(&&b"before\n".to_vec()));
    assert!(datas.contains(&&b"after\n".to_vec()));
    assert!(datas.contains(&&b"\x00\xff\xfe not utf-8 \x01\n".to_vec()));
    let big = records.values().max_by_key(|d| d.len()).expect("big");
    assert_eq!(
        big.len(),
        1024 * 1024 - 32,
        "cut to the Kinesis record limit less the key reserve"
    );
    assert_eq!(big.last(), Some(&b'\n'));
    assert!(agent.log_text().contains("Truncated 1 record(s)"));
}

#[test]
fn bad_configurations_exit_1_with_a_specific_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = r#"{ "filePattern": "/tmp/x/app.log*", "kinesisStream": "s" }"#;
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("{ not json".to_string(), vec!["agent.json"]),
        (r#"{ "kinesis.region": "us-east-1" }"#.to_string(), vec!["no flows"]),
        (
            r#"{ "flows": [ { "filePattern": "/tmp/x/app.log*", "kinesisStream": "s", "partitionKeyOption": "random" } ] }"#.to_string(),
            vec!["flows[0].partitionKeyOption", "RANDOM", "DETERMINISTIC"],
        ),
        (
            r#"{ "flows": [ { "filePattern": "/tmp/x/app.log*", "kinesisStream": "s", "maxBufferAgeMillis": 500 } ] }"#.to_string(),
            vec!["flows[0].maxBufferAgeMillis", "1000", "900000"],
        ),
        (
            r#"{ "flows": [ { "filePattern": "app.log", "kinesisStream": "s" } ] }"#.to_string(),
            vec!["flows[0].filePattern", "Directory component is empty"],
        ),
        (format!(r#"{{ "flows": [ {flow}, {flow} ] }}"#), vec!["Duplicate flow: kinesis:s:/tmp/x/app.log*"]),
    ];
    for (config, needles) in cases {
        let out = run_to_exit(dir.path(), &config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "config {config}: stderr {stderr}"
        );
        assert!(
            stderr.contains(&dir.path().join("agent.json").display().to_string()),
            "names the file: {stderr}"
        );
        for needle in needles {
            assert!(
                stderr.to_lowercase().contains(&needle.to_lowercase()),
                "config {config}: {needle:?} not in {stderr}"
            );
        }
    }
}
