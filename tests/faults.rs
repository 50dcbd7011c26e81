//! Bad input and faults through the real binary: files the agent cannot read, a checkpoint
//! database it cannot open, and a Java agent's checkpoint database to resume from.

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use support::agent::{eventually, run_to_exit, Agent};
use support::{aws_test_env, Emulators};

const WAIT: Duration = Duration::from_secs(90);

fn endpoints(emu: &Emulators) -> String {
    format!(
        r#""kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,"#,
        emu.kinesis_endpoint
    )
}

fn write_lines(path: &std::path::Path, prefix: &str, n: usize) -> Vec<String> {
    let lines: Vec<String> = (0..n).map(|i| format!("{prefix} {i:04}\n")).collect();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    for l in &lines {
        f.write_all(l.as_bytes()).expect("write");
    }
    lines
}

/// A test directory the agent can use when it runs as another user: `<dir>/state` (its
/// checkpoints and log, writable by all) and `<dir>/logs`.
fn dirs_for_any_user() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let state = dir.path().join("state");
    fs::create_dir(&state).expect("mkdir");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).expect("chmod");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, state, logs)
}

/// Root passes every permission check, so as root the agent runs as `nobody` through this.
const AS_NOBODY: [&str; 5] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--",
];

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn an_unreadable_file_is_named_with_the_user_and_the_fix_and_the_others_keep_shipping() {
    let emu = Emulators::shared();
    emu.create_stream("perm-stream", 1);
    // The agent may run as another user below: it can enter the test directories.
    let (_dir, state, logs) = dirs_for_any_user();
    let secret = logs.join("secret.log");
    write_lines(&secret, "secret", 3);
    // As root the agent runs as `nobody` and the file is 0600; otherwise the file is 000.
    let prefix: &[&str] = if is_root() {
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
        &AS_NOBODY
    } else {
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
        &[]
    };
    let config = format!(
        r#"{{ {} "checkpointFile": "{}/checkpoints", "flows": [ {{ "filePattern": "{}/*.log", "kinesisStream": "perm-stream",
             "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000 }} ] }}"#,
        endpoints(emu),
        state.display(),
        logs.display()
    );
    let mut agent = Agent::start_with(&state, &config, &aws_test_env(), prefix);
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let open = write_lines(&logs.join("open.log"), "open", 5);
    assert!(
        eventually(WAIT, || emu.kinesis_records("perm-stream").len() >= 5),
        "log:\n{}",
        agent.log_text()
    );
    agent.wait_for_log("permission denied", WAIT);
    assert!(agent.stop().success());
    let log = agent.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("permission denied"))
        .expect("the error line");
    assert!(
        line.contains("[ERROR]") && line.contains("secret.log"),
        "{line}"
    );
    assert!(line.contains("Fix:"), "{line}");
    if is_root() {
        assert!(
            line.contains("nobody (uid 65534)"),
            "names the agent's user: {line}"
        );
    }
    assert_eq!(
        log.matches("permission denied").count(),
        1,
        "repeated at most once a minute:\n{log}"
    );
    let got: Vec<String> = emu
        .kinesis_records("perm-stream")
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(got, open);
}

#[test]
fn a_listing_that_fails_neither_finishes_nor_rereads_the_files_already_tailed() {
    let emu = Emulators::shared();
    emu.create_stream("listing-stream", 1);
    let (_dir, state, logs) = dirs_for_any_user();
    let mut expected = Vec::new();
    let mut handles = Vec::new();
    for name in ["a", "b", "c"] {
        let path = logs.join(format!("{name}.log"));
        expected.extend(write_lines(&path, &format!("{name} before"), 5));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        // Kept open: the writes during the outage go through them (a 000 directory would stop
        // a non-root test from opening the files by name).
        handles.push(OpenOptions::new().append(true).open(&path).expect("open"));
    }
    let prefix: &[&str] = if is_root() { &AS_NOBODY } else { &[] };
    let config = format!(
        r#"{{ {} "checkpointFile": "{}/checkpoints", "flows": [ {{ "filePattern": "{}/*.log", "kinesisStream": "listing-stream",
             "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000,
             "maxTimeBetweenFileTrackerRefreshMillis": 200 }} ] }}"#,
        endpoints(emu),
        state.display(),
        logs.display()
    );
    let mut agent = Agent::start_with(&state, &config, &aws_test_env(), prefix);
    agent.wait_for_log("Agent: Startup completed", WAIT);
    assert!(
        eventually(WAIT, || emu.kinesis_records("listing-stream").len() >= 15),
        "log:\n{}",
        agent.log_text()
    );

    // The directory cannot be listed for a while (rescans every 200 ms fail); the files are
    // still written.
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o000)).expect("chmod 000");
    agent.wait_for_log("cannot list", WAIT);
    for (name, handle) in ["a", "b", "c"].iter().zip(handles.iter_mut()) {
        for i in 0..5 {
            let line = format!("{name} during {i:04}\n");
            handle.write_all(line.as_bytes()).expect("write");
            expected.push(line);
        }
    }
    assert!(
        eventually(WAIT, || emu.kinesis_records("listing-stream").len() >= 30),
        "lines written while the directory could not be listed are read through the open files; log:\n{}",
        agent.log_text()
    );
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    // A new file found by the next listings: by the time it is sent, the listings that see a,
    // b and c again have run.
    expected.extend(write_lines(&logs.join("d.log"), "d after", 1));
    assert!(
        eventually(WAIT, || emu.kinesis_records("listing-stream").len() >= 31),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let log = agent.log_text();
    assert!(
        !log.contains("no longer matches the pattern"),
        "a failed listing finished tailed files:\n{log}"
    );
    let mut got: Vec<String> = emu
        .kinesis_records("listing-stream")
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every line once; log:\n{log}");
}

#[test]
fn a_checkpoint_database_that_cannot_be_opened_exits_1_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("not-a-dir"), "x").expect("write");
    let db = dir.path().join("not-a-dir").join("checkpoints");
    let config = format!(
        r#"{{ "kinesis.region": "us-east-1", "checkpointFile": "{}",
             "flows": [ {{ "filePattern": "{}/*.log", "kinesisStream": "s" }} ] }}"#,
        db.display(),
        dir.path().display()
    );
    let out = run_to_exit(dir.path(), &config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("checkpoint database") && stderr.contains(&db.display().to_string()),
        "{stderr}"
    );
}

#[test]
fn a_java_agent_checkpoint_database_is_resumed_from() {
    let emu = Emulators::shared();
    emu.create_stream("java-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let before = write_lines(&file, "before", 10);
    let shipped_by_java = before.iter().map(String::len).sum::<usize>();
    let meta = fs::metadata(&file).expect("stat");
    let flow = format!("kinesis:java-stream:{}/app.log*", dir.path().display());
    // The Java agent's database: its schema, its statements, its value formats.
    let db = dir.path().join("checkpoints");
    let conn = rusqlite::Connection::open(&db).expect("sqlite");
    conn.execute_batch(
        "create table if not exists FILE_CHECKPOINTS(flow text, path text, fileId text, lastModifiedTime bigint, size bigint, offset bigint, lastUpdated datetime, primary key (flow, path))",
    )
    .expect("schema");
    conn.execute(
        "insert or ignore into FILE_CHECKPOINTS values(?,?,?,?,?,?,strftime('%Y-%m-%d %H:%M:%f','now'))",
        rusqlite::params![
            flow,
            file.display().to_string(),
            format!("(dev={:x},ino={})", meta.dev(), meta.ino()),
            meta.mtime() * 1000,
            meta.len() as i64,
            shipped_by_java as i64
        ],
    )
    .expect("row");
    drop(conn);
    let after = write_lines(&file, "after", 5);
    let config = format!(
        r#"{{ {} "checkpointFile": "{}", "flows": [ {{ "filePattern": "{}/app.log*", "kinesisStream": "java-stream", "maxBufferAgeMillis": 1000 }} ] }}"#,
        endpoints(emu),
        db.display(),
        dir.path().display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    assert!(
        eventually(WAIT, || emu.kinesis_records("java-stream").len() >= 5),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    assert!(agent.log_text().contains(&format!(
        "at offset {shipped_by_java} (resuming from its checkpoint)"
    )));
    let mut got: Vec<String> = emu
        .kinesis_records("java-stream")
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect();
    got.sort();
    assert_eq!(got, after, "exactly what the Java agent had not shipped");
}
