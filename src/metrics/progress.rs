//! The Java agent's periodic progress lines, word for word (reference 6.2), and their levels.
//!
//! Pure formatting: the caller logs the returned text at the returned level.

use tracing::Level;

/// "Behind" is logged at WARN from here (Java `Metrics.BYTES_BEHIND_WARN_LEVEL`, 10 x 4 MiB).
pub const BYTES_BEHIND_WARN: u64 = 10 * 4 * 1024 * 1024;
/// ... and at INFO from here (Java `BYTES_BEHIND_INFO_LEVEL`, 5 x 4 MiB).
pub const BYTES_BEHIND_INFO: u64 = 5 * 4 * 1024 * 1024;

/// A snapshot of the numbers one line reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub records_parsed: u64,
    pub bytes_parsed: u64,
    pub records_transformed: u64,
    pub records_skipped: u64,
    pub records_sent: u64,
    /// Kinesis records holding them, with `kplAggregation` (0 otherwise).
    pub kinesis_records_sent: u64,
    pub bytes_behind: u64,
    pub files_behind: u64,
}

/// Java `FileTailer.emitStatus`: `<tailer>: Tailer Progress: ...`.
/// With `kplAggregation` (not a Java key), the Kinesis records that held them follow.
pub fn tailer_progress(tailer: &str, p: &Progress) -> String {
    let line = format!(
        "{tailer}: Tailer Progress: Tailer has parsed {} records ({} bytes), transformed {} records, skipped {} records, and has successfully sent {} records to destination.",
        p.records_parsed, p.bytes_parsed, p.records_transformed, p.records_skipped, p.records_sent
    );
    if p.kinesis_records_sent == 0 {
        return line;
    }
    format!(
        "{line} They were sent in {} Kinesis records (kplAggregation).",
        p.kinesis_records_sent
    )
}

/// Java `Agent.emitStatus`: `Agent: Progress: ...`.
pub fn agent_progress(p: &Progress, uptime_ms: u128) -> String {
    format!(
        "Agent: Progress: {} records parsed ({} bytes), and {} records sent successfully to destinations. Uptime: {}ms",
        p.records_parsed, p.bytes_parsed, p.records_sent, uptime_ms
    )
}

/// The one-line summary systemd shows as the unit's `Status:` (`STATUS=` in sd_notify): how
/// many flows run, records sent, and how far behind the files are.
pub fn service_status(running: usize, configured: usize, p: &Progress) -> String {
    let flows = if running == configured {
        format!("{running} flows running")
    } else {
        format!("{running} of {configured} flows running (see the agent log)")
    };
    format!(
        "{flows}; {} records sent; {} bytes in {} files behind",
        p.records_sent, p.bytes_behind, p.files_behind
    )
}

/// The "behind" line for a tailer (`"<tailer>: Tailer"`) or the agent (`"Agent: Tailing"`), and
/// the level it is logged at; None when the Java agent would not log it.
pub fn behind(subject: &str, p: &Progress, emit_internal_metrics: bool) -> Option<(Level, String)> {
    let level = if p.bytes_behind >= BYTES_BEHIND_WARN {
        Level::WARN
    } else if p.bytes_behind >= BYTES_BEHIND_INFO || emit_internal_metrics {
        Level::INFO
    } else if p.bytes_behind > 0 {
        Level::DEBUG
    } else {
        return None;
    };
    // Java: String.format("%02f", bytes / 1024 / 1024.0), the first division on integers.
    let mb = (p.bytes_behind / 1024) as f64 / 1024.0;
    let mut line = format!("{subject} is {mb:.6} MB ({} bytes) behind.", p.bytes_behind);
    if p.files_behind > 0 {
        line.push_str(&format!(
            " There are {} file(s) newer than current file(s) being tailed.",
            p.files_behind
        ));
    }
    Some((level, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_wording() {
        let p = Progress {
            records_parsed: 10,
            bytes_parsed: 200,
            records_transformed: 0,
            records_skipped: 0,
            records_sent: 9,
            kinesis_records_sent: 0,
            bytes_behind: 170588298,
            files_behind: 1,
        };
        assert_eq!(
            tailer_progress("FileTailer[kinesis:s:/tmp/app.log*]", &p),
            "FileTailer[kinesis:s:/tmp/app.log*]: Tailer Progress: Tailer has parsed 10 records (200 bytes), transformed 0 records, skipped 0 records, and has successfully sent 9 records to destination."
        );
        let aggregated = Progress {
            kinesis_records_sent: 2,
            ..p
        };
        assert!(tailer_progress("T", &aggregated).ends_with(
            "successfully sent 9 records to destination. They were sent in 2 Kinesis records (kplAggregation)."
        ));
        assert_eq!(
            agent_progress(&p, 1234),
            "Agent: Progress: 10 records parsed (200 bytes), and 9 records sent successfully to destinations. Uptime: 1234ms"
        );
        // The figure from the Java agent's issue #160.
        assert_eq!(
            behind("FileTailer[x]: Tailer", &p, false),
            Some((
                Level::WARN,
                "FileTailer[x]: Tailer is 162.685547 MB (170588298 bytes) behind. There are 1 file(s) newer than current file(s) being tailed.".to_string()
            ))
        );
    }

    #[test]
    fn behind_levels() {
        let at = |bytes| Progress {
            bytes_behind: bytes,
            ..Progress::default()
        };
        assert_eq!(behind("Agent: Tailing", &at(0), false), None);
        assert_eq!(
            behind("Agent: Tailing", &at(0), true).map(|l| l.0),
            Some(Level::INFO)
        );
        assert_eq!(
            behind("Agent: Tailing", &at(1), false).map(|l| l.0),
            Some(Level::DEBUG)
        );
        let info = behind("Agent: Tailing", &at(BYTES_BEHIND_INFO), false);
        assert_eq!(info.map(|l| l.0), Some(Level::INFO));
        let warn = behind("Agent: Tailing", &at(BYTES_BEHIND_WARN), false);
        assert_eq!(warn.map(|l| l.0), Some(Level::WARN));
        assert_eq!(
            behind("Agent: Tailing", &at(0), true).map(|l| l.1),
            Some("Agent: Tailing is 0.000000 MB (0 bytes) behind.".to_string())
        );
    }

    #[test]
    fn service_status_names_flows_records_and_what_is_behind() {
        let p = Progress {
            records_sent: 1500,
            bytes_behind: 42,
            files_behind: 1,
            ..Progress::default()
        };
        assert_eq!(
            service_status(2, 2, &p),
            "2 flows running; 1500 records sent; 42 bytes in 1 files behind"
        );
        assert_eq!(
            service_status(1, 2, &Progress::default()),
            "1 of 2 flows running (see the agent log); 0 records sent; 0 bytes in 0 files behind"
        );
    }
}
