//! kinesis-agent: ships log files to Amazon Kinesis Data Streams and Firehose.
//!
//! Records flow one way, from files to AWS; acknowledgements flow back only to the checkpoint
//! tracker. Read this file first: one line per module says what it owns. The modules' graph is
//! one-way (ARCHITECTURE "Which module may use which"; `tests/module_graph.rs` keeps it so):
//! stages share nouns through [`record`], never each other's types.
//!
//! - [`config`]: `agent.json` + `agent.d/` with the Java agent's value rules, into a checked plan.
//! - [`agent`]: wires one pipeline per flow from the plan, supervises it, drains it on shutdown.
//! - [`discovery`]: which paths match a flow's pattern now; inotify events naming the files written and asking for rescans.
//! - [`tail`]: following files by identity, reading them in blocks, splitting lines, where each file starts (resume).
//! - [`process`]: records as the Java agent builds them: multi-line, headers, converters.
//! - [`record`]: the nouns the stages share: records, chunks, pieces, file refs, file ids, fingerprints.
//! - [`sink`]: batching, the send loop with retries and backoff, Kinesis and Firehose calls.
//! - [`checkpoint`]: the in-order acknowledgement watermark of each file; the SQLite store.
//! - [`metrics`]: per-flow counters, the Java agent's progress lines, CloudWatch.
//! - [`status`]: the status snapshot the `status` command reads (from the counters and the trackers).
//! - [`aws`]: SDK clients: region, credentials, endpoints, timeouts.
//! - [`ec2_metadata`]: ADDEC2METADATA's facts from the instance metadata service, cached.
//! - [`logging`]: the agent's own log file and its layout.
//! - [`shutdown`]: signals to a stop reason.
//! - [`sdnotify`]: readiness and stopping notices to systemd (`Type=notify`).
//! - [`accounts`]: the user database through NSS (LDAP, SSSD too): users, groups, the agent's own user, kept once found.
//! - [`sys`]: process facts: the agent's user in permission messages and their fixes, malloc tuning, the open-files limit.
//! - [`check`]: `check`: can the service user read every log; do the credentials and streams work; who reads them.
//! - [`iam_policy`]: `iam-policy`: the least-privilege IAM policy for a configuration, and the Firehose delivery role's.

pub mod accounts;
pub mod agent;
pub mod aws;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod discovery;
pub mod ec2_metadata;
pub mod iam_policy;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod record;
pub mod sdnotify;
pub mod shutdown;
pub mod sink;
pub mod status;
pub mod sys;
pub mod tail;
