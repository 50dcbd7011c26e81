//! Sending under pressure, through the real binary against tools/fake-aws: partial failures,
//! throttling, 5xx, dropped connections, a stream that does not exist yet; and the CloudWatch
//! metrics the agent publishes.

mod support;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::agent::{eventually, Agent};
use support::fake::{missing_and_duplicates, FakeAws};

const WAIT: Duration = Duration::from_secs(120);

fn config(fake: &FakeAws, pattern: &Path, stream_key: &str, stream: &str, extra: &str) -> String {
    format!(
        r#"{{ "kinesis.endpoint": "{e}", "firehose.endpoint": "{e}", "cloudwatch.endpoint": "{e}",
             "kinesis.region": "us-east-1", {extra}
             "flows": [ {{ "filePattern": "{}", "{stream_key}": "{stream}", "maxBufferAgeMillis": 1000,
                           "initialPosition": "START_OF_FILE", "retryMaxBackoffMillis": 1000 }} ] }}"#,
        pattern.display(),
        e = fake.endpoint
    )
}

fn write_lines(path: &Path, n: usize) -> Vec<String> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    let lines: Vec<String> = (0..n)
        .map(|i| format!("pressure line {i:07} {}\n", "z".repeat(i % 40)))
        .collect();
    for l in &lines {
        f.write_all(l.as_bytes()).expect("write");
    }
    lines
}

#[test]
fn thirty_percent_failed_records_and_ten_percent_throttled_calls_lose_nothing() {
    for (key, name) in [
        ("kinesisStream", "pressure-stream"),
        ("deliveryStream", "pressure-delivery"),
    ] {
        let fake = FakeAws::start(&["--stream", name, "--seed", "7"]);
        fake.set_faults(r#"{"fail_records": 0.3, "throttle_calls": 0.1}"#);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.log");
        let written = write_lines(&file, 100_000);
        let cfg = config(
            &fake,
            &file,
            key,
            name,
            r#""cloudwatch.emitMetrics": false,"#,
        );
        let mut agent = Agent::start(dir.path(), &cfg, &fake.env());
        assert!(
            eventually(WAIT, || missing_and_duplicates(
                &written,
                &fake.records(name)
            )
            .0 == 0),
            "{name}: lines missing; stats {}; log:\n{}",
            fake.stats(),
            agent.log_text()
        );
        assert!(agent.stop().success());
        let (missing, duplicates) = missing_and_duplicates(&written, &fake.records(name));
        println!(
            "{name}: 100000 lines, {missing} missing, {duplicates} duplicates; fake stats {}",
            fake.stats()
        );
        assert_eq!(missing, 0);
        let log = agent.log_text();
        assert!(
            log.contains("records refused by"),
            "partial failures summarised:\n{log}"
        );
        // One summary line per minute, not one line per failed record (the Java agent's #41).
        assert!(log.matches("refused by").count() <= 3, "{log}");
    }
}

#[test]
fn errors_5xx_and_dropped_connections_are_retried_until_everything_arrives() {
    let fake = FakeAws::start(&["--stream", "flaky-stream", "--seed", "11"]);
    fake.set_faults(r#"{"error_500": 0.1, "error_503": 0.1, "drop_connection": 0.1}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let written = write_lines(&file, 20_000);
    let cfg = config(
        &fake,
        &file,
        "kinesisStream",
        "flaky-stream",
        r#""cloudwatch.metricsBufferTimeMillis": 1000,"#,
    );
    let mut agent = Agent::start(dir.path(), &cfg, &fake.env());
    assert!(
        eventually(WAIT, || missing_and_duplicates(
            &written,
            &fake.records("flaky-stream")
        )
        .0 == 0),
        "stats {}; log:\n{}",
        fake.stats(),
        agent.log_text()
    );
    assert!(agent.stop().success());
    let (_, duplicates) = missing_and_duplicates(&written, &fake.records("flaky-stream"));
    println!("5xx + dropped connections: 20000 lines, 0 missing, {duplicates} duplicates");
    // One layer retries (the agent's): every failed call the service saw is one the agent
    // counted, none hidden by retries inside the SDK.
    let stats = fake.stats();
    let failed_calls = stats["destinations"]["flaky-stream"]["calls_failed"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!(failed_calls > 0.0, "faults were injected: {stats}");
    assert_eq!(
        metric_sum(&fake, "ServiceErrors", "KinesisStream:flaky-stream"),
        failed_calls,
        "stats {stats}"
    );
}

#[test]
fn a_stream_that_does_not_exist_is_one_clear_line_and_everything_arrives_once_it_does() {
    let fake = FakeAws::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let written = write_lines(&file, 2_000);
    let cfg = config(
        &fake,
        &file,
        "kinesisStream",
        "late-stream",
        r#""cloudwatch.emitMetrics": false,"#,
    );
    let mut agent = Agent::start(dir.path(), &cfg, &fake.env());
    agent.wait_for_log("ResourceNotFoundException", WAIT);
    let log = agent.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ResourceNotFoundException"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("[ERROR]")
            && lines[0].contains("late-stream")
            && lines[0].contains("PutRecords")
    );
    assert!(
        lines[0].contains("does not exist") && lines[0].contains("Fix:"),
        "{}",
        lines[0]
    );
    fake.create("late-stream");
    assert!(
        eventually(WAIT, || missing_and_duplicates(
            &written,
            &fake.records("late-stream")
        )
        .0 == 0),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    assert!(agent.log_text().contains("accepts records again"));
}

/// The sum of the agent's CloudWatch metric `name` for `destination`, as the fake received it.
fn metric_sum(fake: &FakeAws, name: &str, destination: &str) -> f64 {
    let metrics = fake.metrics();
    metrics
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["MetricName"] == name)
        .filter(|d| {
            d["Dimensions"].as_array().is_some_and(|dims| {
                dims.iter()
                    .any(|x| x["Name"] == "Destination" && x["Value"] == destination)
            })
        })
        .map(|d| d["StatisticValues"]["Sum"].as_f64().unwrap_or(0.0))
        .sum()
}

#[test]
fn cloudwatch_receives_the_java_metrics_with_the_java_names_and_dimensions() {
    let fake = FakeAws::start(&["--stream", "metrics-stream"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let written = write_lines(&file, 10_000);
    let cfg = config(
        &fake,
        &file,
        "kinesisStream",
        "metrics-stream",
        r#""cloudwatch.metricsBufferTimeMillis": 1000, "cloudwatch.namespace": "AWSKinesisAgent","#,
    );
    let mut agent = Agent::start(dir.path(), &cfg, &fake.env());
    assert!(
        fake.wait_for_records("metrics-stream", written.len() as u64, WAIT),
        "log:\n{}",
        agent.log_text()
    );
    assert!(
        agent.stop().success(),
        "the last publish happens at shutdown"
    );
    let metrics = fake.metrics();
    let datums = metrics.as_array().cloned().unwrap_or_default();
    let sum_of = |name: &str| metric_sum(&fake, name, "KinesisStream:metrics-stream");
    assert_eq!(sum_of("RecordsSent"), 10_000.0, "datums: {metrics}");
    assert_eq!(sum_of("RecordSendAttempts"), 10_000.0);
    assert_eq!(sum_of("RecordSendErrors"), 0.0);
    assert_eq!(sum_of("ServiceErrors"), 0.0);
    let bytes: usize = written.iter().map(String::len).sum();
    assert_eq!(sum_of("BytesSent"), bytes as f64);
    assert!(datums.iter().all(|d| d["Namespace"] == "AWSKinesisAgent"));
    assert!(datums.iter().any(|d| d["MetricName"] == "BytesBehind"));
    assert!(agent.log_text().contains("Successfully published"));
}
