//! Runs `tools/fake-aws` for a test: a fake Kinesis / Firehose / CloudWatch endpoint on a free
//! loopback port, with its control API wrapped in plain methods.
//!
//! The binary lives in another package of the workspace, so `CARGO_BIN_EXE_*` cannot name it:
//! it is looked up next to the test binary (`<target>/<profile>/fake-aws`), or at `FAKE_AWS_BIN`.
//! `scripts/test` builds it first (`cargo build -p fake-aws`).
//!
//! The fake exits when its stdin closes (`--exit-on-stdin-eof`), so a killed test process leaves
//! no server behind; dropping [`FakeAws`] kills and reaps it at once. The control client is a
//! one-request-per-connection HTTP/1.1 client over `std::net::TcpStream`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{aws_test_env, base64_decode};

/// Bound on the fake's start (it prints its port within milliseconds).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one control request.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// A running fake-aws. Dropping it kills the process.
pub struct FakeAws {
    /// `http://127.0.0.1:<port>` (`https://` with `--tls`): the endpoint URL for every SDK
    /// client. The control methods below speak plain HTTP only.
    pub endpoint: String,
    pub port: u16,
    child: Child,
    // Held open: the fake exits when it closes.
    _stdin: ChildStdin,
}

/// Path of the fake-aws binary.
pub fn fake_aws_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FAKE_AWS_BIN") {
        return PathBuf::from(path);
    }
    // <target>/<profile>/deps/<test binary> -> <target>/<profile>/fake-aws
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is under <target>/<profile>/deps");
    profile_dir.join(format!("fake-aws{}", std::env::consts::EXE_SUFFIX))
}

impl FakeAws {
    /// Starts fake-aws with `args` (e.g. `["--stream", "logs"]`) on a free port and waits for its
    /// "listening" line. Panics with "run cargo build -p fake-aws" if the binary is missing.
    pub fn start(args: &[&str]) -> FakeAws {
        let bin = fake_aws_bin();
        if !bin.exists() {
            panic!(
                "{} not found: run cargo build -p fake-aws (scripts/test does)",
                bin.display()
            );
        }
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", "0", "--exit-on-stdin-eof"])
            .args(args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        // Read the port line on a thread so the wait is bounded; the thread then drains stdout.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                // http:// or, with --tls, https://
                if let Some((scheme, port)) = line
                    .strip_prefix("fake-aws listening on ")
                    .and_then(|url| url.split_once("://127.0.0.1:"))
                    .and_then(|(scheme, p)| {
                        Some((scheme.to_string(), p.trim().parse::<u16>().ok()?))
                    })
                {
                    let _ = tx.send((scheme, port));
                    break;
                }
            }
            for _ in lines {}
        });
        let (scheme, port) = match rx.recv_timeout(START_TIMEOUT) {
            Ok(found) => found,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "fake-aws {args:?} did not print its port within {START_TIMEOUT:?} \
                     (exit status {status:?}; its stderr is above)"
                );
            }
        };
        FakeAws {
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
            port,
            child,
            _stdin: stdin,
        }
    }

    /// Environment for an SDK-based process such as the agent: [`aws_test_env`] plus
    /// `AWS_ENDPOINT_URL` = this fake (Kinesis, Firehose and CloudWatch alike).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = aws_test_env();
        env.push(("AWS_ENDPOINT_URL".into(), self.endpoint.clone()));
        env
    }

    /// Replaces all faults with `json` (keys left out are off), e.g.
    /// `r#"{"fail_records":0.3,"throttle_calls":0.1}"#`. Re-seeds the fault RNG.
    pub fn set_faults(&self, json: &str) {
        self.control_ok("POST", "/__control/faults", json);
    }

    /// The current faults.
    pub fn faults(&self) -> serde_json::Value {
        self.control_json("GET", "/__control/faults", "")
    }

    /// Forgets records, counters and metrics (streams and faults stay).
    pub fn reset(&self) {
        self.control_ok("POST", "/__control/reset", "");
    }

    /// Creates a stream / delivery stream (one shard unless the fake was started with
    /// `--shards`).
    pub fn create(&self, name: &str) {
        let body = serde_json::json!({ "name": name }).to_string();
        self.control_ok("POST", "/__control/streams", &body);
    }

    /// Creates a Kinesis stream with `shards` shards.
    pub fn create_with_shards(&self, name: &str, shards: u32) {
        let body = serde_json::json!({ "name": name, "shards": shards }).to_string();
        self.control_ok("POST", "/__control/streams", &body);
    }

    /// Every record `destination` accepted, in arrival order: (partition key, data). Firehose
    /// records have an empty partition key.
    pub fn records(&self, destination: &str) -> Vec<(String, Vec<u8>)> {
        self.records_json(destination)
            .into_iter()
            .map(|r| {
                let key = r["partition_key"]
                    .as_str()
                    .expect("partition_key")
                    .to_string();
                let data = base64_decode(r["data_b64"].as_str().expect("data_b64"));
                (key, data)
            })
            .collect()
    }

    /// The records as the control API gives them (`partition_key`, `data_b64`, `shard_id`,
    /// `sequence_number`).
    pub fn records_json(&self, destination: &str) -> Vec<serde_json::Value> {
        let path = format!(
            "/__control/records?destination={}",
            query_escape(destination)
        );
        match self.control_json("GET", &path, "") {
            serde_json::Value::Array(records) => records,
            other => panic!("records: not a JSON array: {other}"),
        }
    }

    /// Counters: `totals`, `destinations.<name>` (`calls`, `calls_failed`, `records_accepted`,
    /// `records_failed`, `bytes_accepted`), `operations`, `call_errors`, `record_errors`,
    /// `dropped_connections`, `cloudwatch`.
    pub fn stats(&self) -> serde_json::Value {
        self.control_json("GET", "/__control/stats", "")
    }

    /// The CloudWatch datums received, each with its `Namespace`.
    pub fn metrics(&self) -> serde_json::Value {
        self.control_json("GET", "/__control/metrics", "")
    }

    /// Records accepted by `destination` so far (from the counters; cheap).
    pub fn accepted(&self, destination: &str) -> u64 {
        self.stats()["destinations"][destination]["records_accepted"]
            .as_u64()
            .unwrap_or(0)
    }

    /// (lines of `written` missing, records received more than once) in what `destination`
    /// accepted.
    pub fn missing_and_duplicates(&self, destination: &str, written: &[String]) -> (usize, usize) {
        missing_and_duplicates(written, &self.records(destination))
    }

    /// Waits until `destination` has accepted at least `count` records; false after `timeout`.
    pub fn wait_for_records(&self, destination: &str, count: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.accepted(destination) >= count {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Process id of the fake.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn control_ok(&self, method: &str, path: &str, body: &str) {
        let (status, text) = self.control(method, path, body);
        assert_eq!(status, 200, "fake-aws {method} {path} {body}: {text}");
    }

    fn control_json(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let (status, text) = self.control(method, path, body);
        assert_eq!(status, 200, "fake-aws {method} {path}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("fake-aws {method} {path}: bad JSON ({e}): {text}"))
    }

    /// One HTTP/1.1 request on its own connection: (status, body).
    pub fn control(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http_request(self.port, method, path, body)
            .unwrap_or_else(|e| panic!("fake-aws {method} {path}: {e}"))
    }
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Connection: close` request to 127.0.0.1:`port`; reads the answer to EOF.
fn http_request(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
    stream.set_write_timeout(Some(CONTROL_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut body = &raw[split + 4..];
    // hyper sends a Content-Length for these bodies; honour it if present.
    if let Some(len) = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    }) {
        body = &body[..len.min(body.len())];
    }
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

/// Escapes a query value (stream names need none, but be safe).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// (lines of `written` missing, records received more than once) in `got` (as from
/// [`FakeAws::records`]).
pub fn missing_and_duplicates(written: &[String], got: &[(String, Vec<u8>)]) -> (usize, usize) {
    let mut counts: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for (_, data) in got {
        *counts.entry(data.as_slice()).or_insert(0) += 1;
    }
    let missing = written
        .iter()
        .filter(|l| !counts.contains_key(l.as_bytes()))
        .count();
    (missing, counts.values().map(|n| n - 1).sum())
}
