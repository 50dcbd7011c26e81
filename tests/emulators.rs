//! Smoke test of the emulator harness (tests/support): kinesalite + moto start on loopback,
//! records put through boto3 come back byte for byte, and the servers are gone after drop.
//! Needs `scripts/setup-emulators` (run by `scripts/test`).

mod support;

use support::{base64_decode, base64_encode, Emulators};

#[test]
fn emulators_round_trip_kinesis_and_firehose() {
    let started = std::time::Instant::now();
    let emu = Emulators::start();
    eprintln!(
        "emulators ready in {:?}: kinesis {} moto {}",
        started.elapsed(),
        emu.kinesis_endpoint,
        emu.moto_endpoint
    );
    assert!(emu.kinesis_endpoint.starts_with("http://127.0.0.1:"));
    assert!(emu.moto_endpoint.starts_with("http://127.0.0.1:"));
    let (kinesalite_pid, moto_pid) = emu.pids();

    // Kinesis (kinesalite): 3 records, one of them binary, over 2 shards.
    let records: [&[u8]; 3] = [b"first line\n", b"second line\n", &[0, 1, 2, 0xff, b'\n']];
    emu.create_stream("smoke-stream", 2);
    emu.put_records("smoke-stream", &records);
    let got = emu.kinesis_records("smoke-stream");
    assert_eq!(got.len(), 3, "records: {got:?}\n{}", emu.logs());
    // Read-back is per shard; restore put order through the partition keys pk-0..pk-2.
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| a.partition_key.cmp(&b.partition_key));
    for (i, (rec, want)) in got_sorted.iter().zip(records).enumerate() {
        assert_eq!(rec.partition_key, format!("pk-{i}"));
        assert_eq!(rec.data, want, "record {i}");
        assert_eq!(rec.sequence_number.len(), 56, "kinesalite sequence number");
        assert!(rec.shard_id.starts_with("shardId-"));
    }

    // Firehose (moto): one PutRecordBatch of 3 records = one S3 object with the bytes
    // concatenated as they are.
    emu.create_delivery_stream("smoke-delivery", "smoke-bucket", "logs/");
    emu.put_record_batch("smoke-delivery", &records);
    let objects = emu.s3_objects("smoke-bucket", "logs/");
    assert_eq!(objects.len(), 1, "objects: {objects:?}\n{}", emu.logs());
    let (key, body) = &objects[0];
    assert!(
        key.starts_with("logs/") && key.contains("/smoke-delivery-1-"),
        "{key}"
    );
    assert_eq!(body, &records.concat());

    // Nothing outside the prefix; after a reset the same names can be created again.
    assert!(emu.s3_objects("smoke-bucket", "other/").is_empty());
    emu.reset_moto();
    emu.create_delivery_stream("smoke-delivery", "smoke-bucket", "logs/");
    assert!(emu.s3_objects("smoke-bucket", "").is_empty());

    drop(emu);
    for pid in [kinesalite_pid, moto_pid] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "emulator pid {pid} still exists after drop"
        );
    }
    eprintln!("smoke test done in {:?}", started.elapsed());
}

#[test]
fn aws_test_env_is_static_and_offline() {
    let env: std::collections::HashMap<_, _> = support::aws_test_env().into_iter().collect();
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "test");
    assert_eq!(env["AWS_SECRET_ACCESS_KEY"], "test");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_EC2_METADATA_DISABLED"], "true");
    for key in ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"] {
        let meta = std::fs::metadata(&env[key]).expect(key);
        assert!(
            meta.is_file() && meta.len() == 0,
            "{key} must be an empty file"
        );
    }
}

#[test]
fn base64_helpers_match_python() {
    // Values from Python's base64.b64encode.
    let cases: [(&[u8], &str); 6] = [
        (b"", ""),
        (b"a", "YQ=="),
        (b"ab", "YWI="),
        (b"abc", "YWJj"),
        (&[0, 1, 2, 0xff], "AAEC/w=="),
        (b"c d\n", "YyBkCg=="),
    ];
    for (raw, text) in cases {
        assert_eq!(base64_encode(raw), text);
        assert_eq!(base64_decode(text), raw);
    }
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(base64_decode(&base64_encode(&all)), all);
}
