//! De-aggregation of KPL aggregated records, written from the published format
//! (`amazon-kinesis-producer/aggregation-format.md`), not from the agent's encoder: the 4 magic
//! bytes `F3 89 9A C2`, a protobuf `AggregatedRecord` read field by field from the wire format,
//! then the MD5 of the protobuf bytes, checked. A record without the magic is a plain record.

use md5::{Digest, Md5};

const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// One user record: its partition key and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// The user records of one Kinesis record (itself, when it is not aggregated).
pub fn deaggregate(partition_key: &str, record: &[u8]) -> Result<Vec<UserRecord>, String> {
    if record.len() < MAGIC.len() + 16 || record[..4] != MAGIC {
        return Ok(vec![UserRecord {
            partition_key: partition_key.to_string(),
            data: record.to_vec(),
        }]);
    }
    let body = &record[4..record.len() - 16];
    let digest = Md5::digest(body);
    if digest[..] != record[record.len() - 16..] {
        return Err("the MD5 at the end does not match the protobuf bytes".into());
    }
    let mut keys = Vec::new();
    let mut raw_records = Vec::new();
    for field in fields(body)? {
        match field {
            (1, Value::Bytes(k)) => {
                keys.push(String::from_utf8(k.to_vec()).map_err(|e| e.to_string())?)
            }
            (2, Value::Bytes(_)) => {} // explicit hash keys: not used here
            (3, Value::Bytes(r)) => raw_records.push(r),
            (n, _) => return Err(format!("unexpected field {n} in AggregatedRecord")),
        }
    }
    let mut out = Vec::new();
    for raw in raw_records {
        let mut key_index = None;
        let mut data = None;
        for field in fields(raw)? {
            match field {
                (1, Value::Varint(i)) => key_index = Some(i as usize),
                (2, Value::Varint(_)) | (4, Value::Bytes(_)) => {}
                (3, Value::Bytes(d)) => data = Some(d.to_vec()),
                (n, _) => return Err(format!("unexpected field {n} in Record")),
            }
        }
        let key_index = key_index.ok_or("a Record without partition_key_index")?;
        out.push(UserRecord {
            partition_key: keys
                .get(key_index)
                .cloned()
                .ok_or_else(|| format!("partition key index {key_index} out of the table"))?,
            data: data.ok_or("a Record without data")?,
        });
    }
    Ok(out)
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The (field number, value) pairs of a protobuf message.
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Value<'_>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let value = match tag & 7 {
            0 => Value::Varint(varint(&mut buf)?),
            2 => {
                let len = varint(&mut buf)? as usize;
                if len > buf.len() {
                    return Err("a length past the end".into());
                }
                let (v, rest) = buf.split_at(len);
                buf = rest;
                Value::Bytes(v)
            }
            t => return Err(format!("wire type {t} not in the format")),
        };
        out.push((tag >> 3, value));
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or("a varint past the end")?;
        *buf = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("a varint longer than 10 bytes".into())
}

/// The user records' data of `records` (partition key, data), de-aggregated by the AWS
/// deaggregation module for Python (`aws_kinesis_agg`, installed by scripts/setup-emulators),
/// as a Lambda function reading the stream would.
pub fn deaggregate_with_aws_module(records: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    aws_module_user_records(records)
        .into_iter()
        .map(|u| u.data)
        .collect()
}

/// One user record as the AWS deaggregation module gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsUserRecord {
    /// The Kinesis record (index into the records given) it came from.
    pub record: usize,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// The user records of `records` (partition key, data), de-aggregated by the AWS deaggregation
/// module for Python, each with the Kinesis record it came from and its partition key.
pub fn aws_module_user_records(records: &[(String, Vec<u8>)]) -> Vec<AwsUserRecord> {
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let input: Vec<serde_json::Value> = records
        .iter()
        .map(|(key, data)| serde_json::json!([key, hex(data)]))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("records.json");
    std::fs::write(&path, serde_json::Value::Array(input).to_string()).expect("write");
    // The sequence number carries the record's index through to each of its user records.
    let script = r#"
import base64, json, sys
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
records = [{"kinesis": {"kinesisSchemaVersion": "1.0", "sequenceNumber": str(i),
                        "approximateArrivalTimestamp": 0, "partitionKey": key,
                        "data": base64.b64encode(bytes.fromhex(data)).decode()}}
           for i, (key, data) in enumerate(json.load(open(sys.argv[1])))]
for r in iter_deaggregate_records(records):
    k = r["kinesis"]
    print(json.dumps([int(k["sequenceNumber"]), k["partitionKey"],
                      base64.b64decode(k["data"]).hex()]))
"#;
    let out = std::process::Command::new(super::venv_python())
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "aws_kinesis_agg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let h = v[2].as_str().expect("hex data");
            AwsUserRecord {
                record: v[0].as_u64().expect("record index") as usize,
                partition_key: v[1].as_str().expect("partition key").to_string(),
                data: (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
                    .collect(),
            }
        })
        .collect()
}
