//! The operator tools through the real binary: `check` (files the service user cannot reach,
//! and streams against the emulators), `iam-policy`, and `--dry-run`.
//!
//! Cases that need a second user run as root with `--user nobody` (CI runs as root); without
//! root they are skipped with a message saying so.

mod support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::agent_bin;
use support::{apply_aws_test_env, repo_root, Emulators};

const WAIT: Duration = Duration::from_secs(90);

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A temp dir that another user may enter (tempfile makes it 0700).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Writes `<dir>/agent.json` (checkpoints in `dir`, never /var) and an empty `<dir>/agent.d`.
fn write_config(dir: &Path, flows: &str, extra: &str) -> PathBuf {
    let config = dir.join("agent.json");
    let text = format!(
        r#"{{ "checkpointFile": "{}/state/checkpoints", {extra}
             "flows": [ {flows} ] }}"#,
        dir.display()
    );
    fs::write(&config, text).expect("write config");
    fs::create_dir_all(dir.join("agent.d")).expect("flows dir");
    config
}

/// Runs the binary with `args` after `-c <dir>/agent.json --flows-dir <dir>/agent.d`.
fn run(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("-c")
        .arg(dir.join("agent.json"))
        .arg("--flows-dir")
        .arg(dir.join("agent.d"))
        .args(args)
        .stdin(Stdio::null());
    apply_aws_test_env(&mut cmd);
    cmd.output().expect("run the agent binary")
}

fn text(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The stdout line containing `needle`.
fn line_with<'a>(stdout: &'a str, needle: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{stdout}"))
}

// ---------------------------------------------------------------------------------------------
// check: files

#[test]
fn check_names_a_0700_home_directory_above_the_log() {
    if !is_root() {
        eprintln!("SKIPPED check_names_a_0700_home_directory_above_the_log: needs root to check for another user (--user nobody)");
        return;
    }
    let dir = open_tempdir();
    let home = dir.path().join("home");
    let logs = home.join("logs");
    fs::create_dir_all(&logs).expect("mkdir");
    fs::write(logs.join("app.log"), "line\n").expect("write");
    chmod(&home, 0o700);
    write_config(
        dir.path(),
        &format!(
            r#"{{ "filePattern": "{}/*.log", "kinesisStream": "s" }}"#,
            logs.display()
        ),
        "",
    );
    let out = run(dir.path(), &["check", "--user", "nobody"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = line_with(&stdout, "PROBLEM");
    assert!(
        line.contains(&format!("{}/app.log", logs.display()))
            && line.contains(&format!(
                "nobody cannot enter directory {} (drwx------",
                home.display()
            )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("fix: `setfacl -m u:nobody:x {}`", home.display())),
        "{stdout}"
    );
    assert!(stdout.contains("override-read-all-logs.conf"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("check: 1 problem(s)"),
        "{stdout}"
    );

    // The same file, readable once the directory may be entered.
    chmod(&home, 0o711);
    let out = run(dir.path(), &["check", "--user", "nobody"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout.contains(&format!("ok: {}/app.log", logs.display())),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("check: OK"), "{stdout}");
}

#[test]
fn check_names_a_0600_file_of_another_user() {
    if !is_root() {
        eprintln!("SKIPPED check_names_a_0600_file_of_another_user: needs root to give a file to another user and check for nobody");
        return;
    }
    let dir = open_tempdir();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let secret = logs.join("secret.log");
    let open = logs.join("open.log");
    fs::write(&secret, "s\n").expect("write");
    fs::write(&open, "o\n").expect("write");
    std::os::unix::fs::chown(&secret, Some(1), Some(1)).expect("chown");
    chmod(&secret, 0o600);
    chmod(&open, 0o644);
    write_config(
        dir.path(),
        &format!(
            r#"{{ "filePattern": "{}/*.log", "deliveryStream": "d" }}"#,
            logs.display()
        ),
        "",
    );
    let out = run(dir.path(), &["check", "--user", "nobody"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout.contains(&format!("ok: {}", open.display())),
        "{stdout}"
    );
    let line = line_with(&stdout, "PROBLEM");
    assert!(
        line.contains(&format!(
            "nobody cannot read file {} (-rw-------",
            secret.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("setfacl -m u:nobody:r {}", secret.display())),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("check: 1 problem(s)"),
        "{stdout}"
    );
}

#[test]
fn check_names_a_missing_directory() {
    let dir = open_tempdir();
    let missing = dir.path().join("nope").join("logs");
    write_config(
        dir.path(),
        &format!(
            r#"{{ "filePattern": "{}/*.log", "kinesisStream": "s" }}"#,
            missing.display()
        ),
        "",
    );
    // As the user running the test: a missing directory needs no second user.
    let out = run(dir.path(), &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = line_with(&stdout, "PROBLEM");
    assert!(
        line.contains(&format!("directory {} does not exist", missing.display()))
            && line.contains(&format!("({} exists)", dir.path().display())),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("check: 1 problem(s)"),
        "{stdout}"
    );
}

#[test]
fn check_warns_about_a_directory_matching_the_glob() {
    let dir = open_tempdir();
    let logs = dir.path().join("logs");
    fs::create_dir_all(logs.join("weird.log")).expect("mkdir");
    write_config(
        dir.path(),
        &format!(
            r#"{{ "filePattern": "{}/*.log", "kinesisStream": "s" }}"#,
            logs.display()
        ),
        "",
    );
    let mut args = vec!["check"];
    if is_root() {
        args.extend(["--user", "nobody"]);
    }
    let out = run(dir.path(), &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Warnings only: the agent skips the directory and ships files that appear later.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        line_with(&stdout, "warning:").contains(&format!(
            "{}/weird.log is a directory matching the pattern: skipped",
            logs.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("no file matches {}/*.log now", logs.display())),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("check: OK (2 warning(s))"),
        "{stdout}"
    );
}

#[test]
fn check_exits_1_with_the_configuration_error() {
    let dir = open_tempdir();
    write_config(dir.path(), r#"{ "filePattern": "/x/*.log" }"#, "");
    let out = run(dir.path(), &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        line_with(&stdout, "PROBLEM").contains("flows[0]"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("check: 1 problem(s)"),
        "{stdout}"
    );

    let out = run(dir.path(), &["check", "--user", "no-such-user-here"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// check --aws

#[test]
fn check_aws_finds_an_existing_stream_and_names_a_missing_one() {
    let emu = Emulators::shared();
    let present = emu.create_stream("tools-check-present", 1);
    emu.create_delivery_stream("tools-check-delivery", "tools-check-bucket", "");
    // Two delivery streams read the present stream, one reads another stream.
    emu.create_reading_delivery_stream(
        "tools-check-to-s3",
        "tools-check-archive",
        "agent/",
        &present,
    );
    emu.create_reading_delivery_stream("tools-check-copy", "tools-check-archive", "", &present);
    emu.create_reading_delivery_stream(
        "tools-check-elsewhere",
        "tools-check-archive",
        "",
        &present.replace("tools-check-present", "tools-check-other"),
    );
    let dir = open_tempdir();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    fs::write(logs.join("app.log"), "x\n").expect("write");
    let flows = format!(
        r#"{{ "filePattern": "{0}/*.log", "kinesisStream": "tools-check-present" }},
           {{ "filePattern": "{0}/*.log", "kinesisStream": "tools-check-missing" }},
           {{ "filePattern": "{0}/*.log", "deliveryStream": "tools-check-delivery" }}"#,
        logs.display()
    );
    let endpoints = format!(
        r#""kinesis.endpoint": "{}", "firehose.endpoint": "{}", "kinesis.region": "us-east-1","#,
        emu.kinesis_endpoint, emu.moto_endpoint
    );
    write_config(dir.path(), &flows, &endpoints);

    // Offline by default: the streams are not looked at.
    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("AWS:"));

    let out = run(dir.path(), &["check", "--aws"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout.contains("ok: credentials found (access key id test)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: Kinesis stream 'tools-check-present' exists and is ACTIVE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: Firehose delivery stream 'tools-check-delivery' exists and is ACTIVE"),
        "{stdout}"
    );
    assert!(
        line_with(&stdout, "PROBLEM")
            .contains("Kinesis stream 'tools-check-missing' does not exist"),
        "{stdout}"
    );
    // Where the present stream's records go on to, in name order; not the other stream's
    // reader, not the Direct PUT stream; nothing about the missing stream.
    let readers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("is read by Firehose delivery stream"))
        .collect();
    assert_eq!(
        readers,
        [
            "  ok: Kinesis stream 'tools-check-present' is read by Firehose delivery stream 'tools-check-copy' (ACTIVE), delivering to S3 bucket 'tools-check-archive'",
            "  ok: Kinesis stream 'tools-check-present' is read by Firehose delivery stream 'tools-check-to-s3' (ACTIVE), delivering to S3 bucket 'tools-check-archive' under 'agent/'",
        ],
        "{stdout}"
    );
    assert!(!stdout.contains("  note:"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("check: 1 problem(s)"),
        "{stdout}"
    );
}

#[test]
fn check_aws_says_it_did_not_look_for_readers_when_it_cannot_list_them() {
    // tools/fake-aws has the stream but does not implement ListDeliveryStreams.
    let fake = support::fake::FakeAws::start(&["--stream", "unlisted"]);
    let dir = open_tempdir();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    write_config(
        dir.path(),
        &format!(
            r#"{{ "filePattern": "{}/*.log", "kinesisStream": "unlisted" }}"#,
            logs.display()
        ),
        &format!(
            r#""kinesis.endpoint": "{0}", "firehose.endpoint": "{0}", "kinesis.region": "us-east-1","#,
            fake.endpoint
        ),
    );
    let out = run(dir.path(), &["check", "--aws"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Not a problem: the agent does not need to know who reads its stream.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout.contains("ok: Kinesis stream 'unlisted' exists and is ACTIVE"),
        "{stdout}"
    );
    assert!(
        line_with(&stdout, "  note:").contains(
            "did not look for Firehose delivery streams reading Kinesis stream 'unlisted': firehose:ListDeliveryStreams failed: UnknownOperationException"
        ),
        "{stdout}"
    );
}

#[test]
fn check_aws_reports_access_denied_with_the_action_it_needs() {
    let fake = support::fake::FakeAws::start(&["--stream", "locked", "--access-denied", "locked"]);
    let dir = open_tempdir();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    write_config(
        dir.path(),
        &format!(
            r#"{{ "filePattern": "{}/*.log", "kinesisStream": "locked" }}"#,
            logs.display()
        ),
        &format!(
            r#""kinesis.endpoint": "{}", "kinesis.region": "us-east-1","#,
            fake.endpoint
        ),
    );
    let out = run(dir.path(), &["check", "--aws"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = line_with(&stdout, "PROBLEM");
    assert!(
        line.contains("Kinesis stream 'locked': access denied (AccessDeniedException)")
            && line.contains("kinesis:DescribeStreamSummary")
            && line.contains("iam-policy"),
        "{stdout}"
    );
}

#[test]
fn check_aws_without_region_or_credentials_says_what_is_missing() {
    let dir = open_tempdir();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let flow = format!(
        r#"{{ "filePattern": "{}/*.log", "kinesisStream": "s" }}"#,
        logs.display()
    );
    // Nothing to ask: no region in the configuration or the environment, no keys, no profile,
    // instance metadata disabled (apply_aws_test_env), so nothing leaves the machine.
    let bare = |dir: &Path| {
        let mut cmd = Command::new(agent_bin());
        cmd.arg("check")
            .arg("--aws")
            .arg("-c")
            .arg(dir.join("agent.json"))
            .arg("--flows-dir")
            .arg(dir.join("agent.d"))
            .stdin(Stdio::null());
        apply_aws_test_env(&mut cmd);
        for var in [
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            cmd.env_remove(var);
        }
        cmd.output().expect("run check")
    };
    write_config(dir.path(), &flow, "");
    let out = bare(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        line_with(&stdout, "PROBLEM").contains("no AWS region found"),
        "{stdout}"
    );

    write_config(dir.path(), &flow, r#""kinesis.region": "eu-west-1","#);
    let out = bare(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout.contains("ok: region eu-west-1"), "{stdout}");
    assert!(
        line_with(&stdout, "PROBLEM").contains("no AWS credentials"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("check: 1 problem(s)"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// iam-policy

fn policy(dir: &Path, config: &Path, args: &[&str]) -> (Value, String) {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("iam-policy")
        .arg("-c")
        .arg(config)
        .arg("--flows-dir")
        .arg(dir.join("agent.d"))
        .args(args)
        .stdin(Stdio::null());
    apply_aws_test_env(&mut cmd);
    let out = cmd.output().expect("run iam-policy");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let document = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)));
    (document, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn iam_policy_for_the_release_sample_config_names_both_streams() {
    let dir = open_tempdir();
    fs::create_dir(dir.path().join("agent.d")).expect("mkdir");
    let (document, notes) = policy(dir.path(), &repo_root().join("config/agent.json"), &[]);
    let want = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KinesisStreams",
                "Effect": "Allow",
                "Action": ["kinesis:DescribeStreamSummary", "kinesis:PutRecords"],
                "Resource": ["arn:aws:kinesis:*:*:stream/yourkinesisstream"]
            },
            {
                "Sid": "FirehoseDeliveryStreams",
                "Effect": "Allow",
                "Action": ["firehose:DescribeDeliveryStream", "firehose:PutRecordBatch"],
                "Resource": ["arn:aws:firehose:*:*:deliverystream/yourdeliverystream"]
            },
            {
                "Sid": "CloudWatchMetrics",
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData"],
                "Resource": ["*"],
                "Condition": { "StringEquals": { "cloudwatch:namespace": "AWSKinesisAgent" } }
            }
        ]
    });
    assert_eq!(document, want);
    // The wildcards are said on standard error, not in the policy.
    assert!(
        notes.contains("account: `*`") && notes.contains("region: `*`"),
        "{notes}"
    );

    // With the account and region named, no wildcard is left.
    let (document, notes) = policy(
        dir.path(),
        &repo_root().join("config/agent.json"),
        &["--account", "123456789012", "--region", "eu-west-1"],
    );
    assert_eq!(
        document["Statement"][0]["Resource"],
        json!(["arn:aws:kinesis:eu-west-1:123456789012:stream/yourkinesisstream"])
    );
    assert_eq!(
        document["Statement"][1]["Resource"],
        json!(["arn:aws:firehose:eu-west-1:123456789012:deliverystream/yourdeliverystream"])
    );
    assert!(!notes.contains("`*`"), "{notes}");
}

#[test]
fn iam_policy_with_assume_role_and_a_custom_namespace() {
    let dir = open_tempdir();
    let config = write_config(
        dir.path(),
        r#"{ "filePattern": "/var/log/app/*.log", "kinesisStream": "app-logs" },
           { "filePattern": "/var/log/nginx/access.log*", "kinesisStream": "nginx" },
           { "filePattern": "/var/log/nginx/error.log*", "kinesisStream": "app-logs" }"#,
        r#""kinesis.region": "eu-west-1", "cloudwatch.emitMetrics": true, "cloudwatch.namespace": "Shipping/Web",
           "assumeRoleARN": "arn:aws:iam::210987654321:role/log-shipper","#,
    );
    let (document, notes) = policy(dir.path(), &config, &["--account", "123456789012"]);
    let want = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KinesisStreams",
                "Effect": "Allow",
                "Action": ["kinesis:DescribeStreamSummary", "kinesis:PutRecords"],
                "Resource": [
                    "arn:aws:kinesis:eu-west-1:123456789012:stream/app-logs",
                    "arn:aws:kinesis:eu-west-1:123456789012:stream/nginx"
                ]
            },
            {
                "Sid": "CloudWatchMetrics",
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData"],
                "Resource": ["*"],
                "Condition": { "StringEquals": { "cloudwatch:namespace": "Shipping/Web" } }
            },
            {
                "Sid": "AssumeRole",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole"],
                "Resource": ["arn:aws:iam::210987654321:role/log-shipper"]
            }
        ]
    });
    assert_eq!(document, want);
    assert!(notes.contains("assumeRoleARN"), "{notes}");
    assert!(!notes.contains("`*`"), "{notes}");

    // A bad account id is refused before anything is printed.
    let mut cmd = Command::new(agent_bin());
    cmd.args(["iam-policy", "--account", "42", "-c"])
        .arg(&config)
        .stdin(Stdio::null());
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn iam_policy_firehose_role_reads_the_configured_stream_and_writes_the_bucket() {
    let dir = open_tempdir();
    let config = write_config(
        dir.path(),
        r#"{ "filePattern": "/var/log/app/*.log", "kinesisStream": "app-logs" },
           { "filePattern": "/var/log/app/*.log", "deliveryStream": "direct" }"#,
        r#""kinesis.region": "eu-west-1","#,
    );
    // The source stream and the region come from the configuration.
    let (document, notes) = policy(
        dir.path(),
        &config,
        &[
            "--firehose-role",
            "--bucket",
            "app-logs-archive",
            "--account",
            "123456789012",
        ],
    );
    let want = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3Bucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": ["arn:aws:s3:::app-logs-archive"]
            },
            {
                "Sid": "S3Objects",
                "Effect": "Allow",
                "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                "Resource": ["arn:aws:s3:::app-logs-archive/*"]
            },
            {
                "Sid": "SourceStream",
                "Effect": "Allow",
                "Action": ["kinesis:DescribeStream", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"],
                "Resource": ["arn:aws:kinesis:eu-west-1:123456789012:stream/app-logs"]
            }
        ]
    });
    assert_eq!(document, want);
    assert!(!notes.contains("`*`"), "{notes}");

    // Every option: its statement, the KMS conditions; --source-stream wins over the
    // configuration, which is then not read at all (a missing file is no error).
    let (document, notes) = policy(
        dir.path(),
        &dir.path().join("missing.json"),
        &[
            "--firehose-role",
            "--bucket",
            "app-logs-archive",
            "--source-stream",
            "other",
            "--kms-key",
            "arn:aws:kms:eu-west-1:123456789012:key/1111-aaaa",
            "--stream-kms-key",
            "arn:aws:kms:eu-west-1:123456789012:key/2222-bbbb",
            "--lambda",
            "enrich",
            "--glue-database",
            "analytics",
            "--glue-table",
            "app_logs",
            "--log-group",
            "/aws/kinesisfirehose/app-logs",
            "--account",
            "123456789012",
            "--region",
            "eu-west-1",
        ],
    );
    let statements = document["Statement"].as_array().expect("statements");
    let by_sid = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no {sid} in {document:#}"))
    };
    assert_eq!(statements.len(), 8, "{document:#}");
    assert_eq!(
        by_sid("S3ObjectsKmsKey")["Condition"],
        json!({
            "StringEquals": { "kms:ViaService": "s3.eu-west-1.amazonaws.com" },
            "StringLike": { "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::app-logs-archive/*"] }
        })
    );
    assert_eq!(
        by_sid("SourceStreamKmsKey")["Condition"],
        json!({ "StringEquals": {
            "kms:ViaService": "kinesis.eu-west-1.amazonaws.com",
            "kms:EncryptionContext:aws:kinesis:arn": ["arn:aws:kinesis:eu-west-1:123456789012:stream/other"]
        } })
    );
    assert_eq!(
        by_sid("SourceStream")["Resource"],
        json!(["arn:aws:kinesis:eu-west-1:123456789012:stream/other"])
    );
    assert_eq!(
        by_sid("TransformationFunction")["Action"],
        json!(["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"])
    );
    assert_eq!(
        by_sid("GlueTable")["Resource"][2],
        "arn:aws:glue:eu-west-1:123456789012:table/analytics/app_logs"
    );
    assert_eq!(
        by_sid("ErrorLogs")["Resource"],
        json!(["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/kinesisfirehose/app-logs:log-stream:*"])
    );
    assert!(notes.trim().is_empty(), "{notes}");
}

#[test]
fn iam_policy_firehose_role_trust_and_refusals() {
    let dir = open_tempdir();
    let config = write_config(
        dir.path(),
        r#"{ "filePattern": "/var/log/app/*.log", "deliveryStream": "direct" }"#,
        "",
    );
    let (document, _) = policy(
        dir.path(),
        &config,
        &["--firehose-role", "--trust", "--account", "123456789012"],
    );
    assert_eq!(
        document,
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "FirehoseAssumesRole",
                "Effect": "Allow",
                "Principal": { "Service": "firehose.amazonaws.com" },
                "Action": "sts:AssumeRole",
                "Condition": { "StringEquals": { "sts:ExternalId": "123456789012" } }
            }]
        })
    );

    // No Kinesis flow: a Direct PUT role, S3 only, said on standard error.
    let (document, notes) = policy(
        dir.path(),
        &config,
        &["--firehose-role", "--bucket", "archive"],
    );
    assert_eq!(document["Statement"].as_array().map(Vec::len), Some(2));
    assert!(notes.contains("Direct PUT"), "{notes}");

    let refused = |args: &[&str], says: &str| {
        let mut cmd = Command::new(agent_bin());
        cmd.arg("iam-policy")
            .arg("-c")
            .arg(&config)
            .arg("--flows-dir")
            .arg(dir.path().join("agent.d"))
            .args(args)
            .stdin(Stdio::null());
        apply_aws_test_env(&mut cmd);
        let out = cmd.output().expect("run iam-policy");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(&["--firehose-role"], "needs --bucket");
    refused(&["--firehose-role", "--trust"], "--account");
    refused(
        &["--firehose-role", "--trust", "--account", "*"],
        "12-digit account id, not *",
    );
    refused(&["--bucket", "archive"], "--firehose-role");
    refused(
        &[
            "--firehose-role",
            "--bucket",
            "archive",
            "--glue-database",
            "db",
        ],
        "--glue-table",
    );
    refused(
        &["--firehose-role", "--bucket", "Not_A_Bucket"],
        "expected an S3 bucket name",
    );
    refused(
        &[
            "--firehose-role",
            "--bucket",
            "archive",
            "--kms-key",
            "arn:aws:kms:eu-west-1:123456789012:alias/logs",
        ],
        "not an alias",
    );
    refused(
        &[
            "--firehose-role",
            "--bucket",
            "archive",
            "--stream-kms-key",
            "arn:aws:kms:eu-west-1:123456789012:key/k",
        ],
        "--stream-kms-key needs a source stream",
    );
}

// ---------------------------------------------------------------------------------------------
// --dry-run

#[test]
fn dry_run_prints_the_json_records_and_touches_no_checkpoint() {
    let dir = open_tempdir();
    let log = dir.path().join("access.log");
    fs::write(
        &log,
        concat!(
            "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326\n",
            "10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] \"POST /form HTTP/1.1\" 404 12\n",
        ),
    )
    .expect("write");
    // An endpoint nothing listens on: a dry run must not need it.
    let config = write_config(
        dir.path(),
        &format!(
            r#"{{ "filePattern": "{}", "kinesisStream": "dry", "initialPosition": "START_OF_FILE",
                 "dataProcessingOptions": [ {{ "optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG" }} ] }}"#,
            log.display()
        ),
        r#""kinesis.endpoint": "http://127.0.0.1:9","#,
    );
    let checkpoints = dir.path().join("state").join("checkpoints");
    let mut cmd = Command::new(agent_bin());
    cmd.arg("--dry-run")
        .arg("-c")
        .arg(&config)
        .arg("--flows-dir")
        .arg(dir.path().join("agent.d"))
        .arg("-l")
        .arg(dir.path().join("agent.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    apply_aws_test_env(&mut cmd);
    // No region at all: a dry run builds no AWS client.
    cmd.env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let mut child = cmd.spawn().expect("start the agent");
    let mut stdout = child.stdout.take().expect("stdout");
    let printed = Arc::new(Mutex::new(Vec::new()));
    let sink = printed.clone();
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    });
    let printed_text = || String::from_utf8_lossy(&printed.lock().expect("lock")).into_owned();
    let deadline = Instant::now() + WAIT;
    while printed_text().lines().count() < 2 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the dry run exited ({status}); log:\n{}",
                fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no records printed; log:\n{}",
            fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    reader.join().expect("reader");
    assert!(status.success(), "{status}");
    assert_eq!(
        printed_text(),
        concat!(
            r#"{"host":"127.0.0.1","ident":null,"authuser":"frank","datetime":"10/Oct/2000:13:55:36 -0700","request":"GET /apache_pb.gif HTTP/1.0","response":"200","bytes":"2326"}"#,
            "\n",
            r#"{"host":"10.0.0.2","ident":null,"authuser":null,"datetime":"10/Oct/2000:13:55:37 -0700","request":"POST /form HTTP/1.1","response":"404","bytes":"12"}"#,
            "\n",
        )
    );
    assert!(
        !checkpoints.exists() && !dir.path().join("state").exists(),
        "a dry run created {}",
        checkpoints.display()
    );
    let log = fs::read_to_string(dir.path().join("agent.log")).expect("agent log");
    assert!(log.contains("dry run"), "{log}");
}
