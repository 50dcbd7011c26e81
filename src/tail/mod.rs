//! Tailing: every file matching a flow's pattern, read to records, handed to the batcher.
//!
//! Owns: the per-flow loop that rescans the pattern, follows files by identity across renames,
//! reads each tracked file in turn (fairly, a bounded amount per turn), and lets go of a file only
//! after reading it to its end through the handle already held. Files are read with blocking
//! calls inside the task: regular-file reads from the page cache are short, and `tokio::fs`
//! would add a thread hop per read. Where each file starts when the agent starts, given the
//! stored checkpoints, is the tailer's decision too ([`resume`]). Does not own: the shared
//! nouns ([`crate::record`]: `Piece`, `FileId`, `Fingerprint`), acknowledgements
//! ([`crate::checkpoint`]).

pub mod budget;
pub mod compressed;
pub mod cost;
pub mod file;
pub mod fingerprint;
mod read_at;
pub mod resume;
pub mod splitter;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::checkpoint::AckTracker;
use crate::config::{FlowPlan, InitialPosition};
use crate::discovery::watch::{Changes, DirWatcher, WrittenPaths};
use crate::discovery::{Listed, PathMatcher};
use crate::metrics::Events;
use crate::process::{FileLines, FlowRecords, DEFAULT_MULTI_LINE_FLUSH_INTERVAL};
use crate::record::{Chunk, FileId, FileRef, Record};
use budget::Descriptors;
use cost::Cost;
use file::{LineState, Reopened, StartAt, Truncation};
use fingerprint::{Candidate, Likeness};
use resume::{Checkpoints, Found, Reason, Stored};
use splitter::LineSplitter;

/// A tailed file as this tailer keeps it: with its header and multi-line state.
type TailedFile = file::TailedFile<FileLines>;

impl LineState for FileLines {
    fn is_open(&self) -> bool {
        FileLines::is_open(self)
    }
    fn headers_done(&self) -> bool {
        FileLines::headers_done(self)
    }
}

/// Bytes read from one file per turn before moving to the next file. Also what one file adds to
/// a record chunk before it is handed on: with 1 MiB, a backlog kept ~3 MiB more of read
/// blocks alive between the tailer and the batcher.
const READ_BUDGET_PER_TURN: usize = 256 * 1024;

/// Records of one pass go to the batcher together, in chunks of about this many bytes: one
/// hand-over (and one wake-up of the batcher) per pass rather than per file read.
const CHUNK_BYTES: usize = 256 * 1024;

/// With a working filesystem watch, how often every file is looked at (a full pass) even if no
/// event named it; between full passes only the files the events name are read.
const IDLE_POLL_WITH_WATCH: Duration = Duration::from_secs(1);

/// Passes started by events are at least this far apart (the shortest gap): a burst of writes
/// to many files is read in a few passes instead of one wake-up per write. A write after a
/// quiet spell is read at once.
const MIN_EVENT_PASS_INTERVAL: Duration = Duration::from_millis(25);

/// Write events between two looks at every file (about a second) below which following them
/// costs too little to be worth reading on a timer instead (1,000 events are well under 1 ms):
/// a slowly written file keeps being read as soon as it is written.
const BUSY_WRITES: usize = 1000;

/// How often the same problem with the same path is logged again.
const COMPLAINT_INTERVAL: Duration = Duration::from_secs(60);

/// How long a new file that looks like a copy of a tracked file waits for that file to be
/// truncated (copytruncate) before it is taken for an independent file and read from 0. The
/// wait restarts while the new file grows (the copy is still being written).
const COPY_WAIT: Duration = Duration::from_secs(5);

/// However it grows, a held file is read (from 0) after this long: a live file that happens to
/// start with the same kilobyte as another must not wait forever.
const COPY_MAX_HOLD: Duration = Duration::from_secs(60);

/// How long after a truncation a compressed copy of the old content is looked for
/// (`compress` without `delaycompress`: logrotate copies, truncates, then compresses the copy
/// and removes it, which can take a while for a large file).
const COMPRESSED_WAIT: Duration = Duration::from_secs(120);

/// A compressed file is decompressed once it has not changed for this long (the compressor
/// has finished writing it).
const COMPRESSED_SETTLE: Duration = Duration::from_secs(1);

/// A file read to its end and not written for this long is closed, whatever the budget (a
/// rotated file read to its end holds no descriptor); a write event or a listing that finds it
/// changed opens it again.
pub const IDLE_CLOSE: Duration = Duration::from_secs(300);

/// Files closed at once when the descriptor budget is short: a batch, so a start with many more
/// files than descriptors does not pick one file to close per file opened.
const CLOSE_BATCH: usize = 64;

/// With a working watch, the periodic listing of the pattern and the look at every open file
/// each come at most this many times their own cost apart (a listing of 100,000 files that
/// takes 150 ms runs every 30 s, 0.5 % of a core): the watch names what changes, and these are
/// the safety net. Never more often than configured (`maxTimeBetweenFileTrackerRefreshMillis`)
/// or once a second.
const SAFETY_NET_COST_FACTOR: u32 = 200;

/// The longest gap between two listings a working watch leaves (a listing that takes seconds,
/// on a slow network filesystem, then costs at most a few per cent of a core).
const MAX_SAFETY_NET_INTERVAL: Duration = Duration::from_secs(600);

/// The longest gap between two looks at every open file with a working watch.
const MAX_FULL_PASS_INTERVAL: Duration = Duration::from_secs(60);

/// Listings asked for by events (files created, renamed, removed) come at most this many times
/// their cost apart: a directory where files come and go all the time costs at most a tenth of
/// a core to follow.
const EVENT_RESCAN_COST_FACTOR: u32 = 10;

/// The list of waiting files is made smaller when this much of its room is unused (about 1
/// MiB).
const WAITING_SLACK: usize = 1024 * 1024 / std::mem::size_of::<Waiting>();

/// The same for the list of new files a listing found (about 1 MiB).
const LIST_SLACK: usize = 1024 * 1024 / std::mem::size_of::<(PathBuf, Listed)>();

/// Files a pass opens (new ones, and closed ones that changed) even when the acknowledgement
/// tracker has no room for more descriptions ([`AckTracker::room_to_describe`]).
const NEW_FILES_PER_PASS_AT_LEAST: usize = 32;

/// How often running out of descriptors is said again.
const DESCRIPTOR_WARNING_INTERVAL: Duration = Duration::from_secs(3600);

/// A file found by a listing that waits for a descriptor before it is opened.
#[derive(Debug)]
struct Waiting {
    path: PathBuf,
    id: FileId,
    start: StartAt,
    reason: Reason,
    original: Option<FileRef>,
    /// Its modification time when found: the oldest change is opened first.
    mtime_ms: i64,
}

/// A truncated file whose old content may turn up compressed.
#[derive(Debug)]
struct PendingCompressed {
    /// The number the file had before the truncation.
    old: FileRef,
    truncation: Truncation,
    at: Instant,
    /// Wall-clock time of the truncation: archives of the old content are no older than a
    /// minute before it.
    wall: std::time::SystemTime,
    /// Stands for the old content in the checkpoints until a copy takes over, so a crash in
    /// between can find the compressed copy at the next start.
    placeholder: FileRef,
}

/// What a read pass did.
#[derive(Debug, Default)]
struct Pass {
    /// A file has more to read now (its read stopped at the budget).
    more: bool,
    /// Files that had new data.
    with_data: usize,
}

/// A new file held back because its first bytes match a tracked file's.
#[derive(Debug)]
struct Held {
    path: PathBuf,
    id: FileId,
    /// When it last grew.
    since: Instant,
    first_seen: Instant,
    size: u64,
}

/// What a new file may be a copy of.
enum CopyOf {
    /// A complete copy of a file truncated a moment ago (its old number): it continues where
    /// reading the original stopped.
    Truncated(u64, FileRef),
    /// It starts like a tracked or truncated file (or like a prefix of one): hold it until
    /// that is decided.
    Maybe,
}

pub struct Tailer {
    name: String,
    flow: Arc<FlowPlan>,
    matcher: PathMatcher,
    watcher: Option<DirWatcher>,
    /// What the watch said since the last pass.
    changes: Changes,
    files: Vec<TailedFile>,
    next_ref: u64,
    /// The flow's stored checkpoints, used for the files found by the first scan.
    stored: Checkpoints,
    /// Open files allowed over all flows.
    budget: Descriptors,
    /// New files waiting for a descriptor.
    waiting: Vec<Waiting>,
    /// How many of this flow's files the budget was last told wait for a descriptor.
    waiting_said: usize,
    /// When running out of descriptors was last said.
    descriptors_warned: Option<Instant>,
    /// What a listing costs (its wall time on the tailer's thread); the first, which also
    /// opens every file and finds its checkpoint, is not counted.
    rescan_cost: Cost,
    /// What a look at every open file costs.
    full_pass_cost: Cost,
    /// Files let go of whose last batches may still be in flight.
    /// Files let go of, with the end of their last record: forgotten once acknowledged there.
    closed: Vec<(FileRef, u64)>,
    /// New files whose first bytes match a tracked file: maybe its copytruncate copy.
    held: Vec<Held>,
    /// Recent truncations, to recognise a copy that is found after its original was truncated.
    truncations: Vec<(FileRef, Truncation, Instant)>,
    /// Truncations whose old content has no copy yet: it may turn up compressed.
    pending_compressed: Vec<PendingCompressed>,
    /// Compressed files already compared (name, size, mtime) and found to be no copy.
    not_copies: HashSet<(PathBuf, u64, i64)>,
    /// Compressed files that match, as last seen (size, mtime), waiting to settle.
    settling: HashMap<PathBuf, (u64, i64, Instant)>,
    /// File ids resumed from their checkpoint by the first scan.
    resumed: HashSet<String>,
    /// Where compressed rotations are decompressed to.
    scratch_dir: PathBuf,
    /// A line splitter with the flow's limits, copied for each file opened (and opened again
    /// without its reading state).
    template: LineSplitter,
    first_scan: bool,
    last_scan: Option<Instant>,
    /// When every file was last looked at, with its checkpoint information refreshed.
    last_full_pass: Option<Instant>,
    /// Most files are written all the time: every file is read every
    /// [`Tailer::event_pass_interval`] and write events are not watched (see
    /// [`Tailer::choose_mode`]).
    busy: bool,
    /// When the last pass that read every file began.
    last_all_read: Option<Instant>,
    complaints: HashMap<PathBuf, Instant>,
    counters: Arc<dyn Events>,
    acks: AckTracker,
    out: mpsc::Sender<Chunk>,
    /// Header skipping, multi-line grouping and converters.
    records: Arc<FlowRecords>,
    last_processing_warning: Option<Instant>,
}

impl Tailer {
    pub fn new(
        flow: Arc<FlowPlan>,
        matcher: PathMatcher,
        counters: Arc<dyn Events>,
        acks: AckTracker,
        out: mpsc::Sender<Chunk>,
        stored: Vec<Stored>,
        records: Arc<FlowRecords>,
    ) -> Tailer {
        let template = splitter_for(&flow);
        Tailer {
            name: format!("FileTailer[{}]", flow.id),
            flow,
            matcher,
            watcher: None,
            changes: Changes::default(),
            files: Vec::new(),
            next_ref: 0,
            stored: Checkpoints::new(stored),
            budget: Descriptors::unlimited(),
            waiting: Vec::new(),
            waiting_said: 0,
            descriptors_warned: None,
            rescan_cost: Cost::default(),
            full_pass_cost: Cost::default(),
            closed: Vec::new(),
            held: Vec::new(),
            truncations: Vec::new(),
            pending_compressed: Vec::new(),
            not_copies: HashSet::new(),
            settling: HashMap::new(),
            resumed: HashSet::new(),
            scratch_dir: std::env::temp_dir(),
            template,
            first_scan: true,
            last_scan: None,
            last_full_pass: None,
            busy: false,
            last_all_read: None,
            complaints: HashMap::new(),
            counters,
            acks,
            out,
            records,
            last_processing_warning: None,
        }
    }

    /// Decompresses compressed rotations into `dir` (the agent's state directory).
    pub fn with_scratch_dir(mut self, dir: PathBuf) -> Tailer {
        self.scratch_dir = dir;
        self
    }

    /// Opens files within `budget`, shared by every flow.
    pub fn with_descriptors(mut self, budget: Descriptors) -> Tailer {
        self.budget = budget;
        self
    }

    /// Max bytes of one record's data.
    fn max_record(&self) -> usize {
        self.flow.max_record_data_bytes()
    }

    /// How far apart passes started by events are, at least. Under a steady stream of writes a
    /// file is read at most this often, so each read takes several lines: half of
    /// `maxBufferAgeMillis` (its minimum, 1 s, gives 500 ms), at most the full-pass interval.
    /// The records keep the time their write was seen, and the batch age counts from there, so
    /// the wait costs no latency against `maxBufferAgeMillis`. (The Java agent reads every
    /// `minTimeBetweenFilePollsMillis`, 100 ms, and counts the age from the read.)
    fn event_pass_interval(&self) -> Duration {
        (self.flow.max_buffer_age / 2).clamp(MIN_EVENT_PASS_INTERVAL, IDLE_POLL_WITH_WATCH)
    }

    /// Runs until `shutdown`, then returns; dropping `out` tells the batcher no more records come.
    pub async fn run(mut self, shutdown: CancellationToken) {
        // When the last wait ended: what the next pass reads was seen then (or earlier).
        let mut woke = None;
        // The last pass stopped at a file's read budget.
        let mut continuing = false;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            self.ensure_watch();
            if let Some(w) = &mut self.watcher {
                w.take(&mut self.changes);
            }
            let now = Instant::now();
            let since_scan = self.last_scan.map(|t| now.duration_since(t));
            let due = since_scan.is_none_or(|d| d >= self.rescan_interval());
            // Events ask for a listing at once, unless listings cost much (many files).
            let asked = self.changes.rescan
                && since_scan
                    .is_none_or(|d| d >= self.rescan_cost.get() * EVENT_RESCAN_COST_FACTOR);
            let rescan = asked || due;
            if rescan {
                self.listing();
            }
            // Taken before reading: a write during the pass is named again for the next one.
            let written = std::mem::take(&mut self.changes.written);
            // Every open file is looked at, its checkpoint information refreshed, about once a
            // second (less often when that costs much: many open files).
            let observe = rescan
                || self.watcher.is_none()
                || self
                    .last_full_pass
                    .is_none_or(|t| now.duration_since(t) >= self.full_pass_interval());
            if observe {
                self.last_full_pass = Some(now);
            }
            // Busy: every file, except to go on with files whose read stopped at its budget.
            let only = (!observe && (!self.busy || continuing)).then_some(&written);
            let woke_at = woke.take();
            let seen = if self.busy {
                // Without write events, what a file holds now was written after the last pass
                // that read every file.
                self.last_all_read.unwrap_or(now)
            } else {
                woke_at.unwrap_or(now)
            };
            self.mark_written(&written);
            let started = std::time::Instant::now();
            let pass = tokio::select! {
                pass = self.read_pass(only, seen, observe) => pass,
                _ = shutdown.cancelled() => break,
            };
            if observe {
                self.update_gauges();
            }
            if only.is_none() {
                self.full_pass_cost.record(started.elapsed());
                self.last_all_read = Some(now);
                self.choose_mode(pass.with_data, observe);
            }
            continuing = pass.more;
            if pass.more {
                // Let other tasks run between large reads.
                tokio::task::yield_now().await;
                continue;
            }
            let idle = if self.watcher.is_none() {
                self.flow.min_time_between_file_polls
            } else if self.busy {
                self.event_pass_interval()
            } else {
                IDLE_POLL_WITH_WATCH
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                waited = wait_for_events(&mut self.watcher, &mut self.changes) => {
                    if let Err(e) = waited {
                        warn!("{}: watching {} for changes failed: {e}; watching it again.", self.name, self.matcher.base_dir().display());
                        self.watcher = None;
                    }
                }
                _ = tokio::time::sleep(idle) => {}
            }
            // What the next pass finds was written after the wait began: it would have been
            // named by an event taken before this pass otherwise.
            woke = Some(Instant::now());
            // Events that come during this wait are gathered for the same pass.
            let next = now + self.event_pass_interval();
            if Instant::now() < next {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep_until(next) => {}
                }
            }
        }
        debug!("{}: stopped reading", self.name);
    }

    /// How long apart the periodic listings are: `maxTimeBetweenFileTrackerRefreshMillis`,
    /// or, with a working watch, [`SAFETY_NET_COST_FACTOR`] times what a listing costs when
    /// that is longer.
    fn rescan_interval(&self) -> Duration {
        let configured = self.flow.max_time_between_rescans;
        if self.watcher.is_none() {
            return configured;
        }
        configured
            .max((self.rescan_cost.get() * SAFETY_NET_COST_FACTOR).min(MAX_SAFETY_NET_INTERVAL))
    }

    /// How long apart the looks at every open file are, with a working watch: a second, or
    /// [`SAFETY_NET_COST_FACTOR`] times what a look costs when that is longer.
    fn full_pass_interval(&self) -> Duration {
        // The cost includes waits for the batcher (a backlog): bounded, so a pass that waited
        // does not put the next one off for long.
        (self.full_pass_cost.get() * SAFETY_NET_COST_FACTOR)
            .clamp(IDLE_POLL_WITH_WATCH, MAX_FULL_PASS_INTERVAL)
    }

    /// Files named by write events are read at the next pass (closed ones opened again for
    /// it), and not closed before.
    fn mark_written(&mut self, written: &WrittenPaths) {
        if written.is_empty() {
            return;
        }
        for f in &mut self.files {
            if written.contains(f.path.as_os_str()) {
                f.pending = true;
            }
        }
    }

    /// After a pass over every file (`with_data` of them had new data), switches between
    /// following write events and reading every file on a timer ([`busy_after`]).
    fn choose_mode(&mut self, with_data: usize, observe: bool) {
        let interval = self.event_pass_interval();
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        let files = self.files.len();
        // Write events are counted from one look at every file to the next.
        let writes = (!self.busy && observe).then(|| std::mem::take(&mut self.changes.writes));
        // Closed files (descriptor budget) are only known to change through write events.
        let all_open = self.files.iter().all(TailedFile::is_open);
        let busy = busy_after(self.busy, files, with_data, writes) && all_open;
        if busy == self.busy {
            return;
        }
        if busy {
            debug!("{}: {with_data} of {files} files written since the last look ({} writes): reading every file every {interval:?} instead of following write events.", self.name, writes.unwrap_or(0));
        } else {
            debug!(
                "{}: {with_data} of {files} files had new data: following write events again.",
                self.name
            );
            self.changes.writes = 0;
        }
        self.busy = busy;
        watcher.watch_writes(!busy);
    }

    /// The watch and the first listing, before the agent says it is ready: a file created
    /// after `systemctl start` returns is then a new file, read from its beginning, never one
    /// found at start and read from its end (`initialPosition` `END_OF_FILE`).
    pub fn start_watching(&mut self) {
        self.ensure_watch();
        self.listing();
    }

    /// One listing of the pattern, its cost recorded (not the first one's).
    fn listing(&mut self) {
        self.changes.rescan = false;
        let first = self.first_scan;
        let started = std::time::Instant::now();
        self.rescan();
        if !first {
            self.rescan_cost.record(started.elapsed());
        }
    }

    fn ensure_watch(&mut self) {
        if self.watcher.as_ref().is_some_and(|w| w.is_alive()) {
            return;
        }
        self.watcher = None;
        let dir = self.matcher.base_dir();
        if let Ok(w) = DirWatcher::start(dir, self.matcher.is_recursive()) {
            self.watcher = Some(w);
            // A new watch follows writes, and anything created before it started is only seen
            // by a scan.
            self.busy = false;
            self.changes.rescan = true;
        }
    }

    /// Lists the pattern and reconciles the tracked files with it.
    fn rescan(&mut self) {
        for f in &mut self.files {
            f.gone = true;
        }
        let first_scan = std::mem::replace(&mut self.first_scan, false);
        // The tracked files by identity: their indexes sorted by it (4 bytes a file; a map of
        // 100,000 identities took 3.3 MB at every listing).
        let mut tracked: Vec<u32> = (0..self.files.len() as u32).collect();
        tracked.sort_unstable_by_key(|&i| self.files[i as usize].id);
        // Files already waiting for a descriptor or held back are not listed again: a listing
        // while 100,000 files waited at start kept a second list of them all, and the room
        // reserved for them doubled the waiting list (17 MB, the start's heap peak).
        let waiting: HashSet<FileId> = self
            .waiting
            .iter()
            .map(|w| w.id)
            .chain(self.held.iter().map(|h| h.id))
            .collect();
        // Tracked files are reconciled as they are listed; only new ones are kept, to be
        // taken in path order.
        let mut new_files = Vec::new();
        let problems = {
            let files = &mut self.files;
            let acks = &self.acks;
            let name = &self.name;
            self.matcher.scan_each(|path, meta| {
                let id = listed_id(&meta);
                let found = tracked
                    .binary_search_by_key(&id, |&i| files[i as usize].id)
                    .map(|at| tracked[at] as usize);
                match found {
                    Ok(i) => still_listed(&mut files[i], path, &meta, acks, name),
                    Err(_) if waiting.contains(&id) => {}
                    Err(_) => new_files.push((path, meta)),
                }
            })
        };
        drop(tracked);
        drop(waiting);
        self.last_scan = Some(Instant::now());
        for (path, err) in &problems.errors {
            let msg = if err.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "{}: cannot list {}: permission denied for {}: {}.",
                    self.name,
                    path.display(),
                    crate::sys::current_user(),
                    crate::sys::permission_fix(path, "rx")
                )
            } else if crate::sys::too_many_open_files_fix(err).is_some() {
                self.warn_descriptors(path, err);
                continue;
            } else {
                format!(
                    "{}: cannot list {}: {err}; files already tailed there keep shipping, and the listing is retried.",
                    self.name,
                    path.display()
                )
            };
            self.complain(path, msg);
        }
        for dir in &problems.directories {
            let msg = format!(
                "{}: {} matches the file pattern but is a directory; skipped.",
                self.name,
                dir.display()
            );
            self.complain(dir, msg);
        }
        // Sorted by path from the last: taken from the end, in path order, and let go of as
        // they are (at start, the list of 100,000 new files, their starts and the waiting list
        // made of them were all held at once).
        // A file under two names (hard links) is one file: tailed once, under its first name.
        if new_files.len() > 1 {
            new_files
                .sort_unstable_by(|a, b| (listed_id(&a.1), &a.0).cmp(&(listed_id(&b.1), &b.0)));
            new_files.dedup_by_key(|(_, meta)| listed_id(meta));
        }
        new_files.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        // Most wait for a descriptor when there are many: room for all at once (doubling a
        // list of 100,000 held both copies).
        self.waiting.reserve_exact(new_files.len());
        // At start every file's start is decided first: a copy continues from the checkpoint
        // of the file it was copied from, whichever of the two is listed first.
        let mut starts = Vec::new();
        if first_scan {
            starts = new_files
                .iter()
                .map(|(path, meta)| self.start_at_launch(path, meta, listed_id(meta)))
                .collect();
            self.continue_copies_at_launch(&new_files, &mut starts);
        }
        while let Some((path, meta)) = new_files.pop() {
            let i = new_files.len();
            if new_files.capacity() - i > LIST_SLACK {
                new_files.shrink_to_fit();
                starts.truncate(i + 1);
                starts.shrink_to_fit();
            }
            let id = listed_id(&meta);
            let mut original = None;
            let (start, reason) = if let Some(&(start, reason)) = starts.get(i) {
                if reason == Reason::Checkpoint {
                    self.resumed.insert(id.to_string());
                }
                (start, reason)
            } else {
                match self.copy_source(&path, meta.size) {
                    Some(CopyOf::Truncated(records_end, old)) => {
                        original = Some(old);
                        (StartAt::Offset(records_end), Reason::CopyOfTruncated)
                    }
                    Some(CopyOf::Maybe) => {
                        debug!("{}: {} starts like a tracked file; waiting to see whether it is a copytruncate copy.", self.name, path.display());
                        self.held.push(Held {
                            path,
                            id,
                            since: Instant::now(),
                            first_seen: Instant::now(),
                            size: meta.size,
                        });
                        continue;
                    }
                    // Every other file that appears after start is read from its beginning.
                    None => (StartAt::Offset(0), Reason::NewSinceLastRun),
                }
            };
            self.open_listed(path, &meta, start, reason, original);
        }
        if first_scan {
            self.recover_outside_pattern();
            self.drop_placeholder_rows();
        }
        // A listing that failed (a directory it could not read, too many open files, an I/O
        // error) says nothing about the files it did not show: a tracked file under the pattern
        // is let go of only when its own path no longer leads to it (deleted, renamed out,
        // replaced). Files read from outside the pattern are let go of at their end.
        for f in self.files.iter_mut().filter(|f| f.gone) {
            let there = still_at(&f.path, f.id);
            f.gone = !(there && self.matcher.matches(&f.path));
            // A closed file let go of is opened again to be read to its end first.
            f.pending |= f.gone && !f.is_open();
            if there || f.renamed_away {
                continue;
            }
            // Its name no longer leads to it. Renamed within the pattern after the listing
            // was made: it is still tailed under its new name. Otherwise its checkpoint row,
            // keyed by its name, which another file may take now (create rotation), moves to
            // the name it has (renamed out of the pattern) or to one of its own (deleted: its
            // content may turn up compressed), and it is read to its end.
            match name_by_inode(&f.path, self.flow.rotated_file_directory.as_deref(), f.id) {
                Some(name) if self.matcher.matches(&name) => {
                    info!(
                        "{}: {} was renamed to {}; still reading it.",
                        self.name,
                        f.path.display(),
                        name.display()
                    );
                    f.path = name.into();
                    f.gone = false;
                }
                found => {
                    let name = found.unwrap_or_else(|| away_name(&f.path, f.id));
                    debug!(
                        "{}: {} is now {}; reading it to its end.",
                        self.name,
                        f.path.display(),
                        name.display()
                    );
                    f.path = name.into();
                    f.renamed_away = true;
                }
            }
            self.acks.observe(f.file_ref, f.info());
        }
    }

    /// At start: checkpointed files that the pattern no longer matches (renamed out of it while
    /// the agent was stopped, e.g. `app.log` -> `app.log.1` under an exact `filePattern`) are
    /// looked for among the other regular files of the pattern's directory, by device and
    /// inode, and by their first bytes when the checkpoint has them. One that has more than its
    /// checkpoint's offset is read from there to its end, then let go of. Compressed copies are
    /// not read (they are other files).
    fn recover_outside_pattern(&mut self) {
        let mut missing: Vec<Stored> = self
            .stored
            .rows()
            .iter()
            .filter(|r| !self.resumed.contains(&r.file_id))
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        let entries: Vec<PathBuf> = self
            .search_dirs()
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flat_map(|entries| entries.flatten().map(|e| e.path()))
            .collect();
        for path in entries {
            if self.matcher.matches(&path) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let id = FileId::of(&meta);
            let Some(row) = missing.iter().find(|r| r.file_id == id.to_string()) else {
                continue;
            };
            let same_content = match &row.fingerprint {
                Some(stored) => std::fs::File::open(&path)
                    .ok()
                    .and_then(|f| fingerprint::like(&f, stored))
                    .is_some_and(|now| &now == stored),
                None => true,
            };
            if !same_content || meta.len() <= row.offset {
                continue;
            }
            info!(
                "{}: recovered {} ({} bytes after its checkpoint at offset {}): its file was renamed out of the pattern while the agent was stopped.",
                self.name,
                path.display(),
                meta.len() - row.offset,
                row.offset
            );
            let before = self.files.len();
            self.open(
                &path,
                StartAt::Offset(row.offset),
                Reason::RecoveredOutsidePattern,
                None,
            );
            if self.files.len() > before {
                if let Some(f) = self.files.last_mut() {
                    f.gone = true;
                }
            }
            let found = row.file_id.clone();
            missing.retain(|r| r.file_id != found);
        }
        self.recover_compressed_checkpoints(missing);
    }

    /// At start, after the recoveries: rows that stood for the old content of truncated files
    /// have served their purpose (their compressed copy, if any, was just found).
    fn drop_placeholder_rows(&mut self) {
        for row in self.stored.rows() {
            if FileId::is_placeholder_text(&row.file_id) {
                self.acks.drop_row(row.path.clone());
            }
        }
    }

    /// At start: checkpointed files found nowhere whose content may have been compressed while
    /// the agent was stopped (create + compress, or copytruncate + compress, during a crash). A
    /// recent compressed file in the pattern's directory whose decompressed first bytes have the
    /// checkpoint's fingerprint is read from the checkpoint's offset. Only checkpoints that may
    /// have unread bytes are looked for (offset short of the size at the last save, or an archive
    /// modified after it), and only archives modified since a minute before that save.
    fn recover_compressed_checkpoints(&mut self, rows: Vec<Stored>) {
        // The Java agent's rows have no fingerprint: no content to recognise an archive by.
        let rows: Vec<(Stored, String)> = rows
            .into_iter()
            .filter_map(|r| r.fingerprint.clone().map(|f| (r, f)))
            .collect();
        let Some(oldest) = rows.iter().map(|(r, _)| r.last_modified_ms).min() else {
            return;
        };
        const SLACK_MS: i64 = 60_000;
        let since = std::time::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(oldest - SLACK_MS).unwrap_or(0));
        let candidates = self.compressed_candidates(since);
        if candidates.is_empty() {
            return;
        }
        for (row, stored) in rows {
            let Some(covered) = fingerprint::covered(&stored) else {
                continue;
            };
            for (path, codec, _, mtime) in &candidates {
                let recent = *mtime >= row.last_modified_ms - SLACK_MS;
                let unread = (row.offset as i64) < row.size || *mtime > row.last_modified_ms;
                if !recent || !unread {
                    continue;
                }
                let Ok(head) = compressed::head(path, *codec, covered as usize) else {
                    continue;
                };
                if head.len() as u64 != covered || fingerprint::of_head(&head).to_string() != stored
                {
                    continue;
                }
                if self.open_decompressed(path, *codec, row.offset, None) {
                    break;
                }
            }
        }
    }

    /// Starts tracking `path` at `start`; a copytruncate copy names the `original` it continues.
    /// Without a descriptor to spare (see [`Descriptors`]) the file waits for one, behind the
    /// files already waiting.
    fn open(&mut self, path: &Path, start: StartAt, reason: Reason, original: Option<FileRef>) {
        let permit = if self.waiting.is_empty() {
            self.take_permit()
        } else {
            None
        };
        match permit {
            Some(permit) => self.open_with(path, start, reason, original, permit),
            None => self.wait_for_descriptor(path, start, reason, original),
        }
    }

    /// Like [`Tailer::open`] for a new file of a listing, which is not waiting yet (a listing
    /// leaves those out): it joins the waiting list as listed, without another `stat` or a
    /// look through the list (100,000 files at start took 3.6 s of CPU that way).
    fn open_listed(
        &mut self,
        path: PathBuf,
        meta: &Listed,
        start: StartAt,
        reason: Reason,
        original: Option<FileRef>,
    ) {
        if self.waiting.is_empty() {
            if let Some(permit) = self.take_permit() {
                self.open_with(&path, start, reason, original, permit);
                return;
            }
        }
        self.waiting.push(Waiting {
            path,
            id: listed_id(meta),
            start,
            reason,
            original,
            mtime_ms: meta.mtime_ms,
        });
    }

    fn wait_for_descriptor(
        &mut self,
        path: &Path,
        start: StartAt,
        reason: Reason,
        original: Option<FileRef>,
    ) {
        let Ok(meta) = std::fs::metadata(path) else {
            return; // gone already: a listing finds it if it comes back
        };
        let id = FileId::of(&meta);
        if self.waiting.iter().any(|w| w.id == id) {
            return;
        }
        self.waiting.push(Waiting {
            path: path.to_path_buf(),
            id,
            start,
            reason,
            original,
            mtime_ms: file::mtime_ms(&meta),
        });
    }

    /// A permit for one more open file: from the budget, or by closing idle files of this flow.
    fn take_permit(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Some(permit) = self.budget.try_take() {
            return Some(permit);
        }
        self.close_idle(CLOSE_BATCH, Duration::ZERO);
        self.budget.try_take()
    }

    /// Closes up to `n` files read to their end that have not had data for `quiet`, least
    /// recently written first; returns how many.
    fn close_idle(&mut self, n: usize, quiet: Duration) -> usize {
        let now = Instant::now();
        let mut idle: Vec<(Instant, usize)> = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.is_open()
                    && f.holds_permit()
                    && !f.more
                    && !f.gone
                    && !f.pending
                    && !f.lines().is_some_and(|l| l.is_open())
            })
            .filter_map(|(i, f)| Some((f.last_data()?, i)))
            .filter(|(last, _)| now.duration_since(*last) >= quiet)
            .collect();
        if idle.len() > n {
            idle.select_nth_unstable(n);
            idle.truncate(n);
        }
        let mut closed = 0;
        for &(_, i) in &idle {
            let f = &mut self.files[i];
            // Size and time as of closing: a listing that finds them changed opens it again.
            if let Err(e) = f.refresh_info() {
                debug!("{}: cannot stat {}: {e}", self.name, f.path.display());
            }
            // Written since it was read (no event taken for it yet): read it first.
            if !f.at_end() {
                f.pending = true;
                continue;
            }
            f.close();
            closed += 1;
        }
        if closed > 0 {
            debug!(
                "{}: closed {closed} idle files ({} open over all flows, budget {}).",
                self.name,
                self.budget.in_use(),
                self.budget.limit()
            );
        }
        closed
    }

    /// Opens closed files that changed and new files that wait for a descriptor, oldest change
    /// first, as far as the budget allows (closing idle files for them). True when some were
    /// opened while others still wait: the next pass goes on at once.
    fn open_waiting(&mut self) -> bool {
        let mut reopen: Vec<(i64, usize)> = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.pending && !f.is_open())
            .map(|(i, f)| (f.mtime_ms, i))
            .collect();
        if reopen.is_empty() && self.waiting.is_empty() {
            return false;
        }
        let mut opened = 0;
        reopen.sort_unstable();
        let mut finished = Vec::new();
        // Paced by the acknowledgement tracker, for the files opened again and the new ones
        // together: they are started no faster than their descriptions are saved and let go
        // of (100,000 files written at once were otherwise all described again before the
        // first of them was saved), with a few per pass in any case (a flow of thousands of
        // files always written keeps as many described, and other files still get in).
        let mut room = self
            .acks
            .room_to_describe()
            .max(NEW_FILES_PER_PASS_AT_LEAST);
        let mut paced = false;
        for (_, i) in reopen {
            if room == 0 {
                paced = true;
                break;
            }
            let Some(permit) = self.take_permit() else {
                break;
            };
            room -= 1;
            opened += 1;
            let f = &mut self.files[i];
            // Stays pending (not to be closed again) until the read pass has read it.
            match f.reopen(Some(permit), &self.template) {
                Ok(Reopened::Same) => {}
                Ok(Reopened::Replaced) => {
                    info!(
                        "{}: {} holds other content than when it was closed (same inode); reading it from the start.",
                        self.name,
                        f.path.display()
                    );
                }
                // Renamed, replaced or deleted since the last listing: the next listing says
                // where it went (a file is finished only once a listing has seen it gone).
                Ok(Reopened::Elsewhere) if !f.gone => {
                    f.pending = false;
                    self.changes.rescan = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !f.gone => {
                    f.pending = false;
                    self.changes.rescan = true;
                }
                Err(e) if crate::sys::too_many_open_files_fix(&e).is_some() => {
                    let path = f.path.clone();
                    self.warn_descriptors(&path, &e);
                    break;
                }
                Err(e) if !f.gone => {
                    f.pending = false;
                    let path = f.path.clone();
                    let msg = open_error_message(&self.name, &path, &e);
                    self.complain(&path, msg);
                }
                // Let go of (renamed out of the pattern or deleted) while closed, and not found
                // under its new name: finished where reading it stopped.
                _ => finished.push(i),
            }
        }
        // Removed from the highest index down, so the others stay where they are.
        finished.sort_unstable();
        for i in finished.into_iter().rev() {
            let f = self.files.remove(i);
            info!(
                "{}: finished {} (gone while it was closed, read to offset {}).",
                self.name,
                f.path.display(),
                f.offset()
            );
            self.acks.observe(f.file_ref, f.info());
            self.closed.push((f.file_ref, f.offset()));
        }
        if !paced && !self.waiting.is_empty() {
            paced = self.open_new_waiting(&mut opened, &mut room);
        }
        // Stopped by the pacing: the next pass comes at its time.
        opened > 0 && !paced && self.waiting_files() > 0
    }

    /// Opens new files that wait for a descriptor, oldest change first, as far as the budget
    /// and the pacing allow (`room`, what is left of this pass's, shared with the files opened
    /// again); counts them in `opened`. True when the pacing stopped it.
    fn open_new_waiting(&mut self, opened: &mut usize, room: &mut usize) -> bool {
        // Room for every waiting file at once: growing a vector of 100,000 files by doubling
        // held the old and the new one (100 MB) at the moment of the copy.
        self.files.reserve_exact(self.waiting.len());
        // Taken from the end: the oldest change first, then by path. Sorted in place, and only
        // when files were added: a stable sort of 100,000 waiting files on every pass took a
        // copy of half of them (6 MB, the start's peak).
        let newest_first = |a: &Waiting, b: &Waiting| {
            b.mtime_ms
                .cmp(&a.mtime_ms)
                .then_with(|| b.path.cmp(&a.path))
        };
        if !self.waiting.is_sorted_by(|a, b| newest_first(a, b).is_le()) {
            self.waiting.sort_unstable_by(newest_first);
        }
        let rotated_dir = self.flow.rotated_file_directory.clone();
        let mut paced = false;
        while let Some(w) = self.waiting.last_mut() {
            if *room == 0 {
                paced = true;
                break;
            }
            if !still_at(&w.path, w.id) {
                // Renamed before it had a descriptor (rotated, or out of the pattern): opened
                // under the name it has now, and read to its end if that is out of the
                // pattern. Deleted: nothing is left to read.
                match name_by_inode(&w.path, rotated_dir.as_deref(), w.id) {
                    Some(name) => w.path = name,
                    None => {
                        self.waiting.pop();
                        continue;
                    }
                }
            }
            let Some(permit) = self.take_permit() else {
                break;
            };
            if let Some(w) = self.waiting.pop() {
                *opened += 1;
                *room -= 1;
                self.open_with(&w.path, w.start, w.reason, w.original, permit);
            }
        }
        if self.waiting.capacity() - self.waiting.len() > WAITING_SLACK {
            // The list of 100,000 files waiting at start shrinks as they are opened, so it and
            // the table of files they join do not both hold room for all of them. (A list that
            // large has pages of its own: shrinking it gives them back without a copy.)
            self.waiting.shrink_to_fit();
            // What the files opened since let go of (their listing's names, their reading
            // state) is given back as well.
            crate::sys::release_free_memory();
        }
        paced
    }

    /// Files that wait for a descriptor: new ones, and closed ones that changed.
    fn waiting_files(&self) -> usize {
        self.waiting.len()
            + self
                .files
                .iter()
                .filter(|f| f.pending && !f.is_open())
                .count()
    }

    /// Files waiting for a descriptor: said to the budget (so other flows close idle files),
    /// and once an hour in the log.
    fn account_waiting(&mut self) {
        let now = self.waiting_files();
        self.budget.set_waiting(self.waiting_said, now);
        self.waiting_said = now;
    }

    /// Says, at WARN and once per [`DESCRIPTOR_WARNING_INTERVAL`], that the agent ran out of
    /// descriptors (`err` at `path`). Nothing is lost: the file waits and is read later.
    fn warn_descriptors(&mut self, path: &Path, err: &std::io::Error) {
        let now = Instant::now();
        if self
            .descriptors_warned
            .is_some_and(|t| now.duration_since(t) < DESCRIPTOR_WARNING_INTERVAL)
        {
            return;
        }
        self.descriptors_warned = Some(now);
        let fix = crate::sys::too_many_open_files_fix(err).unwrap_or("");
        warn!(
            "{}: cannot open {}: {err}: {fix}. Or lower maxOpenFiles (now {}): the agent then closes idle files sooner. Nothing is lost: files wait for a descriptor and are read later. (Said at most once an hour.)",
            self.name,
            path.display(),
            self.budget.limit()
        );
    }

    /// Opens `path` with the budget's `permit` and starts tracking it.
    fn open_with(
        &mut self,
        path: &Path,
        start: StartAt,
        reason: Reason,
        original: Option<FileRef>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let file_ref = FileRef(self.next_ref);
        let opened = TailedFile::open(path, file_ref, start, &self.template);
        match opened.map(|f| f.with_permit(Some(permit))) {
            Ok(mut f) => {
                f.set_lines(self.records.for_file(f.offset()));
                self.next_ref += 1;
                info!(
                    "{}: Opening {} for parsing at offset {} ({}).",
                    self.name,
                    path.display(),
                    f.offset(),
                    self.explain(reason)
                );
                match original {
                    Some(original) => {
                        self.acks
                            .start_copy(file_ref, original, f.offset(), f.info());
                        // The old content continues in this copy: no compressed one is needed.
                        self.copy_took_over(original);
                    }
                    None => self.acks.start(file_ref, f.offset(), f.info()),
                }
                self.complaints.remove(path);
                self.files.push(f);
            }
            Err(e) if crate::sys::too_many_open_files_fix(&e).is_some() => {
                self.warn_descriptors(path, &e);
                self.wait_for_descriptor(path, start, reason, original);
            }
            Err(e) => {
                let msg = open_error_message(&self.name, path, &e);
                self.complain(path, msg);
            }
        }
    }

    /// Could the new file at `path` be a copy of a file we read (copytruncate)? Compares its
    /// first bytes with those of recently truncated files, then of the files being tailed.
    fn copy_source(&self, path: &Path, size: u64) -> Option<CopyOf> {
        let file = std::fs::File::open(path).ok()?;
        let head = fingerprint::head(&file, size).ok()?;
        let mut candidate = Candidate::new(&head);
        for (old, t, _) in &self.truncations {
            match t.likeness(&mut candidate) {
                Likeness::Same if size >= t.records_end => {
                    return Some(CopyOf::Truncated(t.records_end, *old))
                }
                Likeness::Same | Likeness::Prefix => return Some(CopyOf::Maybe),
                Likeness::Different => {}
            }
        }
        let maybe = self
            .files
            .iter()
            .any(|f| f.likeness(&mut candidate) != Likeness::Different);
        maybe.then_some(CopyOf::Maybe)
    }

    /// Decides the held files, looking at their first bytes again:
    /// - a full copy of a file that was since truncated: continues where reading the original
    ///   stopped;
    /// - different from every tracked and recently truncated file: an independent file, read
    ///   from 0;
    /// - still undecided after [`COPY_WAIT`] without growing (a plain `cp`), or after
    ///   [`COPY_MAX_HOLD`] in all: read from 0.
    fn resolve_held(&mut self) {
        let now = Instant::now();
        self.truncations
            .retain(|(_, _, at)| now.duration_since(*at) < COPY_WAIT * 2);
        let mut decided = Vec::new();
        for (i, h) in self.held.iter_mut().enumerate() {
            let Ok(file) = std::fs::File::open(&h.path) else {
                decided.push((i, None)); // gone again; a rescan finds it if it comes back
                continue;
            };
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let head = fingerprint::head(&file, size).unwrap_or_default();
            let stalled = if size != h.size {
                h.size = size;
                h.since = now;
                now.duration_since(h.first_seen) >= COPY_MAX_HOLD
            } else {
                now.duration_since(h.since) >= COPY_WAIT
            };
            let mut candidate = Candidate::new(&head);
            let copy_of = self
                .truncations
                .iter()
                .find(|(_, t, _)| t.likeness(&mut candidate) == Likeness::Same)
                .map(|(old, t, _)| (t.records_end, *old));
            let undecided = self
                .truncations
                .iter()
                .any(|(_, t, _)| t.likeness(&mut candidate) != Likeness::Different)
                || self
                    .files
                    .iter()
                    .any(|f| f.likeness(&mut candidate) != Likeness::Different);
            let start = match copy_of {
                Some((end, old)) if size >= end || stalled => (
                    StartAt::Offset(end.min(size)),
                    Reason::CopyOfTruncated,
                    Some(old),
                ),
                _ if !undecided || stalled => (StartAt::Offset(0), Reason::NewSinceLastRun, None),
                _ => continue,
            };
            decided.push((i, Some(start)));
        }
        for (i, start) in decided.into_iter().rev() {
            let h = self.held.remove(i);
            if let Some((start, reason, original)) = start {
                self.open(&h.path, start, reason, original);
            }
        }
    }

    /// A truncated file's offsets start again at 0, so it gets a new number: the old number's
    /// batches settle on their own and its watermark is never saved over the new one.
    fn renumber_truncated(&mut self, old: FileRef, t: Truncation) {
        let Some(f) = self.files.iter_mut().find(|f| f.file_ref == old) else {
            return;
        };
        let new = FileRef(self.next_ref);
        self.next_ref += 1;
        f.file_ref = new;
        f.set_lines(self.records.for_file(0));
        self.acks.retire(old);
        self.acks.start(new, 0, f.info());
        self.closed.push((old, t.records_end));
        let wall = std::time::SystemTime::now();
        let wall_ms = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let placeholder = FileRef(self.next_ref);
        self.next_ref += 1;
        let path = self
            .files
            .iter()
            .find(|f| f.file_ref == new)
            .map(|f| f.path.to_path_buf())
            .unwrap_or_default();
        let mut name = path.into_os_string();
        name.push(format!(" (content before its truncation at {wall_ms} ms)"));
        let info = crate::checkpoint::FileInfo {
            path: PathBuf::from(name).into(),
            id: FileId::placeholder((wall_ms << 16) | (placeholder.0 & 0xffff)),
            fingerprint: t.fingerprint,
            // Past the offset: a start after a crash looks for its compressed copy.
            size: t.records_end + 1,
            mtime_ms: wall_ms as i64,
            read: t.records_end,
        };
        self.acks.start_copy(placeholder, old, t.records_end, info);
        self.pending_compressed.push(PendingCompressed {
            old,
            truncation: t.clone(),
            at: Instant::now(),
            wall,
            placeholder,
        });
        self.truncations.push((old, t, Instant::now()));
    }

    /// Where rotated copies may be: the pattern's directory, and `rotatedFileDirectory` (a
    /// logrotate `olddir`) when the flow names one.
    fn search_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.matcher.base_dir().to_path_buf()];
        dirs.extend(self.flow.rotated_file_directory.clone());
        dirs
    }

    /// A copy (plain or compressed) continues the old content of the truncated file `old`: the
    /// placeholder row that stood for it goes.
    fn copy_took_over(&mut self, old: FileRef) {
        let acks = &self.acks;
        self.pending_compressed.retain(|p| {
            if p.old == old {
                acks.drop_file(p.placeholder);
            }
            p.old != old
        });
    }

    /// The compressed files in the pattern's directory modified at or after `since`, newest
    /// first, with their format, size and mtime (ms).
    fn compressed_candidates(
        &self,
        since: std::time::SystemTime,
    ) -> Vec<(PathBuf, compressed::Codec, u64, i64)> {
        let mut found: Vec<_> = self
            .search_dirs()
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|entry| {
                let path = entry.path();
                let codec = compressed::Codec::of(&path)?;
                let meta = std::fs::metadata(&path).ok()?;
                let recent = meta.modified().is_ok_and(|m| m >= since);
                (meta.is_file() && recent).then(|| (path, codec, meta.len(), file::mtime_ms(&meta)))
            })
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c.3));
        found
    }

    /// Looks for compressed copies of the old content of recently truncated files (copytruncate
    /// with compress: the plain copy may be compressed and removed before the agent saw it).
    /// A compressed file whose decompressed first bytes are the old content's, once it has
    /// settled, is decompressed and read from where reading the original stopped.
    fn recover_compressed_copies(&mut self) {
        let now = Instant::now();
        let acks = &self.acks;
        self.pending_compressed.retain(|p| {
            let waiting = now.duration_since(p.at) < COMPRESSED_WAIT;
            if !waiting {
                // No copy turned up (the application truncated its own log?).
                acks.drop_file(p.placeholder);
            }
            waiting
        });
        if self.pending_compressed.is_empty() {
            self.not_copies.clear();
            self.settling.clear();
            return;
        }
        let since = self
            .pending_compressed
            .iter()
            .map(|p| p.wall)
            .min()
            .unwrap_or_else(std::time::SystemTime::now)
            - Duration::from_secs(60);
        for (path, codec, size, mtime) in self.compressed_candidates(since) {
            let key = (path.clone(), size, mtime);
            if self.not_copies.contains(&key) {
                continue;
            }
            let Ok(head) = compressed::head(&path, codec, fingerprint::FINGERPRINT_BYTES) else {
                continue; // not readable yet (still being written?): looked at again next pass
            };
            let mut candidate = Candidate::new(&head);
            let Some(i) = self
                .pending_compressed
                .iter()
                .position(|p| p.truncation.likeness(&mut candidate) == Likeness::Same)
            else {
                if self
                    .pending_compressed
                    .iter()
                    .all(|p| p.truncation.likeness(&mut candidate) == Likeness::Different)
                {
                    self.not_copies.insert(key);
                }
                continue;
            };
            // Decompressed once the compressor is done with it: unchanged since the last look.
            match self.settling.get(&path) {
                Some(&(s, m, at))
                    if s == size && m == mtime && now.duration_since(at) >= COMPRESSED_SETTLE => {}
                Some(&(s, m, _)) if s == size && m == mtime => continue,
                _ => {
                    self.settling.insert(path, (size, mtime, now));
                    continue;
                }
            }
            self.settling.remove(&path);
            let pending = self.pending_compressed.remove(i);
            let end = pending.truncation.records_end;
            if self.open_decompressed(&path, codec, end, Some(pending.old)) {
                self.acks.drop_file(pending.placeholder);
            } else {
                // Renamed by the next rotation meanwhile, say: found again under its new name.
                self.pending_compressed.push(pending);
            }
        }
    }

    /// Decompresses the archive at `path` and reads it from `offset` to its end as a copy of
    /// `original` (a truncated file) or, without one, as the continuation of a checkpoint.
    /// False when it could not be decompressed (gone, unreadable): it may be tried again.
    fn open_decompressed(
        &mut self,
        path: &Path,
        codec: compressed::Codec,
        offset: u64,
        original: Option<FileRef>,
    ) -> bool {
        let d = match compressed::decompress(path, codec, &self.scratch_dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                let msg = format!(
                    "{}: cannot decompress {} into {} to read its unread end: {e}. Fix: let the agent write its state directory (the checkpoint file's).",
                    self.name,
                    path.display(),
                    self.scratch_dir.display()
                );
                self.complain(path, msg);
                return false;
            }
        };
        if let Some(e) = &d.damaged {
            warn!(
                "{}: {} is damaged after {} decompressed bytes ({e}); what comes after cannot be read and is not sent.",
                self.name,
                path.display(),
                d.bytes
            );
        }
        if d.bytes <= offset {
            debug!(
                "{}: {} holds nothing after offset {offset}.",
                self.name,
                path.display()
            );
            return true;
        }
        info!(
            "{}: recovered {} decompressed bytes from {} after offset {offset}: its content was compressed before the agent read it to its end.",
            self.name,
            d.bytes - offset,
            path.display()
        );
        let file_ref = FileRef(self.next_ref);
        let opened = TailedFile::from_handle(
            d.file,
            path,
            file_ref,
            StartAt::Offset(offset),
            &self.template,
        );
        let mut f = match opened {
            Ok(f) => f,
            Err(e) => {
                error!(
                    "{}: cannot read the decompressed copy of {}: {e}",
                    self.name,
                    path.display()
                );
                return false;
            }
        };
        self.next_ref += 1;
        f.set_lines(self.records.for_file(f.offset()));
        f.gone = true;
        // Read from a scratch file under the archive's name: no name leads to it, and its
        // checkpoint row keeps the archive's name.
        f.renamed_away = true;
        match original {
            Some(original) => self
                .acks
                .start_copy(file_ref, original, f.offset(), f.info()),
            None => self.acks.start(file_ref, f.offset(), f.info()),
        }
        self.files.push(f);
        true
    }

    /// Where a file found by the first scan starts, from the stored checkpoints.
    fn start_at_launch(&self, path: &Path, meta: &Listed, id: FileId) -> (StartAt, Reason) {
        let found = Found {
            file_id: id.to_string(),
            size: meta.size,
            mtime_ms: meta.mtime_ms,
        };
        let fingerprint_like = |stored: &str| {
            let f = std::fs::File::open(path).ok()?;
            fingerprint::like(&f, stored)
        };
        resume::start_for(
            &self.stored,
            &found,
            self.flow.initial_position,
            fingerprint_like,
        )
    }

    /// At start: a new file (no checkpoint of its own) whose first bytes are those a
    /// checkpointed file held, where that file now holds other content, is the copy a
    /// copytruncate rotation made of it just before the agent stopped or while it was stopped
    /// (the truncation was not seen): it continues from that checkpoint, not from 0. Each
    /// checkpoint is continued by one copy (the first in path order).
    /// `files` are sorted by path from the last (see `rescan`): a checkpoint's content found in
    /// several new files goes to the first of them by path.
    fn continue_copies_at_launch(
        &self,
        files: &[(PathBuf, Listed)],
        starts: &mut [(StartAt, Reason)],
    ) {
        let mut replaced: Vec<&Stored> = files
            .iter()
            .zip(starts.iter())
            .filter(|(_, (_, reason))| *reason == Reason::CheckpointDidNotMatch)
            .filter_map(|((_, meta), _)| self.stored.by_id(&listed_id(meta).to_string()))
            .filter(|row| row.offset > 0 && row.fingerprint.is_some())
            .collect();
        if replaced.is_empty() {
            return;
        }
        for ((path, meta), start) in files.iter().zip(starts.iter_mut()).rev() {
            if start.1 != Reason::NewSinceLastRun {
                continue;
            }
            let Ok(file) = std::fs::File::open(path) else {
                continue;
            };
            let Some(k) = replaced.iter().position(|row| {
                let stored = row.fingerprint.as_deref().unwrap_or_default();
                meta.size >= row.offset
                    && fingerprint::like(&file, stored).as_deref() == Some(stored)
            }) else {
                continue;
            };
            let row = replaced.swap_remove(k);
            *start = (StartAt::Offset(row.offset), Reason::CopyOfCheckpointed);
            if replaced.is_empty() {
                break;
            }
        }
    }

    fn explain(&self, reason: Reason) -> &'static str {
        match reason {
            Reason::Checkpoint => "resuming from its checkpoint",
            Reason::CheckpointDidNotMatch => {
                "its checkpoint is for other content (inode reused or file shortened): reading all of it"
            }
            Reason::InitialPosition => match self.flow.initial_position {
                InitialPosition::StartOfFile => "initialPosition START_OF_FILE",
                InitialPosition::EndOfFile => "initialPosition END_OF_FILE",
            },
            Reason::NewSinceLastRun => "new file",
            Reason::ShippedByJavaAgent => {
                "older than the Java agent's checkpointed file, so already shipped by it"
            }
            Reason::CopyOfTruncated => {
                "a copy of a file that was then truncated (copytruncate): continuing where reading the original stopped"
            }
            Reason::CopyOfCheckpointed => {
                "a copy of a checkpointed file that now holds other content (copytruncate while the agent was stopped): continuing from that file's checkpoint"
            }
            Reason::RecoveredOutsidePattern => {
                "its checkpointed file, renamed out of the pattern while the agent was stopped: reading its unread end, then letting go of it"
            }
        }
    }

    /// One turn over the tracked files: all of them, or `only` the files named there plus those
    /// that may have more to give (a read stopped by its budget, a file let go of, an open
    /// multi-line record waiting for quiet). What it reads was `seen` then. With `observe`, the
    /// checkpoint information of files read is refreshed.
    async fn read_pass(
        &mut self,
        only: Option<&WrittenPaths>,
        seen: Instant,
        observe: bool,
    ) -> Pass {
        let acks = &self.acks;
        self.closed
            .retain(|(f, end)| !acks.forget_when_acknowledged(*f, *end));
        let opened_some = self.open_waiting();
        // Files of other flows wait for descriptors: close as many idle ones here.
        let others = self.budget.waiting().saturating_sub(self.waiting_said);
        if others > 0 {
            self.close_idle(others, Duration::ZERO);
        }
        let mut truncated = Vec::new();
        let mut pass = Pass::default();
        let mut chunk: Vec<Record> = Vec::new();
        let mut chunk_bytes = 0;
        let mut i = 0;
        let max_record = self.max_record();
        while i < self.files.len() {
            let f = &mut self.files[i];
            // Closed: nothing new, or waiting for a descriptor (see `open_waiting`).
            if !f.is_open() {
                i += 1;
                continue;
            }
            let wanted = only.is_none_or(|written| {
                f.more
                    || f.pending
                    || f.gone
                    || written.contains(f.path.as_os_str())
                    || f.lines().is_some_and(|l| l.is_open())
            });
            if !wanted {
                i += 1;
                continue;
            }
            let mut pieces = Vec::new();
            let outcome = match f.read(READ_BUDGET_PER_TURN, &mut pieces) {
                Ok(outcome) => outcome,
                Err(e) => {
                    error!(
                        "{}: error reading {}: {e}; will retry.",
                        self.name,
                        f.path.display()
                    );
                    i += 1;
                    continue;
                }
            };
            f.more = !outcome.at_eof;
            f.pending = false;
            if outcome.bytes > 0 {
                // Before its records are sent: the row saved once they are acknowledged needs
                // the file's description, which the tracker lets go of for idle files.
                self.acks.describe(f.file_ref, || f.info());
            }
            pass.more |= f.more;
            pass.with_data += usize::from(outcome.bytes > 0);
            let was_truncated = outcome.truncated.is_some();
            if let Some(t) = outcome.truncated {
                warn!(
                    "{}: {} was truncated (it had {} bytes of records read); reading it again from the start.",
                    self.name,
                    f.path.display(),
                    t.records_end
                );
                truncated.push((f.file_ref, t));
            }
            let file_ref = f.file_ref;
            let done = f.gone && outcome.at_eof;
            if done {
                info!(
                    "{}: finished {} (no longer matches the pattern); closing it at offset {}.",
                    self.name,
                    f.path.display(),
                    f.offset()
                );
            }
            // What a checkpoint row and the status say about the file (size, modification time,
            // read offset): refreshed on full passes, about once a second, and when the file is
            // let go of; a copy per read was 2.5 % of the agent's CPU with 1,000 busy files.
            f.unobserved |= outcome.bytes > 0;
            if f.unobserved && (observe || done) {
                f.unobserved = false;
                if let Err(e) = f.refresh_info() {
                    debug!("{}: cannot stat {}: {e}", self.name, f.path.display());
                }
                self.acks.observe(file_ref, f.info());
            }
            let now = Instant::now();
            if outcome.bytes > 0 {
                f.data_read_at(now);
            }
            // An open multi-line record is complete when the file goes quiet, is let go, or
            // is truncated (its lines belong to the old content).
            let quiet = f
                .last_data()
                .is_none_or(|last| now.duration_since(last) >= DEFAULT_MULTI_LINE_FLUSH_INTERVAL);
            let records = &self.records;
            let grouped = match f.lines_or(|offset| records.for_file(offset)) {
                Some(lines) => {
                    let (mut grouped, _headers) = lines.push(pieces);
                    if lines.is_open() && (done || quiet || was_truncated) {
                        grouped.extend(lines.flush());
                    }
                    grouped
                }
                // Read just now, so open: never without its reading state.
                None => pieces,
            };
            if grouped.is_empty() {
                self.counters.bytes_read(outcome.bytes);
            } else {
                self.counters
                    .records_parsed(grouped.len() as u64, outcome.bytes);
                let truncated = grouped.iter().filter(|p| p.truncated).count() as u64;
                if truncated > 0 {
                    self.counters.records_truncated(truncated);
                    warn!("{}: Truncated {truncated} record(s) in {}, because they exceeded the max record size: {max_record}", self.name, f.path.display());
                }
                let finished = self.records.finish(grouped);
                self.counters.records_processed(
                    finished.transformed,
                    finished.skipped,
                    finished.errors,
                );
                if let Some(e) = finished.first_error {
                    if self
                        .last_processing_warning
                        .is_none_or(|t| now.duration_since(t) >= COMPLAINT_INTERVAL)
                    {
                        self.last_processing_warning = Some(now);
                        warn!("{}: Cannot process input data: {e}, falling back to raw data. ({} record(s) in this read; repeated at most once a minute)", self.name, finished.errors);
                    }
                }
                if let Some(w) = self.records.chain().take_ec2_warning() {
                    warn!("{}: {w}", self.name);
                }
                for (data, end_offset, _) in finished.records {
                    chunk_bytes += data.len();
                    chunk.push(Record {
                        data,
                        file: file_ref,
                        end_offset,
                    });
                }
                if chunk_bytes >= CHUNK_BYTES {
                    chunk_bytes = 0;
                    let records = std::mem::take(&mut chunk);
                    if self.out.send(Chunk { records, seen }).await.is_err() {
                        return Pass::default(); // the pipeline is shutting down
                    }
                }
            }
            if done {
                let f = self.files.remove(i);
                self.closed.push((file_ref, f.offset()));
            } else {
                i += 1;
            }
        }
        if !chunk.is_empty()
            && self
                .out
                .send(Chunk {
                    records: chunk,
                    seen,
                })
                .await
                .is_err()
        {
            return Pass::default();
        }
        for (old, t) in truncated {
            self.renumber_truncated(old, t);
        }
        self.resolve_held();
        self.recover_compressed_copies();
        if observe {
            self.close_idle(usize::MAX, IDLE_CLOSE);
        }
        self.account_waiting();
        pass.more |= opened_some;
        pass
    }

    fn update_gauges(&self) {
        let behind: u64 = self.files.iter().map(|f| f.behind()).sum();
        let lagging = self.files.iter().filter(|f| f.behind() > 0).count() as u64;
        let unacked = self
            .acks
            .unacknowledged(self.files.iter().map(|f| (f.file_ref, f.offset())));
        self.counters
            .behind(behind, lagging.saturating_sub(1), unacked);
    }

    /// Logs `msg` at ERROR, at most once per [`COMPLAINT_INTERVAL`] for the same path.
    fn complain(&mut self, path: &std::path::Path, msg: String) {
        let now = Instant::now();
        let last = self.complaints.get(path);
        if last.is_none_or(|t| now.duration_since(*t) >= COMPLAINT_INTERVAL) {
            error!("{msg}");
            self.complaints.insert(path.to_path_buf(), now);
        }
    }
}

/// Whether a tailer reads every file on a timer ("busy") after a pass that read every file, of
/// which `with_data` had new data; `writes` is the number of write events since the previous
/// such pass, counted only while following write events and once a second.
///
/// A flow whose files are mostly written all the time (half of them had data, there were two
/// write events per file, and at least [`BUSY_WRITES`]) stops following write events: they
/// named every file anyway, one event per `write` call, and reading them was a fifth of the
/// agent's CPU with 1,000 busy files. It follows them again once fewer than a quarter of its
/// files have new data at a look, so a quiet flow costs nothing between writes.
fn busy_after(busy: bool, files: usize, with_data: usize, writes: Option<usize>) -> bool {
    if busy {
        files > 0 && with_data * 4 >= files
    } else {
        writes.is_some_and(|w| {
            files > 0 && with_data * 2 >= files && w >= (2 * files).max(BUSY_WRITES)
        })
    }
}

/// Waits for the watch's next events; forever without a watch.
async fn wait_for_events(
    watcher: &mut Option<DirWatcher>,
    changes: &mut Changes,
) -> std::io::Result<()> {
    match watcher {
        Some(w) => w.wait(changes).await,
        None => std::future::pending().await,
    }
}

/// The name the file `id` has now in the directory of `old` or in `rotated_dir` (renamed out of
/// the pattern, or moved to a logrotate `olddir`), if any. Compares the inode in each directory
/// entry (no `stat` per entry), then checks the device.
fn name_by_inode(old: &Path, rotated_dir: Option<&Path>, id: FileId) -> Option<PathBuf> {
    use std::os::unix::fs::DirEntryExt;
    old.parent()
        .into_iter()
        .chain(rotated_dir)
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.ino() == id.ino)
        .map(|e| e.path())
        .find(|p| still_at(p, id) && std::fs::metadata(p).is_ok_and(|m| m.is_file()))
}

/// A name for a file that is gone from its directory (deleted while being read): its old name
/// with its identity, so its checkpoint row is its own.
fn away_name(old: &Path, id: FileId) -> PathBuf {
    let mut name = old.as_os_str().to_os_string();
    name.push(format!(" (deleted, {id})"));
    PathBuf::from(name)
}

/// Does `path` still lead to the file `id`? Only "no such file" or another file there says
/// no; when the path cannot be looked at (permission, I/O error), the file is taken to be there.
fn still_at(path: &Path, id: FileId) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) => FileId::of(&meta) == id,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

fn open_error_message(tailer: &str, path: &std::path::Path, e: &std::io::Error) -> String {
    if let Some(fix) = crate::sys::too_many_open_files_fix(e) {
        return format!("{tailer}: cannot open {}: {e}: {fix}.", path.display());
    }
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!(
            "{tailer}: cannot read {}: permission denied for {}: {}. Other files keep shipping; this one is retried every minute.",
            path.display(),
            crate::sys::current_user(),
            crate::sys::permission_fix(path, "r")
        )
    } else {
        format!("{tailer}: cannot open {}: {e}; will retry.", path.display())
    }
}

/// The identity of a listed file.
fn listed_id(meta: &Listed) -> FileId {
    FileId {
        dev: meta.dev,
        ino: meta.ino,
    }
}

/// A tracked file found again by a listing, as `path` with `meta`: not gone; opened again
/// when it changed while closed; followed to its new name when renamed within the pattern.
fn still_listed(f: &mut TailedFile, path: PathBuf, meta: &Listed, acks: &AckTracker, name: &str) {
    if !f.is_open() && (meta.size != f.size || meta.mtime_ms != f.mtime_ms) {
        f.pending = true;
    }
    if *f.path != *path {
        info!(
            "{name}: {} was renamed to {}; still reading it.",
            f.path.display(),
            path.display()
        );
        f.path = path.into();
        acks.observe(f.file_ref, f.info());
    }
    f.gone = false;
}

/// Bytes of whole lines packed into one record (Firehose `aggregatedRecordSizeBytes`); 0 for
/// one line per record.
fn aggregation(flow: &FlowPlan) -> usize {
    match flow.destination {
        crate::config::Destination::Firehose {
            aggregated_record_size_bytes,
            ..
        } if flow.multi_line_start_pattern.is_none() => aggregated_record_size_bytes,
        _ => 0,
    }
}

/// A line splitter with the flow's limits.
fn splitter_for(flow: &FlowPlan) -> LineSplitter {
    LineSplitter::new(
        flow.max_record_data_bytes(),
        &flow.truncated_record_terminator,
        0,
    )
    .aggregating(aggregation(flow))
}

#[cfg(test)]
mod tests {
    use super::busy_after;

    #[test]
    fn busy_when_most_files_are_written_all_the_time_and_back_when_they_go_quiet() {
        // Following write events: looked at once a second.
        assert!(busy_after(false, 1000, 1000, Some(10_000)));
        assert!(busy_after(false, 1000, 500, Some(2_000)));
        assert!(!busy_after(false, 1000, 499, Some(10_000)), "half had data");
        assert!(
            !busy_after(false, 1000, 1000, Some(1_999)),
            "two writes a file"
        );
        assert!(!busy_after(false, 1000, 1000, None), "only once a second");
        assert!(!busy_after(false, 0, 0, Some(0)));
        // One busy file is a flow of its own, but a few writes a second are not busy.
        assert!(busy_after(false, 1, 1, Some(2_000)));
        assert!(!busy_after(false, 1, 1, Some(999)));
        assert!(!busy_after(false, 20, 20, Some(400)));
        // Reading every file on a timer.
        assert!(busy_after(true, 1000, 250, None));
        assert!(!busy_after(true, 1000, 249, None));
        assert!(!busy_after(true, 1, 0, None));
        assert!(!busy_after(true, 0, 0, None), "no files left");
    }
}
