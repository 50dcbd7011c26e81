//! The converter table (every example of the reference, section 2.4, plus our own cases), the
//! chain's semantics, and the multi-line fixtures run through the whole per-file pipeline.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::config::{JsonFormat, LogFormat, ProcessingOption};
use crate::record::Piece;
use crate::tail::splitter::LineSplitter;

fn fixed_clock() -> OffsetDateTime {
    datetime!(2016-03-03 00:02:49.123456 UTC)
}

fn chain(options: Vec<ProcessingOption>) -> Chain {
    Chain::with_clock(&options, None, fixed_clock).unwrap()
}

fn single_line(no_trim: bool, escape_new_line: bool) -> ProcessingOption {
    ProcessingOption::SingleLine {
        no_trim,
        escape_new_line,
    }
}

fn csv(names: &[&str], delimiter: &str, json_format: JsonFormat) -> ProcessingOption {
    ProcessingOption::CsvToJson {
        field_names: names.iter().map(|s| s.to_string()).collect(),
        delimiter: delimiter.to_string(),
        json_format,
    }
}

fn log(log_format: LogFormat) -> ProcessingOption {
    ProcessingOption::LogToJson {
        log_format,
        match_pattern: None,
        field_names: None,
        json_format: JsonFormat::Compact,
    }
}

fn log_custom(
    log_format: LogFormat,
    match_pattern: Option<&str>,
    names: &[&str],
) -> ProcessingOption {
    ProcessingOption::LogToJson {
        log_format,
        match_pattern: match_pattern.map(str::to_string),
        field_names: Some(names.iter().map(|s| s.to_string()).collect()),
        json_format: JsonFormat::Compact,
    }
}

fn add_metadata(metadata: serde_json::Value, timestamp: bool) -> ProcessingOption {
    ProcessingOption::AddMetadata {
        metadata,
        timestamp,
        json_format: JsonFormat::Compact,
    }
}

/// The converted text, or None when skipped; panics on a conversion error.
fn convert(chain: &Chain, input: &str) -> Option<String> {
    convert_bytes(chain, input.as_bytes())
}

fn convert_bytes(chain: &Chain, input: &[u8]) -> Option<String> {
    match chain.apply(input) {
        Ok(Outcome::Converted(b)) => Some(String::from_utf8(b.to_vec()).unwrap()),
        Ok(Outcome::Skipped) => None,
        Err(e) => panic!("conversion error: {e}"),
    }
}

const FOUR: &[&str] = &["column1", "column2", "column3", "column4"];
const SEVEN: &[&str] = &[
    "column1", "column2", "column3", "column4", "column5", "column6", "column7",
];
const COMBINED_LINE: &str = r#"123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450 "-" "Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)" "ANY_RANDOM_DATA""#;
const COMMON_LINE: &str = r#"123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450"#;
const COMMON_JSON: &str = r#"{"host":"123.45.67.89","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450"}"#;

/// (option, input, expected output or None for skipped)
fn table() -> Vec<(ProcessingOption, String, Option<String>)> {
    let s = |x: &str| x.to_string();
    let mut rows = vec![
        // Reference 2.4, in order.
        (
            single_line(false, true),
            s("{\n   \"a\": {\n           \"b\": 1,\n           \"c\": null,\n           \"d\": true\n    },\n   \"e\": \"f\",\n   \"g\": 2\n     }\n"),
            Some(s(r#"{\\n"a": {\\n"b": 1,\\n"c": null,\\n"d": true\\n},\\n"e": "f",\\n"g": 2\\n}"#) + "\n"),
        ),
        (
            csv(FOUR, ",", JsonFormat::Compact),
            s("value1, value2,valu\ne3,    value4\n"),
            Some(s(r#"{"column1":"value1","column2":" value2","column3":"valu\ne3","column4":"    value4"}"#) + "\n"),
        ),
        (
            csv(FOUR, ",", JsonFormat::Compact),
            s("value1, value2,value3\n"),
            Some(s(r#"{"column1":"value1","column2":" value2","column3":"value3","column4":null}"#) + "\n"),
        ),
        (
            csv(FOUR, ",", JsonFormat::Compact),
            s("value1,value2,value3,value4,value5\n"),
            Some(s(r#"{"column1":"value1","column2":"value2","column3":"value3","column4":"value4"}"#) + "\n"),
        ),
        (
            csv(FOUR, "\\t", JsonFormat::Compact),
            s("value1\t value2\tvalue3\t    value4\n"),
            Some(s(r#"{"column1":"value1","column2":" value2","column3":"value3","column4":"    value4"}"#) + "\n"),
        ),
        (
            log(LogFormat::CombinedApacheLog),
            s(COMBINED_LINE),
            Some(s(r#"{"host":"123.45.67.89","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450","referer":null,"agent":"Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)"}"#) + "\n"),
        ),
        (log(LogFormat::CommonApacheLog), s(COMBINED_LINE), Some(s(COMMON_JSON) + "\n")),
        (log(LogFormat::CommonApacheLog), s(COMMON_LINE), Some(s(COMMON_JSON) + "\n")),
        (
            log(LogFormat::CommonApacheLog),
            s(r#"lj1036.inktomisearch.com - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450"#),
            Some(COMMON_JSON.replace("123.45.67.89", "lj1036.inktomisearch.com") + "\n"),
        ),
        (
            log(LogFormat::CommonApacheLog),
            s(r#"123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200"#),
            None,
        ),
        (
            log_custom(LogFormat::CommonApacheLog, None, SEVEN),
            s(COMMON_LINE),
            Some(s(r#"{"column1":"123.45.67.89","column2":null,"column3":null,"column4":"27/Oct/2000:09:27:09 -0400","column5":"GET /java/javaResources.html HTTP/1.0","column6":"200","column7":"10450"}"#) + "\n"),
        ),
        (
            log_custom(
                LogFormat::CommonApacheLog,
                Some(r#"^([\d.]+) (\S+) (\S+) \[([\w:/]+\s[+\-]\d{4})\] "(.+?)" (\d{3})"#),
                &SEVEN[..6],
            ),
            s(r#"123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200"#),
            Some(s(r#"{"column1":"123.45.67.89","column2":null,"column3":null,"column4":"27/Oct/2000:09:27:09 -0400","column5":"GET /java/javaResources.html HTTP/1.0","column6":"200"}"#) + "\n"),
        ),
        (
            log(LogFormat::ApacheErrorLog),
            s("[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico"),
            Some(s(r#"{"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":"core","severity":"error","processid":"35708","threadid":"4328636416","client":"72.15.99.187","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}"#) + "\n"),
        ),
        (
            log(LogFormat::ApacheErrorLog),
            s("[Fri Sep 09 10:42:29 2011] [core:error] [pid 35708] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico"),
            Some(s(r#"{"timestamp":"Fri Sep 09 10:42:29 2011","module":"core","severity":"error","processid":"35708","threadid":null,"client":"72.15.99.187","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}"#) + "\n"),
        ),
        (
            log(LogFormat::ApacheErrorLog),
            s("[Fri Sep 09 10:42:29.902022 2011] [error] [pid 35708:tid 4328636416] [client 72.15.99.187:12345] File does not exist: /usr/local/apache2/htdocs/favicon.ico"),
            Some(s(r#"{"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":null,"severity":"error","processid":"35708","threadid":"4328636416","client":"72.15.99.187:12345","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}"#) + "\n"),
        ),
        (
            log(LogFormat::Syslog),
            s("Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds) "),
            Some(s(r#"{"timestamp":"Mar 12 12:00:08","hostname":"server2","program":"rcd","processid":"308","message":"Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds) "}"#) + "\n"),
        ),
        (
            log(LogFormat::Syslog),
            s("Mar 12 12:01:02 server4 snort: Ports to decode telnet on: 21 23 25 119"),
            Some(s(r#"{"timestamp":"Mar 12 12:01:02","hostname":"server4","program":"snort","processid":null,"message":"Ports to decode telnet on: 21 23 25 119"}"#) + "\n"),
        ),
        (
            log(LogFormat::Syslog),
            s("Mar 12 12:10:00 server2 /USR/SBIN/CRON[6808]: (root) CMD ( /usr/lib/sa/sa1 )\n"),
            Some(s(r#"{"timestamp":"Mar 12 12:10:00","hostname":"server2","program":"/USR/SBIN/CRON","processid":"6808","message":"(root) CMD ( /usr/lib/sa/sa1 )"}"#) + "\n"),
        ),
        (
            log(LogFormat::Rfc3339Syslog),
            s("2016-04-06T16:32:01.123+02:00 myhost sshd[123]: hello world\n"),
            Some(s(r#"{"timestamp":"2016-04-06T16:32:01.123+02:00","hostname":"myhost","program":"sshd","processid":"123","message":"hello world"}"#) + "\n"),
        ),
        (
            // The Java test built the metadata in a HashMap (hence `foo` first); a configured
            // object keeps the order it was written in.
            add_metadata(json!({"foo": {"bar": "bas"}, "key": "value"}), false),
            s("This is the data"),
            Some(s(r#"{"metadata":{"foo":{"bar":"bas"},"key":"value"},"data":"This is the data"}"#) + "\n"),
        ),
        (ProcessingOption::AddBrackets, s("hello there!! :)"), Some(s("{hello there!! :)}"))),
        (ProcessingOption::AddBrackets, s("line\n"), Some(s("{line\n}"))),
    ];
    rows.extend(own_cases());
    rows
}

/// Our own cases: CRLF, non-ASCII, empty lines, quotes and backslashes, column counts, tab,
/// PRETTYPRINT, timestamps.
fn own_cases() -> Vec<(ProcessingOption, String, Option<String>)> {
    let s = |x: &str| x.to_string();
    vec![
        // CRLF: the `\r` stays after the `\n` is stripped and `.` does not match it: skipped.
        (log(LogFormat::Syslog), s("Mar 12 12:01:02 server4 snort: hi\r\n"), None),
        (log(LogFormat::CommonApacheLog), s(COMMON_LINE) + "\r\n", None),
        (log(LogFormat::Rfc3339Syslog), s("2016-04-06T16:32:01Z h p: m\r\n"), None),
        // CSV keeps the `\r` (JSON-escaped); SINGLELINE trims it.
        (
            csv(&["a", "b"], ",", JsonFormat::Compact),
            s("x,y\r\n"),
            Some(s(r#"{"a":"x","b":"y\r"}"#) + "\n"),
        ),
        (single_line(false, false), s("a\r\nb\r\n"), Some(s("ab\n"))),
        // Non-ASCII is written as UTF-8, not escaped.
        (
            log(LogFormat::Syslog),
            s("Mar 12 12:01:02 hôte prog: naïve café ☕ 😀\n"),
            None, // hostname is [a-zA-Z0-9._-]+: ASCII only, as in Java
        ),
        (
            log(LogFormat::Syslog),
            s("Mar 12 12:01:02 host prog: naïve café ☕ 😀\n"),
            Some(s(r#"{"timestamp":"Mar 12 12:01:02","hostname":"host","program":"prog","processid":null,"message":"naïve café ☕ 😀"}"#) + "\n"),
        ),
        (
            csv(&["a", "b"], ";", JsonFormat::Compact),
            s("日本;Ελλάδα\n"),
            Some(s(r#"{"a":"日本","b":"Ελλάδα"}"#) + "\n"),
        ),
        // Empty lines.
        (csv(&["a", "b"], ",", JsonFormat::Compact), s("\n"), Some(s(r#"{"a":"","b":null}"#) + "\n")),
        (log(LogFormat::Syslog), s("\n"), None),
        (single_line(false, false), s("\n"), Some(s("\n"))),
        (add_metadata(json!(null), false), s("\n"), Some(s(r#"{"metadata":null,"data":""}"#) + "\n")),
        (ProcessingOption::AddBrackets, s("\n"), Some(s("{\n}"))),
        // Quotes, backslashes, control characters, `/`, DEL.
        (
            csv(&["a", "b", "c"], ",", JsonFormat::Compact),
            s("say \"hi\",C:\\dir\\file,a/b\t\u{1}\u{7f}\n"),
            Some(s(r#"{"a":"say \"hi\"","b":"C:\\dir\\file","c":"a/b\t\u0001"#) + "\u{7f}\"}\n"),
        ),
        (
            log(LogFormat::CombinedApacheLog),
            s(r#"1.2.3.4 - bob [27/Oct/2000:09:27:09 -0400] "GET /a\"b HTTP/1.0" 200 - "http://x/" "agent \\ 1""#),
            None, // `[^"]+` stops at the escaped quote, as in Java
        ),
        (
            log(LogFormat::CombinedApacheLog),
            s(r#"1.2.3.4 - bob [27/Oct/2000:09:27:09 -0400] "GET /a\b HTTP/1.0" 200 - "http://x/" "agent \\ 1""#),
            Some(s(r#"{"host":"1.2.3.4","ident":null,"authuser":"bob","datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /a\\b HTTP/1.0","response":"200","bytes":null,"referer":"http://x/","agent":"agent \\\\ 1"}"#) + "\n"),
        ),
        // Fewer and more columns than names; trailing empty columns are dropped.
        (
            csv(FOUR, ",", JsonFormat::Compact),
            s("a,,\n"),
            Some(s(r#"{"column1":"a","column2":null,"column3":null,"column4":null}"#) + "\n"),
        ),
        (
            csv(&["x"], ",", JsonFormat::Compact),
            s("1,2,3\n"),
            Some(s(r#"{"x":"1"}"#) + "\n"),
        ),
        // Tab delimiter written as a real tab character.
        (
            csv(&["a", "b"], "\t", JsonFormat::Compact),
            s("1\t2\n"),
            Some(s(r#"{"a":"1","b":"2"}"#) + "\n"),
        ),
        // PRETTYPRINT as Jackson's default pretty printer.
        (
            csv(&["a", "b", "c"], ",", JsonFormat::PrettyPrint),
            s("1,\"2\"\n"),
            Some(s("{\n  \"a\" : \"1\",\n  \"b\" : \"\\\"2\\\"\",\n  \"c\" : null\n}\n")),
        ),
        (
            ProcessingOption::AddMetadata {
                metadata: json!({"k": [1, 2.5, {"n": true}], "e": {}}),
                timestamp: true,
                json_format: JsonFormat::PrettyPrint,
            },
            s("x\n"),
            Some(s("{\n  \"ts\" : \"2016-03-03T00:02:49.123Z\",\n  \"metadata\" : {\n    \"k\" : [ 1, 2.5, {\n      \"n\" : true\n    } ],\n    \"e\" : { }\n  },\n  \"data\" : \"x\"\n}\n")),
        ),
        // ADDMETADATA with and without the timestamp.
        (
            add_metadata(json!({"env": "prod"}), true),
            s("a \"b\"\n"),
            Some(s(r#"{"ts":"2016-03-03T00:02:49.123Z","metadata":{"env":"prod"},"data":"a \"b\""}"#) + "\n"),
        ),
        (
            add_metadata(json!({"n": 1e3}), false),
            s("multi\nline\n"),
            Some(s(r#"{"metadata":{"n":1000.0},"data":"multi\nline"}"#) + "\n"),
        ),
        // Repeated names: first position, last value (Java LinkedHashMap).
        (
            csv(&["a", "b", "a"], ",", JsonFormat::Compact),
            s("1,2,3\n"),
            Some(s(r#"{"a":"3","b":"2"}"#) + "\n"),
        ),
    ]
}

#[test]
fn converter_table() {
    for (i, (option, input, expected)) in table().into_iter().enumerate() {
        let c = chain(vec![option.clone()]);
        let got = convert(&c, &input);
        assert_eq!(got, expected, "row {i}: {option:?} on {input:?}");
    }
}

#[test]
fn invalid_utf8_is_decoded_with_replacement_characters() {
    let c = chain(vec![csv(&["a", "b"], ",", JsonFormat::Compact)]);
    assert_eq!(
        convert_bytes(&c, b"\xff,ok\xe2\x82\n").as_deref(),
        Some("{\"a\":\"\u{fffd}\",\"b\":\"ok\u{fffd}\"}\n")
    );
    let c = chain(vec![ProcessingOption::AddBrackets]);
    assert_eq!(
        convert_bytes(&c, b"\xc0\n").as_deref(),
        Some("{\u{fffd}\n}")
    );
}

#[test]
fn converters_run_in_order() {
    let c = chain(vec![
        single_line(false, false),
        add_metadata(json!("m"), false),
    ]);
    assert_eq!(
        convert(&c, "{\n  \"a\": 1\n}\n").as_deref(),
        Some("{\"metadata\":\"m\",\"data\":\"{\\\"a\\\": 1}\"}\n")
    );
    let c = chain(vec![
        add_metadata(json!("m"), false),
        ProcessingOption::AddBrackets,
    ]);
    assert_eq!(
        convert(&c, "x\n").as_deref(),
        Some("{{\"metadata\":\"m\",\"data\":\"x\"}\n}")
    );
    // A skip stops the chain.
    let c = chain(vec![log(LogFormat::Syslog), ProcessingOption::AddBrackets]);
    assert_eq!(convert(&c, "not syslog\n"), None);
    assert!(chain(vec![]).is_empty());
}

#[test]
fn chain_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Chain>();
    shared::<MultiLineSplitter>();
}

struct FakeEc2(Option<Arc<Ec2Metadata>>);

impl Ec2MetadataSource for FakeEc2 {
    fn metadata(&self) -> Option<Arc<Ec2Metadata>> {
        self.0.clone()
    }
}

fn facts(tags: bool) -> Ec2Metadata {
    Ec2Metadata {
        private_ip: Some("10.0.0.5".into()),
        availability_zone: Some("us-east-1a".into()),
        instance_id: Some("i-0123456789abcdef0".into()),
        instance_type: Some("m5.large".into()),
        account_id: Some("123456789012".into()),
        ami_id: Some("ami-0abcdef1234567890".into()),
        region: None,
        metadata_timestamp: Ec2Metadata::format_timestamp(datetime!(2024-05-01 12:30:05 UTC)),
        tags: tags.then(|| {
            Ec2Metadata::java_tags([
                ("Name".to_string(), "web".to_string()),
                ("Team".to_string(), "ops \"x\"".to_string()),
            ])
        }),
    }
}

fn ec2_chain(source: FakeEc2, json_format: JsonFormat) -> Chain {
    let option = ProcessingOption::AddEc2Metadata {
        metadata_ttl: std::time::Duration::from_secs(3600),
        json_format,
    };
    Chain::with_clock(&[option], Some(Arc::new(source)), fixed_clock).unwrap()
}

#[test]
fn ec2_metadata_is_merged_as_java_put_all() {
    let c = ec2_chain(FakeEc2(Some(Arc::new(facts(true)))), JsonFormat::Compact);
    let got = convert(
        &c,
        "{\"region\":\"mine\",\"msg\":\"a/é\",\"n\":1.50,\"i\":-7}\n",
    );
    let expected = concat!(
        r#"{"region":null,"msg":"a/é","n":1.5,"i":-7,"privateIp":"10.0.0.5","availabilityZone":"us-east-1a","#,
        r#""instanceId":"i-0123456789abcdef0","instanceType":"m5.large","accountId":"123456789012","#,
        r#""amiId":"ami-0abcdef1234567890","metadataTimestamp":"2024-05-01T12:30:05+0000","#,
        r#""tags":{"name":"web","team":"ops \"x\""}}"#,
        "\n"
    );
    assert_eq!(got.as_deref(), Some(expected));

    // Tags not readable: the key is absent. Pretty printing nests as Jackson.
    let c = ec2_chain(
        FakeEc2(Some(Arc::new(facts(false)))),
        JsonFormat::PrettyPrint,
    );
    let got = convert(&c, "{\"a\":{\"b\":[]}}").unwrap();
    assert!(
        got.starts_with("{\n  \"a\" : {\n    \"b\" : [ ]\n  },\n  \"privateIp\" : \"10.0.0.5\",\n")
    );
    assert!(got.ends_with("\"metadataTimestamp\" : \"2024-05-01T12:30:05+0000\"\n}\n"));
    assert_eq!(c.records_without_ec2_metadata(), 0);
    assert_eq!(c.take_ec2_warning(), None);
}

#[test]
fn ec2_metadata_absent_passes_the_record_unchanged_with_one_warning() {
    let c = ec2_chain(FakeEc2(None), JsonFormat::Compact);
    assert_eq!(c.take_ec2_warning(), None);
    assert_eq!(
        convert(&c, "not even json\n").as_deref(),
        Some("not even json\n")
    );
    assert_eq!(convert(&c, "{\"a\":1}\n").as_deref(), Some("{\"a\":1}\n"));
    assert_eq!(c.records_without_ec2_metadata(), 2);
    assert_eq!(c.take_ec2_warning(), Some(NO_EC2_METADATA_WARNING));
    assert_eq!(c.take_ec2_warning(), None);
}

#[test]
fn conversion_error_is_returned_for_the_caller_to_send_the_raw_record() {
    let c = ec2_chain(FakeEc2(Some(Arc::new(facts(true)))), JsonFormat::Compact);
    for input in ["plain text\n", "[1,2]\n", "\n", "{\"a\":\n"] {
        let err = c.apply(input.as_bytes()).unwrap_err();
        assert!(
            err.message
                .starts_with("Unable to convert data by AddEC2MetadataConverter: Error converting json source data to map"),
            "{err}"
        );
    }
    // A later converter's error also sends the raw record, not the partly converted one.
    let option = ProcessingOption::AddEc2Metadata {
        metadata_ttl: std::time::Duration::from_secs(1),
        json_format: JsonFormat::Compact,
    };
    let two = [ProcessingOption::AddBrackets, option];
    let source: Arc<dyn Ec2MetadataSource> = Arc::new(FakeEc2(Some(Arc::new(facts(true)))));
    let c = Chain::with_clock(&two, Some(source), fixed_clock).unwrap();
    assert!(c.apply(b"{\"a\":1}\n").is_err()); // `{{"a":1}\n}` is not JSON
                                               // Without a source, building the chain fails.
    assert!(Chain::new(&two, None).is_err());
}

/// Feeds a file through the per-file pipeline in `chunk`-byte reads: lines, headers,
/// multi-line, footer, chain. Returns the converted records and the last end offset.
fn pipeline(
    file: &[u8],
    chunk: usize,
    skip_header_lines: usize,
    start_pattern: &str,
    chain: &Chain,
) -> (Vec<String>, u64) {
    let mut lines = LineSplitter::new(1 << 20, b"\n", 0);
    let mut headers = HeaderSkipper::new(skip_header_lines, 0);
    let mut multi = MultiLineSplitter::new(start_pattern, 1 << 20, b"\n").unwrap();
    let mut buf = BytesMut::new();
    let mut cut = Vec::new();
    let mut records: Vec<Piece> = Vec::new();
    for part in file.chunks(chunk) {
        buf.extend_from_slice(part);
        lines.split(&mut buf, &mut cut);
        headers.retain(&mut cut);
        for line in cut.drain(..) {
            multi.push(line, &mut records);
        }
    }
    multi.flush_idle(&mut records);
    let last = records.last().map_or(0, |r| r.end_offset);
    let out = records
        .iter()
        .filter_map(|r| convert_bytes(chain, &r.data))
        .collect();
    (out, last)
}

const PRETTY_JSON: &str = include_str!("../../tests/fixtures/process/pretty_printed_json");
const PRETTY_JSON_SINGLELINE: &str =
    include_str!("../../tests/fixtures/process/pretty_printed_json.singleline");
const SERVICE_LOG: &str = include_str!("../../tests/fixtures/process/service_log");

#[test]
fn pretty_printed_json_with_two_header_lines_becomes_one_line_per_object() {
    let c = chain(vec![single_line(false, false)]);
    let expected: Vec<String> = PRETTY_JSON_SINGLELINE
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    for chunk in [1, 7, 64, 4096, PRETTY_JSON.len()] {
        let (got, last) = pipeline(PRETTY_JSON.as_bytes(), chunk, 2, "    \\{", &c);
        assert_eq!(got, expected, "chunk {chunk}");
        assert_eq!(last, PRETTY_JSON.len() as u64);
    }
    // Each line but the last is an object and a comma (the array's separator); the last ends
    // the array and the wrapper, as the Java fixture's last line does.
    for line in &expected[..expected.len() - 1] {
        let object = line.trim_end().strip_suffix(',').unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(object)
            .unwrap()
            .is_object());
    }
    assert!(expected[expected.len() - 1].ends_with("}]}\n"));
}

#[test]
fn service_log_splits_on_the_72_dash_lines() {
    let c = chain(vec![]);
    let dashes = "-".repeat(72);
    let expected = SERVICE_LOG.lines().filter(|l| *l == dashes).count();
    for pattern in [dashes.clone(), "^-{72}$".to_string(), "-{72}".to_string()] {
        let records: Vec<Piece> = {
            let mut lines = LineSplitter::new(1 << 20, b"\n", 0);
            let mut multi = MultiLineSplitter::new(&pattern, 1 << 20, b"\n").unwrap();
            let mut buf = BytesMut::from(SERVICE_LOG.as_bytes());
            let mut cut = Vec::new();
            let mut out = Vec::new();
            lines.split(&mut buf, &mut cut);
            for line in cut {
                multi.push(line, &mut out);
            }
            multi.flush_idle(&mut out);
            out
        };
        assert_eq!(records.len(), expected, "{pattern}");
        for r in &records {
            assert!(r.data.starts_with(dashes.as_bytes()));
            assert!(r.data.ends_with(b"EOE\n"));
        }
        let joined: Vec<u8> = records.iter().flat_map(|r| r.data.to_vec()).collect();
        assert_eq!(joined, SERVICE_LOG.as_bytes());
        assert!(c.is_empty());
    }
}

#[test]
fn footer_record_is_dropped_and_reading_goes_on() {
    let footer = FooterPattern::new(r"#\s*END").unwrap();
    let mut records = vec![
        Piece {
            data: Bytes::from_static(b"a\n"),
            end_offset: 2,
            truncated: false,
        },
        Piece {
            data: Bytes::from_static(b"#  END\n"),
            end_offset: 9,
            truncated: false,
        },
        Piece {
            data: Bytes::from_static(b"b\n"),
            end_offset: 11,
            truncated: false,
        },
    ];
    assert_eq!(footer.retain(&mut records), 1);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].end_offset, 11);
}
