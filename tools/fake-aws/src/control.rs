//! The control API under `/__control/` (no AWS route starts with it): set and read faults, reset,
//! create streams, and read back records, counters and CloudWatch datums. See the README for the
//! request and answer shapes.

use std::io::Write as _;

use base64::Engine as _;
use hyper::Method;
use serde::Deserialize;

use crate::batch::validate_name;
use crate::faults::Faults;
use crate::kinesis::sequence_number;
use crate::shards::shard_id;
use crate::store::Store;

/// Every control path starts with this.
pub const PREFIX: &str = "/__control/";

/// A control answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const JSON: &str = "application/json";

fn json(status: u16, body: Vec<u8>) -> Answer {
    Answer {
        status,
        content_type: JSON,
        body,
    }
}

fn error(status: u16, message: &str) -> Answer {
    json(
        status,
        serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default(),
    )
}

fn ok() -> Answer {
    json(200, b"{\"ok\":true}".to_vec())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    shards: Option<u32>,
}

/// Handles `method` on `/__control/<path>?<query>`; `store` is locked by the caller.
pub fn handle(
    store: &mut Store,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Answer {
    match (method.as_str(), path) {
        ("GET", "health") => ok(),
        ("GET", "faults") => json(200, serde_json::to_vec(&store.faults()).unwrap_or_default()),
        ("POST" | "PUT", "faults") => {
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                &b"{}"[..]
            } else {
                body
            };
            let faults: Faults = match serde_json::from_slice(body) {
                Ok(f) => f,
                Err(e) => return error(400, &format!("bad faults: {e}")),
            };
            if let Err(e) = faults.validate() {
                return error(400, &e);
            }
            store.set_faults(faults);
            json(200, serde_json::to_vec(&store.faults()).unwrap_or_default())
        }
        ("POST", "reset") => {
            store.reset();
            ok()
        }
        ("POST", "streams") => {
            let request: CreateRequest = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return error(400, &format!("bad streams request: {e}")),
            };
            let names: Vec<String> = request.name.into_iter().chain(request.names).collect();
            if names.is_empty() {
                return error(400, "give \"name\" or \"names\"");
            }
            if request.shards == Some(0) || request.shards.is_some_and(|s| s > 10_000) {
                return error(400, "shards must be in 1..=10000");
            }
            let mut created = serde_json::Map::new();
            for name in &names {
                if let Err(e) = validate_name(name, "name", 128) {
                    return error(400, &e.message);
                }
                let new = store.create(name, request.shards);
                created.insert(name.clone(), serde_json::Value::Bool(new));
            }
            json(
                200,
                serde_json::to_vec(&serde_json::json!({ "created": created })).unwrap_or_default(),
            )
        }
        ("GET", "records") => {
            let params = Query::parse(query.unwrap_or(""));
            let Some(name) = params.get("destination") else {
                return error(400, "missing ?destination=NAME");
            };
            let offset = match params.get("offset").map(|o| o.parse::<usize>()) {
                None => 0,
                Some(Ok(o)) => o,
                Some(Err(_)) => return error(400, "offset must be a number"),
            };
            let lines = params.get("format").as_deref() == Some("lines");
            let body = records_body(store, &name, offset, lines);
            Answer {
                status: 200,
                content_type: if lines { "application/x-ndjson" } else { JSON },
                body,
            }
        }
        ("GET", "stats") => json(200, store.stats_json()),
        ("GET", "metrics") => json(200, store.metrics_json()),
        _ => error(404, &format!("no control route {method} {PREFIX}{path}")),
    }
}

/// `[{"partition_key":..,"data_b64":..,"shard_id":..,"sequence_number":..,"arrival_us":..}, ...]`,
/// or the same objects one per line.
fn records_body(store: &Store, name: &str, offset: usize, lines: bool) -> Vec<u8> {
    let records = store.records(name, offset);
    let size: usize = records
        .iter()
        .map(|r| r.data.len() * 4 / 3 + r.partition_key.len() + 120)
        .sum();
    let mut out = Vec::with_capacity(size + 2);
    if !lines {
        out.push(b'[');
    }
    let engine = &base64::engine::general_purpose::STANDARD;
    for (i, r) in records.iter().enumerate() {
        if i > 0 && !lines {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"partition_key\":");
        let key = String::from_utf8_lossy(&r.partition_key);
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, key.as_ref());
        out.extend_from_slice(b",\"data_b64\":\"");
        out.extend_from_slice(engine.encode(&r.data).as_bytes());
        let _ = write!(
            out,
            "\",\"shard_id\":\"{}\",\"sequence_number\":\"{}\",\"arrival_us\":{}}}",
            shard_id(r.shard),
            sequence_number(r.sequence),
            r.arrival_us
        );
        if lines {
            out.push(b'\n');
        }
    }
    if !lines {
        out.push(b']');
    }
    out
}

/// A parsed query string (`a=1&b=x%20y`).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Settings;

    fn store() -> Store {
        Store::new(
            Settings {
                auto_create: false,
                default_shards: 1,
                keep_records: true,
                seed: 1,
            },
            Faults::default(),
            None,
        )
    }

    fn call(
        s: &mut Store,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let a = handle(s, &method, path, query, body.as_bytes());
        let v = serde_json::from_slice(&a.body).unwrap_or(serde_json::Value::Null);
        (a.status, v)
    }

    #[test]
    fn faults_are_replaced_and_validated() {
        let mut s = store();
        let (status, v) = call(
            &mut s,
            Method::POST,
            "faults",
            None,
            r#"{"fail_records":0.5}"#,
        );
        assert_eq!(status, 200);
        assert_eq!(v["fail_records"], 0.5);
        assert_eq!(v["seed"], 1);
        let (_, v) = call(&mut s, Method::POST, "faults", None, r#"{"delay_ms":3}"#);
        assert_eq!(v["fail_records"], 0.0, "a POST replaces the whole set");
        let (status, v) = call(
            &mut s,
            Method::POST,
            "faults",
            None,
            r#"{"throttle_calls":2}"#,
        );
        assert_eq!(status, 400);
        assert!(v["error"].as_str().unwrap().contains("throttle_calls"));
        let (status, _) = call(&mut s, Method::POST, "faults", None, r#"{"typo":1}"#);
        assert_eq!(status, 400);
        let (status, v) = call(&mut s, Method::GET, "faults", None, "");
        assert_eq!((status, v["delay_ms"].as_u64()), (200, Some(3)));
        let (_, v) = call(&mut s, Method::POST, "faults", None, "");
        assert_eq!(v["delay_ms"], 0);
    }

    #[test]
    fn streams_records_and_errors() {
        let mut s = store();
        let (status, v) = call(
            &mut s,
            Method::POST,
            "streams",
            None,
            r#"{"name":"a","shards":2}"#,
        );
        assert_eq!(status, 200);
        assert_eq!(v["created"]["a"], true);
        let (_, v) = call(
            &mut s,
            Method::POST,
            "streams",
            None,
            r#"{"names":["a","b"]}"#,
        );
        assert_eq!(v["created"], serde_json::json!({"a": false, "b": true}));
        assert_eq!(
            call(
                &mut s,
                Method::POST,
                "streams",
                None,
                r#"{"name":"bad name"}"#
            )
            .0,
            400
        );
        assert_eq!(call(&mut s, Method::POST, "streams", None, "{").0, 400);

        let mut b = crate::batch::BatchBuilder::new("a".into(), 2, 16);
        b.push("AAEC", "k\"1", None).unwrap();
        b.push("aGk=", "k2", None).unwrap();
        let batch = b.finish();
        s.put(crate::error::Service::Kinesis, "PutRecords", &batch, None)
            .unwrap();

        let (status, v) = call(&mut s, Method::GET, "records", Some("destination=a"), "");
        assert_eq!(status, 200);
        assert_eq!(v[0]["partition_key"], "k\"1");
        assert_eq!(v[0]["data_b64"], "AAEC");
        assert_eq!(v[1]["data_b64"], "aGk=");
        assert_eq!(v[1]["sequence_number"].as_str().unwrap().len(), 56);
        let (_, v) = call(
            &mut s,
            Method::GET,
            "records",
            Some("destination=a&offset=1"),
            "",
        );
        assert_eq!(v.as_array().unwrap().len(), 1);
        let lines = handle(
            &mut s,
            &Method::GET,
            "records",
            Some("destination=a&format=lines"),
            b"",
        );
        assert_eq!(String::from_utf8(lines.body).unwrap().lines().count(), 2);
        let (_, v) = call(&mut s, Method::GET, "records", Some("destination=nope"), "");
        assert_eq!(v, serde_json::json!([]));
        assert_eq!(call(&mut s, Method::GET, "records", None, "").0, 400);
        assert_eq!(
            call(
                &mut s,
                Method::GET,
                "records",
                Some("destination=a&offset=x"),
                ""
            )
            .0,
            400
        );

        let (_, v) = call(&mut s, Method::GET, "stats", None, "");
        assert_eq!(v["destinations"]["a"]["records_accepted"], 2);
        assert_eq!(call(&mut s, Method::POST, "reset", None, "").0, 200);
        let (_, v) = call(&mut s, Method::GET, "records", Some("destination=a"), "");
        assert_eq!(v, serde_json::json!([]));
        assert_eq!(
            call(&mut s, Method::GET, "metrics", None, "").1,
            serde_json::json!([])
        );
        assert_eq!(call(&mut s, Method::DELETE, "stats", None, "").0, 404);
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse("destination=a%2Db&x=1+2&bad=%zz&empty");
        assert_eq!(q.get("destination").as_deref(), Some("a-b"));
        assert_eq!(q.get("x").as_deref(), Some("1 2"));
        assert_eq!(q.get("bad").as_deref(), Some("%zz"));
        assert_eq!(q.get("empty").as_deref(), Some(""));
        assert_eq!(percent_decode("%4"), "%4");
    }
}
