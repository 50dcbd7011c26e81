//! Credentials and regions through the real binary: static keys over the environment, an
//! assumed role through STS (moto), instance-profile credentials and region from a fake
//! metadata service, and clear errors when there are no credentials or no region.

mod support;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::agent::{run_to_exit, Agent};
use support::fake::FakeAws;
use support::{aws_test_env, Emulators};

const WAIT: Duration = Duration::from_secs(90);

fn write_lines(path: &Path, n: usize) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    for i in 0..n {
        writeln!(f, "credentials line {i}").expect("write");
    }
}

/// Access keys the fake endpoint saw, with call counts.
fn access_keys(fake: &FakeAws) -> Vec<String> {
    fake.stats()["access_keys"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The test environment with `names` removed (an empty value removes a variable).
fn env_without(names: &[&str]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = aws_test_env()
        .into_iter()
        .filter(|(k, _)| !names.contains(&k.as_str()))
        .collect();
    env.extend(names.iter().map(|n| (n.to_string(), String::new())));
    env
}

fn config(fake: &FakeAws, file: &Path, extra: &str, stream: &str) -> String {
    format!(
        r#"{{ "kinesis.endpoint": "{}", "cloudwatch.emitMetrics": false, {extra}
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "{stream}", "maxBufferAgeMillis": 1000,
                           "initialPosition": "START_OF_FILE", "retryMaxBackoffMillis": 1000 }} ] }}"#,
        fake.endpoint,
        file.display()
    )
}

#[test]
fn static_keys_in_the_config_take_precedence_over_the_environment() {
    let fake = FakeAws::start(&["--stream", "static-stream"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    write_lines(&file, 10);
    let cfg = config(
        &fake,
        &file,
        r#""kinesis.region": "us-east-1", "awsAccessKeyId": "AKIACONFIGKEY0000000", "awsSecretAccessKey": "s","#,
        "static-stream",
    );
    let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    assert!(
        fake.wait_for_records("static-stream", 10, WAIT),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    assert_eq!(
        access_keys(&fake),
        vec!["AKIACONFIGKEY0000000".to_string()],
        "the environment's key is not used"
    );
}

#[test]
fn assume_role_arn_makes_every_call_with_the_assumed_role_with_and_without_external_id() {
    let emu = Emulators::shared();
    for (stream, external) in [
        ("role-stream", ""),
        ("role-ext-stream", r#""assumeRoleExternalId": "ext-123","#),
    ] {
        let fake = FakeAws::start(&["--stream", stream]);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.log");
        write_lines(&file, 10);
        let extra = format!(
            r#""kinesis.region": "us-east-1", "assumeRoleARN": "arn:aws:iam::123456789012:role/agent-role",
               "sts.endpoint": "{}", {external}"#,
            emu.moto_endpoint
        );
        let cfg = config(&fake, &file, &extra, stream);
        let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
        assert!(
            fake.wait_for_records(stream, 10, WAIT),
            "log:\n{}",
            agent.log_text()
        );
        assert!(agent.stop().success());
        let keys = access_keys(&fake);
        assert!(
            !keys.is_empty() && keys.iter().all(|k| k.starts_with("ASIA")),
            "assumed-role keys only: {keys:?}"
        );
    }
}

#[test]
fn instance_profile_credentials_and_region_come_from_the_metadata_service() {
    let fake = FakeAws::start(&["--stream", "imds-stream"]);
    let imds = support::imds::start(&[
        ("/latest/meta-data/iam/security-credentials/", "agent-role"),
        (
            "/latest/meta-data/iam/security-credentials/agent-role",
            r#"{"Code":"Success","LastUpdated":"2026-11-26T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAFROMIMDS00000000","SecretAccessKey":"secret","Token":"token","Expiration":"2099-01-01T00:00:00Z"}"#,
        ),
        ("/latest/meta-data/placement/region", "eu-west-1"),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    write_lines(&file, 10);
    // No region and no keys anywhere but the metadata service.
    let mut env = env_without(&[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EC2_METADATA_DISABLED",
    ]);
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), imds));
    let cfg = config(&fake, &file, "", "imds-stream");
    let mut agent = Agent::start(dir.path(), &cfg, &env);
    assert!(
        fake.wait_for_records("imds-stream", 10, WAIT),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    assert_eq!(access_keys(&fake), vec!["ASIAFROMIMDS00000000".to_string()]);
    assert!(
        agent.log_text().contains("using region eu-west-1"),
        "log:\n{}",
        agent.log_text()
    );
}

#[test]
fn no_credentials_is_one_clear_line_naming_what_was_tried() {
    let fake = FakeAws::start(&["--stream", "nocreds-stream"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    write_lines(&file, 10);
    let env = env_without(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    let cfg = config(
        &fake,
        &file,
        r#""kinesis.region": "us-east-1","#,
        "nocreds-stream",
    );
    let mut agent = Agent::start(dir.path(), &cfg, &env);
    agent.wait_for_log("[ERROR]", WAIT);
    std::thread::sleep(Duration::from_secs(3)); // several retries happen meanwhile
    assert!(agent.stop().success());
    let log = agent.log_text();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("[ERROR]")).collect();
    assert_eq!(errors.len(), 1, "one line, not one per retry:\n{log}");
    let line = errors[0];
    assert!(line.contains("credentials"), "{line}");
    assert!(
        line.contains("Fix:") && line.contains("awsAccessKeyId"),
        "{line}"
    );
    assert_eq!(fake.accepted("nocreds-stream"), 0);
}

#[test]
fn no_region_anywhere_exits_1_listing_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    // run_to_exit applies the test environment, which sets a region: remove it through the
    // configuration's absence only works with the variables gone, so run the binary directly.
    let config = format!(
        r#"{{ "checkpointFile": "{}/checkpoints", "flows": [ {{ "filePattern": "{}/a.log", "kinesisStream": "s" }} ] }}"#,
        dir.path().display(),
        dir.path().display()
    );
    std::fs::write(dir.path().join("agent.json"), config).expect("write");
    std::fs::create_dir_all(dir.path().join("agent.d")).expect("mkdir");
    let mut cmd = std::process::Command::new(support::agent::agent_bin());
    cmd.arg("-c")
        .arg(dir.path().join("agent.json"))
        .arg("--flows-dir")
        .arg(dir.path().join("agent.d"));
    cmd.arg("-l").arg(dir.path().join("agent.log"));
    support::apply_aws_test_env(&mut cmd);
    cmd.env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let out = cmd.output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for place in [
        "kinesis.region",
        "AWS_REGION",
        "profile",
        "instance metadata",
    ] {
        assert!(stderr.contains(place), "{place} not in {stderr}");
    }
    let _ = run_to_exit; // (the helper is shared with other test files)
}
