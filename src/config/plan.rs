//! The validated, typed configuration the agent runs from.
//!
//! Owns: the shape of a checked configuration (global settings and one [`FlowPlan`] per flow) and
//! the Java agent's defaults and limits as named constants. Does not own: reading JSON or the
//! Java value rules (`raw.rs`), nor any behaviour; the rest of the agent only ever sees a plan.

use std::path::PathBuf;
use std::time::Duration;

/// Default main configuration file, as the Java agent.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/aws-kinesis/agent.json";
/// Directory whose files each add flows, as the Java agent (path hard-coded there).
pub const DEFAULT_FLOWS_DIR: &str = "/etc/aws-kinesis/agent.d";
/// Default checkpoint database. The Java agent uses `/var/run/...`, which is a tmpfs on most
/// systems and is lost at reboot (its issues #129, #101); we keep it under `/var/lib`.
pub const DEFAULT_CHECKPOINT_FILE: &str = "/var/lib/aws-kinesis-agent/checkpoints";
/// Where the Java agent keeps its checkpoints; imported once when ours does not exist yet.
pub const JAVA_CHECKPOINT_FILE: &str = "/var/run/aws-kinesis-agent/checkpoints";

/// Kinesis PutRecords limits (AWS quota; Java `KinesisConstants`).
pub const KINESIS_MAX_RECORDS_PER_CALL: usize = 500;
pub const KINESIS_MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// Max size of one Kinesis record, data plus partition key.
pub const KINESIS_MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Firehose PutRecordBatch limits (AWS quota; Java `FirehoseConstants`).
pub const FIREHOSE_MAX_RECORDS_PER_CALL: usize = 500;
pub const FIREHOSE_MAX_BYTES_PER_CALL: usize = 4 * 1024 * 1024;
pub const FIREHOSE_MAX_RECORD_BYTES: usize = 1_024_000;
/// Bytes counted for each Kinesis record's partition key: the longest key the agent makes (an
/// MD5 in hex; random keys are shorter). Kinesis counts the key in the record and call limits.
pub const KINESIS_KEY_RESERVE: usize = 32;

/// Bytes of framing counted per line in a KPL aggregated record (see `sink::kpl`).
pub const KPL_LINE_OVERHEAD: usize = 10;
/// Lines per PutRecords call with `kplAggregation`, in bytes: about 10 aggregated records of
/// the default size, well within the service's 5 MiB (the aggregated records' own bytes,
/// under 100 each, included). The benchmark's backlog: 5 MiB calls peaked at 62 MiB RSS,
/// 1 MiB at 40 MiB, 512 KiB at 24 MiB, for the same CPU.
pub const KPL_CALL_BYTES: usize = 512 * 1024;

/// What one batch may hold ([`FlowPlan::batch_limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub lines: usize,
    pub bytes: usize,
    /// Bytes counted per line besides its data.
    pub overhead: usize,
}

/// Everything the agent needs to run, checked.
#[derive(Debug, Clone)]
pub struct AgentPlan {
    /// The files the configuration was read from, main file first.
    pub sources: Vec<PathBuf>,
    /// `checkpointFile`.
    pub checkpoint_file: PathBuf,
    /// True when `checkpointFile` was not given (then a Java agent's database may be imported).
    pub checkpoint_file_is_default: bool,
    /// `checkpointTimeToLiveDays` (Java default 7).
    pub checkpoint_ttl_days: u32,
    /// `shutdownTimeoutMillis` (Java default 10 000).
    pub shutdown_timeout: Duration,
    /// `maxSendingThreads`: bound on concurrent service calls over all flows
    /// (Java default `max(2, maxSendingThreadsPerCore x cores)`).
    pub max_sending_threads: usize,
    /// `maxOpenFiles` (not a Java key): tailed files held open at once over all flows; None
    /// derives it from the open-files limit ([`crate::tail::budget::default_max_open_files`]).
    pub max_open_files: Option<usize>,
    pub aws: AwsPlan,
    pub cloudwatch: CloudWatchPlan,
    /// `log.statusReportingPeriodSeconds` (Java default 30).
    pub status_period: Duration,
    /// `log.emitInternalMetrics` (agent level).
    pub log_emit_internal_metrics: bool,
    pub flows: Vec<FlowPlan>,
    /// Keys that were understood and validated but whose behaviour this build does not have yet,
    /// or that cannot exist in this agent (Java class loading). Logged at startup.
    pub not_supported: Vec<Notice>,
    /// Unknown keys and other things worth a startup warning.
    pub warnings: Vec<Notice>,
}

/// A message about one key of one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub file: PathBuf,
    /// Key path, e.g. `flows[1].multiLineStartPattern` or `cloudwatch.tagInstance`; empty when
    /// the notice is about the whole file (e.g. a backup file skipped in `agent.d`).
    pub key: String,
    pub message: String,
}

/// AWS access: endpoints, region, credentials, HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct AwsPlan {
    /// `kinesis.endpoint`; empty string in the file means not set. Scheme optional (https added).
    pub kinesis_endpoint: Option<String>,
    /// `kinesis.region`.
    pub kinesis_region: Option<String>,
    pub firehose_endpoint: Option<String>,
    pub cloudwatch_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    /// `awsAccessKeyId` + `awsSecretAccessKey`; only set when both are non-empty.
    pub static_credentials: Option<StaticCredentials>,
    pub assume_role_arn: Option<String>,
    pub assume_role_external_id: Option<String>,
    /// `userAgent` (trimmed), a prefix to ours.
    pub user_agent: Option<String>,
    /// `userAgentOverride`, replaces the whole user agent.
    pub user_agent_override: Option<String>,
    /// `connectionTimeoutMillis` (Java/SDK default 10 000).
    pub connection_timeout: Duration,
    /// `socketTimeoutMillis` (Java/SDK default 50 000).
    pub socket_timeout: Duration,
    /// `maxConnections` (Java default `max(50, maxSendingThreads)`).
    pub max_connections: usize,
    /// `connectionTTLMillis`, None = no TTL (Java default -1).
    pub connection_ttl: Option<Duration>,
    pub use_tcp_keep_alive: bool,
    pub use_http_gzip: bool,
}

#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    // Never print the secret, not even in a debug dump of the plan.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// CloudWatch metrics settings.
#[derive(Debug, Clone)]
pub struct CloudWatchPlan {
    /// `cloudwatch.emitMetrics` (Java default true).
    pub emit_metrics: bool,
    /// `cloudwatch.namespace` (default `AWSKinesisAgent`).
    pub namespace: String,
    /// `cloudwatch.tagInstance`.
    pub tag_instance: bool,
    /// `cloudwatch.metricsBufferTimeMillis` (default 30 000).
    pub buffer_time: Duration,
    /// `cloudwatch.metricsQueueSize` (default 10 000).
    pub queue_size: usize,
}

/// One flow: a file pattern shipped to one destination.
#[derive(Debug, Clone)]
pub struct FlowPlan {
    /// Java flow id, the checkpoint key: `kinesis:<stream>:<dir>/<glob>` or `fh:<stream>:<dir>/<glob>`.
    pub id: String,
    /// The configuration file this flow came from and its index in that file's `flows` array.
    pub source: PathBuf,
    pub index: usize,
    pub file_pattern: FilePattern,
    pub destination: Destination,
    /// `initialPosition` (default END_OF_FILE).
    pub initial_position: InitialPosition,
    /// `maxBufferAgeMillis` [1000..900000], default 60 000.
    pub max_buffer_age: Duration,
    /// `maxBufferSizeRecords` [1..500], default 500.
    pub max_buffer_records: usize,
    /// `maxBufferSizeBytes`, Kinesis [1..5 MiB] default 5 MiB, Firehose [1..4 MiB] default 4 MiB.
    pub max_buffer_bytes: usize,
    /// `publishQueueCapacity` (default 100): batches waiting to be sent before reading stops.
    pub publish_queue_capacity: usize,
    /// `retryInitialBackoffMillis` (>= 0, default 100).
    pub retry_initial_backoff: Duration,
    /// `retryMaxBackoffMillis` (>= 0, default 10 000).
    pub retry_max_backoff: Duration,
    /// `minTimeBetweenFilePollsMillis` (default 100).
    pub min_time_between_file_polls: Duration,
    /// `maxTimeBetweenFileTrackerRefreshMillis` (default 10 000): forced rescan period.
    pub max_time_between_rescans: Duration,
    /// `skipHeaderLines` (default 0).
    pub skip_header_lines: usize,
    /// `multiLineStartPattern`; empty means none. Validated as a regex.
    pub multi_line_start_pattern: Option<String>,
    /// `fileFooterPattern`; validated as a regex.
    pub file_footer_pattern: Option<String>,
    /// `truncatedRecordTerminator` (default "\n"), shorter than the max record size.
    pub truncated_record_terminator: Vec<u8>,
    /// `dataProcessingOptions`, in order.
    pub processing: Vec<ProcessingOption>,
    /// `log.emitInternalMetrics` at flow level.
    pub log_emit_internal_metrics: bool,
    /// `rotatedFileDirectory` (not a Java key): a second directory where the rotation tool puts
    /// rotated copies (logrotate `olddir`); searched, with the pattern's own directory, for files
    /// renamed away and compressed copies. Never tailed.
    pub rotated_file_directory: Option<PathBuf>,
}

impl FlowPlan {
    /// Max bytes of one record for this destination, as the service counts it (Kinesis: data
    /// plus partition key).
    pub fn max_record_bytes(&self) -> usize {
        match self.destination {
            Destination::Kinesis { .. } => KINESIS_MAX_RECORD_BYTES,
            Destination::Firehose { .. } => FIREHOSE_MAX_RECORD_BYTES,
        }
    }

    /// Bytes counted per record besides its data (Kinesis: the partition key).
    pub fn record_overhead(&self) -> usize {
        match self.destination {
            Destination::Kinesis { .. } => KINESIS_KEY_RESERVE,
            Destination::Firehose { .. } => 0,
        }
    }

    /// What one batch may hold: lines, bytes (with `overhead` bytes counted per line). With
    /// `kplAggregation` a batch is one PutRecords call of aggregated records: lines are bound
    /// by bytes only ([`KPL_CALL_BYTES`] at most), and the bytes so that the call stays within
    /// `maxBufferSizeRecords` Kinesis records (each aggregated record at least half full).
    pub fn batch_limits(&self) -> BatchLimits {
        match self.destination {
            Destination::Kinesis {
                kpl_aggregate: Some(aggregate),
                ..
            } => {
                let by_records = self.max_buffer_records.saturating_sub(1).max(1) * aggregate / 2;
                let bytes = self
                    .max_buffer_bytes
                    .min(by_records.max(aggregate))
                    .min(KPL_CALL_BYTES);
                BatchLimits {
                    lines: bytes,
                    bytes,
                    overhead: KPL_LINE_OVERHEAD,
                }
            }
            _ => BatchLimits {
                lines: self.max_buffer_records,
                bytes: self.max_buffer_bytes,
                overhead: self.record_overhead(),
            },
        }
    }

    /// Max bytes of one record's data: longer records are cut to this.
    pub fn max_record_data_bytes(&self) -> usize {
        self.max_record_bytes() - self.record_overhead()
    }
}

/// A `filePattern`: the literal directory part and the glob below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePattern {
    /// The pattern as written.
    pub raw: String,
    /// Longest leading run of path components with no glob characters, e.g. `/var/log`.
    pub base_dir: PathBuf,
    /// The rest, relative to `base_dir`, e.g. `app.log*` or `*/current/*.log` or `**/*.log`.
    pub glob: String,
}

impl FilePattern {
    /// Java `SourceFile.toString()`: directory + "/" + file-name pattern (so `/log.*` gives `//log.*`).
    pub fn java_string(&self) -> String {
        format!("{}/{}", self.base_dir.display(), self.glob)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `kinesisStream`.
    Kinesis {
        stream: String,
        partition_key: PartitionKeyOption,
        /// `kplAggregation` (not a Java key): lines packed into KPL aggregated records of at
        /// most this many bytes (`aggregatedRecordSizeBytes`, default 51,200); None: one line
        /// per record.
        kpl_aggregate: Option<usize>,
    },
    /// `deliveryStream`.
    Firehose {
        delivery_stream: String,
        /// `aggregatedRecordSizeBytes` [0..1024000], 0 = one line per record.
        aggregated_record_size_bytes: usize,
    },
}

impl Destination {
    /// The stream or delivery stream name.
    pub fn name(&self) -> &str {
        match self {
            Destination::Kinesis { stream, .. } => stream,
            Destination::Firehose {
                delivery_stream, ..
            } => delivery_stream,
        }
    }
    /// CloudWatch `Destination` dimension value, as the Java agent.
    pub fn metric_dimension(&self) -> String {
        match self {
            Destination::Kinesis { stream, .. } => format!("KinesisStream:{stream}"),
            Destination::Firehose {
                delivery_stream, ..
            } => format!("DeliveryStream:{delivery_stream}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKeyOption {
    Random,
    Deterministic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    StartOfFile,
    EndOfFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFormat {
    Compact,
    PrettyPrint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    CommonApacheLog,
    CombinedApacheLog,
    ApacheErrorLog,
    Syslog,
    Rfc3339Syslog,
}

impl LogFormat {
    /// The JSON field names a format produces when no `customFieldNames` are given, in order
    /// (Java `ApacheLogParser`, `SysLogParser`). `customFieldNames` without `matchPattern` must
    /// rename exactly these.
    pub fn default_field_names(self) -> &'static [&'static str] {
        const COMMON: &[&str] = &[
            "host", "ident", "authuser", "datetime", "request", "response", "bytes",
        ];
        const COMBINED: &[&str] = &[
            "host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer",
            "agent",
        ];
        const ERROR_LOG: &[&str] = &[
            "timestamp",
            "module",
            "severity",
            "processid",
            "threadid",
            "client",
            "message",
        ];
        const SYSLOG: &[&str] = &["timestamp", "hostname", "program", "processid", "message"];
        match self {
            LogFormat::CommonApacheLog => COMMON,
            LogFormat::CombinedApacheLog => COMBINED,
            LogFormat::ApacheErrorLog => ERROR_LOG,
            LogFormat::Syslog | LogFormat::Rfc3339Syslog => SYSLOG,
        }
    }
}

/// One entry of `dataProcessingOptions`, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessingOption {
    SingleLine {
        no_trim: bool,
        escape_new_line: bool,
    },
    CsvToJson {
        field_names: Vec<String>,
        /// A regex, as in Java `String.split`.
        delimiter: String,
        json_format: JsonFormat,
    },
    LogToJson {
        log_format: LogFormat,
        match_pattern: Option<String>,
        field_names: Option<Vec<String>>,
        json_format: JsonFormat,
    },
    AddMetadata {
        metadata: serde_json::Value,
        timestamp: bool,
        json_format: JsonFormat,
    },
    AddEc2Metadata {
        metadata_ttl: Duration,
        json_format: JsonFormat,
    },
    AddBrackets,
}
