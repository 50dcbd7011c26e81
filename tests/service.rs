//! The agent as a systemd `Type=notify` service sees it: the notification socket gets
//! `READY=1` once the flows run (with a `STATUS=` line), status updates, and `STOPPING=1` on
//! SIGTERM; the agent's log file carries no terminal escapes. Through the real binary, against
//! tools/fake-aws. The packaged unit under a real systemd is `scripts/test-systemd`.

mod support;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use support::agent::Agent;
use support::fake::FakeAws;

const WAIT: Duration = Duration::from_secs(60);

/// Every notification the agent sent until `until` is among them (or the socket's read
/// timeout passed: then the test fails with what did arrive).
fn notices_until(socket: &UnixDatagram, until: &str, seen: &mut Vec<String>) {
    let mut buf = vec![0u8; 4096];
    while !seen.iter().any(|n| n.lines().any(|l| l == until)) {
        match socket.recv(&mut buf) {
            Ok(n) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) => panic!("no {until:?} on NOTIFY_SOCKET ({e}); received: {seen:?}"),
        }
    }
}

#[test]
fn notify_socket_gets_ready_status_and_stopping_and_the_log_has_no_escapes() {
    let fake = FakeAws::start(&["--stream", "svc"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let config = format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "log.statusReportingPeriodSeconds": 1,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "svc", "maxBufferAgeMillis": 1000 }} ] }}"#,
        fake.endpoint,
        file.display()
    );
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notification socket");
    socket.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut env = fake.env();
    env.push((
        "NOTIFY_SOCKET".into(),
        socket_path.to_string_lossy().into_owned(),
    ));
    let mut agent = Agent::start(dir.path(), &config, &env);

    let mut seen = Vec::new();
    notices_until(&socket, "READY=1", &mut seen);
    // Sent right after this line is logged (the log is written by its own thread, so it may
    // reach the file a moment after the datagram).
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let ready = seen.last().expect("the READY=1 notice");
    assert!(
        ready.contains("STATUS=1 flows running; 0 records sent"),
        "{ready:?}"
    );

    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .expect("open app.log");
    for i in 0..10 {
        writeln!(out, "line {i}").expect("write");
    }
    assert!(fake.wait_for_records("svc", 10, WAIT), "10 records sent");
    notices_until(
        &socket,
        "STATUS=1 flows running; 10 records sent; 0 bytes in 0 files behind",
        &mut seen,
    );

    assert!(agent.stop().success(), "exit 0 on SIGTERM");
    notices_until(&socket, "STOPPING=1", &mut seen);

    let log = std::fs::read(&agent.log).expect("the agent's log");
    assert!(!log.is_empty());
    assert!(
        !log.contains(&0x1b),
        "an escape byte in the log:\n{}",
        String::from_utf8_lossy(&log)
    );
}

#[test]
fn a_notify_socket_that_is_gone_is_named_in_the_log_and_the_agent_runs_on() {
    let fake = FakeAws::start(&["--stream", "svc"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    std::fs::write(&file, "one\n").expect("write");
    let config = format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "svc", "maxBufferAgeMillis": 1000,
                           "initialPosition": "START_OF_FILE" }} ] }}"#,
        fake.endpoint,
        file.display()
    );
    let mut env = fake.env();
    let missing = dir.path().join("no-such-socket");
    env.push((
        "NOTIFY_SOCKET".into(),
        missing.to_string_lossy().into_owned(),
    ));
    let mut agent = Agent::start(dir.path(), &config, &env);
    agent.wait_for_log("cannot notify systemd on NOTIFY_SOCKET=", WAIT);
    assert!(fake.wait_for_records("svc", 1, WAIT), "the flow still runs");
    assert!(agent.stop().success());
}
