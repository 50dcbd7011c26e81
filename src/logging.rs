//! The agent's own log: where it goes, its level, and a layout close to the Java agent's
//! (`%d{yyyy-MM-dd HH:mm:ss.SSSZ} %X{hostname} (%t) %c [%p] %m%n`, the host name empty as in
//! Java 2.x, so two spaces follow the time stamp).
//!
//! Not in this build yet: rotation of the log file (the Java agent rolls it hourly and keeps
//! 7 days); use logrotate with `copytruncate` meanwhile.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use time::{format_description::FormatItem, macros::format_description, OffsetDateTime, UtcOffset};
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Default log file, as the Java agent.
pub const DEFAULT_LOG_FILE: &str = "/var/log/aws-kinesis-agent/aws-kinesis-agent.log";

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

/// Starts logging to `file` (appending; parent directory created if missing). If the file
/// cannot be opened, logs to standard error instead and says why there. Keep the guard alive
/// until exit: dropping it flushes the log.
pub fn init(file: &Path, level: Level) -> WorkerGuard {
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let opened = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| OpenOptions::new().create(true).append(true).open(file));
    let (writer, guard) = match opened {
        Ok(f) => tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(f),
        Err(e) => {
            eprintln!(
                "aws-kinesis-agent: cannot open log file {}: {e}; logging to standard error. Use -l PATH to choose another file.",
                file.display()
            );
            tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(io::stderr())
        }
    };
    tracing_subscriber::fmt()
        .event_format(JavaLayout { offset })
        .with_env_filter(filter(level))
        .with_writer(writer)
        .init();
    guard
}
