//! Tests of configuration reading: a table of errors (file, key, message), then the accepted
//! forms, defaults, notices, `agent.d` merging and `dataProcessingOptions`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::raw::split_file_pattern;
use super::*;

const MAIN: &str = "/etc/aws-kinesis/agent.json";
const EXTRA_A: &str = "/etc/aws-kinesis/agent.d/10-a.json";
const EXTRA_B: &str = "/etc/aws-kinesis/agent.d/20-b.json";

fn env(cpus: usize) -> Environment {
    Environment { cpus }
}

fn parse(json: &str) -> Result<AgentPlan, ConfigError> {
    parse_document((Path::new(MAIN), json), &[], &env(4))
}

fn parse_with(main: &str, extra: &[(&str, &str)]) -> Result<AgentPlan, ConfigError> {
    let extra: Vec<(PathBuf, String)> = extra
        .iter()
        .map(|(f, t)| (PathBuf::from(f), t.to_string()))
        .collect();
    parse_document((Path::new(MAIN), main), &extra, &env(4))
}

fn ok(json: &str) -> AgentPlan {
    parse(json).unwrap_or_else(|e| panic!("{e}\nin {json}"))
}

/// `members` with a comma in front, unless empty.
fn more(members: &str) -> String {
    if members.is_empty() {
        String::new()
    } else {
        format!(", {members}")
    }
}

/// A document with one Kinesis flow on `/tmp/app.log*`, plus `members` in the flow.
fn kinesis(members: &str) -> String {
    format!(
        r#"{{"flows": [{{"filePattern": "/tmp/app.log*", "kinesisStream": "s"{}}}]}}"#,
        more(members)
    )
}

/// A document with one Firehose flow on `/tmp/app.log*`, plus `members` in the flow.
fn firehose(members: &str) -> String {
    format!(
        r#"{{"flows": [{{"filePattern": "/tmp/app.log*", "deliveryStream": "d"{}}}]}}"#,
        more(members)
    )
}

/// A document with `members` at the top level and one Kinesis flow.
fn global(members: &str) -> String {
    format!(
        r#"{{"flows": [{{"filePattern": "/tmp/app.log*", "kinesisStream": "s"}}]{}}}"#,
        more(members)
    )
}

/// A Kinesis flow with these `dataProcessingOptions` items.
fn options(items: &str) -> String {
    kinesis(&format!(r#""dataProcessingOptions": [{items}]"#))
}

fn only_flow(plan: &AgentPlan) -> &FlowPlan {
    assert_eq!(plan.flows.len(), 1);
    &plan.flows[0]
}

fn keys(notices: &[Notice]) -> Vec<&str> {
    notices.iter().map(|n| n.key.as_str()).collect()
}

#[test]
fn errors_name_the_file_the_key_and_the_expectation() {
    let long_terminator = "x".repeat(FIREHOSE_MAX_RECORD_BYTES);
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        // Syntax and shape.
        ("{".into(), None, "invalid JSON at line 1, column 1"),
        (r#"{"flows": [],}"#.into(), None, "invalid JSON at line 1"),
        ("{\n// comment\n\"flows\": [,]\n}".into(), None, "invalid JSON at line 3, column 11"),
        ("{} /* never closed".into(), None, "never closed"),
        ("[]".into(), None, "expected a JSON object at the top level, got a list"),
        (r#""flows""#.into(), None, r#"expected a JSON object at the top level, got "flows""#),
        ("{}".into(), Some("flows"), "There are no flows configured in configuration file."),
        (r#"{"flows": []}"#.into(), Some("flows"), "There are no flows configured in configuration file."),
        (r#"{"flows": {}}"#.into(), Some("flows"), "expected a list, got an object"),
        (r#"{"flows": [1]}"#.into(), Some("flows[0]"), "expected a flow object, got 1"),
        // Flow type and names.
        (r#"{"flows": [{"filePattern": "/tmp/a"}]}"#.into(), Some("flows[0]"), "expected either kinesisStream or deliveryStream"),
        (r#"{"flows": [{"filePattern": "/tmp/a", "kinesisStream": ""}]}"#.into(), Some("flows[0].kinesisStream"), "expected a stream name"),
        (r#"{"flows": [{"filePattern": "/tmp/a", "deliveryStream": ""}]}"#.into(), Some("flows[0].deliveryStream"), "expected a stream name"),
        (r#"{"flows": [{"kinesisStream": "s"}]}"#.into(), Some("flows[0].filePattern"), "Required configuration value missing: filePattern"),
        (r#"{"flows": [{"kinesisStream": "s", "filePattern": null}]}"#.into(), Some("flows[0].filePattern"), "Required configuration value missing: filePattern"),
        // filePattern.
        (r#"{"flows": [{"kinesisStream": "s", "filePattern": "app.log"}]}"#.into(), Some("flows[0].filePattern"), "Directory component is empty!"),
        (r#"{"flows": [{"kinesisStream": "s", "filePattern": "/var/log/"}]}"#.into(), Some("flows[0].filePattern"), "File name component is empty!"),
        (r#"{"flows": [{"kinesisStream": "s", "filePattern": "/var/log/[abc"}]}"#.into(), Some("flows[0].filePattern"), "invalid glob"),
        (r#"{"flows": [{"kinesisStream": "s", "filePattern": {}}]}"#.into(), Some("flows[0].filePattern"), "expected a string, got an object"),
        // Integers.
        (kinesis(r#""maxBufferAgeMillis": "1000.0""#), Some("flows[0].maxBufferAgeMillis"), r#"expected an integer, got "1000.0""#),
        (kinesis(r#""maxBufferAgeMillis": 1000.0"#), Some("flows[0].maxBufferAgeMillis"), "expected an integer, got 1000.0"),
        (kinesis(r#""maxBufferAgeMillis": 1e3"#), Some("flows[0].maxBufferAgeMillis"), "expected an integer, got 1000.0"),
        (kinesis(r#""maxBufferAgeMillis": "abc""#), Some("flows[0].maxBufferAgeMillis"), r#"expected an integer, got "abc""#),
        (kinesis(r#""maxBufferAgeMillis": true"#), Some("flows[0].maxBufferAgeMillis"), "expected an integer, got true"),
        (kinesis(r#""maxBufferAgeMillis": " 1000""#), Some("flows[0].maxBufferAgeMillis"), "expected an integer"),
        (kinesis(r#""maxBufferAgeMillis": [1000]"#), Some("flows[0].maxBufferAgeMillis"), "expected an integer, got a list"),
        // Enums: exact and case-sensitive.
        (kinesis(r#""partitionKeyOption": "random""#), Some("flows[0].partitionKeyOption"), r#"expected one of RANDOM, DETERMINISTIC, got "random""#),
        (kinesis(r#""partitionKeyOption": """#), Some("flows[0].partitionKeyOption"), r#"expected one of RANDOM, DETERMINISTIC, got """#),
        (kinesis(r#""partitionKeyOption": "FOO""#), Some("flows[0].partitionKeyOption"), r#"got "FOO""#),
        (kinesis(r#""initialPosition": "start_of_file""#), Some("flows[0].initialPosition"), r#"expected one of START_OF_FILE, END_OF_FILE, got "start_of_file""#),
        // Booleans and strings.
        (global(r#""cloudwatch.emitMetrics": "maybe""#), Some("cloudwatch.emitMetrics"), r#"expected a boolean (true/false), got "maybe""#),
        (global(r#""cloudwatch.emitMetrics": 2"#), Some("cloudwatch.emitMetrics"), "expected a boolean (true/false), got 2"),
        (kinesis(r#""log.emitInternalMetrics": """#), Some("flows[0].log.emitInternalMetrics"), r#"expected a boolean (true/false), got """#),
        (global(r#""kinesis.endpoint": {}"#), Some("kinesis.endpoint"), "expected a string, got an object"),
        (global(r#""kinesis.region": ["us-east-1"]"#), Some("kinesis.region"), "expected a string, got a list"),
        // Ranges.
        (kinesis(r#""maxBufferAgeMillis": 500"#), Some("flows[0].maxBufferAgeMillis"), "value 500 is outside of valid range [1000..900000]"),
        (kinesis(r#""maxBufferSizeRecords": 3000000000"#), Some("flows[0].maxBufferSizeRecords"), "value 3000000000 is outside of valid range [1..500]"),
        (kinesis(r#""maxBufferSizeRecords": "-0x1""#), Some("flows[0].maxBufferSizeRecords"), "value -1 is outside of valid range [1..500]"),
        (kinesis(r#""waitOnFullPublishQueueMillis": 999"#), Some("flows[0].waitOnFullPublishQueueMillis"), "value 999 is outside of valid range [1000..900000]"),
        (kinesis(r#""waitOnEmptyPublishQueueMillis": 900001"#), Some("flows[0].waitOnEmptyPublishQueueMillis"), "value 900001 is outside of valid range [1000..900000]"),
        (kinesis(r#""retryInitialBackoffMillis": -1"#), Some("flows[0].retryInitialBackoffMillis"), "value -1 is outside of valid range [0..+∞)"),
        (kinesis(r#""retryMaxBackoffMillis": -1"#), Some("flows[0].retryMaxBackoffMillis"), "value -1 is outside of valid range [0..+∞)"),
        (kinesis(r#""publishQueueCapacity": 0"#), Some("flows[0].publishQueueCapacity"), "value 0 is outside of valid range [1..2147483647]"),
        (kinesis(r#""skipHeaderLines": -1"#), Some("flows[0].skipHeaderLines"), "value -1 is outside of valid range [0..2147483647]"),
        (kinesis(r#""minTimeBetweenFilePollsMillis": -1"#), Some("flows[0].minTimeBetweenFilePollsMillis"), "outside of valid range"),
        (kinesis(r#""maxTimeBetweenFileTrackerRefreshMillis": -1"#), Some("flows[0].maxTimeBetweenFileTrackerRefreshMillis"), "outside of valid range"),
        (global(r#""maxSendingThreadsPerCore": 3000000000"#), Some("maxSendingThreadsPerCore"), "value 3000000000 is outside of valid range [-2147483648..2147483647]"),
        (global(r#""shutdownTimeoutMillis": -1"#), Some("shutdownTimeoutMillis"), "value -1 is outside of valid range [0..+∞)"),
        (global(r#""maxOpenFiles": -5"#), Some("maxOpenFiles"), "value -5 is outside of valid range [0..2147483647]"),
        (global(r#""maxOpenFiles": "many""#), Some("maxOpenFiles"), "expected an integer"),
        (global(r#""log.statusReportingPeriodSeconds": 0"#), Some("log.statusReportingPeriodSeconds"), "value 0 is outside of valid range [1..2147483647]"),
        (global(r#""maxSendingThreads": 0"#), Some("maxSendingThreads"), "value 0 is outside of valid range"),
        (global(r#""maxConnections": 0"#), Some("maxConnections"), "value 0 is outside of valid range"),
        (global(r#""sendingThreadsMaxQueueSize": 0"#), Some("sendingThreadsMaxQueueSize"), "value 0 is outside of valid range"),
        (global(r#""sendingThreadsKeepAliveMillis": 0"#), Some("sendingThreadsKeepAliveMillis"), "value 0 is outside of valid range [1..+∞)"),
        (global(r#""checkpointTimeToLiveDays": -1"#), Some("checkpointTimeToLiveDays"), "value -1 is outside of valid range"),
        (global(r#""checkpoints.queryTimeoutSeconds": -1"#), Some("checkpoints.queryTimeoutSeconds"), "value -1 is outside of valid range"),
        (global(r#""connectionTimeoutMillis": -1"#), Some("connectionTimeoutMillis"), "value -1 is outside of valid range"),
        (global(r#""socketTimeoutMillis": "abc""#), Some("socketTimeoutMillis"), "expected an integer"),
        (global(r#""cloudwatch.metricsQueueSize": -1"#), Some("cloudwatch.metricsQueueSize"), "value -1 is outside of valid range"),
        (global(r#""checkpointFile": """#), Some("checkpointFile"), "expected a file path, got an empty string"),
        (global(r#""cloudwatch.namespace": """#), Some("cloudwatch.namespace"), "expected a metric namespace"),
        // Regexes and the terminator.
        (kinesis(r#""multiLineStartPattern": "(""#), Some("flows[0].multiLineStartPattern"), "invalid regular expression"),
        (kinesis(r#""fileFooterPattern": "[""#), Some("flows[0].fileFooterPattern"), "invalid regular expression"),
        (firehose(&format!(r#""truncatedRecordTerminator": "{long_terminator}""#)), Some("flows[0].truncatedRecordTerminator"), "must be shorter than the maximum record size (1024000 bytes)"),
        // Duplicates.
        (
            r#"{"flows": [{"filePattern": "/tmp/app.log*", "kinesisStream": "s"}, {"filePattern": "/tmp//app.log*", "kinesisStream": "s"}]}"#.into(),
            Some("flows[1]"),
            "Duplicate flow: kinesis:s:/tmp/app.log*",
        ),
        // dataProcessingOptions: shape and names.
        (kinesis(r#""dataProcessingOptions": {}"#), Some("flows[0].dataProcessingOptions"), "expected a list, got an object"),
        (options(r#""SINGLELINE""#), Some("flows[0].dataProcessingOptions[0]"), r#"expected an object with an optionName, got "SINGLELINE""#),
        (options("{}"), Some("flows[0].dataProcessingOptions[0].optionName"), "Required configuration value missing: optionName"),
        (
            options(r#"{"optionName": "UNSUPPORTED"}"#),
            Some("flows[0].dataProcessingOptions[0].optionName"),
            r#"expected one of ADDMETADATA, ADDEC2METADATA, SINGLELINE, CSVTOJSON, LOGTOJSON, ADDBRACKETS, USINGPLUGGIN, got "UNSUPPORTED""#,
        ),
        (options(r#"{"optionName": "singleline"}"#), Some("flows[0].dataProcessingOptions[0].optionName"), r#"got "singleline""#),
        (options(r#"{"optionName": ""}"#), Some("flows[0].dataProcessingOptions[0].optionName"), r#"got """#),
        (options(r#"{"optionName": "ADDBRACKETS"}, {"optionName": "X"}"#), Some("flows[0].dataProcessingOptions[1].optionName"), r#"got "X""#),
        (
            options(r#"{"optionName": "USINGPLUGGIN", "className": "com.example.Converter"}"#),
            Some("flows[0].dataProcessingOptions[0].optionName"),
            "loads a Java converter class, which this agent cannot do; use the built-in converters",
        ),
        // SINGLELINE.
        (options(r#"{"optionName": "SINGLELINE", "parseOptions": ["TRIM"]}"#), Some("flows[0].dataProcessingOptions[0].parseOptions[0]"), r#"expected one of NO_TRIM, ESCAPE_NEW_LINE, got "TRIM""#),
        (options(r#"{"optionName": "SINGLELINE", "parseOptions": "NO_TRIM"}"#), Some("flows[0].dataProcessingOptions[0].parseOptions"), "expected a list"),
        // CSVTOJSON.
        (options(r#"{"optionName": "CSVTOJSON"}"#), Some("flows[0].dataProcessingOptions[0].customFieldNames"), "Required configuration value missing: customFieldNames"),
        (options(r#"{"optionName": "CSVTOJSON", "customFieldNames": []}"#), Some("flows[0].dataProcessingOptions[0].customFieldNames"), "expected at least one field name"),
        (options(r#"{"optionName": "CSVTOJSON", "customFieldNames": "a"}"#), Some("flows[0].dataProcessingOptions[0].customFieldNames"), r#"expected a list, got "a""#),
        (options(r#"{"optionName": "CSVTOJSON", "customFieldNames": ["a", {}]}"#), Some("flows[0].dataProcessingOptions[0].customFieldNames[1]"), "expected a string, got an object"),
        (options(r#"{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "delimiter": "("}"#), Some("flows[0].dataProcessingOptions[0].delimiter"), "invalid regular expression"),
        (options(r#"{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "jsonFormat": "compact"}"#), Some("flows[0].dataProcessingOptions[0].jsonFormat"), r#"expected one of COMPACT, PRETTYPRINT, got "compact""#),
        // LOGTOJSON.
        (options(r#"{"optionName": "LOGTOJSON"}"#), Some("flows[0].dataProcessingOptions[0].logFormat"), "Required configuration value missing: logFormat"),
        (
            options(r#"{"optionName": "LOGTOJSON", "logFormat": "BAD"}"#),
            Some("flows[0].dataProcessingOptions[0].logFormat"),
            r#"expected one of COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG, RFC3339SYSLOG, got "BAD""#,
        ),
        (options(r#"{"optionName": "LOGTOJSON", "logFormat": "syslog"}"#), Some("flows[0].dataProcessingOptions[0].logFormat"), r#"got "syslog""#),
        (
            options(r#"{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG", "customFieldNames": ["a", "b", "c", "d", "e", "f"]}"#),
            Some("flows[0].dataProcessingOptions[0].customFieldNames"),
            "expected 7 names, to rename the fields of this logFormat (host, ident, authuser, datetime, request, response, bytes), got 6",
        ),
        (
            options(r#"{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG", "matchPattern": "^(\\S+)"}"#),
            Some("flows[0].dataProcessingOptions[0].customFieldNames"),
            "it must be given with matchPattern",
        ),
        (
            options(r#"{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(", "customFieldNames": ["a"]}"#),
            Some("flows[0].dataProcessingOptions[0].matchPattern"),
            "invalid regular expression",
        ),
        (
            options(r#"{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "^(a)(b)$", "customFieldNames": ["a", "b", "c"]}"#),
            Some("flows[0].dataProcessingOptions[0].customFieldNames"),
            "matchPattern has 2 capture groups but 3 field names are given",
        ),
        // ADDMETADATA and ADDEC2METADATA.
        (options(r#"{"optionName": "ADDMETADATA", "timestamp": "maybe"}"#), Some("flows[0].dataProcessingOptions[0].timestamp"), "expected a boolean (true/false)"),
        (options(r#"{"optionName": "ADDEC2METADATA"}"#), Some("flows[0].dataProcessingOptions[0].logFormat"), "Required configuration value missing: logFormat"),
        (options(r#"{"optionName": "ADDEC2METADATA", "logFormat": "SYSLOG", "metadataTTL": 0}"#), Some("flows[0].dataProcessingOptions[0].metadataTTL"), "value 0 is outside of valid range [1..2147483647]"),
        (
            options(r#"{"optionName": "ADDEC2METADATA", "logFormat": "SYSLOG", "customFieldNames": ["a"]}"#),
            Some("flows[0].dataProcessingOptions[0].customFieldNames"),
            "expected 5 names",
        ),
    ];
    for (json, key, message) in &cases {
        let shown = if json.len() > 300 { &json[..300] } else { json };
        let err = match parse(json) {
            Ok(_) => panic!("accepted: {shown}"),
            Err(err) => err,
        };
        assert_eq!(err.file, Path::new(MAIN), "{shown}");
        assert_eq!(err.key.as_deref(), *key, "{shown}\n{err}");
        assert!(
            err.message.contains(message),
            "{shown}\nexpected {message:?} in\n{err}"
        );
    }
}

#[test]
fn range_bounds_of_flow_keys() {
    type Document = fn(&str) -> String;
    type Get = fn(&FlowPlan) -> i64;
    let buffer_age: Get = |f| f.max_buffer_age.as_millis() as i64;
    let records: Get = |f| f.max_buffer_records as i64;
    let bytes: Get = |f| f.max_buffer_bytes as i64;
    let aggregated: Get = |f| match f.destination {
        Destination::Firehose {
            aggregated_record_size_bytes,
            ..
        } => aggregated_record_size_bytes as i64,
        Destination::Kinesis { .. } => -1,
    };
    let cases: [(Document, &str, i64, i64, Get); 8] = [
        (kinesis, "maxBufferAgeMillis", 1_000, 900_000, buffer_age),
        (firehose, "maxBufferAgeMillis", 1_000, 900_000, buffer_age),
        (kinesis, "maxBufferSizeRecords", 1, 500, records),
        (firehose, "maxBufferSizeRecords", 1, 500, records),
        (kinesis, "maxBufferSizeBytes", 1, 5_242_880, bytes),
        (firehose, "maxBufferSizeBytes", 1, 4_194_304, bytes),
        (
            firehose,
            "aggregatedRecordSizeBytes",
            0,
            1_024_000,
            aggregated,
        ),
        (
            kinesis,
            "waitOnFullPublishQueueMillis",
            1_000,
            900_000,
            |_| 0,
        ),
    ];
    for (document, key, lo, hi, get) in cases {
        for inside in [lo, hi] {
            let plan = ok(&document(&format!(r#""{key}": {inside}"#)));
            if key.starts_with("wait") {
                continue;
            }
            assert_eq!(get(only_flow(&plan)), inside, "{key} = {inside}");
        }
        for outside in [lo - 1, hi + 1] {
            let err = parse(&document(&format!(r#""{key}": {outside}"#))).expect_err(key);
            assert_eq!(err.key.as_deref(), Some(format!("flows[0].{key}").as_str()));
            assert_eq!(
                err.message,
                format!("value {outside} is outside of valid range [{lo}..{hi}]")
            );
        }
    }
}

#[test]
fn truncated_record_terminator_must_be_shorter_than_a_record() {
    let just_fits = "x".repeat(FIREHOSE_MAX_RECORD_BYTES - 1);
    let plan = ok(&firehose(&format!(
        r#""truncatedRecordTerminator": "{just_fits}""#
    )));
    assert_eq!(
        only_flow(&plan).truncated_record_terminator.len(),
        FIREHOSE_MAX_RECORD_BYTES - 1
    );
    // Kinesis allows more; UTF-8 bytes are counted, not characters.
    let fits_kinesis = "é".repeat(KINESIS_MAX_RECORD_BYTES / 2 - 1);
    assert!(parse(&kinesis(&format!(
        r#""truncatedRecordTerminator": "{fits_kinesis}""#
    )))
    .is_ok());
    let too_long = "é".repeat(KINESIS_MAX_RECORD_BYTES / 2);
    let err = parse(&kinesis(&format!(
        r#""truncatedRecordTerminator": "{too_long}""#
    )))
    .expect_err("too long");
    assert!(err.message.contains("(1048576 bytes)"), "{err}");
    // Any scalar is a string.
    let plan = ok(&kinesis(r#""truncatedRecordTerminator": 7"#));
    assert_eq!(only_flow(&plan).truncated_record_terminator, b"7");
}

#[test]
fn rotated_file_directory_is_an_absolute_path() {
    let plan = ok(&kinesis(r#""rotatedFileDirectory": "/var/log/app/old""#));
    assert_eq!(
        only_flow(&plan).rotated_file_directory,
        Some(std::path::PathBuf::from("/var/log/app/old"))
    );
    assert_eq!(only_flow(&ok(&kinesis(""))).rotated_file_directory, None);
    let err = parse(&kinesis(r#""rotatedFileDirectory": "old""#)).expect_err("relative");
    assert!(err.to_string().contains("rotatedFileDirectory"), "{err}");
    assert!(err.message.contains("absolute"), "{err}");
}

#[test]
fn comments_of_both_kinds_are_allowed() {
    let plan = ok(r#"
        // The release sample, with comments.
        {
          /* a block
             comment */
          "kinesis.endpoint": "https://example.com//x/* not a comment */", // after a value
          "flows": [ /* inline */ { "filePattern": "/tmp/app.log*", "kinesisStream": "s" } ]
        }
        // trailing
    "#);
    assert_eq!(
        plan.aws.kinesis_endpoint.as_deref(),
        Some("https://example.com//x/* not a comment */")
    );
    assert_eq!(only_flow(&plan).id, "kinesis:s:/tmp/app.log*");
    // `#` comments are not JSON and not accepted by the Java agent either.
    assert!(parse(&format!("# comment\n{}", global(""))).is_err());
}

#[test]
fn numbers_and_booleans_may_be_strings() {
    let plan = ok(
        r##"{"useHttpGzip": "yes", "shutdownTimeoutMillis": "2500", "flows": [{"filePattern": "/tmp/app.log*",
            "kinesisStream": 42, "maxBufferAgeMillis": "1000", "maxBufferSizeRecords": "0x10",
            "publishQueueCapacity": "010", "skipHeaderLines": "#f", "log.emitInternalMetrics": "Y"}]}"##,
    );
    assert!(plan.aws.use_http_gzip);
    assert_eq!(plan.shutdown_timeout, Duration::from_millis(2500));
    assert_eq!(
        plan.max_open_files, None,
        "derived from the open-files limit at start"
    );
    let given = ok(&global(r#""maxOpenFiles": "2000""#));
    assert_eq!(given.max_open_files, Some(2000));
    let zero = ok(&global(r#""maxOpenFiles": 0"#));
    assert_eq!(zero.max_open_files, None, "0 derives it too");
    let flow = only_flow(&plan);
    // Any scalar is a string, as Java's toString().
    assert_eq!(flow.destination.name(), "42");
    assert_eq!(flow.max_buffer_age, Duration::from_millis(1000));
    // Java's Integer.decode: hexadecimal and (surprisingly) octal.
    assert_eq!(flow.max_buffer_records, 16);
    assert_eq!(flow.publish_queue_capacity, 8);
    assert_eq!(flow.skip_header_lines, 15);
    assert!(flow.log_emit_internal_metrics);
}

#[test]
fn every_boolean_spelling() {
    let spellings = [
        ("true", true),
        ("false", false),
        ("1", true),
        ("0", false),
        (r#""true""#, true),
        (r#""TRUE""#, true),
        (r#""True""#, true),
        (r#""yes""#, true),
        (r#""YES""#, true),
        (r#""t""#, true),
        (r#""T""#, true),
        (r#""y""#, true),
        (r#""1""#, true),
        (r#""false""#, false),
        (r#""FALSE""#, false),
        (r#""no""#, false),
        (r#""No""#, false),
        (r#""f""#, false),
        (r#""n""#, false),
        (r#""0""#, false),
    ];
    for (spelling, expected) in spellings {
        let plan = ok(&global(&format!(
            r#""useHttpGzip": {spelling}, "cloudwatch.emitMetrics": {spelling}"#
        )));
        assert_eq!(plan.aws.use_http_gzip, expected, "{spelling}");
        assert_eq!(plan.cloudwatch.emit_metrics, expected, "{spelling}");
    }
    for wrong in [r#""on""#, r#""2""#, "2", r#""""#, "[]"] {
        let err = parse(&global(&format!(r#""useHttpGzip": {wrong}"#))).expect_err(wrong);
        assert!(
            err.message
                .starts_with("expected a boolean (true/false), got"),
            "{err}"
        );
    }
}

#[test]
fn null_means_the_default() {
    // The Java agent returns null for an explicit null and crashes on number keys.
    let plan = ok(
        r#"{"checkpointFile": null, "cloudwatch.emitMetrics": null, "maxSendingThreads": null,
        "kinesis.endpoint": null, "flows": [{"filePattern": "/tmp/app.log*", "kinesisStream": "s",
        "maxBufferAgeMillis": null, "partitionKeyOption": null, "initialPosition": null,
        "truncatedRecordTerminator": null, "dataProcessingOptions": null, "multiLineStartPattern": null}]}"#,
    );
    assert!(plan.checkpoint_file_is_default);
    assert!(plan.cloudwatch.emit_metrics);
    assert_eq!(plan.max_sending_threads, 48);
    assert_eq!(plan.aws.kinesis_endpoint, None);
    let flow = only_flow(&plan);
    assert_eq!(flow.max_buffer_age, Duration::from_secs(60));
    assert_eq!(
        flow.destination,
        Destination::Kinesis {
            stream: "s".into(),
            partition_key: PartitionKeyOption::Random,
            kpl_aggregate: None,
        }
    );
    assert_eq!(flow.initial_position, InitialPosition::EndOfFile);
    assert_eq!(flow.truncated_record_terminator, b"\n");
    assert!(flow.processing.is_empty());
    assert_eq!(flow.multi_line_start_pattern, None);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert!(plan.not_supported.is_empty(), "{:?}", plan.not_supported);
}

#[test]
fn empty_strings_mean_not_set() {
    let plan = ok(&global(
        r#""kinesis.endpoint": "", "kinesis.region": "", "firehose.endpoint": "", "cloudwatch.endpoint": "",
        "sts.endpoint": "", "assumeRoleARN": "", "assumeRoleExternalId": "", "awsAccessKeyId": "",
        "awsSecretAccessKey": "", "userAgent": "  ", "userAgentOverride": "",
        "userDefinedCredentialsProvider.classname": "", "userDefinedCredentialsProvider.location": """#,
    ));
    let aws = &plan.aws;
    assert_eq!(aws.kinesis_endpoint, None);
    assert_eq!(aws.kinesis_region, None);
    assert_eq!(aws.firehose_endpoint, None);
    assert_eq!(aws.cloudwatch_endpoint, None);
    assert_eq!(aws.sts_endpoint, None);
    assert_eq!(aws.assume_role_arn, None);
    assert_eq!(aws.assume_role_external_id, None);
    assert_eq!(aws.static_credentials, None);
    assert_eq!(aws.user_agent, None);
    assert_eq!(aws.user_agent_override, None);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert!(plan.not_supported.is_empty(), "{:?}", plan.not_supported);
}

#[test]
fn global_defaults() {
    let plan = ok(&kinesis(""));
    assert_eq!(plan.sources, vec![PathBuf::from(MAIN)]);
    assert_eq!(plan.checkpoint_file, PathBuf::from(DEFAULT_CHECKPOINT_FILE));
    assert!(plan.checkpoint_file_is_default);
    assert_eq!(plan.checkpoint_ttl_days, 7);
    assert_eq!(plan.shutdown_timeout, Duration::from_millis(10_000));
    assert_eq!(plan.status_period, Duration::from_secs(30));
    assert!(!plan.log_emit_internal_metrics);
    let aws = &plan.aws;
    assert_eq!(aws.connection_timeout, Duration::from_millis(10_000));
    assert_eq!(aws.socket_timeout, Duration::from_millis(50_000));
    assert_eq!(aws.connection_ttl, None);
    assert!(!aws.use_tcp_keep_alive);
    assert!(!aws.use_http_gzip);
    assert_eq!(aws.kinesis_endpoint, None);
    assert_eq!(aws.static_credentials, None);
    let cw = &plan.cloudwatch;
    assert!(cw.emit_metrics);
    assert_eq!(cw.namespace, "AWSKinesisAgent");
    assert!(!cw.tag_instance);
    assert_eq!(cw.buffer_time, Duration::from_millis(30_000));
    assert_eq!(cw.queue_size, 10_000);
    assert!(plan.warnings.is_empty());
    assert!(plan.not_supported.is_empty());
}

#[test]
fn minimal_kinesis_flow_defaults() {
    let plan = ok(&kinesis(""));
    let flow = only_flow(&plan);
    assert_eq!(flow.id, "kinesis:s:/tmp/app.log*");
    assert_eq!(flow.source, PathBuf::from(MAIN));
    assert_eq!(flow.index, 0);
    assert_eq!(flow.file_pattern.base_dir, PathBuf::from("/tmp"));
    assert_eq!(flow.file_pattern.glob, "app.log*");
    assert_eq!(
        flow.destination,
        Destination::Kinesis {
            stream: "s".into(),
            partition_key: PartitionKeyOption::Random,
            kpl_aggregate: None,
        }
    );
    assert_eq!(flow.initial_position, InitialPosition::EndOfFile);
    assert_eq!(flow.max_buffer_age, Duration::from_millis(60_000));
    assert_eq!(flow.max_buffer_records, 500);
    assert_eq!(flow.max_buffer_bytes, 5_242_880);
    assert_eq!(flow.publish_queue_capacity, 100);
    assert_eq!(flow.retry_initial_backoff, Duration::from_millis(100));
    assert_eq!(flow.retry_max_backoff, Duration::from_millis(10_000));
    assert_eq!(flow.min_time_between_file_polls, Duration::from_millis(100));
    assert_eq!(flow.max_time_between_rescans, Duration::from_millis(10_000));
    assert_eq!(flow.skip_header_lines, 0);
    assert_eq!(flow.multi_line_start_pattern, None);
    assert_eq!(flow.file_footer_pattern, None);
    assert_eq!(flow.truncated_record_terminator, b"\n");
    assert!(flow.processing.is_empty());
    assert!(!flow.log_emit_internal_metrics);
    assert_eq!(flow.max_record_bytes(), 1_048_576);
}

#[test]
fn minimal_firehose_flow_defaults() {
    let plan = ok(&firehose(""));
    let flow = only_flow(&plan);
    assert_eq!(flow.id, "fh:d:/tmp/app.log*");
    assert_eq!(
        flow.destination,
        Destination::Firehose {
            delivery_stream: "d".into(),
            aggregated_record_size_bytes: 0
        }
    );
    assert_eq!(flow.initial_position, InitialPosition::EndOfFile);
    assert_eq!(flow.max_buffer_age, Duration::from_millis(60_000));
    assert_eq!(flow.max_buffer_records, 500);
    assert_eq!(flow.max_buffer_bytes, 4_194_304);
    assert_eq!(flow.publish_queue_capacity, 100);
    assert_eq!(flow.retry_initial_backoff, Duration::from_millis(100));
    assert_eq!(flow.retry_max_backoff, Duration::from_millis(10_000));
    assert_eq!(flow.truncated_record_terminator, b"\n");
    assert_eq!(flow.max_record_bytes(), 1_024_000);
}

#[test]
fn every_flow_key_is_read() {
    let plan = ok(&kinesis(
        r#""partitionKeyOption": "DETERMINISTIC", "initialPosition": "START_OF_FILE",
        "maxBufferAgeMillis": 5000, "maxBufferSizeRecords": 10, "maxBufferSizeBytes": 1024,
        "publishQueueCapacity": 3, "retryInitialBackoffMillis": 0, "retryMaxBackoffMillis": 500,
        "minTimeBetweenFilePollsMillis": 50, "maxTimeBetweenFileTrackerRefreshMillis": 2000,
        "skipHeaderLines": 2, "multiLineStartPattern": "^\\d{4}-", "fileFooterPattern": "^END$",
        "truncatedRecordTerminator": "…\n", "log.emitInternalMetrics": true,
        "waitOnFullPublishQueueMillis": 1000, "waitOnEmptyPublishQueueMillis": 900000"#,
    ));
    let flow = only_flow(&plan);
    assert_eq!(
        flow.destination,
        Destination::Kinesis {
            stream: "s".into(),
            partition_key: PartitionKeyOption::Deterministic,
            kpl_aggregate: None,
        }
    );
    assert_eq!(flow.initial_position, InitialPosition::StartOfFile);
    assert_eq!(flow.max_buffer_age, Duration::from_millis(5000));
    assert_eq!(flow.max_buffer_records, 10);
    assert_eq!(flow.max_buffer_bytes, 1024);
    assert_eq!(flow.publish_queue_capacity, 3);
    assert_eq!(flow.retry_initial_backoff, Duration::ZERO);
    assert_eq!(flow.retry_max_backoff, Duration::from_millis(500));
    assert_eq!(flow.min_time_between_file_polls, Duration::from_millis(50));
    assert_eq!(flow.max_time_between_rescans, Duration::from_millis(2000));
    assert_eq!(flow.skip_header_lines, 2);
    assert_eq!(flow.multi_line_start_pattern.as_deref(), Some(r"^\d{4}-"));
    assert_eq!(flow.file_footer_pattern.as_deref(), Some("^END$"));
    assert_eq!(flow.truncated_record_terminator, "…\n".as_bytes());
    assert!(flow.log_emit_internal_metrics);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn every_global_key_is_read() {
    let plan = ok(&global(
        r#""checkpointFile": "/data/cp", "checkpointTimeToLiveDays": 0, "checkpoints.queryTimeoutSeconds": 5,
        "checkpoints.connectionTimeoutSeconds": -3, "shutdownTimeoutMillis": 0, "maxSendingThreads": 7,
        "sendingThreadsKeepAliveMillis": 1, "sendingThreadsMaxQueueSize": 1, "maxConnections": 9,
        "connectionTimeoutMillis": 1, "socketTimeoutMillis": 2, "connectionTTLMillis": 5000,
        "useTcpKeepAlive": true, "useHttpGzip": true, "userAgent": " mine ", "userAgentOverride": "all-mine",
        "awsAccessKeyId": "AKID", "awsSecretAccessKey": "SECRET", "assumeRoleARN": "arn:aws:iam::1:role/r",
        "assumeRoleExternalId": "ext", "sts.endpoint": "sts.example", "kinesis.endpoint": "k.example",
        "kinesis.region": "eu-west-1", "firehose.endpoint": "f.example", "cloudwatch.endpoint": "c.example",
        "cloudwatch.emitMetrics": false, "cloudwatch.tagInstance": true, "cloudwatch.namespace": "Mine",
        "cloudwatch.metricsBufferTimeMillis": 1000, "cloudwatch.metricsQueueSize": 0, "log.emitMetrics": true,
        "log.emitInternalMetrics": true, "log.statusReportingPeriodSeconds": 1, "maxSendingThreadsPerCore": 1"#,
    ));
    assert_eq!(plan.checkpoint_file, PathBuf::from("/data/cp"));
    assert!(!plan.checkpoint_file_is_default);
    assert_eq!(plan.checkpoint_ttl_days, 0);
    assert_eq!(plan.shutdown_timeout, Duration::ZERO);
    assert_eq!(plan.max_sending_threads, 7);
    assert_eq!(plan.status_period, Duration::from_secs(1));
    assert!(plan.log_emit_internal_metrics);
    let aws = &plan.aws;
    assert_eq!(aws.max_connections, 9);
    assert_eq!(aws.connection_timeout, Duration::from_millis(1));
    assert_eq!(aws.socket_timeout, Duration::from_millis(2));
    assert_eq!(aws.connection_ttl, Some(Duration::from_millis(5000)));
    assert!(aws.use_tcp_keep_alive);
    assert!(aws.use_http_gzip);
    assert_eq!(aws.user_agent.as_deref(), Some("mine"));
    assert_eq!(aws.user_agent_override.as_deref(), Some("all-mine"));
    let credentials = aws.static_credentials.as_ref().expect("static credentials");
    assert_eq!(credentials.access_key_id, "AKID");
    assert_eq!(credentials.secret_access_key, "SECRET");
    assert!(!format!("{credentials:?}").contains("SECRET"));
    assert_eq!(
        aws.assume_role_arn.as_deref(),
        Some("arn:aws:iam::1:role/r")
    );
    assert_eq!(aws.assume_role_external_id.as_deref(), Some("ext"));
    assert_eq!(aws.sts_endpoint.as_deref(), Some("sts.example"));
    assert_eq!(aws.kinesis_endpoint.as_deref(), Some("k.example"));
    assert_eq!(aws.kinesis_region.as_deref(), Some("eu-west-1"));
    assert_eq!(aws.firehose_endpoint.as_deref(), Some("f.example"));
    assert_eq!(aws.cloudwatch_endpoint.as_deref(), Some("c.example"));
    let cw = &plan.cloudwatch;
    assert!(!cw.emit_metrics);
    assert!(cw.tag_instance);
    assert_eq!(cw.namespace, "Mine");
    assert_eq!(cw.buffer_time, Duration::from_millis(1000));
    assert_eq!(cw.queue_size, 0);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn connection_ttl_of_zero_or_less_is_none() {
    for ttl in ["-1", "0", "-50"] {
        let plan = ok(&global(&format!(r#""connectionTTLMillis": {ttl}"#)));
        assert_eq!(plan.aws.connection_ttl, None, "{ttl}");
    }
}

#[test]
fn sending_thread_and_connection_defaults_follow_the_cpus() {
    // (cpus, maxSendingThreads = max(2, 12 x cpus), maxConnections = max(50, threads))
    for (cpus, threads, connections) in [(1, 12, 50), (2, 24, 50), (8, 96, 96)] {
        let plan = parse_document((Path::new(MAIN), &kinesis("")), &[], &env(cpus)).expect("valid");
        assert_eq!(plan.max_sending_threads, threads, "{cpus} cpus");
        assert_eq!(plan.aws.max_connections, connections, "{cpus} cpus");
    }
    let with = |members: &str| {
        parse_document((Path::new(MAIN), &global(members)), &[], &env(8)).expect("valid")
    };
    let plan = with(r#""maxSendingThreadsPerCore": 0"#);
    assert_eq!(
        (plan.max_sending_threads, plan.aws.max_connections),
        (2, 50)
    );
    let plan = with(r#""maxSendingThreadsPerCore": 2"#);
    assert_eq!(
        (plan.max_sending_threads, plan.aws.max_connections),
        (16, 50)
    );
    let plan = with(r#""maxSendingThreads": 200"#);
    assert_eq!(
        (plan.max_sending_threads, plan.aws.max_connections),
        (200, 200)
    );
    let plan = with(r#""maxSendingThreadsPerCore": 2147483647"#);
    assert_eq!(plan.max_sending_threads, i32::MAX as usize);
    assert!(Environment::from_host().cpus >= 1);
}

#[test]
fn flow_ids_are_the_java_agent_s() {
    let plan = ok(r#"{"flows": [
        {"filePattern": "/tmp/app.log*", "kinesisStream": "s"},
        {"filePattern": "/tmp/app.log*", "deliveryStream": "s"},
        {"filePattern": "/log.*", "kinesisStream": "s"},
        {"filePattern": "/log.*", "deliveryStream": "d"}
    ]}"#);
    let ids: Vec<&str> = plan.flows.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "kinesis:s:/tmp/app.log*",
            "fh:s:/tmp/app.log*",
            "kinesis:s://log.*",
            "fh:d://log.*"
        ]
    );
    assert_eq!(plan.flows[2].index, 2);
}

#[test]
fn file_patterns_split_into_directory_and_glob() {
    let cases = [
        (
            "/var/log/app.log*",
            "/var/log",
            "app.log*",
            "/var/log/app.log*",
        ),
        ("/log.*", "/", "log.*", "//log.*"),
        (
            "/var/log/messages",
            "/var/log",
            "messages",
            "/var/log/messages",
        ),
        (
            "/var/log/*/app.log",
            "/var/log",
            "*/app.log",
            "/var/log/*/app.log",
        ),
        (
            "/var/log/**/*.log",
            "/var/log",
            "**/*.log",
            "/var/log/**/*.log",
        ),
        (
            "/opt/*/logs/app.log*",
            "/opt",
            "*/logs/app.log*",
            "/opt/*/logs/app.log*",
        ),
        (
            "/var/log/app[01][1-9].log",
            "/var/log",
            "app[01][1-9].log",
            "/var/log/app[01][1-9].log",
        ),
        (
            "/var/log/{a,b}.log",
            "/var/log",
            "{a,b}.log",
            "/var/log/{a,b}.log",
        ),
        (
            "/var//log/app.log",
            "/var/log",
            "app.log",
            "/var/log/app.log",
        ),
        ("logs/app.log", "logs", "app.log", "logs/app.log"),
        ("./app.log", ".", "app.log", "./app.log"),
    ];
    for (raw, base_dir, glob, java) in cases {
        let pattern = split_file_pattern(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(pattern.raw, raw);
        assert_eq!(pattern.base_dir, PathBuf::from(base_dir), "{raw}");
        assert_eq!(pattern.glob, glob, "{raw}");
        assert_eq!(pattern.java_string(), java, "{raw}");
    }
    let errors = [
        ("app.log", "Directory component is empty!: expected a path with a directory, like /var/log/app.log*"),
        ("", "Directory component is empty!"),
        ("/", "File name component is empty!"),
        ("/var/log/", "File name component is empty!: "),
        ("/var/log/[abc", "invalid glob"),
        ("*/app.log", "glob in the first component"),
    ];
    for (raw, message) in errors {
        let err = split_file_pattern(raw).expect_err(raw);
        assert!(err.contains(message), "{raw}: {err}");
    }
}

#[test]
fn unknown_keys_are_warnings_with_their_path() {
    let plan = ok(
        r#"{"foo": 1, "flows": [{"filePattern": "/tmp/app.log*", "kinesisStream": "s",
        "bar": 2, "MaxBufferAgeMillis": 1000, "pollPeriodMillis": 100,
        "dataProcessingOptions": [{"optionName": "ADDBRACKETS", "baz": 3}]}]}"#,
    );
    let mut found = keys(&plan.warnings);
    found.sort();
    assert_eq!(
        found,
        [
            "flows[0].MaxBufferAgeMillis",
            "flows[0].bar",
            "flows[0].dataProcessingOptions[0].baz",
            "flows[0].pollPeriodMillis",
            "foo"
        ]
    );
    assert!(plan
        .warnings
        .iter()
        .all(|w| w.file == Path::new(MAIN) && w.message.starts_with("unknown key, ignored")));
    let typo = plan
        .warnings
        .iter()
        .find(|w| w.key == "flows[0].MaxBufferAgeMillis")
        .expect("typo warning");
    assert_eq!(
        typo.message,
        "unknown key, ignored; did you mean `maxBufferAgeMillis`?"
    );
}

#[test]
fn legacy_log_keys_get_their_own_warning() {
    let plan = ok(&global(
        r#""log.level": "DEBUG", "log.file": "/tmp/a.log", "log.maxBackupIndex": 3, "log.maxFileSize": "10MB""#,
    ));
    assert_eq!(
        keys(&plan.warnings),
        [
            "log.level",
            "log.file",
            "log.maxBackupIndex",
            "log.maxFileSize"
        ]
    );
    for warning in &plan.warnings {
        assert!(
            warning
                .message
                .contains("ignored, as by the Java agent since 2018"),
            "{warning:?}"
        );
        assert!(
            warning.message.contains("`-L`/`-l` command-line options"),
            "{warning:?}"
        );
    }
}

#[test]
fn keys_not_yet_acted_on_get_a_notice_when_set() {
    let plan = ok(
        r#"{"assumeRoleARN": "arn:aws:iam::1:role/r", "maxConnections": 60,
        "cloudwatch.namespace": "AWSKinesisAgent", "useHttpGzip": false, "cloudwatch.tagInstance": "true",
        "flows": [{"filePattern": "/tmp/app.log*", "kinesisStream": "s", "multiLineStartPattern": "^x",
            "skipHeaderLines": 0, "dataProcessingOptions": [], "fileFooterPattern": "",
            "waitOnEmptyPublishQueueMillis": 60000},
          {"filePattern": "/tmp/b.log", "deliveryStream": "d", "aggregatedRecordSizeBytes": 5120,
            "dataProcessingOptions": [{"optionName": "ADDBRACKETS"}], "log.emitInternalMetrics": "y"}]}"#,
    );
    let mut found = keys(&plan.not_supported);
    found.sort();
    assert_eq!(
        found,
        ["flows[1].log.emitInternalMetrics", "maxConnections",]
    );
    let pool = plan
        .not_supported
        .iter()
        .find(|n| n.key == "maxConnections")
        .expect("notice");
    assert_eq!(
        pool.message,
        "accepted and validated, but not yet acted on by this build: the size of the HTTP connection pool"
    );
    assert_eq!(pool.file, Path::new(MAIN));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn java_credential_provider_classes_are_not_supported() {
    let plan = ok(&global(
        r#""userDefinedCredentialsProvider.classname": "com.example.Provider",
        "userDefinedCredentialsProvider.location": "/opt/provider.jar""#,
    ));
    assert_eq!(
        keys(&plan.not_supported),
        [
            "userDefinedCredentialsProvider.classname",
            "userDefinedCredentialsProvider.location"
        ]
    );
    let message = &plan.not_supported[0].message;
    assert!(
        message.contains("Java credential provider classes cannot be loaded"),
        "{message}"
    );
    assert!(
        message.contains("web identity, container, instance profile) or assumeRoleARN"),
        "{message}"
    );
}

#[test]
fn half_of_the_static_credentials_is_ignored_with_a_warning() {
    let plan = ok(&global(r#""awsAccessKeyId": "AKID""#));
    assert_eq!(plan.aws.static_credentials, None);
    assert_eq!(keys(&plan.warnings), ["awsAccessKeyId"]);
    let plan = ok(&global(
        r#""awsSecretAccessKey": "SECRET", "awsAccessKeyId": """#,
    ));
    assert_eq!(plan.aws.static_credentials, None);
    assert_eq!(keys(&plan.warnings), ["awsSecretAccessKey"]);
}

#[test]
fn kpl_aggregation_is_a_kinesis_key_with_java_value_rules_and_its_own_record_size() {
    let destination = |json: &str| only_flow(&ok(json)).destination.clone();
    let aggregated = |bytes| Destination::Kinesis {
        stream: "s".into(),
        partition_key: PartitionKeyOption::Random,
        kpl_aggregate: Some(bytes),
    };
    assert_eq!(
        destination(&kinesis(r#""kplAggregation": true"#)),
        aggregated(51_200)
    );
    assert_eq!(
        destination(&kinesis(r#""kplAggregation": "true""#)),
        aggregated(51_200)
    );
    assert_eq!(
        destination(&kinesis(
            r#""kplAggregation": true, "aggregatedRecordSizeBytes": 100000"#
        )),
        aggregated(100_000)
    );
    let plain = destination(&kinesis(r#""kplAggregation": false"#));
    assert!(matches!(
        plain,
        Destination::Kinesis {
            kpl_aggregate: None,
            ..
        }
    ));
    // A limit of one Kinesis record, its partition key included.
    let err = parse(&kinesis(
        r#""kplAggregation": true, "aggregatedRecordSizeBytes": 1048576"#,
    ))
    .expect_err("too large");
    assert!(
        err.to_string().contains("aggregatedRecordSizeBytes"),
        "{err}"
    );
    let err = parse(&kinesis(r#""kplAggregation": "maybe""#)).expect_err("not a boolean");
    assert!(err.to_string().contains("kplAggregation"), "{err}");
    // DETERMINISTIC keys aggregate too (grouped by shard, sink::shards).
    assert_eq!(
        destination(&kinesis(
            r#""kplAggregation": true, "partitionKeyOption": "DETERMINISTIC""#
        )),
        Destination::Kinesis {
            stream: "s".into(),
            partition_key: PartitionKeyOption::Deterministic,
            kpl_aggregate: Some(51_200),
        }
    );
    let err = parse(&firehose(r#""kplAggregation": true"#)).expect_err("Kinesis only");
    assert!(err.to_string().contains("kplAggregation"), "{err}");
    assert!(err.message.contains("Firehose"), "{err}");
}

#[test]
fn keys_of_the_other_destination_are_ignored_with_a_warning() {
    let plan = ok(&kinesis(r#""aggregatedRecordSizeBytes": 5120"#));
    assert_eq!(keys(&plan.warnings), ["flows[0].aggregatedRecordSizeBytes"]);
    assert!(plan.warnings[0]
        .message
        .contains("ignored for Kinesis flows"));
    assert!(plan.not_supported.is_empty());

    let plan = ok(&firehose(r#""partitionKeyOption": "DETERMINISTIC""#));
    assert_eq!(keys(&plan.warnings), ["flows[0].partitionKeyOption"]);

    // deliveryStream wins, as in Java.
    let plan = ok(&firehose(r#""kinesisStream": "k""#));
    assert_eq!(only_flow(&plan).id, "fh:d:/tmp/app.log*");
    assert_eq!(keys(&plan.warnings), ["flows[0].kinesisStream"]);
    assert!(
        plan.warnings[0].message.contains("kinesisStream")
            || plan.warnings[0].message.contains("Firehose")
    );
}

#[test]
fn the_java_release_sample_parses() {
    let sample = r#"{
      "cloudwatch.emitMetrics": true,
      "kinesis.endpoint": "",
      "firehose.endpoint": "",
      "flows": [
        { "filePattern": "/tmp/app.log*", "kinesisStream": "yourkinesisstream", "partitionKeyOption": "RANDOM" },
        { "filePattern": "/tmp/app.log*", "deliveryStream": "yourdeliverystream" }
      ]
    }"#;
    let plan = ok(sample);
    let ids: Vec<&str> = plan.flows.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "kinesis:yourkinesisstream:/tmp/app.log*",
            "fh:yourdeliverystream:/tmp/app.log*"
        ]
    );
    assert_eq!(plan.aws.kinesis_endpoint, None);
    assert_eq!(plan.aws.firehose_endpoint, None);
    assert!(plan.cloudwatch.emit_metrics);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert!(plan.not_supported.is_empty(), "{:?}", plan.not_supported);
}

#[test]
fn flows_of_agent_d_follow_the_main_file_in_the_given_order() {
    let main = kinesis("");
    let a = r#"{"flows": [{"filePattern": "/tmp/a.log", "kinesisStream": "s"}, {"filePattern": "/tmp/b.log", "kinesisStream": "s"}]}"#;
    let b = r#"{"flows": [{"filePattern": "/tmp/c.log", "deliveryStream": "d"}]}"#;
    let plan = parse_with(&main, &[(EXTRA_A, a), (EXTRA_B, b)]).expect("valid");
    let flows: Vec<(&str, &Path, usize)> = plan
        .flows
        .iter()
        .map(|f| (f.id.as_str(), f.source.as_path(), f.index))
        .collect();
    assert_eq!(
        flows,
        [
            ("kinesis:s:/tmp/app.log*", Path::new(MAIN), 0),
            ("kinesis:s:/tmp/a.log", Path::new(EXTRA_A), 0),
            ("kinesis:s:/tmp/b.log", Path::new(EXTRA_A), 1),
            ("fh:d:/tmp/c.log", Path::new(EXTRA_B), 0),
        ]
    );
    assert_eq!(
        plan.sources,
        [
            PathBuf::from(MAIN),
            PathBuf::from(EXTRA_A),
            PathBuf::from(EXTRA_B)
        ]
    );
}

#[test]
fn agent_d_alone_may_supply_the_flows() {
    let plan = parse_with(
        r#"{"cloudwatch.emitMetrics": false}"#,
        &[(EXTRA_A, &firehose(""))],
    )
    .expect("valid");
    assert_eq!(only_flow(&plan).source, PathBuf::from(EXTRA_A));
    assert!(!plan.cloudwatch.emit_metrics);

    let err =
        parse_with("{}", &[(EXTRA_A, "{}"), (EXTRA_B, r#"{"flows": []}"#)]).expect_err("no flows");
    assert_eq!(err.file, Path::new(MAIN));
    assert_eq!(
        err.message,
        "There are no flows configured in configuration file."
    );
}

#[test]
fn only_flows_are_read_from_agent_d() {
    let extra = r#"{"cloudwatch.emitMetrics": false, "flows": [{"filePattern": "/tmp/a.log", "kinesisStream": "s"}]}"#;
    let plan = parse_with(&kinesis(""), &[(EXTRA_A, extra)]).expect("valid");
    assert!(plan.cloudwatch.emit_metrics);
    assert_eq!(plan.warnings.len(), 1);
    assert_eq!(plan.warnings[0].file, Path::new(EXTRA_A));
    assert_eq!(plan.warnings[0].key, "cloudwatch.emitMetrics");
    assert!(plan.warnings[0]
        .message
        .contains("only `flows` is read from files in agent.d"));
}

#[test]
fn errors_in_agent_d_name_that_file() {
    let main = kinesis("");
    let cases = [
        (
            r#"{"flows": [{"filePattern": "/tmp/a.log", "kinesisStream": "s"}, {"filePattern": "/tmp/b.log", "kinesisStream": "s", "maxBufferAgeMillis": 1}]}"#,
            Some("flows[1].maxBufferAgeMillis"),
            "value 1 is outside of valid range [1000..900000]",
        ),
        // Java skips an agent.d file it cannot parse; we refuse (its flows would be lost).
        ("{ not json", None, "invalid JSON at line 1"),
        ("[]", None, "expected a JSON object at the top level"),
        (r#"{"flows": "x"}"#, Some("flows"), "expected a list"),
        // Duplicates across files: reported at the second one.
        (
            r#"{"flows": [{"filePattern": "/tmp/app.log*", "kinesisStream": "s"}]}"#,
            Some("flows[0]"),
            "Duplicate flow: kinesis:s:/tmp/app.log*",
        ),
    ];
    for (extra, key, message) in cases {
        let err = parse_with(&main, &[(EXTRA_A, extra)]).expect_err(extra);
        assert_eq!(err.file, Path::new(EXTRA_A), "{extra}");
        assert_eq!(err.key.as_deref(), key, "{extra}");
        assert!(err.message.contains(message), "{extra}: {err}");
    }
}

#[test]
fn load_reads_agent_d_sorted_by_name_and_skips_backups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let main = dir.path().join("agent.json");
    let flows_dir = dir.path().join("agent.d");
    std::fs::create_dir(&flows_dir).expect("agent.d");
    std::fs::create_dir(flows_dir.join("subdir")).expect("subdir");
    std::fs::write(&main, kinesis("")).expect("main");
    let flow = |pattern: &str| {
        format!(r#"{{"flows": [{{"filePattern": "{pattern}", "kinesisStream": "s"}}]}}"#)
    };
    std::fs::write(flows_dir.join("20-b.json"), flow("/tmp/b.log")).expect("b");
    std::fs::write(flows_dir.join("10-a.json"), flow("/tmp/a.log")).expect("a");
    let backups = [
        "10-a.json~",
        ".10-a.json.swp",
        "10-a.json.bak",
        "10-a.json.swp",
        "x.rpmnew",
        "x.rpmsave",
        "x.dpkg-old",
        "x.dpkg-new",
        "x.dpkg-dist",
    ];
    for name in backups {
        // Not JSON: reading any of them would fail the load.
        std::fs::write(flows_dir.join(name), "not json").expect("backup");
    }

    let plan = load(&main, Some(&flows_dir), &env(2)).expect("valid");
    let ids: Vec<&str> = plan.flows.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "kinesis:s:/tmp/app.log*",
            "kinesis:s:/tmp/a.log",
            "kinesis:s:/tmp/b.log"
        ]
    );
    assert_eq!(
        plan.sources,
        [
            main.clone(),
            flows_dir.join("10-a.json"),
            flows_dir.join("20-b.json")
        ]
    );
    assert_eq!(plan.warnings.len(), backups.len());
    for warning in &plan.warnings {
        assert_eq!(warning.key, "");
        assert_eq!(warning.message, "skipped: editor or package-manager backup");
        let name = warning
            .file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert!(backups.contains(&name.as_str()), "{name}");
    }
}

#[test]
fn load_reports_the_file_it_could_not_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let main = dir.path().join("agent.json");
    let err = load(&main, None, &env(2)).expect_err("missing");
    assert_eq!(err.file, main);
    assert!(
        err.message.contains("cannot read the configuration file"),
        "{err}"
    );
    assert!(err.message.contains("No such file or directory"), "{err}");

    std::fs::write(&main, firehose("")).expect("main");
    let plan =
        load(&main, Some(&dir.path().join("absent.d")), &env(2)).expect("absent agent.d is fine");
    assert_eq!(plan.flows.len(), 1);
    assert_eq!(
        load(&main, None, &env(2)).expect("no agent.d").flows.len(),
        1
    );

    let flows_dir = dir.path().join("agent.d");
    std::fs::create_dir(&flows_dir).expect("agent.d");
    let bad = flows_dir.join("50-bad.json");
    std::fs::write(
        &bad,
        r#"{"flows": [{"filePattern": "app.log", "kinesisStream": "s"}]}"#,
    )
    .expect("bad");
    let err = load(&main, Some(&flows_dir), &env(2)).expect_err("bad flow");
    assert_eq!(err.file, bad);
    assert_eq!(err.key.as_deref(), Some("flows[0].filePattern"));
}

#[test]
fn every_processing_option_when_valid() {
    let plan = ok(&options(
        r#"{"optionName": "SINGLELINE"},
        {"optionName": "SINGLELINE", "parseOptions": ["NO_TRIM", "ESCAPE_NEW_LINE"]},
        {"optionName": "CSVTOJSON", "customFieldNames": ["a", 2], "delimiter": "\\t", "jsonFormat": "PRETTYPRINT"},
        {"optionName": "CSVTOJSON", "customFieldNames": ["a"]},
        {"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"},
        {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "customFieldNames": ["a", "b", "c", "d", "e"]},
        {"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG", "matchPattern": "^([\\d.]+) (\\S+)",
         "customFieldNames": ["ip", "ident"], "jsonFormat": "COMPACT"},
        {"optionName": "ADDMETADATA", "metadata": {"k": "v", "n": [1]}, "timestamp": "true"},
        {"optionName": "ADDMETADATA", "timestamp": true, "jsonFormat": "PRETTYPRINT"},
        {"optionName": "ADDMETADATA", "metadata": "plain"},
        {"optionName": "ADDEC2METADATA", "logFormat": "RFC3339SYSLOG"},
        {"optionName": "ADDEC2METADATA", "logFormat": "SYSLOG", "metadataTTL": "60", "jsonFormat": "PRETTYPRINT"},
        {"optionName": "ADDBRACKETS"}"#,
    ));
    let expected = vec![
        ProcessingOption::SingleLine {
            no_trim: false,
            escape_new_line: false,
        },
        ProcessingOption::SingleLine {
            no_trim: true,
            escape_new_line: true,
        },
        ProcessingOption::CsvToJson {
            field_names: vec!["a".into(), "2".into()],
            delimiter: "\\t".into(),
            json_format: JsonFormat::PrettyPrint,
        },
        ProcessingOption::CsvToJson {
            field_names: vec!["a".into()],
            delimiter: ",".into(),
            json_format: JsonFormat::Compact,
        },
        ProcessingOption::LogToJson {
            log_format: LogFormat::CommonApacheLog,
            match_pattern: None,
            field_names: None,
            json_format: JsonFormat::Compact,
        },
        ProcessingOption::LogToJson {
            log_format: LogFormat::Syslog,
            match_pattern: None,
            field_names: Some(vec![
                "a".into(),
                "b".into(),
                "c".into(),
                "d".into(),
                "e".into(),
            ]),
            json_format: JsonFormat::Compact,
        },
        ProcessingOption::LogToJson {
            log_format: LogFormat::CommonApacheLog,
            match_pattern: Some(r"^([\d.]+) (\S+)".into()),
            field_names: Some(vec!["ip".into(), "ident".into()]),
            json_format: JsonFormat::Compact,
        },
        ProcessingOption::AddMetadata {
            metadata: json!({"k": "v", "n": [1]}),
            timestamp: true,
            json_format: JsonFormat::Compact,
        },
        ProcessingOption::AddMetadata {
            metadata: json!({}),
            timestamp: true,
            json_format: JsonFormat::PrettyPrint,
        },
        ProcessingOption::AddMetadata {
            metadata: json!("plain"),
            timestamp: false,
            json_format: JsonFormat::Compact,
        },
        ProcessingOption::AddEc2Metadata {
            metadata_ttl: Duration::from_secs(3600),
            json_format: JsonFormat::Compact,
        },
        ProcessingOption::AddEc2Metadata {
            metadata_ttl: Duration::from_secs(60),
            json_format: JsonFormat::PrettyPrint,
        },
        ProcessingOption::AddBrackets,
    ];
    assert_eq!(only_flow(&plan).processing, expected);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert!(plan.not_supported.is_empty(), "{:?}", plan.not_supported);
}

#[test]
fn custom_field_names_without_match_pattern_rename_the_default_fields() {
    let formats = [
        ("COMMONAPACHELOG", 7),
        ("COMBINEDAPACHELOG", 9),
        ("APACHEERRORLOG", 7),
        ("SYSLOG", 5),
        ("RFC3339SYSLOG", 5),
    ];
    for (format, count) in formats {
        for option in ["LOGTOJSON", "ADDEC2METADATA"] {
            let names = |n: usize| {
                (0..n)
                    .map(|i| format!(r#""f{i}""#))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let item = |n: usize| {
                options(&format!(
                    r#"{{"optionName": "{option}", "logFormat": "{format}", "customFieldNames": [{}]}}"#,
                    names(n)
                ))
            };
            assert!(parse(&item(count)).is_ok(), "{option} {format} {count}");
            for wrong in [count - 1, count + 1] {
                let err = parse(&item(wrong)).expect_err(format);
                assert!(
                    err.message.starts_with(&format!("expected {count} names")),
                    "{err}"
                );
            }
        }
    }
}
