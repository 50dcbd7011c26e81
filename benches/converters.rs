//! Records per second of each converter and of the multi-line splitter, on records of about
//! 200 bytes. No framework: `cargo bench --bench converters` prints one line per case.
//!
//! Each case cycles over 1,000 distinct records (so the branch predictor does not learn one
//! record) for `RECORDS` conversions, after a warm-up pass, and reports the best of `ROUNDS`
//! runs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kinesis_agent::config::{JsonFormat, LogFormat, ProcessingOption};
use kinesis_agent::process::{Chain, Ec2Metadata, Ec2MetadataSource, MultiLineSplitter};
use kinesis_agent::record::Piece;

const RECORDS: usize = 200_000;
const DISTINCT: usize = 1_000;
/// Each case runs this many times; the fastest run is reported (the machine may be busy).
const ROUNDS: usize = 3;

struct Ec2(Arc<Ec2Metadata>);

impl Ec2MetadataSource for Ec2 {
    fn metadata(&self) -> Option<Arc<Ec2Metadata>> {
        Some(Arc::clone(&self.0))
    }
}

fn ec2() -> Arc<dyn Ec2MetadataSource> {
    let facts = Ec2Metadata {
        private_ip: Some("10.0.12.34".into()),
        availability_zone: Some("eu-west-1b".into()),
        instance_id: Some("i-0123456789abcdef0".into()),
        instance_type: Some("c6i.large".into()),
        account_id: Some("123456789012".into()),
        ami_id: Some("ami-0abcdef1234567890".into()),
        region: Some("eu-west-1".into()),
        metadata_timestamp: "2024-05-01T12:30:05+0000".into(),
        tags: Some(vec![
            ("name".into(), "web-1".into()),
            ("team".into(), "ops".into()),
        ]),
    };
    Arc::new(Ec2(Arc::new(facts)))
}

fn log(format: LogFormat) -> ProcessingOption {
    ProcessingOption::LogToJson {
        log_format: format,
        match_pattern: None,
        field_names: None,
        json_format: JsonFormat::Compact,
    }
}

fn single_line() -> ProcessingOption {
    ProcessingOption::SingleLine {
        no_trim: false,
        escape_new_line: false,
    }
}

fn add_metadata() -> ProcessingOption {
    ProcessingOption::AddMetadata {
        metadata: serde_json::json!({"host": "web-1", "env": "prod"}),
        timestamp: true,
        json_format: JsonFormat::Compact,
    }
}

/// (name, options, record generator)
type Case = (&'static str, Vec<ProcessingOption>, fn(usize) -> String);

fn cases() -> Vec<Case> {
    vec![
        ("SINGLELINE", vec![single_line()], |i| {
            format!("{{\n  \"id\": {i},\n  \"user\": \"someone-{}\",\n  \"action\": \"login\",\n  \"ok\": true,\n  \"detail\": {{\n    \"ip\": \"10.1.{}.{}\",\n    \"agent\": \"Mozilla/5.0 (X11; Linux x86_64; rv:125.0)\"\n  }}\n}}\n", i % 97, i % 250, i % 200)
        }),
        (
            "CSVTOJSON ,",
            vec![ProcessingOption::CsvToJson {
                field_names: (1..=8).map(|i| format!("column{i}")).collect(),
                delimiter: ",".into(),
                json_format: JsonFormat::Compact,
            }],
            |i| {
                format!("2024-05-01T12:{:02}:{:02}Z,web-{},GET,/api/v1/items/{i}?page=3&size=50&sort=name&order=asc&fields=id,name,price,200,{},Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0,{}\n", i % 60, i % 60, i % 9, 1000 + i, i * 7)
            },
        ),
        (
            "CSVTOJSON \\t PRETTYPRINT",
            vec![ProcessingOption::CsvToJson {
                field_names: (1..=8).map(|i| format!("column{i}")).collect(),
                delimiter: "\\t".into(),
                json_format: JsonFormat::PrettyPrint,
            }],
            |i| {
                format!("2024-05-01T12:{:02}:{:02}Z\tweb-{}\tGET\t/api/v1/items/{i}?page=3&size=50&sort=name&order=asc&fields=id,name,price\t200\t{}\tMozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0\t{}\n", i % 60, i % 60, i % 9, 1000 + i, i * 7)
            },
        ),
        (
            "LOGTOJSON COMMONAPACHELOG",
            vec![log(LogFormat::CommonApacheLog)],
            |i| {
                format!("192.168.{}.{} - frank [10/Oct/2000:13:{:02}:{:02} -0700] \"GET /apache_pb/images/{i}/banner-large-and-wide.gif?campaign=spring&source=newsletter&medium=email HTTP/1.1\" 200 {}\n", i % 250, i % 200, i % 60, i % 60, 2000 + i)
            },
        ),
        (
            "LOGTOJSON COMBINEDAPACHELOG",
            vec![log(LogFormat::CombinedApacheLog)],
            |i| {
                format!("192.168.{}.{} - - [10/Oct/2000:13:{:02}:{:02} -0700] \"GET /apache_pb/{i}.gif?campaign=spring HTTP/1.0\" 200 {} \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"\n", i % 250, i % 200, i % 60, i % 60, 2000 + i)
            },
        ),
        (
            "LOGTOJSON APACHEERRORLOG",
            vec![log(LogFormat::ApacheErrorLog)],
            |i| {
                format!("[Fri Sep 09 10:42:{:02}.902022 2011] [core:error] [pid {}:tid 4328636416] [client 72.15.{}.187:51234] File does not exist: /usr/local/apache2/htdocs/{i}/static/images/favicon.ico\n", i % 60, 30000 + i, i % 250)
            },
        ),
        ("LOGTOJSON SYSLOG", vec![log(LogFormat::Syslog)], |i| {
            format!("Mar 12 12:{:02}:{:02} server{} sshd[{}]: Accepted publickey for deploy from 10.0.{}.{} port {} ssh2: RSA SHA256:q2Zbq8yQ4QF3kVh0tW9xPz+Ld7s3mGf1xY6e{i}\n", i % 60, i % 60, i % 9, 1000 + i, i % 250, i % 200, 40000 + i % 20000)
        }),
        (
            "LOGTOJSON RFC3339SYSLOG",
            vec![log(LogFormat::Rfc3339Syslog)],
            |i| {
                format!("2024-05-01T12:{:02}:{:02}.123456+02:00 server{} sshd[{}]: Accepted publickey for deploy from 10.0.{}.{} port {} ssh2: RSA SHA256:q2Zbq8yQ4QF3kVh0tW9xPz+Ld7s3mGf1x{i}\n", i % 60, i % 60, i % 9, 1000 + i, i % 250, i % 200, 40000 + i % 20000)
            },
        ),
        (
            "LOGTOJSON SYSLOG no match (skip)",
            vec![log(LogFormat::Syslog)],
            |i| {
                format!("2024-05-01 12:00:00,{:03} INFO [main] com.example.Service - this line is not syslog at all, it is a Java application log line {i} with some more words\n", i % 1000)
            },
        ),
        ("ADDMETADATA ts", vec![add_metadata()], |i| {
            format!("2024-05-01 12:00:00,{:03} INFO [worker-{}] com.example.Service - handled request {i} in {} ms for user someone@example.com from 10.0.0.1 via /api/v1/items\n", i % 1000, i % 8, i % 500)
        }),
        (
            "ADDEC2METADATA",
            vec![ProcessingOption::AddEc2Metadata {
                metadata_ttl: Duration::from_secs(3600),
                json_format: JsonFormat::Compact,
            }],
            |i| {
                format!("{{\"time\":\"2024-05-01T12:00:00Z\",\"level\":\"INFO\",\"logger\":\"com.example.Service\",\"message\":\"handled request {i} for someone@example.com\",\"path\":\"/api/v1/items\",\"ms\":{},\"ratio\":0.{},\"ok\":true}}\n", i % 500, i % 97)
            },
        ),
        ("ADDBRACKETS", vec![ProcessingOption::AddBrackets], |i| {
            format!("2024-05-01 12:00:00,{:03} INFO [worker-{}] com.example.Service - handled request {i} in {} ms for user someone@example.com from 10.0.0.1 via /api/v1/items\n", i % 1000, i % 8, i % 500)
        }),
        (
            "SINGLELINE + ADDMETADATA",
            vec![single_line(), add_metadata()],
            |i| {
                format!("{{\n  \"id\": {i},\n  \"user\": \"someone-{}\",\n  \"action\": \"login\",\n  \"ok\": true,\n  \"from\": \"10.1.2.3\",\n  \"agent\": \"Mozilla/5.0 (X11; Linux x86_64)\"\n}}\n", i % 97)
            },
        ),
    ]
}

fn report(name: &str, records: usize, bytes: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{name:<34} {:>12.0} records/s {:>8.1} MB/s {:>8.0} ns/record (avg input {} B)",
        records as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs * 1e9 / records as f64,
        bytes / records
    );
}

fn bench_chain(name: &str, options: &[ProcessingOption], make: fn(usize) -> String) {
    let chain = Chain::new(options, Some(ec2())).expect("valid options");
    let pool: Vec<Vec<u8>> = (0..DISTINCT).map(|i| make(i).into_bytes()).collect();
    for r in &pool {
        black_box(chain.apply(r).ok());
    }
    let bytes: usize = (0..RECORDS).map(|i| pool[i % DISTINCT].len()).sum();
    let best = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for i in 0..RECORDS {
                black_box(chain.apply(black_box(&pool[i % DISTINCT])).ok());
            }
            start.elapsed()
        })
        .min()
        .unwrap_or_default();
    report(name, RECORDS, bytes, best);
}

/// A Java service log: one event line, every fifth followed by a short stack trace.
fn stack_trace_lines() -> Vec<Piece> {
    let mut lines = Vec::new();
    let mut offset = 0u64;
    let mut push = |text: String| {
        offset += text.len() as u64;
        lines.push(Piece {
            data: Bytes::from(text),
            end_offset: offset,
            truncated: false,
        });
    };
    for i in 0..RECORDS {
        push(format!(
            "2024-05-01 12:00:00,{:03} INFO [worker-{}] com.example.Service - handled request {i} in {} ms for someone@example.com\n",
            i % 1000,
            i % 8,
            i % 500
        ));
        if i % 5 == 0 {
            push("java.lang.IllegalStateException: bad state\n".to_string());
            push("\tat com.example.Service.handle(Service.java:42)\n".to_string());
            push("\tat java.base/java.lang.Thread.run(Thread.java:1583)\n".to_string());
        }
    }
    lines
}

fn bench_multiline() {
    let lines = stack_trace_lines();
    let bytes: usize = lines.iter().map(|l| l.data.len()).sum();
    let line_count = lines.len();
    let elapsed = (0..ROUNDS)
        .map(|_| {
            let mut splitter = MultiLineSplitter::new(r"^\d{4}-\d{2}-\d{2}", 1024 * 1024, b"\n")
                .expect("valid pattern");
            let mut out = Vec::with_capacity(RECORDS);
            let input = lines.clone();
            let start = Instant::now();
            for line in input {
                splitter.push(line, &mut out);
            }
            splitter.flush_idle(&mut out);
            let elapsed = start.elapsed();
            assert_eq!(out.len(), RECORDS);
            elapsed
        })
        .min()
        .unwrap_or_default();
    report("MULTILINE (records)", RECORDS, bytes, elapsed);
    report("MULTILINE (lines)", line_count, bytes, elapsed);
}

fn main() {
    // `cargo test --all-targets` also runs this binary (without `--bench`): a timing run of a
    // debug build there would take minutes and measure nothing useful.
    if !std::env::args().any(|a| a == "--bench") {
        println!("converters: a benchmark; run it with `cargo bench --bench converters`");
        return;
    }
    println!("{RECORDS} records per case");
    for (name, options, make) in cases() {
        bench_chain(name, &options, make);
    }
    bench_multiline();
}
