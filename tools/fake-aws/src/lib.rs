//! fake-aws: a loopback test endpoint that speaks the wire protocols the AWS SDK for Rust uses for
//! Kinesis Data Streams and Firehose (awsJson1_1) and CloudWatch (Smithy RPC v2 CBOR), keeps
//! every record it accepts, and injects the faults the real services produce.
//!
//! Read in this order:
//! - [`server`]: HTTP/1.1, routing, turning answers into responses;
//! - [`store`]: streams, accepted records, counters; every call is decided there under one lock;
//! - [`faults`]: fault settings, the seeded RNG, which calls and records fail;
//! - [`kinesis`], [`firehose`], [`cloudwatch`]: request parsing with the services' limits and
//!   response bodies, no state; [`batch`] is the decoded record batch they share;
//! - [`shards`]: MD5 hash keys, shard ranges, per-shard rate windows;
//! - [`digits`]: fast zero-padded numbers for responses;
//! - [`tls`]: `--tls`, the certificates made at start;
//! - [`error`]: whole-call error answers; [`control`]: the `/__control/` API; [`cli`]: flags.
//!
//! It is a test tool: it binds 127.0.0.1 only, checks that requests are signed but not the
//! signatures, and has one account and region.

pub mod batch;
pub mod cli;
pub mod cloudwatch;
pub mod control;
pub mod digits;
pub mod error;
pub mod faults;
pub mod firehose;
pub mod kinesis;
pub mod server;
pub mod shards;
pub mod store;
pub mod tls;
