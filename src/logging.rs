//! The agent's own log: where it goes, its level, and a layout close to the Java agent's
//! (`%d{yyyy-MM-dd HH:mm:ss.SSSZ} %X{hostname} (%t) %c [%p] %m%n`, the host name empty as in
//! Java 2.x, so two spaces follow the time stamp).
//!
//! Rotation, as the Java agent's log4j set-up: the file rolls every hour (and also when it
//! passes [`MAX_LOG_BYTES`], so a burst of errors cannot fill the disk) to
//! `aws-kinesis-agent-YYYY-MM-DD-HH.log` beside it, and rolled files older than 7 days are
//! deleted. The Java agent also gzips rolled files; these stay plain text.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::{format_description::FormatItem, macros::format_description, OffsetDateTime, UtcOffset};
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Default log file, as the Java agent.
pub const DEFAULT_LOG_FILE: &str = "/var/log/aws-kinesis-agent/aws-kinesis-agent.log";

/// A log file rolls when it reaches this size, even within the hour.
pub const MAX_LOG_BYTES: u64 = 100 * 1024 * 1024;
/// Rolled files are kept this long (Java: 7 days).
pub const KEEP_ROLLED: Duration = Duration::from_secs(7 * 24 * 3600);

/// The active log file, rolled hourly and by size.
pub struct RollingFile {
    path: PathBuf,
    file: File,
    size: u64,
    /// The hour (UTC, as `YYYY-MM-DD-HH`) the active file belongs to.
    hour: String,
}

fn hour_of(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

impl RollingFile {
    pub fn open(path: &Path) -> io::Result<RollingFile> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        let hour = hour_of(meta.modified().unwrap_or_else(|_| SystemTime::now()));
        Ok(RollingFile {
            path: path.to_path_buf(),
            file,
            size: meta.len(),
            hour,
        })
    }

    /// The name the active file gets when it rolls: `<stem>-<hour>.log`, `.1`, `.2`... if taken.
    fn rolled_name(&self) -> PathBuf {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let base = dir.join(format!("{stem}-{}.log", self.hour));
        let mut candidate = base.clone();
        let mut n = 1;
        while candidate.exists() {
            candidate = PathBuf::from(format!("{}.{n}", base.display()));
            n += 1;
        }
        candidate
    }

    fn roll(&mut self, now_hour: String) -> io::Result<()> {
        std::fs::rename(&self.path, self.rolled_name())?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        self.hour = now_hour;
        self.prune();
        Ok(())
    }

    /// Deletes rolled files older than [`KEEP_ROLLED`].
    fn prune(&self) {
        let (Some(dir), Some(stem)) = (self.path.parent(), self.path.file_stem()) else {
            return;
        };
        let prefix = format!("{}-", stem.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > KEEP_ROLLED);
            if name.starts_with(&prefix) && name.contains(".log") && old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Write for RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now_hour = hour_of(SystemTime::now());
        if now_hour != self.hour || self.size + buf.len() as u64 > MAX_LOG_BYTES {
            // A failed roll (e.g. the directory became read-only) keeps writing to the same file.
            let _ = self.roll(now_hour);
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A writer that never passes a terminal escape on: each ESC byte (0x1b, which starts every
/// colour and cursor sequence) becomes the four characters `\x1b`. The agent's log file is read
/// with `tail -f`, `less` and `grep`; whatever a line carries (a crate's coloured fields, a file
/// name or an error message with escapes in it) reaches it as plain text.
pub struct Plain<W>(pub W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(at) = rest.iter().position(|&b| b == 0x1b) {
            self.0.write_all(&rest[..at])?;
            self.0.write_all(b"\\x1b")?;
            rest = &rest[at + 1..];
        }
        self.0.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

const TIMESTAMP: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
);

/// The Java layout. The UTC offset is found once at start (reading it later is not sound in a
/// multi-threaded process, so the `time` crate refuses).
pub struct JavaLayout {
    offset: UtcOffset,
}

impl<S, N> FormatEvent<S, N> for JavaLayout
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let now = OffsetDateTime::now_utc().to_offset(self.offset);
        let stamp = now.format(TIMESTAMP).map_err(|_| std::fmt::Error)?;
        let thread = std::thread::current();
        let meta = event.metadata();
        write!(
            writer,
            "{stamp}  ({}) {} [{}] ",
            thread.name().unwrap_or("-"),
            meta.target(),
            meta.level()
        )?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Our crate logs at `level`; the SDK and HTTP stack only their warnings (their debug output
/// is very verbose), unless TRACE is asked for.
fn filter(level: Level) -> EnvFilter {
    let others = if level == Level::TRACE {
        "debug"
    } else {
        "warn"
    };
    let level = level.as_str().to_ascii_lowercase();
    EnvFilter::new(format!(
        "{others},kinesis_agent={level},aws_kinesis_agent={level}"
    ))
}

/// The local UTC offset, found once while the process is still single-threaded (the `time`
/// crate refuses to read it later, as that is not sound with threads).
pub fn local_offset() -> UtcOffset {
    static OFFSET: std::sync::OnceLock<UtcOffset> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC))
}

/// Log lines waiting for the writer thread. The appender's default, 128,000, allocates (and
/// touches) 4 MiB up front, an eighth of the agent's memory target; the agent logs a few lines
/// a minute, and a burst larger than this only makes the logging thread wait (nothing is lost).
const LINES_BUFFERED: usize = 1024;

/// Starts logging to `file` (appending; parent directory created if missing). If the file
/// cannot be opened, logs to standard error instead and says why there. Keep the guard alive
/// until exit: dropping it flushes the log.
pub fn init(file: &Path, level: Level) -> WorkerGuard {
    match RollingFile::open(file) {
        Ok(f) => install(Plain(f), false, level),
        Err(e) => {
            eprintln!(
                "aws-kinesis-agent: cannot open log file {}: {e}; logging to standard error. Use -l PATH to choose another file.",
                file.display()
            );
            init_stderr(level)
        }
    }
}

/// Starts logging to standard error, in the same layout (`--dry-run` without `-l`: standard
/// output holds the records, and the service's log file is left alone). Colours (the fields of
/// other crates' lines) only when standard error is a terminal; the journal and redirections
/// get plain text.
pub fn init_stderr(level: Level) -> WorkerGuard {
    use std::io::IsTerminal;
    if io::stderr().is_terminal() {
        install(io::stderr(), true, level)
    } else {
        install(Plain(io::stderr()), false, level)
    }
}

/// Installs the Java layout at `level`, written to `out` by the appender's own thread; `ansi`
/// lets the field formatter colour field names.
fn install(out: impl io::Write + Send + 'static, ansi: bool, level: Level) -> WorkerGuard {
    // Before `finish` starts the appender's thread: the local offset can only be read while the
    // process has one thread.
    let offset = local_offset();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LINES_BUFFERED)
        .lossy(false)
        .finish(out);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(filter(level))
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(JavaLayout { offset })
                .with_ansi(ansi)
                .with_writer(writer),
        )
        .init();
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_by_size_into_dated_files_and_keeps_the_live_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aws-kinesis-agent.log");
        let mut log = RollingFile::open(&path).expect("open");
        log.write_all(b"first\n").expect("write");
        log.size = MAX_LOG_BYTES; // as if the file were full
        log.write_all(b"second\n").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("live"), "second\n");
        let rolled: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "aws-kinesis-agent.log")
            .collect();
        assert_eq!(rolled.len(), 1);
        assert!(
            rolled[0].starts_with("aws-kinesis-agent-") && rolled[0].ends_with(".log"),
            "{rolled:?}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&rolled[0])).expect("rolled"),
            "first\n"
        );
    }

    #[test]
    fn plain_writes_escape_bytes_as_text() {
        let mut out = Plain(Vec::new());
        out.write_all(b"\x1b[3merr\x1b[0m=1 ok\n").expect("write");
        assert_eq!(
            String::from_utf8(out.0).expect("utf8"),
            "\\x1b[3merr\\x1b[0m=1 ok\n"
        );
    }

    #[test]
    fn rolls_when_the_hour_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aws-kinesis-agent.log");
        let mut log = RollingFile::open(&path).expect("open");
        log.write_all(b"old hour\n").expect("write");
        log.hour = "2000-01-01-00".into();
        log.write_all(b"new hour\n").expect("write");
        let old = dir.path().join("aws-kinesis-agent-2000-01-01-00.log");
        assert_eq!(std::fs::read_to_string(old).expect("rolled"), "old hour\n");
        assert_eq!(std::fs::read_to_string(&path).expect("live"), "new hour\n");
    }
}
