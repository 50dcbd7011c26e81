//! What an operator watches: progress lines, the `status` command, CloudWatch metrics.

mod support;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::agent::{agent_bin, eventually, Agent};
use support::{aws_test_env, Emulators};

const WAIT: Duration = Duration::from_secs(90);

fn status(dir: &Path) -> Output {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("status")
        .arg("-c")
        .arg(dir.join("agent.json"))
        .arg("--flows-dir")
        .arg(dir.join("agent.d"));
    support::apply_aws_test_env(&mut cmd);
    cmd.output().expect("run status")
}

#[test]
fn status_shows_each_flow_its_files_lag_and_last_error_and_exits_3_when_stopped() {
    let emu = Emulators::shared();
    emu.create_stream("status-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let config = format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{f}", "kinesisStream": "status-stream", "maxBufferAgeMillis": 1000 }},
                        {{ "filePattern": "{f}", "kinesisStream": "missing-stream", "maxBufferAgeMillis": 1000,
                           "retryMaxBackoffMillis": 1000 }} ] }}"#,
        emu.kinesis_endpoint,
        f = file.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .expect("open");
    for i in 0..100 {
        writeln!(f, "status line {i}").expect("write");
    }
    assert!(eventually(WAIT, || emu
        .kinesis_records("status-stream")
        .len()
        >= 100));
    agent.wait_for_log("ResourceNotFoundException", WAIT);
    // The snapshot is rewritten every 5 s: wait until it shows everything acknowledged.
    let mut text = String::new();
    assert!(
        eventually(WAIT, || {
            let out = status(dir.path());
            text = String::from_utf8_lossy(&out.stdout).into_owned();
            out.status.success()
                && text.contains("records sent 100 ")
                && text.contains("last error")
                && text.contains("ResourceNotFoundException")
        }),
        "status output:\n{text}\nlog:\n{}",
        agent.log_text()
    );
    let good = text
        .split("flow ")
        .find(|s| s.starts_with("kinesis:status-stream"))
        .expect("the good flow");
    assert!(good.contains("bytes behind 0"), "{good}");
    assert!(good.contains("last error: none"), "{good}");
    assert!(
        good.contains(&file.display().to_string()),
        "lists its file: {good}"
    );
    let bad = text
        .split("flow ")
        .find(|s| s.starts_with("kinesis:missing-stream"))
        .expect("the failing flow");
    assert!(
        !bad.contains("bytes behind 0 "),
        "the failing flow is behind: {bad}"
    );
    assert!(
        bad.contains("last error") && bad.contains("ResourceNotFoundException"),
        "{bad}"
    );

    assert!(agent.stop().success());
    let out = status(dir.path());
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
}
