//! Rotation by tools nobody here wrote: Debian's `logrotate` (forced about every 0.7 s,
//! `rotate 1000`) against logs written by Python's `logging` handlers at 1,000 lines a second,
//! with and without `kill -9` of the agent, through the real binary against kinesalite. Ground
//! truth: every line left on disk at the end, compressed rotations decompressed.
//!
//! Needs `logrotate` (`apt-get install logrotate`; `.ci/run` installs it) and `python3`.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::agent::{eventually, Agent};
use support::{aws_test_env, repo_root, Emulators};

const WAIT: Duration = Duration::from_secs(120);
const WRITE_SECONDS: f64 = 6.0;
const RATE: u32 = 1000;

fn logrotate_bin() -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join("logrotate");
        if p.exists() {
            return p;
        }
    }
    panic!("logrotate is not installed: apt-get install logrotate (.ci/run installs it)");
}

/// A test set-up: a directory with the log, a logrotate configuration for it, and a writer.
struct Setup {
    dir: tempfile::TempDir,
    logs: PathBuf,
    /// logrotate's `olddir`, when the set-up has one.
    old: Option<PathBuf>,
    conf: PathBuf,
    state: PathBuf,
}

impl Setup {
    /// `directives`: the logrotate stanza's options, e.g. `copytruncate\ncompress`.
    fn new(directives: &str) -> Setup {
        Setup::make(directives, false)
    }

    /// With `olddir <dir>/old`: rotated copies move out of the pattern's directory.
    fn with_olddir(directives: &str) -> Setup {
        Setup::make(directives, true)
    }

    fn make(directives: &str, olddir: bool) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        fs::create_dir(&logs).expect("mkdir");
        let old = olddir.then(|| dir.path().join("old"));
        let mut directives = directives.to_string();
        if let Some(old) = &old {
            fs::create_dir(old).expect("mkdir old");
            directives.push_str(&format!("\n  olddir {}", old.display()));
        }
        let conf = dir.path().join("logrotate.conf");
        let state = dir.path().join("logrotate.state");
        fs::write(
            &conf,
            format!(
                "{}/app.log {{\n  rotate 1000\n  missingok\n  notifempty\n{directives}\n}}\n",
                logs.display()
            ),
        )
        .expect("write logrotate.conf");
        Setup {
            dir,
            logs,
            old,
            conf,
            state,
        }
    }

    fn log(&self) -> PathBuf {
        self.logs.join("app.log")
    }

    /// Starts the Python writer with `handler` (file, watched, rotating).
    fn writer(&self, handler: &str, prefix: &str) -> Child {
        Command::new("python3")
            .arg(repo_root().join("tests/fixtures/pylog_writer.py"))
            .arg(self.log())
            .arg(handler)
            .arg(RATE.to_string())
            .arg(WRITE_SECONDS.to_string())
            .arg(prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 tests/fixtures/pylog_writer.py")
    }

    /// `logrotate -f` once.
    fn rotate(&self) {
        let out = Command::new(logrotate_bin())
            .arg("-f")
            .arg("-s")
            .arg(&self.state)
            .arg(&self.conf)
            .output()
            .expect("run logrotate");
        assert!(
            out.status.success(),
            "logrotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every line on disk now: plain files and decompressed `.gz` files.
    fn lines_on_disk(&self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let dirs = std::iter::once(&self.logs).chain(self.old.as_ref());
        for entry in dirs.flat_map(|d| fs::read_dir(d).expect("ls").flatten()) {
            let path = entry.path();
            let mut bytes = Vec::new();
            let file = fs::File::open(&path).expect("open");
            if path.extension().is_some_and(|e| e == "gz") {
                flate2::read::MultiGzDecoder::new(file)
                    .read_to_end(&mut bytes)
                    .expect("gunzip");
            } else {
                let mut file = file;
                file.read_to_end(&mut bytes).expect("read");
            }
            lines.extend(
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .filter(|l| l.starts_with(prefix))
                    .map(|l| format!("{l}\n")),
            );
        }
        lines
    }
}

fn config(emu: &Emulators, pattern: &Path, stream: &str) -> String {
    config_with(emu, pattern, stream, None)
}

fn config_with(emu: &Emulators, pattern: &Path, stream: &str, olddir: Option<&Path>) -> String {
    let rotated = olddir
        .map(|d| format!(r#""rotatedFileDirectory": "{}","#, d.display()))
        .unwrap_or_default();
    format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "{stream}", "maxBufferAgeMillis": 1000, {rotated}
                           "initialPosition": "START_OF_FILE" }} ] }}"#,
        emu.kinesis_endpoint,
        pattern.display()
    )
}

fn received(emu: &Emulators, stream: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in emu.kinesis_records(stream) {
        *counts
            .entry(String::from_utf8_lossy(&r.data).into_owned())
            .or_insert(0) += 1;
    }
    counts
}

/// Runs one set-up: the writer for [`WRITE_SECONDS`], `logrotate -f` every 0.7 s, `kills`
/// kill -9 restarts of the agent spread over the run. Returns (on disk, missing, duplicated)
/// and the agent's log.
fn run(
    directives: &str,
    handler: &str,
    pattern: &str,
    stream: &str,
    kills: usize,
) -> (usize, Vec<String>, usize, String) {
    run_in(Setup::new(directives), handler, pattern, stream, kills)
}

fn run_in(
    setup: Setup,
    handler: &str,
    pattern: &str,
    stream: &str,
    kills: usize,
) -> (usize, Vec<String>, usize, String) {
    let emu = Emulators::shared();
    emu.create_stream(stream, 2);
    let prefix = format!("{stream}-line");
    let cfg = config_with(emu, &setup.logs.join(pattern), stream, setup.old.as_deref());
    let mut agent = Agent::start(setup.dir.path(), &cfg, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let mut writer = setup.writer(handler, &prefix);
    let started = Instant::now();
    let mut next_rotation = Duration::from_millis(700);
    let kill_every = WRITE_SECONDS / (kills as f64 + 1.0);
    let mut next_kill = Duration::from_secs_f64(kill_every);
    let mut killed = 0;
    while writer.try_wait().expect("writer").is_none() {
        let now = started.elapsed();
        if handler != "rotating" && now >= next_rotation {
            setup.rotate();
            next_rotation += Duration::from_millis(700);
        }
        if killed < kills && now >= next_kill {
            agent.kill9();
            agent = Agent::start(setup.dir.path(), &cfg, &aws_test_env());
            killed += 1;
            next_kill += Duration::from_secs_f64(kill_every);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut written = String::new();
    if let Some(mut out) = writer.stdout.take() {
        out.read_to_string(&mut written).expect("writer output");
    }
    assert!(writer.wait().expect("writer").success());
    // One more rotation after the last line, as the next cron run would do.
    if handler != "rotating" {
        setup.rotate();
    }
    let truth = setup.lines_on_disk(&prefix);
    assert!(
        truth.len() > 1000,
        "the writer wrote {written} lines, {} on disk",
        truth.len()
    );
    eventually(WAIT, || {
        let got = received(emu, stream);
        truth.iter().all(|l| got.contains_key(l))
    });
    assert!(agent.stop().success());
    let got = received(emu, stream);
    let missing: Vec<String> = truth
        .iter()
        .filter(|l| !got.contains_key(*l))
        .cloned()
        .collect();
    let duplicated = got.values().map(|n| n - 1).sum();
    (truth.len(), missing, duplicated, agent.log_text())
}

fn assert_complete(what: &str, result: (usize, Vec<String>, usize, String), max_dups: usize) {
    let (on_disk, missing, duplicated, log) = result;
    eprintln!(
        "{what}: {on_disk} lines on disk, {} missing, {duplicated} duplicated",
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "{what}: {} of {on_disk} lines missing, first {:?}\nlog:\n{log}",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        duplicated <= max_dups,
        "{what}: {duplicated} duplicates (at most {max_dups})"
    );
}

#[test]
fn copytruncate_compress_without_delaycompress_loses_nothing() {
    let r = run(
        "  copytruncate\n  compress",
        "file",
        "app.log",
        "lr-ct-gz",
        0,
    );
    assert!(
        r.3.contains("recovered") || r.2 == 0,
        "the recovery is logged when it happens"
    );
    assert_complete("copytruncate + compress", r, 0);
}

#[test]
fn copytruncate_compress_delaycompress_loses_nothing() {
    let r = run(
        "  copytruncate\n  compress\n  delaycompress",
        "file",
        "app.log*",
        "lr-ct-dgz",
        0,
    );
    assert_complete("copytruncate + compress + delaycompress", r, 0);
}

#[test]
fn create_compress_loses_nothing() {
    let r = run("  create\n  compress", "watched", "app.log", "lr-cr-gz", 0);
    assert_complete("create + compress", r, 0);
}

#[test]
fn rotating_file_handler_loses_nothing() {
    let r = run("", "rotating", "app.log*", "lr-rfh", 0);
    assert_complete("RotatingFileHandler", r, 0);
}

// With kill -9: what was acknowledged after the last checkpoint save (up to a second) and what
// was in flight (up to maxBufferAgeMillis, a second) may be sent again: about 2,000 lines at
// this rate, per kill.

#[test]

fn copytruncate_compress_with_kill_9_loses_nothing() {
    let r = run(
        "  copytruncate\n  compress",
        "file",
        "app.log",
        "lr-ct-gz-k",
        3,
    );
    assert_complete("copytruncate + compress, 3 x kill -9", r, 3 * 2000);
}

#[test]
fn create_compress_with_kill_9_loses_nothing() {
    let r = run(
        "  create\n  compress",
        "watched",
        "app.log",
        "lr-cr-gz-k",
        3,
    );
    assert_complete("create + compress, 3 x kill -9", r, 3 * 2000);
}

#[test]
fn copytruncate_delaycompress_with_kill_9_loses_nothing() {
    let r = run(
        "  copytruncate\n  compress\n  delaycompress",
        "file",
        "app.log*",
        "lr-ct-dgz-k",
        3,
    );
    assert_complete("copytruncate + delaycompress, 3 x kill -9", r, 3 * 2000);
}

#[test]
fn olddir_create_compress_with_kill_9_loses_nothing() {
    let setup = Setup::with_olddir("  create\n  compress");
    let r = run_in(setup, "watched", "app.log", "lr-old-cr-k", 3);
    assert_complete("olddir + create + compress, 3 x kill -9", r, 3 * 2000);
}

#[test]
fn olddir_copytruncate_compress_with_kill_9_loses_nothing() {
    let setup = Setup::with_olddir("  copytruncate\n  compress");
    let r = run_in(setup, "file", "app.log", "lr-old-ct-k", 3);
    assert_complete("olddir + copytruncate + compress, 3 x kill -9", r, 3 * 2000);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn numbered(prefix: &str, from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| format!("{prefix} {i:06} padding-to-look-like-a-log-line\n"))
        .collect()
}

fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(lines.concat().as_bytes()).expect("write");
}

#[test]
fn a_compressed_file_that_matches_nothing_is_not_shipped() {
    let emu = Emulators::shared();
    emu.create_stream("lr-unrelated", 1);
    let setup = Setup::new("");
    let log = setup.log();
    let cfg = config(emu, &log, "lr-unrelated");
    let mut agent = Agent::start(setup.dir.path(), &cfg, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let first = numbered("lr-unrelated app", 0, 200);
    append(&log, &first);
    assert!(eventually(WAIT, || emu
        .kinesis_records("lr-unrelated")
        .len()
        >= 200));
    // A truncation (so the agent looks for compressed copies) and, at the same time, an
    // archive of some other log.
    let unrelated = numbered("lr-unrelated other", 0, 300);
    fs::write(
        setup.logs.join("other.log.1.gz"),
        gzip(unrelated.concat().as_bytes()),
    )
    .expect("write other.log.1.gz");
    fs::File::create(&log).expect("truncate");
    let second = numbered("lr-unrelated app-after", 0, 100);
    append(&log, &second);
    assert!(eventually(WAIT, || emu
        .kinesis_records("lr-unrelated")
        .len()
        >= 300));
    // Past the settle time of a compressed candidate.
    thread::sleep(Duration::from_secs(3));
    assert!(agent.stop().success());
    let got = received(emu, "lr-unrelated");
    assert!(
        got.keys().all(|l| !l.contains(" other ")),
        "lines of an unrelated archive were sent:\n{}",
        agent.log_text()
    );
    assert_eq!(got.len(), 300, "log:\n{}", agent.log_text());
}

#[test]
fn a_truncated_gz_is_shipped_up_to_where_it_is_readable_and_the_rest_reported() {
    let emu = Emulators::shared();
    emu.create_stream("lr-cut", 1);
    let setup = Setup::new("");
    let log = setup.log();
    let cfg = config(emu, &log, "lr-cut");
    let first = numbered("lr-cut line", 0, 100);
    append(&log, &first);
    let mut agent = Agent::start(setup.dir.path(), &cfg, &aws_test_env());
    assert!(eventually(WAIT, || emu.kinesis_records("lr-cut").len() >= 100));
    assert!(agent.stop().success());

    // Stopped: 20,000 more lines, then create + compress, and the archive cut in half (a disk
    // that filled up while gzip wrote it).
    let unread = numbered("lr-cut line", 100, 20_100);
    append(&log, &unread);
    let content = fs::read(&log).expect("read");
    let gz = gzip(&content);
    fs::write(setup.logs.join("app.log.1.gz"), &gz[..gz.len() / 2]).expect("write");
    fs::remove_file(&log).expect("rm");

    let mut agent = Agent::start(setup.dir.path(), &cfg, &aws_test_env());
    agent.wait_for_log("is damaged after", WAIT);
    assert!(eventually(WAIT, || emu.kinesis_records("lr-cut").len() > 100));
    // Everything the archive still gives is sent: wait until the count stops growing.
    let mut last = 0;
    while {
        thread::sleep(Duration::from_secs(2));
        let n = emu.kinesis_records("lr-cut").len();
        let growing = n != last;
        last = n;
        growing
    } {}
    assert!(agent.stop().success());
    let got = received(emu, "lr-cut");
    let shipped: Vec<&String> = unread.iter().filter(|l| got.contains_key(*l)).collect();
    assert!(
        !shipped.is_empty() && shipped.len() < unread.len(),
        "{} of {} unread lines shipped",
        shipped.len(),
        unread.len()
    );
    // What was shipped is the readable beginning, each line once.
    assert_eq!(
        shipped,
        unread.iter().take(shipped.len()).collect::<Vec<_>>()
    );
    assert!(got.values().all(|&n| n == 1));
    let log_text = agent.log_text();
    assert!(
        log_text.contains("recovered") && log_text.contains("app.log.1.gz"),
        "{log_text}"
    );
}
