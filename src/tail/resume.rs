//! Where each file starts when the agent starts, given the stored checkpoints. No IO: the
//! caller supplies the file's facts and a way to fingerprint it.
//!
//! Rules (ARCHITECTURE "Decisions"):
//! - a file with a checkpoint (same device and inode, and the same first bytes when we stored
//!   a fingerprint) resumes at its offset, also when it was renamed while the agent was stopped;
//! - a flow with no checkpoint at all applies `initialPosition` to every file present at start;
//! - a flow that has checkpoints reads files it has no checkpoint for from their beginning (they
//!   appeared while the agent was stopped), except files the Java agent had already passed:
//!   older than its checkpointed file (Java rows carry no fingerprint and the Java agent never
//!   reads files older than its current one, so those were shipped before the switch).

use super::file::StartAt;
use crate::config::InitialPosition;

/// What the store holds for a flow, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub file_id: String,
    pub offset: u64,
    pub fingerprint: Option<String>,
    pub last_modified_ms: i64,
    /// The file's size when the checkpoint was saved.
    pub size: i64,
    /// The name the row is saved under.
    pub path: std::path::PathBuf,
}

/// Facts about a file found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub file_id: String,
    pub size: u64,
    pub mtime_ms: i64,
}

/// Why a file starts where it does (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Checkpoint,
    /// The checkpoint's file id matched but not its content (inode reused), or it was shorter.
    CheckpointDidNotMatch,
    InitialPosition,
    NewSinceLastRun,
    ShippedByJavaAgent,
    /// Found after start: the copy a copytruncate rotation made of a file being read.
    CopyOfTruncated,
    /// Found at start: a new file holding what a checkpointed file held, while that file now
    /// holds other content (copytruncate just before the agent stopped, or while it was
    /// stopped): it continues from that checkpoint.
    CopyOfCheckpointed,
    /// A checkpointed file renamed out of the pattern while the agent was stopped, found again
    /// by its device, inode and first bytes: its unread end is read, then it is let go of.
    RecoveredOutsidePattern,
}

/// A flow's stored checkpoints, indexed by file id: deciding where each of many files starts
/// looks its row up instead of scanning every row (20,000 files against 20,000 rows were 400
/// million comparisons at start).
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    rows: Vec<Stored>,
    by_id: std::collections::HashMap<String, usize>,
    /// The newest modification time among the Java agent's rows (they have no fingerprint).
    java_newest_ms: Option<i64>,
}

impl Checkpoints {
    pub fn new(rows: Vec<Stored>) -> Checkpoints {
        let by_id = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.file_id.clone(), i))
            .collect();
        let java_newest_ms = rows
            .iter()
            .filter(|r| r.fingerprint.is_none())
            .map(|r| r.last_modified_ms)
            .max();
        Checkpoints {
            rows,
            by_id,
            java_newest_ms,
        }
    }

    pub fn rows(&self) -> &[Stored] {
        &self.rows
    }

    pub fn by_id(&self, file_id: &str) -> Option<&Stored> {
        self.by_id.get(file_id).map(|&i| &self.rows[i])
    }
}

/// Decides where a file found at start begins. `fingerprint_like(stored)` must compute the
/// file's fingerprint over the same number of bytes as `stored` (see `tail::fingerprint`).
pub fn start_for(
    stored: &Checkpoints,
    found: &Found,
    initial: InitialPosition,
    fingerprint_like: impl Fn(&str) -> Option<String>,
) -> (StartAt, Reason) {
    if stored.rows.is_empty() {
        let start = match initial {
            InitialPosition::StartOfFile => StartAt::Offset(0),
            InitialPosition::EndOfFile => StartAt::EndOfFile,
        };
        return (start, Reason::InitialPosition);
    }
    if let Some(row) = stored.by_id(&found.file_id) {
        let same_content = match &row.fingerprint {
            Some(stored) => fingerprint_like(stored).as_deref() == Some(stored.as_str()),
            None => true,
        };
        if same_content && found.size >= row.offset {
            return (StartAt::Offset(row.offset), Reason::Checkpoint);
        }
        return (StartAt::Offset(0), Reason::CheckpointDidNotMatch);
    }
    if stored
        .java_newest_ms
        .is_some_and(|newest| found.mtime_ms < newest)
    {
        return (StartAt::Offset(found.size), Reason::ShippedByJavaAgent);
    }
    (StartAt::Offset(0), Reason::NewSinceLastRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, offset: u64, fp: Option<&str>, mtime: i64) -> Stored {
        Stored {
            file_id: id.into(),
            offset,
            fingerprint: fp.map(str::to_string),
            last_modified_ms: mtime,
            size: offset as i64,
            path: std::path::PathBuf::from("/logs/x"),
        }
    }
    fn found(id: &str, size: u64, mtime: i64) -> Found {
        Found {
            file_id: id.into(),
            size,
            mtime_ms: mtime,
        }
    }
    const EOF: InitialPosition = InitialPosition::EndOfFile;

    #[test]
    fn no_checkpoints_applies_initial_position() {
        assert_eq!(
            start_for(&Checkpoints::default(), &found("a", 10, 0), EOF, |_| None),
            (StartAt::EndOfFile, Reason::InitialPosition)
        );
        assert_eq!(
            start_for(
                &Checkpoints::default(),
                &found("a", 10, 0),
                InitialPosition::StartOfFile,
                |_| None
            ),
            (StartAt::Offset(0), Reason::InitialPosition)
        );
    }

    #[test]
    fn checkpointed_file_resumes_when_content_matches() {
        let rows = [row("(dev=1,ino=2)", 40, Some("16:abc"), 5)];
        let ok = |fp: &str| Some(fp.to_string());
        assert_eq!(
            start_for(
                &Checkpoints::new(rows.to_vec()),
                &found("(dev=1,ino=2)", 50, 6),
                EOF,
                ok
            ),
            (StartAt::Offset(40), Reason::Checkpoint)
        );
        // Inode reused by a different file: read it from the start.
        let other = |_: &str| Some("16:zzz".to_string());
        assert_eq!(
            start_for(
                &Checkpoints::new(rows.to_vec()),
                &found("(dev=1,ino=2)", 50, 6),
                EOF,
                other
            ),
            (StartAt::Offset(0), Reason::CheckpointDidNotMatch)
        );
        // Shorter than the checkpoint: truncated while stopped.
        assert_eq!(
            start_for(
                &Checkpoints::new(rows.to_vec()),
                &found("(dev=1,ino=2)", 10, 6),
                EOF,
                ok
            ),
            (StartAt::Offset(0), Reason::CheckpointDidNotMatch)
        );
    }

    #[test]
    fn files_new_since_last_run_start_at_zero_even_with_end_of_file() {
        let rows = [row("(dev=1,ino=2)", 40, Some("16:abc"), 5)];
        assert_eq!(
            start_for(
                &Checkpoints::new(rows.to_vec()),
                &found("(dev=1,ino=9)", 70, 9),
                EOF,
                |_| None
            ),
            (StartAt::Offset(0), Reason::NewSinceLastRun)
        );
    }

    #[test]
    fn files_older_than_the_java_agents_current_file_were_shipped() {
        let rows = [row("(dev=1,ino=2)", 40, None, 1000)];
        assert_eq!(
            start_for(
                &Checkpoints::new(rows.to_vec()),
                &found("(dev=1,ino=3)", 70, 500),
                EOF,
                |_| None
            ),
            (StartAt::Offset(70), Reason::ShippedByJavaAgent)
        );
        assert_eq!(
            start_for(
                &Checkpoints::new(rows.to_vec()),
                &found("(dev=1,ino=4)", 70, 2000),
                EOF,
                |_| None
            ),
            (StartAt::Offset(0), Reason::NewSinceLastRun)
        );
        assert_eq!(
            start_for(
                &Checkpoints::new(rows.to_vec()),
                &found("(dev=1,ino=2)", 70, 2000),
                EOF,
                |_| None
            ),
            (StartAt::Offset(40), Reason::Checkpoint)
        );
    }
}
