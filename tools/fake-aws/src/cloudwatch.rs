//! CloudWatch PutMetricData in the protocol aws-sdk-cloudwatch >= 1.100 speaks: Smithy RPC v2
//! CBOR, `POST /service/GraniteServiceVersion20100801/operation/PutMetricData`, bodies of 10 KiB
//! or more gzipped (`Content-Encoding: gzip`). Decodes the request into JSON datums for
//! `GET /__control/metrics`; the answer is an empty CBOR map.

use std::io::Read as _;

use base64::Engine as _;
use ciborium::Value as Cbor;
use serde_json::{Map, Value as Json};

use crate::error::ApiError;

/// The path prefix of every CloudWatch operation.
pub const PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";
pub const PUT_METRIC_DATA: &str = "PutMetricData";
/// The success body: an empty CBOR map.
pub const EMPTY_MAP: &[u8] = &[0xA0];
/// PutMetricData takes at most 1,000 datums per call (CloudWatch quota); a request body is at
/// most 1 MB, so 16 MiB after gunzip is far beyond any valid request.
pub const MAX_DATUMS: usize = 1000;
pub const MAX_INFLATED_BYTES: u64 = 16 * 1024 * 1024;

/// Gunzips `body` if `gzipped`, decodes it and returns one JSON object per datum, each with the
/// request's `Namespace` added and CBOR timestamps as epoch seconds.
pub fn parse_put_metric_data(body: &[u8], gzipped: bool) -> Result<Vec<Json>, ApiError> {
    let inflated;
    let body = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_INFLATED_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::serialization(format!("bad gzip body: {e}")))?;
        if out.len() as u64 > MAX_INFLATED_BYTES {
            return Err(ApiError::serialization("gzip body inflates past 16 MiB"));
        }
        inflated = out;
        &inflated[..]
    } else {
        body
    };
    let value: Cbor = ciborium::from_reader(body)
        .map_err(|e| ApiError::serialization(format!("bad CBOR body: {e}")))?;
    let fields = value
        .as_map()
        .ok_or_else(|| ApiError::serialization("the body is not a CBOR map"))?;
    let namespace = field(fields, "Namespace")
        .and_then(Cbor::as_text)
        .filter(|n| !n.is_empty() && n.len() <= 255)
        .ok_or_else(|| ApiError::validation("Namespace must be a string of 1 to 255 characters"))?;
    let data = field(fields, "MetricData")
        .and_then(Cbor::as_array)
        .ok_or_else(|| ApiError::validation("MetricData must be a list"))?;
    if data.len() > MAX_DATUMS {
        return Err(ApiError::validation(format!(
            "MetricData has {} datums; at most {MAX_DATUMS} are allowed",
            data.len()
        )));
    }
    let mut datums = Vec::with_capacity(data.len());
    for (i, datum) in data.iter().enumerate() {
        let map = datum
            .as_map()
            .ok_or_else(|| ApiError::validation(format!("MetricData[{i}] is not a map")))?;
        if field(map, "MetricName").and_then(Cbor::as_text).is_none() {
            return Err(ApiError::validation(format!(
                "MetricData[{i}].MetricName must be a string"
            )));
        }
        let mut object = Map::new();
        object.insert("Namespace".into(), Json::String(namespace.to_string()));
        for (key, value) in map {
            object.insert(key_text(key), to_json(value));
        }
        datums.push(Json::Object(object));
    }
    Ok(datums)
}

fn field<'a>(map: &'a [(Cbor, Cbor)], name: &str) -> Option<&'a Cbor> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
}

fn key_text(key: &Cbor) -> String {
    match key {
        Cbor::Text(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

/// CBOR to JSON: tags (e.g. tag 1, epoch time) are dropped for their content, byte strings
/// become base64, floats that JSON cannot hold (NaN, infinities) become null.
fn to_json(value: &Cbor) -> Json {
    match value {
        Cbor::Integer(i) => {
            let n = i128::from(*i);
            if let Ok(v) = i64::try_from(n) {
                Json::from(v)
            } else if let Ok(v) = u64::try_from(n) {
                Json::from(v)
            } else {
                Json::String(n.to_string())
            }
        }
        Cbor::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Cbor::Text(t) => Json::String(t.clone()),
        Cbor::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Null => Json::Null,
        Cbor::Tag(_, inner) => to_json(inner),
        Cbor::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Cbor::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (key_text(k), to_json(v)))
                .collect(),
        ),
        // Undefined and any future variant.
        _ => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn text(s: &str) -> Cbor {
        Cbor::Text(s.into())
    }

    fn request(datums: usize) -> Vec<u8> {
        let datum = |i: usize| {
            Cbor::Map(vec![
                (text("MetricName"), text("BytesSent")),
                (
                    text("Dimensions"),
                    Cbor::Array(vec![Cbor::Map(vec![
                        (text("Name"), text("Destination")),
                        (text("Value"), text("Stream:s")),
                    ])]),
                ),
                (text("Value"), Cbor::Float(i as f64)),
                (text("Unit"), text("Bytes")),
                (
                    text("Timestamp"),
                    Cbor::Tag(1, Box::new(Cbor::Float(1_700_000_000.5))),
                ),
                (
                    text("StatisticValues"),
                    Cbor::Map(vec![
                        (text("SampleCount"), Cbor::Float(2.0)),
                        (text("Sum"), Cbor::Float(3.0)),
                        (text("Minimum"), Cbor::Float(1.0)),
                        (text("Maximum"), Cbor::Float(2.0)),
                    ]),
                ),
            ])
        };
        let body = Cbor::Map(vec![
            (text("Namespace"), text("KinesisAgent")),
            (
                text("MetricData"),
                Cbor::Array((0..datums).map(datum).collect()),
            ),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&body, &mut out).unwrap();
        out
    }

    #[test]
    fn decodes_datums() {
        let datums = parse_put_metric_data(&request(2), false).unwrap();
        assert_eq!(datums.len(), 2);
        let d = &datums[1];
        assert_eq!(d["Namespace"], "KinesisAgent");
        assert_eq!(d["MetricName"], "BytesSent");
        assert_eq!(d["Value"], 1.0);
        assert_eq!(d["Unit"], "Bytes");
        assert_eq!(d["Timestamp"], 1_700_000_000.5);
        assert_eq!(d["Dimensions"][0]["Value"], "Stream:s");
        assert_eq!(d["StatisticValues"]["SampleCount"], 2.0);
    }

    #[test]
    fn gunzips_bodies() {
        let plain = request(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let zipped = gz.finish().unwrap();
        assert!(zipped.len() < plain.len());
        assert_eq!(parse_put_metric_data(&zipped, true).unwrap().len(), 1000);
        let err = parse_put_metric_data(&plain, true).unwrap_err();
        assert_eq!(err.code, "SerializationException");
    }

    #[test]
    fn rejects_bad_requests_without_panicking() {
        assert_eq!(
            parse_put_metric_data(&request(1001), false)
                .unwrap_err()
                .status,
            400
        );
        for bad in [&[][..], &[0xA0], &[0xFF, 0x00], &[0x80], b"{\"json\":1}"] {
            assert_eq!(parse_put_metric_data(bad, false).unwrap_err().status, 400);
        }
        // A datum without MetricName.
        let body = Cbor::Map(vec![
            (text("Namespace"), text("N")),
            (text("MetricData"), Cbor::Array(vec![Cbor::Map(vec![])])),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&body, &mut out).unwrap();
        assert_eq!(
            parse_put_metric_data(&out, false).unwrap_err().code,
            "ValidationException"
        );
    }
}
