//! The pipeline as code: the policies `iam-policy` prints pass an IAM policy linter
//! (parliament, no finding above LOW), `deploy/pipeline.yaml` passes `cfn-lint`, and the template, created in moto's
//! CloudFormation, makes the resources moto implements with the very policies the binary prints
//! for the configuration the stack outputs.
//!
//! Needs `scripts/setup-emulators` (run by `scripts/test`): parliament, cfn-lint and moto in
//! `.venv-emu`. The trust policy is not linted: parliament checks identity policies.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kinesis_agent::config::{parse_document, Environment};
use kinesis_agent::metrics::names;
use serde_json::{json, Value};
use support::agent::agent_bin;
use support::{apply_aws_test_env, repo_root, Emulators};

/// moto's account and region (tests/emu/emu.py).
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

fn venv_tool(name: &str) -> PathBuf {
    let path = repo_root().join(".venv-emu/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-emulators first",
        path.display()
    );
    path
}

fn text(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `aws-kinesis-agent iam-policy ARGS` (with `--flows-dir` in `dir`): the printed JSON.
fn iam_policy(dir: &Path, args: &[&str]) -> Value {
    let flows_dir = dir.join("agent.d");
    fs::create_dir_all(&flows_dir).expect("flows dir");
    let mut cmd = Command::new(agent_bin());
    cmd.arg("iam-policy")
        .arg("--flows-dir")
        .arg(&flows_dir)
        .args(args)
        .stdin(Stdio::null());
    apply_aws_test_env(&mut cmd);
    let out = cmd.output().expect("run iam-policy");
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

/// parliament's findings (every severity) for each named policy, through
/// tests/emu/lint_policies.py (parliament's library, in one process).
fn parliament(policies: &[(String, Value)]) -> Vec<Value> {
    let mut child = Command::new(venv_tool("python"))
        .arg(repo_root().join("tests/emu/lint_policies.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tests/emu/lint_policies.py");
    let input: serde_json::Map<String, Value> = policies.iter().cloned().collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(Value::Object(input).to_string().as_bytes())
        .expect("write the policies");
    let out = child.wait_with_output().expect("run lint_policies.py");
    assert!(
        out.status.success(),
        "lint_policies.py failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("finding {l:?}: {e}")))
        .collect()
}

/// Findings above LOW (MEDIUM, HIGH, CRITICAL).
fn above_low(findings: &[Value]) -> Vec<&Value> {
    findings
        .iter()
        .filter(|f| !matches!(f["severity"].as_str(), Some("LOW" | "INFO")))
        .collect()
}

#[test]
fn printed_policies_have_no_linter_finding_above_low() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = repo_root().join("config/agent.json");
    let sample = sample.to_str().expect("utf-8 path");
    let assume = dir.path().join("assume.json");
    fs::write(
        &assume,
        r#"{ "kinesis.region": "eu-west-1", "assumeRoleARN": "arn:aws:iam::210987654321:role/shipper",
             "flows": [ { "filePattern": "/var/log/app/*.log", "kinesisStream": "app" } ] }"#,
    )
    .expect("write config");
    let assume = assume.to_str().expect("utf-8 path");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("agent, sample configuration, wildcards", vec!["-c", sample]),
        (
            "agent, sample configuration, named",
            vec!["-c", sample, "--account", ACCOUNT, "--region", "eu-west-1"],
        ),
        (
            "agent, assumeRoleARN",
            vec!["-c", assume, "--account", ACCOUNT],
        ),
        (
            "delivery role, S3 and the source stream only",
            vec![
                "-c",
                sample,
                "--firehose-role",
                "--bucket",
                "archive",
                "--source-stream",
                "s",
            ],
        ),
        (
            "delivery role, every option, named",
            vec![
                "--firehose-role",
                "--bucket",
                "archive",
                "--source-stream",
                "app",
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
                "/aws/kinesisfirehose/app",
                "--account",
                ACCOUNT,
                "--region",
                "eu-west-1",
            ],
        ),
        (
            "delivery role, every option, wildcards",
            vec![
                "--firehose-role",
                "--bucket",
                "archive",
                "--source-stream",
                "app",
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
                "/aws/kinesisfirehose/app",
            ],
        ),
    ];
    let mut policies: Vec<(String, Value)> = cases
        .iter()
        .map(|(name, args)| (name.to_string(), iam_policy(dir.path(), args)))
        .collect();
    // The linter does find what it should: an action on a resource type it does not take, and
    // a condition key that does not apply to the action.
    let wrong = "control: a wrong policy";
    policies.push((
        wrong.to_string(),
        json!({ "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["logs:PutLogEvents"],
            "Resource": ["arn:aws:s3:::archive"],
            "Condition": { "StringEquals": { "kms:ViaService": "s3.eu-west-1.amazonaws.com" } } }] }),
    ));
    let findings = parliament(&policies);
    let mut failures = Vec::new();
    for (name, policy) in &policies {
        let of_policy: Vec<Value> = findings
            .iter()
            .filter(|f| f["policy"] == name.as_str())
            .cloned()
            .collect();
        eprintln!("{name}: {} finding(s) {of_policy:?}", of_policy.len());
        let serious = above_low(&of_policy).len();
        if name == wrong {
            if serious < 2 {
                failures.push(format!(
                    "parliament found too little in the control: {of_policy:?}"
                ));
            }
        } else if serious > 0 {
            failures.push(format!("{name}: {policy:#}\n{of_policy:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// cfn-lint's findings for `template` (JSON objects with `Level`, `Rule`, `Message`, ...).
fn cfn_lint(template: &Path) -> Vec<Value> {
    let out = Command::new(venv_tool("cfn-lint"))
        .args(["--format", "json", "--regions", REGION, "--"])
        .arg(template)
        .stdin(Stdio::null())
        .output()
        .expect("run cfn-lint");
    // cfn-lint's exit status is a bit mask of the levels found (2 error, 4 warning, 8 info);
    // 1 is a failure to run.
    assert_ne!(
        out.status.code(),
        Some(1),
        "cfn-lint failed: {}",
        text(&out)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .unwrap_or_else(|e| panic!("cfn-lint output is not JSON ({e}): {}", text(&out)))
}

#[test]
fn pipeline_template_passes_cfn_lint() {
    let template = repo_root().join("deploy/pipeline.yaml");
    let findings = cfn_lint(&template);
    for f in &findings {
        eprintln!(
            "cfn-lint: {} {} {}",
            f["Level"], f["Rule"]["Id"], f["Message"]
        );
    }
    let errors: Vec<&Value> = findings.iter().filter(|f| f["Level"] == "Error").collect();
    assert!(errors.is_empty(), "cfn-lint errors: {errors:#?}");

    // ... and it does look: a source type Firehose does not have is an error.
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("pipeline.yaml");
    let text = fs::read_to_string(&template).expect("read the template");
    assert!(text.contains("DeliveryStreamType: KinesisStreamAsSource"));
    fs::write(
        &broken,
        text.replace(
            "DeliveryStreamType: KinesisStreamAsSource",
            "DeliveryStreamType: KinesisSource",
        ),
    )
    .expect("write");
    assert!(
        cfn_lint(&broken).iter().any(|f| f["Level"] == "Error"),
        "cfn-lint found no error in a broken template"
    );
}

/// The types moto 5.2.5's CloudFormation creates from the template; the stream's log stream,
/// the Firehose delivery stream and the alarm it skips (README, "From zero to S3").
const MOTO_CREATES: &[(&str, &str)] = &[
    ("Stream", "AWS::Kinesis::Stream"),
    ("Bucket", "AWS::S3::Bucket"),
    ("DeliveryLogGroup", "AWS::Logs::LogGroup"),
    ("DeliveryRole", "AWS::IAM::Role"),
    ("AgentRole", "AWS::IAM::Role"),
    ("AgentInstanceProfile", "AWS::IAM::InstanceProfile"),
    ("Dashboard", "AWS::CloudWatch::Dashboard"),
];

struct Stack {
    /// logical id -> physical id
    resources: Vec<(String, String)>,
    /// output key -> value
    outputs: Vec<(String, String)>,
}

impl Stack {
    fn create(emu: &Emulators, name: &str, params: &[(&str, &str)]) -> Stack {
        let template = repo_root().join("deploy/pipeline.yaml");
        let mut args = vec![
            "create-stack".to_string(),
            name.to_string(),
            "--template".to_string(),
            template.to_str().expect("utf-8 path").to_string(),
        ];
        for (k, v) in params {
            args.push("--param".to_string());
            args.push(format!("{k}={v}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut stack = Stack {
            resources: Vec::new(),
            outputs: Vec::new(),
        };
        let printed = emu.emu(&args);
        let lines: Vec<Value> = printed
            .lines()
            .map(|l| serde_json::from_str(l).expect("emu.py JSON line"))
            .collect();
        assert_eq!(
            lines[0]["stack_status"],
            "CREATE_COMPLETE",
            "{printed}\n{}",
            emu.logs()
        );
        let mut types = Vec::new();
        for line in &lines[1..] {
            let field = |k: &str| line[k].as_str().unwrap_or_default().to_string();
            if line.get("logical").is_some() {
                assert_eq!(line["status"], "CREATE_COMPLETE", "{line}");
                types.push((field("logical"), field("type")));
                stack.resources.push((field("logical"), field("physical")));
            } else {
                stack.outputs.push((field("output"), field("value")));
            }
        }
        let want: Vec<(String, String)> = MOTO_CREATES
            .iter()
            .map(|(l, t)| (l.to_string(), t.to_string()))
            .collect();
        assert_eq!(types, want, "{printed}");
        stack
    }

    fn physical(&self, logical: &str) -> &str {
        self.resources
            .iter()
            .find(|(l, _)| l == logical)
            .map(|(_, p)| p.as_str())
            .unwrap_or_else(|| panic!("no resource {logical}"))
    }

    fn output(&self, key: &str) -> &str {
        self.outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no output {key}"))
    }
}

fn call(emu: &Emulators, service: &str, operation: &str, params: Value) -> Value {
    let printed = emu.emu(&["call", service, operation, &params.to_string()]);
    serde_json::from_str(printed.trim()).expect("emu.py call output")
}

/// (trust policy, the only inline policy) of `role`.
fn role_policies(emu: &Emulators, role: &str) -> (Value, Value) {
    let printed = emu.emu(&["role-policies", role]);
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("emu.py JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "one inline policy expected: {printed}");
    let mut permissions = lines[1]["document"].clone();
    // moto keeps an `!If [..., !Ref AWS::NoValue]` list item as null; CloudFormation drops it.
    if let Some(statements) = permissions["Statement"].as_array_mut() {
        statements.retain(|s| !s.is_null());
    }
    (lines[0]["trust"].clone(), permissions)
}

/// Creates a stack, then checks every resource moto made against what the binary prints for the
/// stack's AgentJson output (written as agent.json).
fn check_stack(emu: &Emulators, name: &str, params: &[(&str, &str)], expect: &Expect) {
    let stack = Stack::create(emu, name, params);
    let param = |k: &str| {
        params
            .iter()
            .find(|(p, _)| *p == k)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("test passes no {k}"))
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.json");
    let agent_json = stack.output("AgentJson");
    fs::write(&config, agent_json).expect("write agent.json");
    let config = config.to_str().expect("utf-8 path");
    let plan = parse_document(
        (Path::new(config), agent_json),
        &[],
        &Environment { cpus: 2 },
    )
    .unwrap_or_else(|e| panic!("the AgentJson output is no valid agent.json ({e}): {agent_json}"));
    assert_eq!(plan.flows.len(), 1);
    assert_eq!(plan.flows[0].destination.name(), param("StreamName"));

    // The stream.
    let summary = &call(
        emu,
        "kinesis",
        "describe_stream_summary",
        json!({ "StreamName": param("StreamName") }),
    )["StreamDescriptionSummary"];
    assert_eq!(summary["StreamStatus"], "ACTIVE");
    // moto 5.2.5 ignores StreamModeDetails (every stream it makes is PROVISIONED), so only the
    // shard count tells the modes apart: ShardCount is passed for PROVISIONED only.
    assert_eq!(summary["OpenShardCount"], expect.shards);
    assert_eq!(stack.output("StreamArn"), summary["StreamARN"]);

    // The bucket, encrypted with the key (or SSE-S3).
    assert_eq!(stack.physical("Bucket"), param("BucketName"));
    let encryption = call(
        emu,
        "s3",
        "get_bucket_encryption",
        json!({ "Bucket": param("BucketName") }),
    );
    let by_default = &encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
        ["ApplyServerSideEncryptionByDefault"];
    assert_eq!(by_default["SSEAlgorithm"], expect.sse, "{encryption}");

    // The delivery role: the trust and permissions `iam-policy --firehose-role` prints for
    // the stack's agent.json.
    let delivery_role = stack.physical("DeliveryRole");
    let (trust, permissions) = role_policies(emu, delivery_role);
    assert_eq!(
        trust,
        iam_policy(
            dir.path(),
            &["--firehose-role", "--trust", "--account", ACCOUNT]
        )
    );
    let log_group = format!("/aws/kinesisfirehose/{}", param("DeliveryStreamName"));
    let mut args = vec![
        "-c",
        config,
        "--firehose-role",
        "--bucket",
        param("BucketName"),
        "--log-group",
        &log_group,
        "--account",
        ACCOUNT,
    ];
    args.extend_from_slice(&expect.delivery_role_args);
    assert_eq!(permissions, iam_policy(dir.path(), &args));

    // The agent's role: the policy `iam-policy` prints for that agent.json, in the profile.
    let agent_role = stack.physical("AgentRole");
    let (trust, permissions) = role_policies(emu, agent_role);
    assert_eq!(
        trust["Statement"][0]["Principal"],
        json!({ "Service": "ec2.amazonaws.com" })
    );
    assert_eq!(
        permissions,
        iam_policy(dir.path(), &["-c", config, "--account", ACCOUNT])
    );
    let profile = &call(
        emu,
        "iam",
        "get_instance_profile",
        json!({ "InstanceProfileName": stack.output("InstanceProfileName") }),
    )["InstanceProfile"];
    assert_eq!(profile["Roles"][0]["RoleName"], agent_role);
    assert_eq!(profile["Arn"], stack.output("InstanceProfileArn"));

    // The log group Firehose reports delivery errors to.
    let groups = call(
        emu,
        "logs",
        "describe_log_groups",
        json!({ "logGroupNamePrefix": log_group }),
    );
    assert_eq!(groups["logGroups"][0]["logGroupName"], log_group.as_str());

    // The dashboard: the agent's metric names, namespace and Destination dimension.
    let dashboard = call(
        emu,
        "cloudwatch",
        "get_dashboard",
        json!({ "DashboardName": stack.physical("Dashboard") }),
    );
    let body: Value = serde_json::from_str(dashboard["DashboardBody"].as_str().expect("body"))
        .expect("the dashboard body is JSON");
    let shown: Vec<Value> = body["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .map(|w| w["properties"]["metrics"][0].clone())
        .collect();
    let dimension = plan.flows[0].destination.metric_dimension();
    let want: Vec<Value> = [
        names::RECORDS_SENT,
        names::RECORD_SEND_ERRORS,
        names::BYTES_BEHIND,
        names::FILES_BEHIND,
    ]
    .iter()
    .map(|m| json!([plan.cloudwatch.namespace, m, "Destination", dimension]))
    .collect();
    assert_eq!(shown, want);
}

struct Expect {
    shards: u64,
    sse: &'static str,
    delivery_role_args: Vec<&'static str>,
}

#[test]
fn pipeline_stack_in_moto_has_the_printed_policies() {
    let emu = Emulators::start();
    check_stack(
        &emu,
        "pipeline-defaults",
        &[
            ("StreamName", "agent-logs"),
            ("DeliveryStreamName", "agent-logs-to-s3"),
            ("BucketName", "agent-logs-archive"),
        ],
        &Expect {
            // No ShardCount for ON_DEMAND: moto makes its default, 1.
            shards: 1,
            sse: "AES256",
            delivery_role_args: vec![],
        },
    );
    check_stack(
        &emu,
        "pipeline-everything",
        &[
            ("StreamName", "web-logs"),
            ("StreamMode", "PROVISIONED"),
            ("ShardCount", "2"),
            ("DeliveryStreamName", "web-logs-to-s3"),
            ("BucketName", "web-logs-archive"),
            ("Prefix", "web/"),
            ("BufferingSizeMB", "64"),
            ("BufferingIntervalSeconds", "60"),
            (
                "KmsKeyArn",
                "arn:aws:kms:us-east-1:123456789012:key/1111-aaaa",
            ),
            (
                "LambdaArn",
                "arn:aws:lambda:us-east-1:123456789012:function:enrich",
            ),
            ("MetricsNamespace", "Shipping/Web"),
        ],
        &Expect {
            shards: 2,
            sse: "aws:kms",
            delivery_role_args: vec![
                "--kms-key",
                "arn:aws:kms:us-east-1:123456789012:key/1111-aaaa",
                "--lambda",
                "arn:aws:lambda:us-east-1:123456789012:function:enrich",
            ],
        },
    );
}
