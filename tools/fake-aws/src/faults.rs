//! Fault settings and the deterministic choices made from them.
//!
//! [`Faults`] is what `--fail-records` & co. and `POST /__control/faults` set (the JSON keys are
//! the field names). [`Rng`] is a seeded SplitMix64, so the same seed and the same sequence of
//! calls give the same faults. [`decide_call`] picks a whole-call fault, [`FailureSampler`] the
//! records of one batch that fail. Nothing here does IO or keeps records.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Service};

/// Per-shard write limits of Kinesis Data Streams (provisioned mode): 1,000 records and 1 MiB
/// (data plus partition key) per second per shard.
pub const SHARD_RECORDS_PER_SEC: u64 = 1_000;
pub const SHARD_BYTES_PER_SEC: u64 = 1024 * 1024;

/// Error codes a failed record may carry.
pub const PROVISIONED_THROUGHPUT_EXCEEDED: &str = "ProvisionedThroughputExceededException";
pub const INTERNAL_FAILURE: &str = "InternalFailure";
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailableException";

/// All fault settings. Fractions are 0..=1. A `POST /__control/faults` body replaces the whole
/// set: keys left out go back to "off".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fraction of the records of each PutRecords / PutRecordBatch batch that fail.
    pub fail_records: f64,
    /// Error code of those records: by default `ProvisionedThroughputExceededException` (Kinesis)
    /// and `ServiceUnavailableException` (Firehose); may be `InternalFailure` or either of those.
    pub fail_records_code: Option<String>,
    /// Fraction of calls throttled (Kinesis: 400 ProvisionedThroughputExceededException;
    /// Firehose: 503 ServiceUnavailableException).
    pub throttle_calls: f64,
    /// Fraction of calls answered 500 InternalFailure.
    pub error_500: f64,
    /// Fraction of calls answered 503 ServiceUnavailable.
    pub error_503: f64,
    /// Fraction of calls whose connection is closed without an answer.
    pub drop_connection: f64,
    /// Delay before every Kinesis / Firehose answer, in milliseconds.
    pub delay_ms: u64,
    /// Names answered ResourceNotFoundException (`true` or `"*"`: every name).
    pub not_found: NameSet,
    /// Names answered AccessDeniedException (`true` or `"*"`: every name).
    pub access_denied: NameSet,
    /// Per-shard rate limits for Kinesis PutRecords.
    pub shard_rate_limit: bool,
    pub shard_records_per_sec: u64,
    pub shard_bytes_per_sec: u64,
    /// Operations the call-level faults apply to (e.g. `["PutRecords"]`); default: all
    /// Kinesis and Firehose operations.
    pub operations: Option<Vec<String>>,
    /// Seed of the fault RNG; the RNG is re-seeded whenever faults are set and on reset.
    /// Default: the `--seed` given at start.
    pub seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            fail_records: 0.0,
            fail_records_code: None,
            throttle_calls: 0.0,
            error_500: 0.0,
            error_503: 0.0,
            drop_connection: 0.0,
            delay_ms: 0,
            not_found: NameSet::None,
            access_denied: NameSet::None,
            shard_rate_limit: false,
            shard_records_per_sec: SHARD_RECORDS_PER_SEC,
            shard_bytes_per_sec: SHARD_BYTES_PER_SEC,
            operations: None,
            seed: None,
        }
    }
}

impl Faults {
    /// Checks ranges and codes; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("fail_records", self.fail_records),
            ("throttle_calls", self.throttle_calls),
            ("error_500", self.error_500),
            ("error_503", self.error_503),
            ("drop_connection", self.drop_connection),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{key} must be a fraction in 0..=1, got {value}"));
            }
        }
        let call_sum = self.throttle_calls + self.error_500 + self.error_503 + self.drop_connection;
        if call_sum > 1.0 + 1e-9 {
            return Err(format!(
                "throttle_calls + error_500 + error_503 + drop_connection must be <= 1, got {call_sum}"
            ));
        }
        if let Some(code) = &self.fail_records_code {
            if record_code(code).is_none() {
                return Err(format!(
                    "fail_records_code must be one of {PROVISIONED_THROUGHPUT_EXCEEDED}, \
                     {INTERNAL_FAILURE}, {SERVICE_UNAVAILABLE}; got {code:?}"
                ));
            }
        }
        if self.shard_records_per_sec == 0 || self.shard_bytes_per_sec == 0 {
            return Err("shard_records_per_sec and shard_bytes_per_sec must be > 0".into());
        }
        Ok(())
    }

    /// Error code of records failed by `fail_records` for `service`.
    pub fn record_fault_code(&self, service: Service) -> &'static str {
        match self.fail_records_code.as_deref().and_then(record_code) {
            Some(code) => code,
            None => match service {
                Service::Kinesis => PROVISIONED_THROUGHPUT_EXCEEDED,
                Service::Firehose => SERVICE_UNAVAILABLE,
            },
        }
    }

    /// Whether the call-level faults (and the delay) apply to `operation`.
    pub fn applies_to(&self, operation: &str) -> bool {
        match &self.operations {
            None => true,
            Some(ops) => ops.iter().any(|o| o == operation),
        }
    }
}

fn record_code(code: &str) -> Option<&'static str> {
    [
        PROVISIONED_THROUGHPUT_EXCEEDED,
        INTERNAL_FAILURE,
        SERVICE_UNAVAILABLE,
    ]
    .into_iter()
    .find(|c| *c == code)
}

/// Which names a fault applies to. JSON: `false` / `true` / `"*"` / `"name"` / `["a", "b"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NameSet {
    #[default]
    None,
    All,
    Names(Vec<String>),
}

impl NameSet {
    pub fn contains(&self, name: &str) -> bool {
        match self {
            NameSet::None => false,
            NameSet::All => true,
            NameSet::Names(names) => names.iter().any(|n| n == name),
        }
    }

    /// From repeated CLI values, where `*` means every name.
    pub fn from_cli(values: &[String]) -> NameSet {
        if values.is_empty() {
            NameSet::None
        } else if values.iter().any(|v| v == "*") {
            NameSet::All
        } else {
            NameSet::Names(values.to_vec())
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum NameSetRepr {
    Flag(bool),
    One(String),
    Many(Vec<String>),
}

impl Serialize for NameSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NameSet::None => NameSetRepr::Flag(false),
            NameSet::All => NameSetRepr::Flag(true),
            NameSet::Names(names) => NameSetRepr::Many(names.clone()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for NameSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NameSet, D::Error> {
        Ok(match NameSetRepr::deserialize(d)? {
            NameSetRepr::Flag(false) => NameSet::None,
            NameSetRepr::Flag(true) => NameSet::All,
            NameSetRepr::One(name) if name == "*" => NameSet::All,
            NameSetRepr::One(name) => NameSet::Names(vec![name]),
            NameSetRepr::Many(names) => NameSet::from_cli(&names),
        })
    }
}

/// SplitMix64: tiny, fast, and the same on every platform for a given seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// What happens to a whole call before its records are looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFault {
    /// Close the connection without an answer.
    Drop,
    /// Answer with this error.
    Error(ApiError),
}

/// Picks the whole-call fault for one call, or `None`. Order: `access_denied`, `not_found`
/// (by name, no randomness), then one random draw split, in this order, into
/// `drop_connection`, `error_500`, `error_503` and `throttle_calls`. Exactly one number is drawn
/// per call the faults apply to, so the sequence depends only on the seed and the calls.
pub fn decide_call(
    faults: &Faults,
    rng: &mut Rng,
    service: Service,
    operation: &str,
    name: &str,
) -> Option<CallFault> {
    if !faults.applies_to(operation) {
        return None;
    }
    if faults.access_denied.contains(name) {
        return Some(CallFault::Error(ApiError::access_denied(
            service, operation, name,
        )));
    }
    if faults.not_found.contains(name) {
        return Some(CallFault::Error(ApiError::not_found(service, name)));
    }
    let draw = rng.next_f64();
    let mut edge = faults.drop_connection;
    if draw < edge {
        return Some(CallFault::Drop);
    }
    edge += faults.error_500;
    if draw < edge {
        return Some(CallFault::Error(ApiError::internal_failure()));
    }
    edge += faults.error_503;
    if draw < edge {
        return Some(CallFault::Error(ApiError::service_unavailable()));
    }
    edge += faults.throttle_calls;
    if draw < edge {
        return Some(CallFault::Error(ApiError::throttled(service, name)));
    }
    None
}

/// Chooses which of a batch's `n` records fail: `fraction * n` of them, the fractional part
/// rounded up or down at random (so single-record batches still fail at the given rate), spread
/// uniformly over the batch (selection sampling, Knuth's algorithm S). Yields one bool per record.
pub struct FailureSampler<'a> {
    rng: &'a mut Rng,
    remaining: usize,
    to_fail: usize,
}

impl<'a> FailureSampler<'a> {
    pub fn new(fraction: f64, n: usize, rng: &'a mut Rng) -> FailureSampler<'a> {
        let to_fail = if fraction <= 0.0 || n == 0 {
            0
        } else {
            let exact = fraction * n as f64;
            let whole = exact.floor();
            // Round 2.9999999999999996 (0.3 * 10) to 3 rather than drawing for it.
            let (whole, frac) = if exact - whole > 1.0 - 1e-9 {
                (whole + 1.0, 0.0)
            } else {
                (whole, exact - whole)
            };
            let extra = frac > 1e-9 && rng.next_f64() < frac;
            (whole as usize + usize::from(extra)).min(n)
        };
        FailureSampler {
            rng,
            remaining: n,
            to_fail,
        }
    }

    /// How many records this batch fails.
    pub fn count(&self) -> usize {
        self.to_fail
    }
}

impl Iterator for FailureSampler<'_> {
    type Item = bool;

    fn next(&mut self) -> Option<bool> {
        if self.remaining == 0 {
            return None;
        }
        let fail = if self.to_fail == 0 {
            false
        } else if self.to_fail == self.remaining {
            true
        } else {
            (self.rng.next_u64() % self.remaining as u64) < self.to_fail as u64
        };
        self.remaining -= 1;
        if fail {
            self.to_fail -= 1;
        }
        Some(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(json: &str) -> Faults {
        let f: Faults = serde_json::from_str(json).unwrap();
        f.validate().unwrap();
        f
    }

    #[test]
    fn rng_is_deterministic_and_uniform_enough() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(7);
        let b: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        let mut r = Rng::new(8);
        assert_ne!(a[0], r.next_u64());
        let mut r = Rng::new(1);
        let below: usize = (0..10_000).filter(|_| r.next_f64() < 0.25).count();
        assert!((2_300..2_700).contains(&below), "{below}");
    }

    #[test]
    fn sampler_fails_exactly_the_fraction_of_a_batch() {
        let mut rng = Rng::new(1);
        for n in [1usize, 10, 100, 500] {
            let picks: Vec<bool> = FailureSampler::new(0.3, n, &mut rng).collect();
            assert_eq!(picks.len(), n);
            if n >= 10 {
                assert_eq!(picks.iter().filter(|&&f| f).count(), n * 3 / 10, "n={n}");
            }
        }
        let all: Vec<bool> = FailureSampler::new(1.0, 7, &mut rng).collect();
        assert!(all.iter().all(|&f| f));
        let none: Vec<bool> = FailureSampler::new(0.0, 7, &mut rng).collect();
        assert!(none.iter().all(|&f| !f));
    }

    #[test]
    fn sampler_rounds_at_random_for_small_batches() {
        let mut rng = Rng::new(3);
        let failed: usize = (0..10_000)
            .map(|_| FailureSampler::new(0.3, 1, &mut rng).filter(|&f| f).count())
            .sum();
        assert!((2_800..3_200).contains(&failed), "{failed}");
    }

    #[test]
    fn sampler_is_deterministic_for_a_seed() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..20)
                .flat_map(|_| FailureSampler::new(0.3, 50, &mut rng).collect::<Vec<_>>())
                .collect::<Vec<bool>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn call_faults_split_one_draw_in_order() {
        let f = faults(
            r#"{"drop_connection":0.1,"error_500":0.1,"error_503":0.1,"throttle_calls":0.2}"#,
        );
        let mut rng = Rng::new(5);
        let mut counts = [0usize; 5];
        for _ in 0..20_000 {
            let i = match decide_call(&f, &mut rng, Service::Kinesis, "PutRecords", "s") {
                Some(CallFault::Drop) => 0,
                Some(CallFault::Error(e)) if e.status == 500 => 1,
                Some(CallFault::Error(e)) if e.status == 503 => 2,
                Some(CallFault::Error(e)) => {
                    assert_eq!(e.code, PROVISIONED_THROUGHPUT_EXCEEDED);
                    3
                }
                None => 4,
            };
            counts[i] += 1;
        }
        for (i, want) in [2_000, 2_000, 2_000, 4_000, 10_000].into_iter().enumerate() {
            let got = counts[i] as i64;
            assert!((got - want).abs() < want / 10, "{counts:?}");
        }
        // Same seed, same calls: same answers.
        let replay = |seed| {
            let mut rng = Rng::new(seed);
            (0..100)
                .map(|_| decide_call(&f, &mut rng, Service::Firehose, "PutRecordBatch", "d"))
                .collect::<Vec<_>>()
        };
        assert_eq!(replay(9), replay(9));
    }

    #[test]
    fn named_faults_and_operation_filter() {
        let f = faults(
            r#"{"not_found":["gone"],"access_denied":"locked","operations":["PutRecords"]}"#,
        );
        let mut rng = Rng::new(1);
        let nf = decide_call(&f, &mut rng, Service::Kinesis, "PutRecords", "gone");
        assert!(matches!(nf, Some(CallFault::Error(e)) if e.code == "ResourceNotFoundException"));
        let ad = decide_call(&f, &mut rng, Service::Kinesis, "PutRecords", "locked");
        assert!(matches!(ad, Some(CallFault::Error(e)) if e.code == "AccessDeniedException"));
        assert_eq!(
            decide_call(&f, &mut rng, Service::Kinesis, "PutRecords", "ok"),
            None
        );
        assert_eq!(
            decide_call(&f, &mut rng, Service::Kinesis, "ListShards", "gone"),
            None
        );
        let all = faults(r#"{"not_found":true}"#);
        assert!(decide_call(&all, &mut rng, Service::Kinesis, "ListShards", "any").is_some());
    }

    #[test]
    fn validation_names_the_key() {
        let bad: Faults = serde_json::from_str(r#"{"fail_records":1.5}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("fail_records"));
        let code: Faults = serde_json::from_str(r#"{"fail_records_code":"Nope"}"#).unwrap();
        assert!(code.validate().unwrap_err().contains("fail_records_code"));
        assert!(serde_json::from_str::<Faults>(r#"{"fail_record":0.1}"#).is_err());
        let sum: Faults =
            serde_json::from_str(r#"{"error_500":0.6,"throttle_calls":0.6}"#).unwrap();
        assert!(sum.validate().is_err());
    }

    #[test]
    fn record_codes_per_service() {
        let f = Faults::default();
        assert_eq!(
            f.record_fault_code(Service::Kinesis),
            PROVISIONED_THROUGHPUT_EXCEEDED
        );
        assert_eq!(f.record_fault_code(Service::Firehose), SERVICE_UNAVAILABLE);
        let f = faults(r#"{"fail_records_code":"InternalFailure"}"#);
        assert_eq!(f.record_fault_code(Service::Kinesis), INTERNAL_FAILURE);
        assert_eq!(f.record_fault_code(Service::Firehose), INTERNAL_FAILURE);
    }

    #[test]
    fn faults_round_trip_through_json() {
        let f = faults(r#"{"not_found":"*","access_denied":["a"],"delay_ms":5}"#);
        let back: Faults = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.not_found, NameSet::All);
    }
}
