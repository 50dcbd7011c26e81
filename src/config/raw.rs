//! `agent.json` and the flows of `agent.d/`, read with the Java agent's keys, defaults and ranges.
//!
//! Owns: which keys exist at the top level and in a flow, their defaults and valid ranges (the
//! Java agent's, with each deliberate difference noted where it is made), reading `agent.d/`,
//! splitting `filePattern`, flow ids and duplicate detection, and the table of keys this build
//! accepts but does not act on yet. Does not own: the value rules (`reader.rs`),
//! `dataProcessingOptions` (`processing.rs`), or any behaviour: the agent only sees the
//! resulting [`AgentPlan`].

use std::collections::HashSet;
use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::GlobBuilder;
use regex::RegexBuilder;
use serde_json::Value;

use super::processing;
use super::reader::{describe, parse_object, Notes, Section};
use super::{
    AgentPlan, AwsPlan, CloudWatchPlan, ConfigError, Destination, FilePattern, FlowPlan,
    InitialPosition, Notice, PartitionKeyOption, StaticCredentials, DEFAULT_CHECKPOINT_FILE,
    FIREHOSE_MAX_BYTES_PER_CALL, FIREHOSE_MAX_RECORDS_PER_CALL, FIREHOSE_MAX_RECORD_BYTES,
    KINESIS_KEY_RESERVE, KINESIS_MAX_BYTES_PER_CALL, KINESIS_MAX_RECORDS_PER_CALL,
    KINESIS_MAX_RECORD_BYTES,
};

/// Keys this build accepts and validates but does not act on yet, with what is missing. Matched
/// against top-level keys and, by their bare name, flow keys; a key gets a notice only when the
/// file gives it a value other than its default. Delete a line when its feature lands (and keep
/// one line per key: that is what `rustfmt::skip` is for).
#[rustfmt::skip]
const NOT_YET_SUPPORTED: &[(&str, &str)] = &[
    ("userAgentOverride", "replacing the whole HTTP user agent (the AWS SDK for Rust always sends its own; `userAgent` is sent as its app name)"),
    ("maxConnections", "the size of the HTTP connection pool"),
    ("connectionTTLMillis", "a time to live for pooled HTTP connections"),
    ("useTcpKeepAlive", "TCP keep-alive"),
    ("useHttpGzip", "gzip-compressed requests"),
    ("log.emitMetrics", "writing metrics to the log"),
    ("log.emitInternalMetrics", "status lines in the log"),
    ("checkpoints.queryTimeoutSeconds", "checkpoint database timeouts"),
    ("checkpoints.connectionTimeoutSeconds", "checkpoint database timeouts"),
    ("waitOnFullPublishQueueMillis", "publish-queue wait times"),
    ("waitOnEmptyPublishQueueMillis", "publish-queue wait times"),
];

/// The 1.x logging keys; the Java agent has ignored them since October 2018 (commit `627d226`),
/// but they live on in many configurations.
const LEGACY_LOG_KEYS: &[&str] = &[
    "log.level",
    "log.file",
    "log.maxBackupIndex",
    "log.maxFileSize",
];

/// Files in `agent.d/` that an editor or a package manager left behind. Reading them would add
/// the flows of an old or half-edited copy, which then collide as duplicates.
const BACKUP_PREFIXES: &[&str] = &["."];
const BACKUP_SUFFIXES: &[&str] = &[
    "~",
    ".bak",
    ".swp",
    ".rpmnew",
    ".rpmsave",
    ".dpkg-old",
    ".dpkg-new",
    ".dpkg-dist",
];

/// Characters that make a `filePattern` component a glob (Java `PathMatcher` glob syntax).
const GLOB_CHARS: &[char] = &['*', '?', '[', ']', '{', '}'];

// Value ranges used by many keys.
const ANY_INT: RangeInclusive<i32> = i32::MIN..=i32::MAX;
const NON_NEGATIVE_INT: RangeInclusive<i32> = 0..=i32::MAX;
const POSITIVE_INT: RangeInclusive<i32> = 1..=i32::MAX;
const NON_NEGATIVE_LONG: RangeInclusive<i64> = 0..=i64::MAX;
const POSITIVE_LONG: RangeInclusive<i64> = 1..=i64::MAX;
/// Milliseconds held by a Java `int` key.
const NON_NEGATIVE_INT_MILLIS: RangeInclusive<i64> = 0..=i32::MAX as i64;

// Global defaults: Java `AgentConfiguration` unless noted.
const DEFAULT_CHECKPOINT_TTL_DAYS: i32 = 7;
/// Java `SQLiteFileCheckpointStore`.
const DEFAULT_CHECKPOINT_QUERY_TIMEOUT_SECONDS: i32 = 30;
const DEFAULT_CHECKPOINT_CONNECTION_TIMEOUT_SECONDS: i32 = 5;
const DEFAULT_SHUTDOWN_TIMEOUT_MILLIS: i64 = 10_000;
const DEFAULT_MAX_SENDING_THREADS_PER_CORE: i32 = 12;
/// The default `maxSendingThreads` is `max(2, maxSendingThreadsPerCore x cores)`.
const MIN_DEFAULT_SENDING_THREADS: i64 = 2;
const DEFAULT_SENDING_THREADS_KEEPALIVE_MILLIS: i64 = 60_000;
const DEFAULT_SENDING_THREADS_MAX_QUEUE_SIZE: i32 = 100;
/// AWS SDK for Java `ClientConfiguration.DEFAULT_MAX_CONNECTIONS`; the default `maxConnections`
/// is `max(50, maxSendingThreads)`.
const SDK_DEFAULT_MAX_CONNECTIONS: i32 = 50;
/// AWS SDK for Java `ClientConfiguration` defaults.
const SDK_DEFAULT_CONNECTION_TIMEOUT_MILLIS: i64 = 10_000;
const SDK_DEFAULT_SOCKET_TIMEOUT_MILLIS: i64 = 50_000;
const SDK_DEFAULT_CONNECTION_TTL_MILLIS: i64 = -1;
const DEFAULT_CLOUDWATCH_NAMESPACE: &str = "AWSKinesisAgent";
const DEFAULT_CLOUDWATCH_BUFFER_TIME_MILLIS: i64 = 30_000;
const DEFAULT_CLOUDWATCH_QUEUE_SIZE: i32 = 10_000;
const DEFAULT_STATUS_PERIOD_SECONDS: i32 = 30;

// Flow defaults and ranges: Java `FileFlow`, `KinesisFileFlow`, `FirehoseFileFlow`.
const DEFAULT_BUFFER_AGE_MILLIS: i64 = 60_000;
const BUFFER_AGE_MILLIS: RangeInclusive<i64> = 1_000..=900_000;
const DEFAULT_PUBLISH_QUEUE_WAIT_MILLIS: i64 = 60_000;
const PUBLISH_QUEUE_WAIT_MILLIS: RangeInclusive<i64> = 1_000..=900_000;
const DEFAULT_PUBLISH_QUEUE_CAPACITY: i32 = 100;
const DEFAULT_RETRY_INITIAL_BACKOFF_MILLIS: i64 = 100;
const DEFAULT_RETRY_MAX_BACKOFF_MILLIS: i64 = 10_000;
const DEFAULT_MIN_TIME_BETWEEN_FILE_POLLS_MILLIS: i64 = 100;
const DEFAULT_MAX_TIME_BETWEEN_RESCANS_MILLIS: i64 = 10_000;
const DEFAULT_TRUNCATED_RECORD_TERMINATOR: &str = "\n";
/// `aggregatedRecordSizeBytes` [0..Firehose max record size], 0 = off.
const AGGREGATED_RECORD_SIZE_BYTES: RangeInclusive<i32> = 0..=FIREHOSE_MAX_RECORD_BYTES as i32;

/// `aggregatedRecordSizeBytes` of a Kinesis flow with `kplAggregation`: the KPL's
/// `AggregationMaxSize` by default, at most a Kinesis record less its partition key.
const DEFAULT_KPL_AGGREGATE_BYTES: i32 = 51_200;
const KPL_AGGREGATE_BYTES: RangeInclusive<i32> =
    1_024..=(KINESIS_MAX_RECORD_BYTES - KINESIS_KEY_RESERVE) as i32;

const PARTITION_KEY_OPTIONS: &[(&str, PartitionKeyOption)] = &[
    ("RANDOM", PartitionKeyOption::Random),
    ("DETERMINISTIC", PartitionKeyOption::Deterministic),
];
const INITIAL_POSITIONS: &[(&str, InitialPosition)] = &[
    ("START_OF_FILE", InitialPosition::StartOfFile),
    ("END_OF_FILE", InitialPosition::EndOfFile),
];

/// Facts about the host that defaults depend on, injected so tests do not depend on the machine.
#[derive(Debug, Clone, Copy)]
pub struct Environment {
    pub cpus: usize,
}

impl Environment {
    /// The CPUs this process may use (cgroup quotas and affinity included, as Java's
    /// `availableProcessors`); 1 when that cannot be known.
    pub fn from_host() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Environment { cpus }
    }
}

/// Reads `main` and, when `flows_dir` exists, every regular file in it in name order, then builds
/// the plan as [`parse_document`] does.
pub fn load(
    main: &Path,
    flows_dir: Option<&Path>,
    env: &Environment,
) -> Result<AgentPlan, ConfigError> {
    let main_text = fs::read_to_string(main)
        .map_err(|e| ConfigError::file(main, format!("cannot read the configuration file: {e}")))?;
    let mut skipped = Vec::new();
    let mut extra = Vec::new();
    if let Some(dir) = flows_dir.filter(|dir| dir.exists()) {
        for path in flow_files(dir)? {
            if is_backup(&path) {
                let message = "skipped: editor or package-manager backup";
                skipped.push(Notice {
                    file: path,
                    key: String::new(),
                    message: message.to_string(),
                });
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|e| {
                ConfigError::file(
                    &path,
                    format!("cannot read the flow configuration file: {e}"),
                )
            })?;
            extra.push((path, text));
        }
    }
    let mut plan = parse_document((main, &main_text), &extra, env)?;
    plan.warnings.splice(0..0, skipped);
    Ok(plan)
}

/// The regular files of `dir` (symbolic links followed, as Java's `File.isFile`), sorted by name
/// so the order of flows, and which of two duplicates is reported, does not depend on the
/// filesystem. The Java agent takes them in directory order.
fn flow_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = fs::read_dir(dir)
        .map_err(|e| ConfigError::file(dir, format!("cannot list the flows directory: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| ConfigError::file(dir, format!("cannot list the flows directory: {e}")))?;
        let path = entry.path();
        // Subdirectories and dangling links are not flow files; Java skips them silently too.
        if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn is_backup(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    BACKUP_PREFIXES.iter().any(|p| name.starts_with(p))
        || BACKUP_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Builds the plan from the main file's text and the texts of the `agent.d` files, in the order
/// given: the main file's flows first, then each extra file's.
pub fn parse_document(
    main: (&Path, &str),
    extra: &[(PathBuf, String)],
    env: &Environment,
) -> Result<AgentPlan, ConfigError> {
    let (main_file, main_text) = main;
    let mut notes = Notes::default();
    let mut flows = Flows::default();

    let root = parse_object(main_file, main_text)?;
    let mut top = Section::new(main_file, String::new(), &root);
    let mut plan = read_globals(&mut top, env)?;
    // A main file without `flows` is fine when agent.d supplies them (the Java agent crashes on
    // that combination with a NullPointerException).
    if let Some(items) = top.list("flows")? {
        flows.read(main_file, items, &mut notes)?;
    }
    top.finish(NOT_YET_SUPPORTED, &mut notes);

    for (file, text) in extra {
        // The Java agent skips an agent.d file it cannot parse, with a warning. We refuse to
        // start instead: skipping it silently drops its flows, and the data of those logs is
        // never shipped while the agent looks healthy.
        let root = parse_object(file, text)?;
        for key in root.keys().filter(|k| *k != "flows") {
            let message = "ignored: only `flows` is read from files in agent.d";
            notes.warnings.push(Notice {
                file: file.clone(),
                key: key.clone(),
                message: message.to_string(),
            });
        }
        let mut section = Section::new(file, String::new(), &root);
        if let Some(items) = section.list("flows")? {
            flows.read(file, items, &mut notes)?;
        }
        // Other keys were reported above; `finish` is not called so they are not reported twice.
    }

    if flows.plans.is_empty() {
        return Err(ConfigError::key(
            main_file,
            "flows",
            "There are no flows configured in configuration file.",
        ));
    }
    plan.sources = std::iter::once(main_file.to_path_buf())
        .chain(extra.iter().map(|(f, _)| f.clone()))
        .collect();
    plan.flows = flows.plans;
    plan.warnings = notes.warnings;
    plan.not_supported = notes.not_supported;
    Ok(plan)
}

/// The top-level keys, everything but `flows`.
fn read_globals(sec: &mut Section, env: &Environment) -> Result<AgentPlan, ConfigError> {
    for key in LEGACY_LOG_KEYS {
        sec.ignore(
            key,
            "ignored, as by the Java agent since 2018; \
             set the agent's own log level and file with the `-L`/`-l` command-line options",
        );
    }

    let checkpoint_file = sec.any_string("checkpointFile")?;
    if checkpoint_file.as_deref() == Some("") {
        return Err(sec.error(
            "checkpointFile",
            "expected a file path, got an empty string",
        ));
    }
    let checkpoint_file_is_default = checkpoint_file.is_none();
    let checkpoint_file =
        PathBuf::from(checkpoint_file.unwrap_or_else(|| DEFAULT_CHECKPOINT_FILE.to_string()));
    // Days to keep a checkpoint; Java pastes the number into an SQLite date modifier
    // (`'+N days'`), where a negative value has no sensible meaning.
    let checkpoint_ttl_days = sec.count(
        "checkpointTimeToLiveDays",
        DEFAULT_CHECKPOINT_TTL_DAYS,
        NON_NEGATIVE_INT,
    )?;
    // With a negative timeout JDBC throws, and Java skips the clean-up with an error in its log.
    sec.int(
        "checkpoints.queryTimeoutSeconds",
        DEFAULT_CHECKPOINT_QUERY_TIMEOUT_SECONDS,
        NON_NEGATIVE_INT,
    )?;
    // Read but never used by the Java agent, so any integer is accepted.
    sec.int(
        "checkpoints.connectionTimeoutSeconds",
        DEFAULT_CHECKPOINT_CONNECTION_TIMEOUT_SECONDS,
        ANY_INT,
    )?;
    let shutdown_timeout = sec.millis(
        "shutdownTimeoutMillis",
        DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
        NON_NEGATIVE_LONG,
    )?;

    let per_core = sec.int(
        "maxSendingThreadsPerCore",
        DEFAULT_MAX_SENDING_THREADS_PER_CORE,
        ANY_INT,
    )?;
    let default_threads = default_sending_threads(per_core, env.cpus);
    // Java builds a thread pool of this size, which must be at least 1.
    let max_sending_threads = sec.count("maxSendingThreads", default_threads, POSITIVE_INT)?;
    // Not a Java key (the Java agent holds one file per flow open). 0: derived from the
    // open-files limit at start.
    let max_open_files = sec.count("maxOpenFiles", 0, NON_NEGATIVE_INT)?;
    // Java thread-pool tuning with no counterpart in a tokio agent: validated as Java would
    // (its pool rejects a keep-alive or queue size below 1 at startup), then dropped.
    sec.long(
        "sendingThreadsKeepAliveMillis",
        DEFAULT_SENDING_THREADS_KEEPALIVE_MILLIS,
        POSITIVE_LONG,
    )?;
    sec.int(
        "sendingThreadsMaxQueueSize",
        DEFAULT_SENDING_THREADS_MAX_QUEUE_SIZE,
        POSITIVE_INT,
    )?;

    let threads = i32::try_from(max_sending_threads).unwrap_or(i32::MAX);
    let default_connections = SDK_DEFAULT_MAX_CONNECTIONS.max(threads);
    let max_connections = sec.count("maxConnections", default_connections, POSITIVE_INT)?;
    let connection_timeout = sec.millis(
        "connectionTimeoutMillis",
        SDK_DEFAULT_CONNECTION_TIMEOUT_MILLIS,
        NON_NEGATIVE_INT_MILLIS,
    )?;
    let socket_timeout = sec.millis(
        "socketTimeoutMillis",
        SDK_DEFAULT_SOCKET_TIMEOUT_MILLIS,
        NON_NEGATIVE_INT_MILLIS,
    )?;
    // The SDK's connection pool (Apache HttpClient `PoolEntry`) treats any TTL <= 0 as none.
    let ttl = sec.long(
        "connectionTTLMillis",
        SDK_DEFAULT_CONNECTION_TTL_MILLIS,
        i64::MIN..=i64::MAX,
    )?;
    let connection_ttl = (ttl > 0).then(|| Duration::from_millis(ttl as u64));
    let use_tcp_keep_alive = sec.bool("useTcpKeepAlive", false)?;
    let use_http_gzip = sec.bool("useHttpGzip", false)?;

    // Java trims the prefix (`AgentContext.userAgent`).
    let user_agent = sec.opt_trimmed_string("userAgent")?;
    let user_agent_override = sec.opt_string("userAgentOverride")?;
    let static_credentials = read_static_credentials(sec)?;
    for key in [
        "userDefinedCredentialsProvider.classname",
        "userDefinedCredentialsProvider.location",
    ] {
        if sec.opt_string(key)?.is_some() {
            sec.not_supported(
                key,
                "Java credential provider classes cannot be loaded by this agent; use the standard AWS \
                 credential chain (environment, profile, web identity, container, instance profile) \
                 or assumeRoleARN instead",
            );
        }
    }

    let aws = AwsPlan {
        kinesis_endpoint: sec.opt_string("kinesis.endpoint")?,
        kinesis_region: sec.opt_string("kinesis.region")?,
        firehose_endpoint: sec.opt_string("firehose.endpoint")?,
        cloudwatch_endpoint: sec.opt_string("cloudwatch.endpoint")?,
        sts_endpoint: sec.opt_string("sts.endpoint")?,
        static_credentials,
        assume_role_arn: sec.opt_string("assumeRoleARN")?,
        assume_role_external_id: sec.opt_string("assumeRoleExternalId")?,
        user_agent,
        user_agent_override,
        connection_timeout,
        socket_timeout,
        max_connections,
        connection_ttl,
        use_tcp_keep_alive,
        use_http_gzip,
    };

    let namespace = sec.string("cloudwatch.namespace", DEFAULT_CLOUDWATCH_NAMESPACE)?;
    // CloudWatch rejects an empty namespace on every PutMetricData; better to say so now.
    if namespace.is_empty() {
        return Err(sec.error(
            "cloudwatch.namespace",
            "expected a metric namespace, got an empty string",
        ));
    }
    let cloudwatch = CloudWatchPlan {
        emit_metrics: sec.bool("cloudwatch.emitMetrics", true)?,
        namespace,
        tag_instance: sec.bool("cloudwatch.tagInstance", false)?,
        buffer_time: sec.millis(
            "cloudwatch.metricsBufferTimeMillis",
            DEFAULT_CLOUDWATCH_BUFFER_TIME_MILLIS,
            NON_NEGATIVE_LONG,
        )?,
        queue_size: sec.count(
            "cloudwatch.metricsQueueSize",
            DEFAULT_CLOUDWATCH_QUEUE_SIZE,
            NON_NEGATIVE_INT,
        )?,
    };

    sec.bool("log.emitMetrics", false)?;
    let log_emit_internal_metrics = sec.bool("log.emitInternalMetrics", false)?;
    let status_seconds = sec.count(
        "log.statusReportingPeriodSeconds",
        DEFAULT_STATUS_PERIOD_SECONDS,
        POSITIVE_INT,
    )?;

    Ok(AgentPlan {
        sources: Vec::new(),
        checkpoint_file,
        checkpoint_file_is_default,
        checkpoint_ttl_days: checkpoint_ttl_days as u32,
        shutdown_timeout,
        max_sending_threads,
        max_open_files: (max_open_files > 0).then_some(max_open_files),
        aws,
        cloudwatch,
        status_period: Duration::from_secs(status_seconds as u64),
        log_emit_internal_metrics,
        flows: Vec::new(),
        not_supported: Vec::new(),
        warnings: Vec::new(),
    })
}

/// Java: `max(2, maxSendingThreadsPerCore x availableProcessors)`. Java's int multiplication
/// can overflow; ours saturates at the largest int.
fn default_sending_threads(per_core: i32, cpus: usize) -> i32 {
    let cpus = i64::try_from(cpus).unwrap_or(i64::MAX);
    let threads = i64::from(per_core)
        .saturating_mul(cpus)
        .max(MIN_DEFAULT_SENDING_THREADS);
    threads.min(i64::from(i32::MAX)) as i32
}

/// `awsAccessKeyId` + `awsSecretAccessKey`: used only when both are set, as in Java, where one
/// without the other makes that provider fail and the chain move on.
fn read_static_credentials(sec: &mut Section) -> Result<Option<StaticCredentials>, ConfigError> {
    let access_key_id = sec.opt_string("awsAccessKeyId")?;
    let secret_access_key = sec.opt_string("awsSecretAccessKey")?;
    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(StaticCredentials {
            access_key_id,
            secret_access_key,
        })),
        (Some(_), None) => {
            sec.warn("awsAccessKeyId", "ignored: awsSecretAccessKey is not set");
            Ok(None)
        }
        (None, Some(_)) => {
            sec.warn("awsSecretAccessKey", "ignored: awsAccessKeyId is not set");
            Ok(None)
        }
        (None, None) => Ok(None),
    }
}

/// The flows read so far, over all files, and their ids.
#[derive(Default)]
struct Flows {
    plans: Vec<FlowPlan>,
    ids: HashSet<String>,
}

impl Flows {
    /// Reads one file's `flows` array.
    fn read(&mut self, file: &Path, items: &[Value], notes: &mut Notes) -> Result<(), ConfigError> {
        for (index, item) in items.iter().enumerate() {
            let name = format!("flows[{index}]");
            let Value::Object(map) = item else {
                return Err(ConfigError::key(
                    file,
                    name,
                    format!("expected a flow object, got {}", describe(item)),
                ));
            };
            let mut sec = Section::new(file, name, map);
            let flow = read_flow(&mut sec, index, notes)?;
            // The id is the checkpoint key: two flows with one id would share checkpoints.
            if !self.ids.insert(flow.id.clone()) {
                return Err(sec.error_here(format!("Duplicate flow: {}", flow.id)));
            }
            sec.finish(NOT_YET_SUPPORTED, notes);
            self.plans.push(flow);
        }
        Ok(())
    }
}

/// Fixed limits of a destination (AWS quotas; Java `KinesisConstants`, `FirehoseConstants`), as
/// the `int`s the Java agent validates against.
struct Limits {
    records_per_call: i32,
    bytes_per_call: i32,
    /// Bytes of one record.
    record_bytes: usize,
}

const KINESIS_LIMITS: Limits = Limits {
    records_per_call: KINESIS_MAX_RECORDS_PER_CALL as i32,
    bytes_per_call: KINESIS_MAX_BYTES_PER_CALL as i32,
    record_bytes: KINESIS_MAX_RECORD_BYTES,
};

const FIREHOSE_LIMITS: Limits = Limits {
    records_per_call: FIREHOSE_MAX_RECORDS_PER_CALL as i32,
    bytes_per_call: FIREHOSE_MAX_BYTES_PER_CALL as i32,
    record_bytes: FIREHOSE_MAX_RECORD_BYTES,
};

/// What kind of flow an object is, decided as Java's `FileFlowFactory` does.
enum FlowKind {
    Kinesis(String),
    Firehose(String),
}

fn read_flow(sec: &mut Section, index: usize, notes: &mut Notes) -> Result<FlowPlan, ConfigError> {
    let delivery_stream = sec.any_string("deliveryStream")?;
    let kinesis_stream = sec.any_string("kinesisStream")?;
    // `deliveryStream` is checked first, as in Java.
    let kind = match (delivery_stream, kinesis_stream) {
        (Some(delivery_stream), kinesis_stream) => {
            if kinesis_stream.is_some() {
                sec.warn(
                    "kinesisStream",
                    "ignored: deliveryStream is also set, so this is a Firehose flow (as in the Java agent)",
                );
            }
            FlowKind::Firehose(delivery_stream)
        }
        (None, Some(stream)) => FlowKind::Kinesis(stream),
        (None, None) => {
            return Err(sec.error_here(
                "expected either kinesisStream or deliveryStream (Java: Could not recognize flow type.)",
            ))
        }
    };
    let (stream_key, stream_name) = match &kind {
        FlowKind::Kinesis(name) => ("kinesisStream", name),
        FlowKind::Firehose(name) => ("deliveryStream", name),
    };
    if stream_name.is_empty() {
        return Err(sec.error(stream_key, "expected a stream name, got an empty string"));
    }

    let raw_pattern = sec.required_string("filePattern")?;
    let file_pattern =
        split_file_pattern(&raw_pattern).map_err(|message| sec.error("filePattern", message))?;

    let (destination, id_prefix, limits) = match kind {
        FlowKind::Kinesis(stream) => {
            let partition_key = sec.enum_(
                "partitionKeyOption",
                PARTITION_KEY_OPTIONS,
                PartitionKeyOption::Random,
            )?;
            // With DETERMINISTIC keys, lines are grouped by shard (sink::shards).
            let kpl_aggregate = if sec.bool("kplAggregation", false)? {
                Some(sec.count(
                    "aggregatedRecordSizeBytes",
                    DEFAULT_KPL_AGGREGATE_BYTES,
                    KPL_AGGREGATE_BYTES,
                )?)
            } else {
                sec.ignore(
                    "aggregatedRecordSizeBytes",
                    "ignored for Kinesis flows without kplAggregation, as by the Java agent",
                );
                None
            };
            let destination = Destination::Kinesis {
                stream,
                partition_key,
                kpl_aggregate,
            };
            (destination, "kinesis", KINESIS_LIMITS)
        }
        FlowKind::Firehose(delivery_stream) => {
            let aggregated_record_size_bytes =
                sec.count("aggregatedRecordSizeBytes", 0, AGGREGATED_RECORD_SIZE_BYTES)?;
            sec.ignore(
                "partitionKeyOption",
                "ignored for Firehose flows, as by the Java agent",
            );
            if sec.bool("kplAggregation", false)? {
                return Err(sec.error(
                    "kplAggregation",
                    "expected false or no kplAggregation on a Firehose flow: KPL aggregation is for Kinesis streams (Firehose packs lines with aggregatedRecordSizeBytes)",
                ));
            }
            let destination = Destination::Firehose {
                delivery_stream,
                aggregated_record_size_bytes,
            };
            (destination, "fh", FIREHOSE_LIMITS)
        }
    };
    // Java `KinesisFileFlow.getId` / `FirehoseFileFlow.getId`: the checkpoint key.
    let id = format!(
        "{id_prefix}:{}:{}",
        destination.name(),
        file_pattern.java_string()
    );

    let max_buffer_age = sec.millis(
        "maxBufferAgeMillis",
        DEFAULT_BUFFER_AGE_MILLIS,
        BUFFER_AGE_MILLIS,
    )?;
    let max_records = limits.records_per_call;
    let max_buffer_records = sec.count("maxBufferSizeRecords", max_records, 1..=max_records)?;
    let max_bytes = limits.bytes_per_call;
    let max_buffer_bytes = sec.count("maxBufferSizeBytes", max_bytes, 1..=max_bytes)?;
    // Validated as Java does; they tune Java's publish queue and have no counterpart here.
    sec.long(
        "waitOnFullPublishQueueMillis",
        DEFAULT_PUBLISH_QUEUE_WAIT_MILLIS,
        PUBLISH_QUEUE_WAIT_MILLIS,
    )?;
    sec.long(
        "waitOnEmptyPublishQueueMillis",
        DEFAULT_PUBLISH_QUEUE_WAIT_MILLIS,
        PUBLISH_QUEUE_WAIT_MILLIS,
    )?;
    let initial_position = sec.enum_(
        "initialPosition",
        INITIAL_POSITIONS,
        InitialPosition::EndOfFile,
    )?;
    // Java does not validate these; a negative backoff fails when the tailer starts.
    let retry_initial_backoff = sec.millis(
        "retryInitialBackoffMillis",
        DEFAULT_RETRY_INITIAL_BACKOFF_MILLIS,
        NON_NEGATIVE_LONG,
    )?;
    let retry_max_backoff = sec.millis(
        "retryMaxBackoffMillis",
        DEFAULT_RETRY_MAX_BACKOFF_MILLIS,
        NON_NEGATIVE_LONG,
    )?;
    // Java does not validate this; with 0 no batch could ever be queued and the flow would hang.
    let publish_queue_capacity = sec.count(
        "publishQueueCapacity",
        DEFAULT_PUBLISH_QUEUE_CAPACITY,
        POSITIVE_INT,
    )?;
    let min_time_between_file_polls = sec.millis(
        "minTimeBetweenFilePollsMillis",
        DEFAULT_MIN_TIME_BETWEEN_FILE_POLLS_MILLIS,
        NON_NEGATIVE_LONG,
    )?;
    let max_time_between_rescans = sec.millis(
        "maxTimeBetweenFileTrackerRefreshMillis",
        DEFAULT_MAX_TIME_BETWEEN_RESCANS_MILLIS,
        NON_NEGATIVE_LONG,
    )?;
    let skip_header_lines = sec.count("skipHeaderLines", 0, NON_NEGATIVE_INT)?;
    let multi_line_start_pattern = read_regex(sec, "multiLineStartPattern", false)?;
    // Java compiles the footer pattern with MULTILINE.
    let file_footer_pattern = read_regex(sec, "fileFooterPattern", true)?;

    let terminator = sec.string(
        "truncatedRecordTerminator",
        DEFAULT_TRUNCATED_RECORD_TERMINATOR,
    )?;
    let max_record_bytes = limits.record_bytes;
    if terminator.len() >= max_record_bytes {
        let message = format!(
            "is {} bytes long in UTF-8; it must be shorter than the maximum record size ({max_record_bytes} bytes)",
            terminator.len()
        );
        return Err(sec.error("truncatedRecordTerminator", message));
    }

    let processing = match sec.list("dataProcessingOptions")? {
        Some(items) => {
            processing::read_options(sec.file(), &sec.path("dataProcessingOptions"), items, notes)?
        }
        None => Vec::new(),
    };
    let log_emit_internal_metrics = sec.bool("log.emitInternalMetrics", false)?;
    // Not a Java key: where rotated copies go when the rotation tool moves them out of the
    // pattern's directory (logrotate `olddir`).
    let rotated_file_directory = match sec.opt_string("rotatedFileDirectory")? {
        Some(dir) if dir.starts_with('/') => Some(std::path::PathBuf::from(dir)),
        Some(dir) => {
            return Err(sec.error(
                "rotatedFileDirectory",
                format!("expected an absolute directory path (logrotate's olddir), got \"{dir}\""),
            ))
        }
        None => None,
    };

    Ok(FlowPlan {
        id,
        source: sec.file().to_path_buf(),
        index,
        file_pattern,
        destination,
        initial_position,
        max_buffer_age,
        max_buffer_records,
        max_buffer_bytes,
        publish_queue_capacity,
        retry_initial_backoff,
        retry_max_backoff,
        min_time_between_file_polls,
        max_time_between_rescans,
        skip_header_lines,
        multi_line_start_pattern,
        file_footer_pattern,
        truncated_record_terminator: terminator.into_bytes(),
        processing,
        log_emit_internal_metrics,
        rotated_file_directory,
    })
}

/// An optional regex key; empty means none (Java `Strings.isNullOrEmpty`). Checked with the
/// `regex` crate, which is what will run it: a Java-only construct (look-around, back-references)
/// is reported now rather than when the first record arrives.
fn read_regex(
    sec: &mut Section,
    key: &'static str,
    multi_line: bool,
) -> Result<Option<String>, ConfigError> {
    let Some(pattern) = sec.opt_string(key)? else {
        return Ok(None);
    };
    RegexBuilder::new(&pattern)
        .multi_line(multi_line)
        .build()
        .map_err(|e| sec.error(key, format!("invalid regular expression: {e}")))?;
    Ok(Some(pattern))
}

/// Splits a `filePattern` into the literal directory to watch and the glob below it.
///
/// The Java agent takes the parent directory literally and globs the file name only. We also
/// allow globs in directories: the base directory is the longest leading run of components
/// without glob characters, but the glob always keeps at least the last component. Components are
/// joined back with `/` as written (empty ones dropped, as Java's `Path` does), so
/// [`FilePattern::java_string`], and with it the flow id, is the Java agent's for every pattern
/// with a literal directory: the only ones that ever matched files there, and so the only ones
/// with Java checkpoints to carry over.
pub(super) fn split_file_pattern(raw: &str) -> Result<FilePattern, String> {
    const NO_DIRECTORY: &str =
        "Directory component is empty!: expected a path with a directory, like /var/log/app.log*";
    if raw.ends_with('/') {
        return Err(
            "File name component is empty!: expected a path ending in a file name pattern, \
                    like /var/log/app.log*"
                .to_string(),
        );
    }
    let absolute = raw.starts_with('/');
    let components: Vec<&str> = raw.split('/').filter(|c| !c.is_empty()).collect();
    let Some((_, dirs)) = components.split_last() else {
        return Err(NO_DIRECTORY.to_string());
    };
    if dirs.is_empty() && !absolute {
        return Err(NO_DIRECTORY.to_string());
    }
    let literal = dirs.iter().take_while(|c| !c.contains(GLOB_CHARS)).count();
    let base = components[..literal].join("/");
    let base_dir = if absolute { format!("/{base}") } else { base };
    if base_dir.is_empty() {
        // A relative pattern that starts with a glob has no directory to watch.
        return Err(format!(
            "expected a directory before the glob, like ./{raw}; got a glob in the first component"
        ));
    }
    let glob = components[literal..].join("/");
    GlobBuilder::new(&glob)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob {glob:?}: {e}"))?;
    Ok(FilePattern {
        raw: raw.to_string(),
        base_dir: PathBuf::from(base_dir),
        glob,
    })
}
