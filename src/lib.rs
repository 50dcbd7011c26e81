//! kinesis-agent: ships log files to Amazon Kinesis Data Streams and Firehose.
//!
//! Records flow one way, from files to AWS; acknowledgements flow back only to the checkpoint
//! tracker. Read this file first: one line per module says what it owns.
//!
//! - [`config`]: `agent.json` + `agent.d/` with the Java agent's value rules, into a checked plan.

pub mod config;
