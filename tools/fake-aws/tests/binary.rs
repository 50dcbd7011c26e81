//! The fake-aws binary: the port line, raw HTTP behaviour (malformed requests get a 400, injected
//! drops close the connection), a gzipped CloudWatch request, exit on stdin EOF, flag errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Fake {
    child: Child,
    port: u16,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Fake {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-aws"))
        .args(["--port", "0", "--exit-on-stdin-eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fake-aws");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    let port = line
        .strip_prefix("fake-aws listening on http://127.0.0.1:")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Fake { child, port }
}

/// Sends raw bytes, returns everything read until the server closes (or None on a reset).
fn raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn post(port: u16, headers: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    split(&raw(port, &req))
}

fn split(resp: &[u8]) -> (u16, Vec<u8>) {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, Vec::new());
    };
    let head = String::from_utf8_lossy(&resp[..end]);
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, resp[end + 4..].to_vec())
}

const PUT: &str = "X-Amz-Target: Kinesis_20131202.PutRecords\r\nAuthorization: x\r\n";

#[test]
fn malformed_requests_get_400_and_the_server_keeps_serving() {
    let fake = start(&["--stream", "s"]);
    for body in [
        &b"{"[..],
        b"\xff\x00garbage",
        br#"{"StreamName":"s","Records":[{"Data":"!!","PartitionKey":"k"}]}"#,
        br#"{"StreamName":"s","Records":[{"Data":"AA=="}]}"#,
        br#"{"StreamName":"s","Records":"no"}"#,
    ] {
        let (status, body) = post(fake.port, PUT, body);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["__type"].as_str().unwrap().ends_with("Exception"), "{v}");
    }
    let (status, _) = post(
        fake.port,
        "X-Amz-Target: Kinesis_20131202.Nope\r\nAuthorization: x\r\n",
        b"{}",
    );
    assert_eq!(status, 400);
    let (status, body) = post(
        fake.port,
        "X-Amz-Target: Kinesis_20131202.PutRecords\r\n",
        b"{}",
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("MissingAuthenticationToken"));
    // Not HTTP at all: hyper answers 400 or closes; either way the server survives.
    let _ = raw(fake.port, b"\x16\x03\x01 not http\r\n\r\n");
    let ok = br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k"}]}"#;
    assert_eq!(post(fake.port, PUT, ok).0, 200);
}

#[test]
fn dropped_connections_get_no_answer() {
    let fake = start(&["--stream", "s", "--drop-connection", "1"]);
    let ok = br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k"}]}"#;
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{PUT}\r\n",
        ok.len()
    )
    .into_bytes();
    req.extend_from_slice(ok);
    assert!(raw(fake.port, &req).is_empty(), "closed without a byte");
}

#[test]
fn cloudwatch_gzipped_cbor_is_stored() {
    let fake = start(&[]);
    let datum = |i: usize| {
        ciborium::Value::Map(vec![
            ("MetricName".into(), "RecordsSent".into()),
            ("Value".into(), ciborium::Value::Float(i as f64)),
            ("Unit".into(), "Count".into()),
        ])
    };
    let body = ciborium::Value::Map(vec![
        ("Namespace".into(), "AWSKinesisAgent".into()),
        (
            "MetricData".into(),
            ciborium::Value::Array((0..500).map(datum).collect()),
        ),
    ]);
    let mut cbor = Vec::new();
    ciborium::into_writer(&body, &mut cbor).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&cbor).unwrap();
    let gz = gz.finish().unwrap();
    let mut req = format!(
        "POST /service/GraniteServiceVersion20100801/operation/PutMetricData HTTP/1.1\r\n\
         Host: x\r\nConnection: close\r\nAuthorization: x\r\nsmithy-protocol: rpc-v2-cbor\r\n\
         Content-Type: application/cbor\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    req.extend_from_slice(&gz);
    let resp = raw(fake.port, &req);
    let text = String::from_utf8_lossy(&resp).to_lowercase();
    assert!(text.contains("smithy-protocol: rpc-v2-cbor"), "{text}");
    assert!(text.contains("content-type: application/cbor"), "{text}");
    assert_eq!(split(&resp), (200, vec![0xA0]));

    let metrics = raw(
        fake.port,
        b"GET /__control/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let v: serde_json::Value = serde_json::from_slice(&split(&metrics).1).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 500);
    assert_eq!(v[499]["Namespace"], "AWSKinesisAgent");
    assert_eq!(v[499]["Value"], 499.0);
}

#[test]
fn exits_when_stdin_closes() {
    let mut fake = start(&[]);
    drop(fake.child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = fake.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after stdin EOF");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-aws"))
        .args(["--port", "0", "--fail-records", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fail_records"));
}
