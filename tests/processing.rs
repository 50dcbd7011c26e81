//! Records as the Java agent builds them, through the real binary: LOGTOJSON, multi-line,
//! headers with CSVTOJSON, ADDEC2METADATA against a fake metadata service on loopback.

mod support;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::agent::{eventually, run_to_exit, Agent};
use support::{aws_test_env, Emulators};

const WAIT: Duration = Duration::from_secs(90);

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open")
        .write_all(text.as_bytes())
        .expect("write");
}

fn kinesis_data(emu: &Emulators, stream: &str) -> Vec<String> {
    emu.kinesis_records(stream)
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect()
}

#[test]
fn logtojson_combined_apache_log_delivers_json_records_to_firehose() {
    let emu = Emulators::shared();
    emu.create_delivery_stream("apache-delivery", "apache-bucket", "");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let config = format!(
        r#"{{ "firehose.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "deliveryStream": "apache-delivery", "maxBufferAgeMillis": 1000,
               "dataProcessingOptions": [ {{ "optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG" }} ] }} ] }}"#,
        emu.moto_endpoint,
        log.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    append(
        &log,
        concat!(
            "123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] \"GET /java/javaResources.html HTTP/1.0\" 200 10450 \"-\" \"Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)\"\n",
            "not an access log line\n",
            "10.0.0.1 frank alice [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"curl/8.0\"\n",
        ),
    );
    let body = || -> String {
        emu.s3_objects("apache-bucket", "")
            .into_iter()
            .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
            .collect()
    };
    assert!(
        eventually(WAIT, || body().lines().count() >= 2),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let mut lines: Vec<String> = body().lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            r#"{"host":"10.0.0.1","ident":"frank","authuser":"alice","datetime":"10/Oct/2000:13:55:36 -0700","request":"GET /apache_pb.gif HTTP/1.0","response":"200","bytes":"2326","referer":"http://www.example.com/start.html","agent":"curl/8.0"}"#,
            r#"{"host":"123.45.67.89","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450","referer":null,"agent":"Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)"}"#,
        ]
    );
    let log = agent.log_text();
    assert!(
        log.contains("transformed 2 records, skipped 1 records"),
        "the unmatched line is skipped and counted:\n{log}"
    );
}

#[test]
fn a_multi_line_pattern_over_java_stack_traces_delivers_one_record_per_exception() {
    let emu = Emulators::shared();
    emu.create_stream("trace-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    let config = format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "trace-stream", "maxBufferAgeMillis": 1000,
               "multiLineStartPattern": "\\d{{4}}-\\d{{2}}-\\d{{2}} " }} ] }}"#,
        emu.kinesis_endpoint,
        log.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let events = [
        "2026-11-26 10:00:00 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.A.run(A.java:10)\n\tat com.example.B.call(B.java:20)\nCaused by: java.io.IOException: disk\n\tat com.example.C.write(C.java:30)\n",
        "2026-11-26 10:00:01 INFO recovered\n",
        "2026-11-26 10:00:02 ERROR again\njava.lang.NullPointerException\n\tat com.example.D.go(D.java:40)\n",
    ];
    // The first event is written in two parts, the second part well after the first: the
    // Java agent would split it; here it stays one record.
    let (first, rest) = events[0].split_at(60);
    append(&log, first);
    std::thread::sleep(Duration::from_millis(300));
    append(&log, rest);
    append(&log, events[1]);
    append(&log, events[2]);
    assert!(
        eventually(WAIT, || kinesis_data(emu, "trace-stream").len() >= 3),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let mut got = kinesis_data(emu, "trace-stream");
    got.sort();
    let mut expected: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn header_lines_are_skipped_and_csv_becomes_json() {
    let emu = Emulators::shared();
    emu.create_stream("csv-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("data.csv");
    let config = format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "csv-stream", "maxBufferAgeMillis": 1000,
               "skipHeaderLines": 1,
               "dataProcessingOptions": [ {{ "optionName": "CSVTOJSON", "customFieldNames": ["id", "name", "city"] }} ] }} ] }}"#,
        emu.kinesis_endpoint,
        log.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    append(
        &log,
        "id,name,city\n1,Zoë,Zürich\n2,\"quoted\",back\\slash\n",
    );
    assert!(
        eventually(WAIT, || kinesis_data(emu, "csv-stream").len() >= 2),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let mut got = kinesis_data(emu, "csv-stream");
    got.sort();
    assert_eq!(
        got,
        vec![
            "{\"id\":\"1\",\"name\":\"Zoë\",\"city\":\"Zürich\"}\n".to_string(),
            "{\"id\":\"2\",\"name\":\"\\\"quoted\\\"\",\"city\":\"back\\\\slash\"}\n".to_string(),
        ]
    );
}

#[test]
fn addec2metadata_appends_instance_facts_from_the_metadata_service() {
    let emu = Emulators::shared();
    emu.create_stream("ec2-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.json");
    let imds = support::imds::start(&[
        (
            "/latest/dynamic/instance-identity/document",
            r#"{"privateIp":"10.1.2.3","availabilityZone":"eu-west-1a","instanceId":"i-0123456789abcdef0","instanceType":"t3.micro","accountId":"123456789012","imageId":"ami-12345678","region":"eu-west-1"}"#,
        ),
        ("/latest/meta-data/tags/instance", "Name\nTeam"),
        ("/latest/meta-data/tags/instance/Name", "web-1"),
        ("/latest/meta-data/tags/instance/Team", "logs"),
    ]);
    let config = format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "ec2-stream", "maxBufferAgeMillis": 1000,
               "dataProcessingOptions": [ {{ "optionName": "ADDEC2METADATA", "logFormat": "RFC3339SYSLOG" }} ] }} ] }}"#,
        emu.kinesis_endpoint,
        log.display()
    );
    let mut env = aws_test_env();
    env.retain(|(k, _)| k != "AWS_EC2_METADATA_DISABLED");
    env.push(("AWS_EC2_METADATA_DISABLED".into(), "false".into()));
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), imds));
    let mut agent = Agent::start(dir.path(), &config, &env);
    agent.wait_for_log("Agent: Startup completed", WAIT);
    std::thread::sleep(Duration::from_millis(500)); // the first metadata fetch
    append(&log, "{\"msg\":\"hello\"}\n");
    assert!(
        eventually(WAIT, || !kinesis_data(emu, "ec2-stream").is_empty()),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let got = kinesis_data(emu, "ec2-stream");
    let record: serde_json::Value = serde_json::from_str(got[0].trim_end()).expect("JSON record");
    assert_eq!(record["msg"], "hello");
    assert_eq!(record["instanceId"], "i-0123456789abcdef0");
    assert_eq!(record["privateIp"], "10.1.2.3");
    assert_eq!(record["amiId"], "ami-12345678");
    assert_eq!(
        record["tags"]["name"], "web-1",
        "tag keys lower-cased as in Java"
    );
    assert!(record["metadataTimestamp"].is_string());
}

#[test]
fn without_a_metadata_service_records_pass_unchanged_with_one_warning() {
    let emu = Emulators::shared();
    emu.create_stream("noec2-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.json");
    let config = format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "noec2-stream", "maxBufferAgeMillis": 1000,
               "dataProcessingOptions": [ {{ "optionName": "ADDEC2METADATA", "logFormat": "SYSLOG" }} ] }} ] }}"#,
        emu.kinesis_endpoint,
        log.display()
    );
    let mut agent = Agent::start(dir.path(), &config, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    append(&log, "{\"a\":1}\n{\"a\":2}\n");
    assert!(
        eventually(WAIT, || kinesis_data(emu, "noec2-stream").len() >= 2),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let mut got = kinesis_data(emu, "noec2-stream");
    got.sort();
    assert_eq!(
        got,
        vec!["{\"a\":1}\n".to_string(), "{\"a\":2}\n".to_string()]
    );
    assert_eq!(
        agent.log_text().matches("no metadata found").count(),
        2,
        "one from the source, one from the chain"
    );
}

#[test]
fn bad_converter_options_exit_1_naming_the_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = r#"{ "flows": [ { "filePattern": "/tmp/x/a.log", "kinesisStream": "s",
        "dataProcessingOptions": [ { "optionName": "LOGTOJSON", "logFormat": "NGINX" } ] } ] }"#;
    let out = run_to_exit(dir.path(), config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("flows[0].dataProcessingOptions[0].logFormat"),
        "{stderr}"
    );
    assert!(
        stderr.contains("COMMONAPACHELOG"),
        "lists the legal values: {stderr}"
    );
}
