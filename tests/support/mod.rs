//! Test support: local AWS emulators for integration tests.
//!
//! Include it from a test file with `mod support;`. [`fake::FakeAws`] runs the project's own fake
//! endpoint (tools/fake-aws) for fault-injection tests. This module starts, on free loopback ports:
//!
//! - **kinesalite** (Kinesis Data Streams) through `tests/emu/run-kinesalite.js`, and
//! - **moto server** (Firehose, S3, STS) through `tests/emu/emu.py serve-moto`,
//!
//! and drives them through the boto3 CLI `tests/emu/emu.py`. Install both first with
//! `scripts/setup-emulators` (`scripts/test` does that for you).
//!
//! Safety: everything binds and talks to 127.0.0.1 only. Every process started here gets the
//! environment from [`apply_aws_test_env`]: every inherited `AWS_*` variable is removed, then
//! static `test`/`test` credentials, region `us-east-1`, `AWS_EC2_METADATA_DISABLED=true` and
//! empty `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` are set. Use the same function (or
//! [`aws_test_env`]) for the agent process a test starts.
//!
//! Both emulators also exit by themselves when the test process dies (they watch their stdin
//! pipe), so even a killed `cargo test` leaves no server behind.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod agent;
pub mod fake;
pub mod imds;
pub mod kpl;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Default bound on emulator start-up; override with env `EMU_START_TIMEOUT_SECS`.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many fresh ports moto is tried on when its port is taken between probe and bind.
const MOTO_PORT_ATTEMPTS: usize = 5;

/// The repository root (`CARGO_MANIFEST_DIR`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The AWS safety environment for any process that may talk to AWS (see module docs).
/// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` point at empty files under the target
/// directory's test tmp dir (`CARGO_TARGET_TMPDIR/aws-empty/`), created on first use.
pub fn aws_test_env() -> Vec<(String, String)> {
    let (config, credentials) = empty_aws_files();
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", config.to_str().expect("utf-8 path")),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials.to_str().expect("utf-8 path"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Removes every inherited `AWS_*` variable from `cmd` (profiles, session tokens, role/web
/// identity settings, `AWS_ENDPOINT_URL*`, ...) and sets [`aws_test_env`].
pub fn apply_aws_test_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&key);
        }
    }
    cmd.envs(aws_test_env())
}

fn empty_aws_files() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aws-empty");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let config = dir.join("config");
        let credentials = dir.join("credentials");
        for f in [&config, &credentials] {
            // Truncate, in case anything ever wrote to them.
            File::create(f).unwrap_or_else(|e| panic!("create {}: {e}", f.display()));
        }
        (config, credentials)
    })
}

/// One record read back from a Kinesis stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// One shard of a Kinesis stream, with its hash key range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedShard {
    pub shard_id: String,
    pub start: u128,
    pub end: u128,
    pub open: bool,
}

/// A running kinesalite + moto pair. Dropping it kills and reaps both servers.
pub struct Emulators {
    /// kinesalite, e.g. `http://127.0.0.1:41234` (Kinesis Data Streams).
    pub kinesis_endpoint: String,
    /// moto server, e.g. `http://127.0.0.1:41235` (Firehose, S3, STS).
    pub moto_endpoint: String,
    kinesalite: ChildGuard,
    moto: ChildGuard,
    dir: tempfile::TempDir,
}

impl Emulators {
    /// Starts kinesalite and moto on free loopback ports and waits until both answer (bounded by
    /// `EMU_START_TIMEOUT_SECS`, default 20 s). Panics with the emulator's log on failure, and
    /// with "run scripts/setup-emulators first" if they are not installed.
    pub fn start() -> Emulators {
        let root = repo_root();
        let python = venv_python();
        let launcher = root.join("tests/emu/run-kinesalite.js");
        let kinesalite_pkg = root.join("tests/emu/node_modules/kinesalite/package.json");
        for needed in [
            &python,
            &root.join(".venv-emu/bin/moto_server"),
            &kinesalite_pkg,
        ] {
            if !needed.exists() {
                panic!(
                    "local AWS emulators are not installed ({} is missing): \
                     run scripts/setup-emulators first",
                    needed.display()
                );
            }
        }
        let timeout = start_timeout();
        let deadline = Instant::now() + timeout;
        let dir = tempfile::Builder::new()
            .prefix("kinesis-agent-emu-")
            .tempdir()
            .expect("create emulator temp dir");

        let (kinesalite, kinesis_port) = start_kinesalite(&launcher, dir.path(), deadline, timeout);
        let (moto, moto_port) = start_moto(&python, dir.path(), deadline, timeout);
        Emulators {
            kinesis_endpoint: format!("http://127.0.0.1:{kinesis_port}"),
            moto_endpoint: format!("http://127.0.0.1:{moto_port}"),
            kinesalite,
            moto,
            dir,
        }
    }

    /// One pair shared by every test in this test binary, started on first use. It is never
    /// dropped; the servers exit when the test process exits (stdin watchdog). Tests sharing it
    /// must use distinct stream, delivery stream and bucket names.
    pub fn shared() -> &'static Emulators {
        static SHARED: OnceLock<Emulators> = OnceLock::new();
        SHARED.get_or_init(Emulators::start)
    }

    /// Environment for an SDK-based process (e.g. the agent): [`aws_test_env`] plus
    /// `AWS_ENDPOINT_URL` = moto and `AWS_ENDPOINT_URL_KINESIS` = kinesalite.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = aws_test_env();
        env.push(("AWS_ENDPOINT_URL".into(), self.moto_endpoint.clone()));
        env.push((
            "AWS_ENDPOINT_URL_KINESIS".into(),
            self.kinesis_endpoint.clone(),
        ));
        env
    }

    /// Runs `emu.py --kinesis-endpoint .. --moto-endpoint .. ARGS...` and returns its stdout.
    /// Panics with its stderr if it fails.
    pub fn emu(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(venv_python());
        cmd.arg(repo_root().join("tests/emu/emu.py"))
            .args(["--kinesis-endpoint", &self.kinesis_endpoint])
            .args(["--moto-endpoint", &self.moto_endpoint])
            .args(args)
            .stdin(Stdio::null());
        apply_aws_test_env(&mut cmd);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run tests/emu/emu.py: {e}"));
        if !out.status.success() {
            panic!(
                "emu.py {args:?} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout),
            );
        }
        String::from_utf8(out.stdout).expect("emu.py output is UTF-8")
    }

    /// Creates a Kinesis stream on kinesalite and waits until it is ACTIVE; returns its ARN.
    pub fn create_stream(&self, name: &str, shards: u32) -> String {
        let out = self.emu(&["create-stream", name, "--shards", &shards.to_string()]);
        let arn = json_lines(&out)
            .next()
            .map(|v| str_field(&v, "arn"))
            .unwrap_or_else(|| panic!("create-stream printed nothing"));
        arn
    }

    /// Deletes a Kinesis stream on kinesalite.
    pub fn delete_stream(&self, name: &str) {
        self.emu(&["delete-stream", name]);
    }

    /// Creates the S3 bucket (if missing) and a DirectPut Firehose delivery stream with an
    /// ExtendedS3 destination on moto (`prefix` may be empty), and waits until it is ACTIVE.
    /// moto writes one object per PutRecordBatch call, at
    /// `<prefix>YYYY/MM/DD/HH/<name>-1-YYYY-MM-DD-HH-MM-SS-<uuid>`, holding the records' bytes
    /// concatenated with nothing added.
    pub fn create_delivery_stream(&self, name: &str, bucket: &str, prefix: &str) {
        self.emu(&[
            "create-delivery-stream",
            name,
            "--bucket",
            bucket,
            "--prefix",
            prefix,
        ]);
    }

    /// Like [`Emulators::create_delivery_stream`], but with the Kinesis stream `source_arn` as
    /// its source (`KinesisStreamAsSource`). moto only keeps the source: it reads nothing from it.
    pub fn create_reading_delivery_stream(
        &self,
        name: &str,
        bucket: &str,
        prefix: &str,
        source_arn: &str,
    ) {
        self.emu(&[
            "create-delivery-stream",
            name,
            "--bucket",
            bucket,
            "--prefix",
            prefix,
            "--source-stream-arn",
            source_arn,
        ]);
    }

    /// Every record of every shard of `stream`, shard by shard (shard id order), each shard in
    /// sequence-number order.
    pub fn kinesis_records(&self, stream: &str) -> Vec<KinesisRecord> {
        json_lines(&self.emu(&["kinesis-records", stream]))
            .map(|v| KinesisRecord {
                shard_id: str_field(&v, "shard"),
                sequence_number: str_field(&v, "seq"),
                partition_key: str_field(&v, "partition_key"),
                data: base64_decode(&str_field(&v, "data_b64")),
            })
            .collect()
    }

    /// Every shard of `stream`, open and closed, in shard id order.
    pub fn list_shards(&self, stream: &str) -> Vec<ListedShard> {
        json_lines(&self.emu(&["list-shards", stream]))
            .map(|v| ListedShard {
                shard_id: str_field(&v, "shard"),
                start: str_field(&v, "start").parse().expect("a hash key"),
                end: str_field(&v, "end").parse().expect("a hash key"),
                open: v["open"].as_bool().expect("open"),
            })
            .collect()
    }

    /// Kinesis SplitShard of `shard` of `stream`, the new upper shard starting at `at`; waits
    /// until the stream is ACTIVE again.
    pub fn split_shard(&self, stream: &str, shard: &str, at: u128) {
        self.emu(&["split-shard", stream, shard, "--at", &at.to_string()]);
    }

    /// Every object in `bucket` whose key starts with `prefix`, as (key, bytes), in key order.
    /// Note: within one second moto's Firehose keys sort by a random UUID, so key order is not
    /// necessarily write order.
    pub fn s3_objects(&self, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        json_lines(&self.emu(&["s3-objects", bucket, "--prefix", prefix]))
            .map(|v| {
                (
                    str_field(&v, "key"),
                    base64_decode(&str_field(&v, "data_b64")),
                )
            })
            .collect()
    }

    /// Kinesis PutRecords (through boto3), one record per item, partition keys `pk-<index>`.
    pub fn put_records(&self, stream: &str, records: &[&[u8]]) {
        let encoded: Vec<String> = records.iter().map(|r| base64_encode(r)).collect();
        let mut args = vec!["put-records", stream, "--b64"];
        args.extend(encoded.iter().map(String::as_str));
        self.emu(&args);
    }

    /// Firehose PutRecordBatch (through boto3), one record per item.
    pub fn put_record_batch(&self, delivery_stream: &str, records: &[&[u8]]) {
        let encoded: Vec<String> = records.iter().map(|r| base64_encode(r)).collect();
        let mut args = vec!["put-record-batch", delivery_stream, "--b64"];
        args.extend(encoded.iter().map(String::as_str));
        self.emu(&args);
    }

    /// Wipes all moto state (delivery streams, buckets, ...). kinesalite is not affected.
    pub fn reset_moto(&self) {
        self.emu(&["reset-moto"]);
    }

    /// The emulators' logs so far (for failure messages).
    pub fn logs(&self) -> String {
        format!(
            "--- kinesalite (pid {}) ---\n{}\n--- moto (pid {}) ---\n{}",
            self.kinesalite.0.id(),
            read_tail(&self.dir.path().join("kinesalite.log")),
            self.moto.0.id(),
            read_tail(&self.dir.path().join("moto.log")),
        )
    }

    /// Process ids of (kinesalite, moto).
    pub fn pids(&self) -> (u32, u32) {
        (self.kinesalite.0.id(), self.moto.0.id())
    }
}

/// Kills and reaps a child when dropped (also when `Emulators::start` panics half-way).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn venv_python() -> PathBuf {
    repo_root().join(".venv-emu/bin/python")
}

fn start_timeout() -> Duration {
    std::env::var("EMU_START_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_START_TIMEOUT)
}

fn start_kinesalite(
    launcher: &Path,
    dir: &Path,
    deadline: Instant,
    timeout: Duration,
) -> (ChildGuard, u16) {
    let log_path = dir.join("kinesalite.log");
    let log = File::create(&log_path).expect("create kinesalite.log");
    let mut cmd = Command::new("node");
    cmd.arg(launcher)
        .arg("0")
        .env("KINESALITE_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log);
    apply_aws_test_env(&mut cmd);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node {}: {e}", launcher.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut guard = ChildGuard(child);

    // Read the "listening" line on a thread so that the wait is bounded; the thread then drains
    // stdout until kinesalite exits.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(port) = line
                .strip_prefix("kinesalite listening on http://127.0.0.1:")
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                let _ = tx.send(port);
                break;
            }
        }
        for _ in lines {}
    });

    let port = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(port) => break port,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = guard.0.wait().ok();
                panic!(
                    "kinesalite exited before listening (status {status:?}); log:\n{}",
                    read_tail(&log_path)
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = guard.0.try_wait() {
                    panic!(
                        "kinesalite exited before listening ({status}); log:\n{}",
                        read_tail(&log_path)
                    );
                }
                if Instant::now() > deadline {
                    panic!(
                        "kinesalite did not listen within {timeout:?}; log:\n{}",
                        read_tail(&log_path)
                    );
                }
            }
        }
    };
    // It listens once the line is printed; an unsigned POST must answer 400.
    wait_http(
        port,
        "POST",
        "/",
        400,
        &mut guard,
        "kinesalite",
        &log_path,
        deadline,
        timeout,
    );
    (guard, port)
}

fn start_moto(
    python: &Path,
    dir: &Path,
    deadline: Instant,
    timeout: Duration,
) -> (ChildGuard, u16) {
    let log_path = dir.join("moto.log");
    for attempt in 1..=MOTO_PORT_ATTEMPTS {
        let port = free_port();
        let log = File::create(&log_path).expect("create moto.log");
        let log_err = log.try_clone().expect("clone moto.log handle");
        let mut cmd = Command::new(python);
        cmd.arg(repo_root().join("tests/emu/emu.py"))
            .args(["serve-moto", "--exit-on-stdin-eof", "--port"])
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err);
        apply_aws_test_env(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let mut guard = ChildGuard(child);
        loop {
            if let Ok(Some(status)) = guard.0.try_wait() {
                let log = read_tail(&log_path);
                if log.contains("Address already in use") && attempt < MOTO_PORT_ATTEMPTS {
                    break; // lost the port race: try another port
                }
                panic!("moto server exited before it was ready ({status}); log:\n{log}");
            }
            if http_status(port, "GET", "/moto-api/") == Some(200) {
                return (guard, port);
            }
            if Instant::now() > deadline {
                panic!(
                    "moto server not ready within {timeout:?}; log:\n{}",
                    read_tail(&log_path)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    unreachable!("the last attempt panics instead of retrying")
}

#[allow(clippy::too_many_arguments)]
fn wait_http(
    port: u16,
    method: &str,
    path: &str,
    want: u16,
    child: &mut ChildGuard,
    what: &str,
    log_path: &Path,
    deadline: Instant,
    timeout: Duration,
) {
    loop {
        if http_status(port, method, path) == Some(want) {
            return;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "{what} exited before it was ready ({status}); log:\n{}",
                read_tail(log_path)
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{what} not ready within {timeout:?}; log:\n{}",
                read_tail(log_path)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Status code of a one-shot HTTP/1.1 request to 127.0.0.1:`port`, or None if it fails.
fn http_status(port: u16, method: &str, path: &str) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).ok()?;
    // "HTTP/1.1 200 OK"
    status_line.split_whitespace().nth(1)?.parse().ok()
}

/// The last 8 KiB of a log file.
fn read_tail(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    let start = bytes.len().saturating_sub(8192);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn json_lines(out: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad emu.py line {l:?}: {e}")))
}

fn str_field(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("emu.py line without string field {key:?}: {v}"))
        .to_string()
}

const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (as Python's `base64.b64encode`).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(B64_ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard padded base64; panics on malformed input.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    assert!(
        bytes.len() % 4 == 0,
        "base64 length not a multiple of 4: {text:?}"
    );
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let last = ci == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        assert!(
            pad <= 2 && (pad == 0 || last),
            "bad base64 padding: {text:?}"
        );
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = B64_ALPHABET
                .iter()
                .position(|&a| a == c)
                .unwrap_or_else(|| panic!("bad base64 character {:?} in {text:?}", c as char));
            n = (n << 6) | v as u32;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}
