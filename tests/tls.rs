//! HTTPS as against AWS: tools/fake-aws serves TLS with a CA it makes at start (`--tls
//! --cert-out`), and the agent trusts that CA through the standard `SSL_CERT_FILE`, which the
//! SDK's default HTTPS client (rustls, roots from rustls-native-certs) reads instead of the
//! system store. Records are checked through the fake's `--record-file` (its control API is
//! behind the same TLS listener).

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::agent::{eventually, Agent};
use support::fake::FakeAws;

const WAIT: Duration = Duration::from_secs(60);

fn start_tls_fake(dir: &Path, name: &str) -> (FakeAws, String, String) {
    let ca = dir.join(format!("{name}-ca.pem")).display().to_string();
    let records = dir.join(format!("{name}-records")).display().to_string();
    let fake = FakeAws::start(&[
        "--tls",
        "--cert-out",
        &ca,
        "--stream",
        "tls-stream",
        "--record-file",
        &records,
    ]);
    assert!(fake.endpoint.starts_with("https://"), "{}", fake.endpoint);
    (fake, ca, records)
}

fn config(fake: &FakeAws, pattern: &Path) -> String {
    format!(
        r#"{{ "kinesis.endpoint": "{e}", "firehose.endpoint": "{e}", "kinesis.region": "us-east-1",
             "cloudwatch.emitMetrics": false, "shutdownTimeoutMillis": 1000,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "tls-stream",
                           "maxBufferAgeMillis": 1000, "initialPosition": "START_OF_FILE" }} ] }}"#,
        pattern.display(),
        e = fake.endpoint
    )
}

fn write_lines(path: &Path) -> String {
    let text: String = (0..3).map(|i| format!("tls line {i}\n")).collect();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(text.as_bytes()).expect("write");
    text
}

#[test]
fn the_agent_trusts_a_ca_given_in_ssl_cert_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fake, ca, records) = start_tls_fake(dir.path(), "fake");
    let written = write_lines(&dir.path().join("app.log"));
    let mut env = fake.env();
    env.push(("SSL_CERT_FILE".into(), ca));
    let mut agent = Agent::start(
        dir.path(),
        &config(&fake, &dir.path().join("app.log*")),
        &env,
    );
    let arrived = eventually(WAIT, || {
        fs::read_to_string(&records).is_ok_and(|got| got.len() >= written.len())
    });
    let log = agent.log_text();
    agent.stop();
    assert!(arrived, "nothing arrived over TLS; log:\n{log}");
    assert_eq!(fs::read_to_string(&records).expect("records"), written);
}

#[test]
fn without_that_ca_the_handshake_fails_and_nothing_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fake, _ca, records) = start_tls_fake(dir.path(), "fake");
    // A bundle with another CA only: the fake's certificate has an unknown issuer.
    let (_other, other_ca, _) = start_tls_fake(dir.path(), "other");
    write_lines(&dir.path().join("app.log"));
    let mut env = fake.env();
    env.push(("SSL_CERT_FILE".into(), other_ca));
    let mut agent = Agent::start(
        dir.path(),
        &config(&fake, &dir.path().join("app.log*")),
        &env,
    );
    agent.wait_for_log("invalid peer certificate: UnknownIssuer", WAIT);
    agent.stop();
    assert_eq!(fs::read_to_string(&records).unwrap_or_default(), "");
}
