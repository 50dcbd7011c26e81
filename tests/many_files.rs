//! Many files under systemd's default descriptor limit, through the real binary against
//! tools/fake-aws: the agent runs with a soft and hard limit of 1,024 open files (systemd's
//! default soft limit, which it cannot raise past the hard one here) and tails 20,000 files.

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::agent::{eventually, Agent};
use support::fake::FakeAws;

const WAIT: Duration = Duration::from_secs(180);

/// Runs the agent with 1,024 open files at most (soft and hard).
const LIMIT_1024: [&str; 3] = ["prlimit", "--nofile=1024:1024", "--"];

fn line(file: usize, which: &str) -> String {
    format!("file {file:05} {which}\n")
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(text.as_bytes()).expect("write");
}

#[test]
fn twenty_thousand_files_under_a_limit_of_1024_open_files_every_line_once_no_error() {
    const FILES: usize = 20_000;
    let fake = FakeAws::start(&["--stream", "many-stream"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let mut written = Vec::new();
    for i in 0..FILES {
        let l = line(i, "before");
        append(&logs.join(format!("f{i:05}.log")), &l);
        written.push(l);
    }
    let config = format!(
        r#"{{ "kinesis.endpoint": "{e}", "cloudwatch.emitMetrics": false, "kinesis.region": "us-east-1",
             "flows": [ {{ "filePattern": "{}/*.log", "kinesisStream": "many-stream",
                           "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000 }} ] }}"#,
        logs.display(),
        e = fake.endpoint
    );
    let mut agent = Agent::start_with(dir.path(), &config, &fake.env(), &LIMIT_1024);
    agent.wait_for_log("Agent: Startup completed", WAIT);
    assert!(
        agent
            .log_text()
            .contains("Open files limit: soft 1024, hard 1024"),
        "{}",
        agent.log_text()
    );
    assert!(
        eventually(WAIT, || fake.accepted("many-stream") >= FILES as u64),
        "first lines: stats {}; log tail:\n{}",
        fake.stats(),
        tail(&agent.log_text())
    );
    for i in 0..FILES {
        let l = line(i, "after");
        append(&logs.join(format!("f{i:05}.log")), &l);
        written.push(l);
    }
    assert!(
        eventually(WAIT, || fake
            .missing_and_duplicates("many-stream", &written)
            .0
            == 0),
        "appended lines: missing {:?}; log tail:\n{}",
        fake.missing_and_duplicates("many-stream", &written),
        tail(&agent.log_text())
    );
    assert!(agent.stop().success());
    let log = agent.log_text();
    assert_eq!(
        fake.missing_and_duplicates("many-stream", &written),
        (0, 0),
        "every line once; log tail:\n{}",
        tail(&log)
    );
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "{} ERROR lines, first: {:?}",
        errors.len(),
        errors.first()
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// With two descriptors for six files, files are closed and opened again all the time; files
/// renamed within and out of the pattern, deleted, or replaced while closed lose no line and
/// send none twice.
#[test]
fn files_renamed_deleted_or_replaced_while_closed_lose_nothing_and_repeat_nothing() {
    let fake = FakeAws::start(&["--stream", "budget-stream"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let path = |name: &str| logs.join(name);
    let mut written = Vec::new();
    let mut add = |name: &str, text: String| {
        append(&path(name), &text);
        written.push(text);
    };
    for i in 0..6 {
        for n in 0..3 {
            add(&format!("f{i}.log"), format!("f{i} before {n}\n"));
        }
    }
    let config = format!(
        r#"{{ "kinesis.endpoint": "{e}", "cloudwatch.emitMetrics": false, "kinesis.region": "us-east-1",
             "maxOpenFiles": 2, "log.statusReportingPeriodSeconds": 1,
             "flows": [ {{ "filePattern": "{}/*.log", "kinesisStream": "budget-stream",
                           "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000,
                           "maxTimeBetweenFileTrackerRefreshMillis": 500 }} ] }}"#,
        logs.display(),
        e = fake.endpoint
    );
    let mut agent = Agent::start(dir.path(), &config, &fake.env());
    agent.wait_for_log("up to 2 tailed files held open at once", WAIT);
    assert!(
        eventually(WAIT, || fake.accepted("budget-stream") >= 18),
        "log:\n{}",
        tail(&agent.log_text())
    );
    // Written, then renamed out of the pattern at once.
    add("f0.log", "f0 then renamed out\n".into());
    fs::rename(path("f0.log"), path("f0.log.1")).expect("rename");
    // Renamed within the pattern, then written under its new name.
    fs::rename(path("f1.log"), path("f1-renamed.log")).expect("rename");
    add("f1-renamed.log", "f1 after its rename\n".into());
    // Deleted (everything in it was sent).
    fs::remove_file(path("f2.log")).expect("remove");
    // Replaced by a new file under the same name.
    fs::remove_file(path("f3.log")).expect("remove");
    add("f3.log", "f3 replaced\n".into());
    // Plain appends to the others.
    add("f4.log", "f4 appended\n".into());
    add("f5.log", "f5 appended\n".into());
    assert!(
        eventually(WAIT, || fake
            .missing_and_duplicates("budget-stream", &written)
            .0
            == 0),
        "missing {:?}; log:\n{}",
        fake.missing_and_duplicates("budget-stream", &written),
        tail(&agent.log_text())
    );
    // Three more seconds of listings (every 500 ms) and passes, for anything sent twice to show.
    let reports = agent.log_text().matches("Agent: Progress").count();
    agent.wait_for_log_count("Agent: Progress", reports + 3, WAIT);
    assert!(agent.stop().success());
    let log = agent.log_text();
    assert_eq!(
        fake.missing_and_duplicates("budget-stream", &written),
        (0, 0),
        "every line once; log:\n{}",
        tail(&log)
    );
    assert!(!log.contains(" ERROR "), "{}", tail(&log));
}
