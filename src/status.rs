//! The status snapshot: what `aws-kinesis-agent status` prints about the running agent.
//!
//! Owns: writing `status.json` next to the checkpoint database every few seconds (atomically:
//! a temporary file renamed over the old one), and reading and printing it. No network
//! listener is needed: the command reads the file and checks that the process in it lives.
//! Does not own: the counters ([`crate::metrics`]) or the acknowledged offsets
//! ([`crate::checkpoint`]) it reads; the agent wires it to both, so neither depends on it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::checkpoint::AckTracker;
use crate::metrics::FlowCounters;

/// How often the snapshot is rewritten. With 1,000 busy files, a snapshot every 2 s was 6 % of
/// the agent's CPU.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(5);
/// A snapshot older than this is from an agent that is no longer running.
pub const STALE_AFTER: Duration = Duration::from_secs(15);
/// File name, in the checkpoint database's directory.
/// Files listed per flow at most, those furthest behind: a flow of 100,000 files keeps
/// a snapshot of a few tens of KiB (listing every file was 20 MB of JSON every 5 s).
pub const FILES_LISTED: usize = 200;

pub const STATUS_FILE: &str = "status.json";

/// Where the snapshot of an agent whose checkpoints are at `checkpoint_file` lives.
pub fn status_path(checkpoint_file: &Path) -> PathBuf {
    checkpoint_file
        .parent()
        .unwrap_or(Path::new("."))
        .join(STATUS_FILE)
}

/// One flow as the snapshot sees it.
pub struct FlowStatus {
    pub id: String,
    pub destination: String,
    pub counters: Arc<FlowCounters>,
    pub acks: AckTracker,
}

fn unix_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The snapshot as JSON.
pub fn snapshot(flows: &[FlowStatus], started: SystemTime, running: bool) -> Value {
    let flows: Vec<Value> = flows
        .iter()
        .map(|f| {
            let c = &f.counters;
            // Computed from the files' acknowledged offsets, so the flow total and the lines
            // per file always agree.
            let summary = f.acks.files_summary(FILES_LISTED);
            let behind = summary.bytes_behind;
            let not_listed = summary.tracked - summary.listed.len();
            let files: Vec<Value> = summary
                .listed
                .into_iter()
                .map(|(info, acked)| {
                    json!({
                        "path": info.path.display().to_string(),
                        "file_id": info.id.to_string(),
                        "size": info.size,
                        "read_offset": info.read,
                        "acked_offset": acked,
                        "bytes_behind": info.size.saturating_sub(acked),
                    })
                })
                .collect();
            let last_error = c
                .last_error()
                .map(|(at, message)| json!({ "at_unix_ms": unix_ms(at), "message": message }));
            json!({
                "flow": f.id,
                "destination": f.destination,
                "records_parsed": FlowCounters::get(&c.records_parsed),
                "bytes_parsed": FlowCounters::get(&c.bytes_parsed),
                "records_sent": FlowCounters::get(&c.records_sent),
                "kinesis_records_sent": FlowCounters::get(&c.kinesis_records_sent),
                "bytes_sent": FlowCounters::get(&c.bytes_sent),
                "records_failed": FlowCounters::get(&c.record_send_errors),
                "service_errors": FlowCounters::get(&c.service_errors),
                "bytes_behind": behind,
                "files_behind": FlowCounters::get(&c.files_behind),
                "files_tracked": summary.tracked,
                "files_not_listed": not_listed,
                "files": files,
                "last_error": last_error,
            })
        })
        .collect();
    json!({
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "running": running,
        "started_unix_ms": unix_ms(started),
        "updated_unix_ms": unix_ms(SystemTime::now()),
        "flows": flows,
    })
}

/// Writes the snapshot atomically.
pub fn write(path: &Path, snapshot: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(snapshot).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

/// Why `status` found no running agent.
#[derive(Debug)]
pub enum NotRunning {
    NoSnapshot(PathBuf, std::io::Error),
    Stopped { pid: u64 },
    Stale { pid: u64, age: Duration },
}

impl std::fmt::Display for NotRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRunning::NoSnapshot(path, e) => write!(
                f,
                "the agent is not running (no status file {}: {e})",
                path.display()
            ),
            NotRunning::Stopped { pid } => {
                write!(f, "the agent is not running (process {pid} has stopped)")
            }
            NotRunning::Stale { pid, age } => {
                write!(
                    f,
                    "the agent is not running (process {pid} has not updated its status for {} s)",
                    age.as_secs()
                )
            }
        }
    }
}

/// Reads the snapshot and checks that its agent still runs.
pub fn read_running(path: &Path) -> Result<Value, NotRunning> {
    let text = std::fs::read(path).map_err(|e| NotRunning::NoSnapshot(path.to_path_buf(), e))?;
    let value: Value = serde_json::from_slice(&text)
        .map_err(|e| NotRunning::NoSnapshot(path.to_path_buf(), std::io::Error::other(e)))?;
    let pid = value["pid"].as_u64().unwrap_or(0);
    let alive = pid > 0 && Path::new(&format!("/proc/{pid}")).exists();
    if !alive || value["running"] != Value::Bool(true) {
        return Err(NotRunning::Stopped { pid });
    }
    let updated = value["updated_unix_ms"].as_u64().unwrap_or(0) as u128;
    let age = Duration::from_millis(unix_ms(SystemTime::now()).saturating_sub(updated) as u64);
    if age > STALE_AFTER {
        return Err(NotRunning::Stale { pid, age });
    }
    Ok(value)
}

/// The snapshot for a person.
pub fn render(value: &Value) -> String {
    let mut out = String::new();
    let now = unix_ms(SystemTime::now());
    let uptime = now.saturating_sub(value["started_unix_ms"].as_u64().unwrap_or(0) as u128) / 1000;
    let _ = writeln!(
        out,
        "aws-kinesis-agent {} running (pid {}), up {uptime} s",
        value["version"].as_str().unwrap_or("?"),
        value["pid"]
    );
    for flow in value["flows"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "\nflow {} -> {}",
            flow["flow"].as_str().unwrap_or("?"),
            flow["destination"].as_str().unwrap_or("?")
        );
        let _ = writeln!(
            out,
            "  records sent {}  parsed {}  failed {}  service errors {}  bytes behind {}",
            flow["records_sent"],
            flow["records_parsed"],
            flow["records_failed"],
            flow["service_errors"],
            flow["bytes_behind"]
        );
        if flow["kinesis_records_sent"].as_u64().unwrap_or(0) > 0 {
            let _ = writeln!(
                out,
                "  in {} Kinesis records (kplAggregation)",
                flow["kinesis_records_sent"]
            );
        }
        for file in flow["files"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {}  size {}  read {}  acknowledged {}  behind {}",
                file["path"].as_str().unwrap_or("?"),
                file["size"],
                file["read_offset"],
                file["acked_offset"],
                file["bytes_behind"]
            );
        }
        let not_listed = flow["files_not_listed"].as_u64().unwrap_or(0);
        if not_listed > 0 {
            let _ = writeln!(
                out,
                "  ... and {not_listed} more files (of {}; the {} furthest behind are listed)",
                flow["files_tracked"], FILES_LISTED
            );
        }
        match flow["last_error"].as_object() {
            Some(e) => {
                let ago = now.saturating_sub(
                    e.get("at_unix_ms").and_then(Value::as_u64).unwrap_or(0) as u128,
                ) / 1000;
                let message = e.get("message").and_then(Value::as_str).unwrap_or("?");
                let _ = writeln!(out, "  last error {ago} s ago: {message}");
            }
            None => {
                let _ = writeln!(out, "  last error: none");
            }
        }
    }
    out
}
