//! Never lose a line: rotation while writing, restarts, and kill -9, through the real binary
//! against kinesalite.

mod support;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::agent::{eventually, Agent};
use support::{aws_test_env, Emulators};

const WAIT: Duration = Duration::from_secs(120);

fn config(emu: &Emulators, pattern: &Path, stream: &str) -> String {
    format!(
        r#"{{ "kinesis.endpoint": "{}", "kinesis.region": "us-east-1", "cloudwatch.emitMetrics": false,
             "flows": [ {{ "filePattern": "{}", "kinesisStream": "{stream}", "maxBufferAgeMillis": 1000,
                           "initialPosition": "START_OF_FILE" }} ] }}"#,
        emu.kinesis_endpoint,
        pattern.display()
    )
}

/// Received records counted by line.
fn received(emu: &Emulators, stream: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in emu.kinesis_records(stream) {
        *counts
            .entry(String::from_utf8_lossy(&r.data).into_owned())
            .or_insert(0) += 1;
    }
    counts
}

/// Lines written that never arrived, and the number of extra copies that did.
fn compare(written: &[String], got: &HashMap<String, usize>) -> (Vec<String>, usize) {
    let missing: Vec<String> = written
        .iter()
        .filter(|l| !got.contains_key(*l))
        .cloned()
        .collect();
    let duplicates = got.values().map(|n| n - 1).sum();
    (missing, duplicates)
}

/// Writes numbered lines at a steady rate into `dir/app.log`, and rotates on request the way
/// logrotate does (rename + create, or copy + truncate). The writer pauses while a rotation
/// runs, as an application would between two writes; the copy-then-truncate window in which
/// logrotate itself can lose lines is not what these tests measure.
struct Writer {
    dir: PathBuf,
    file: Mutex<File>,
    written: Mutex<Vec<String>>,
    rotations: AtomicU64,
    stop: AtomicBool,
}

impl Writer {
    fn new(dir: &Path) -> Arc<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("app.log"))
            .expect("open");
        Arc::new(Writer {
            dir: dir.to_path_buf(),
            file: Mutex::new(file),
            written: Mutex::new(Vec::new()),
            rotations: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    }

    /// Writes `per_second` lines a second in bursts of 20 until stopped.
    fn run(self: &Arc<Writer>, per_second: u64) -> thread::JoinHandle<()> {
        let w = self.clone();
        thread::spawn(move || {
            let started = Instant::now();
            let mut n = 0u64;
            while !w.stop.load(Ordering::Relaxed) {
                {
                    let mut file = w.file.lock().expect("lock");
                    let mut written = w.written.lock().expect("lock");
                    for _ in 0..20 {
                        let line = format!("seq={n:08} {}\n", "p".repeat((n % 97) as usize));
                        file.write_all(line.as_bytes()).expect("write");
                        written.push(line);
                        n += 1;
                    }
                }
                let due = started + Duration::from_micros(n * 1_000_000 / per_second);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
            }
        })
    }

    fn rotate_rename(&self) {
        let mut file = self.file.lock().expect("lock");
        let k = self.rotations.fetch_add(1, Ordering::Relaxed) + 1;
        fs::rename(
            self.dir.join("app.log"),
            self.dir.join(format!("app.log.{k}")),
        )
        .expect("rename");
        *file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("app.log"))
            .expect("create");
    }

    fn rotate_copytruncate(&self) {
        let file = self.file.lock().expect("lock");
        let k = self.rotations.fetch_add(1, Ordering::Relaxed) + 1;
        fs::copy(
            self.dir.join("app.log"),
            self.dir.join(format!("app.log.{k}")),
        )
        .expect("copy");
        file.set_len(0).expect("truncate");
    }

    fn finish(&self, handle: thread::JoinHandle<()>) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        handle.join().expect("writer");
        self.written.lock().expect("lock").clone()
    }
}

/// Appends `line(i)` for each `i` of `numbers` to `path`.
fn append_numbered(path: &Path, numbers: std::ops::Range<usize>, line: impl Fn(usize) -> String) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    for i in numbers {
        f.write_all(line(i).as_bytes()).expect("write");
    }
}

/// Writes the first 100 lines (`write`), runs the agent until they are in `stream`, and stops
/// it cleanly.
fn send_first_lines_then_stop(
    emu: &Emulators,
    dir: &Path,
    cfg: &str,
    stream: &str,
    write: impl FnOnce(),
) {
    write();
    let mut agent = Agent::start(dir, cfg, &aws_test_env());
    assert!(
        eventually(WAIT, || emu.kinesis_records(stream).len() >= 100),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
}

#[test]
fn restart_resumes_from_checkpoints_also_after_rotation_while_stopped() {
    let emu = Emulators::shared();
    emu.create_stream("restart-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let cfg = config(emu, &logs.join("app.log*"), "restart-stream");
    let line = |i: usize| format!("restart line {i:04}\n");
    let append = |from: usize, to: usize| append_numbered(&logs.join("app.log"), from..to, line);

    send_first_lines_then_stop(emu, dir.path(), &cfg, "restart-stream", || append(0, 100));

    // While the agent is stopped: more lines, a rename rotation, lines in the new file.
    append(100, 150);
    fs::rename(logs.join("app.log"), logs.join("app.log.1")).expect("rotate");
    append(150, 180);

    let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    assert!(
        eventually(WAIT, || emu.kinesis_records("restart-stream").len() >= 180),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let log = agent.log_text();
    assert!(
        log.contains("app.log.1 for parsing at offset")
            && log.contains("resuming from its checkpoint"),
        "log:\n{log}"
    );

    let got = received(emu, "restart-stream");
    let written: Vec<String> = (0..180).map(line).collect();
    let (missing, duplicates) = compare(&written, &got);
    assert!(missing.is_empty(), "missing after restart: {missing:?}");
    assert_eq!(
        duplicates, 0,
        "a clean stop saves checkpoints, so nothing is sent twice"
    );
}

#[test]
fn a_copytruncate_rotation_while_stopped_continues_the_copy_from_the_checkpoint() {
    let emu = Emulators::shared();
    emu.create_stream("copytruncate-stopped-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let stream = "copytruncate-stopped-stream";
    let cfg = config(emu, &logs.join("app.log*"), stream);
    let line = |i: usize| format!("copytruncate line {i:04}\n");
    let append = |from: usize, to: usize| append_numbered(&logs.join("app.log"), from..to, line);

    send_first_lines_then_stop(emu, dir.path(), &cfg, stream, || append(0, 100));

    // While the agent is stopped: more lines, then logrotate's copytruncate (the copy sorts
    // after the original here, and holds lines already sent), then lines in the truncated file
    // (more than it held, so a size check alone would take it for the same file grown).
    append(100, 120);
    fs::copy(logs.join("app.log"), logs.join("app.log.1")).expect("copy");
    OpenOptions::new()
        .write(true)
        .open(logs.join("app.log"))
        .expect("open")
        .set_len(0)
        .expect("truncate");
    append(120, 300);

    let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    assert!(
        eventually(WAIT, || emu.kinesis_records(stream).len() >= 300),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let log = agent.log_text();
    assert!(
        log.contains("copytruncate while the agent was stopped"),
        "log:\n{log}"
    );
    let got = received(emu, stream);
    let written: Vec<String> = (0..300).map(line).collect();
    let (missing, duplicates) = compare(&written, &got);
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(
        duplicates, 0,
        "the copy's first 100 lines were sent before; log:\n{log}"
    );
}

#[test]
fn an_exact_path_file_renamed_out_of_the_pattern_while_stopped_is_read_to_its_end() {
    let emu = Emulators::shared();
    emu.create_stream("renamed-out-stream", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    // The most common configuration: the live file's exact path, so `app.log.1` is outside it.
    let cfg = config(emu, &logs.join("app.log"), "renamed-out-stream");
    let line = |i: usize| format!("renamed-out line {i:04}\n");
    let append = |from: usize, to: usize| {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join("app.log"))
            .expect("open");
        for i in from..to {
            f.write_all(line(i).as_bytes()).expect("write");
        }
    };

    append(0, 100);
    let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    assert!(
        eventually(WAIT, || emu.kinesis_records("renamed-out-stream").len()
            >= 100),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());

    // Stopped: the file gets 50 more lines, is renamed out of the pattern, a new one starts.
    append(100, 150);
    fs::rename(logs.join("app.log"), logs.join("app.log.1")).expect("rotate");
    append(150, 180);
    let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    assert!(
        eventually(WAIT, || emu.kinesis_records("renamed-out-stream").len()
            >= 180),
        "log:\n{}",
        agent.log_text()
    );

    // Killed with lines unsent, then renamed out again while down.
    append(180, 230);
    assert!(
        eventually(WAIT, || emu.kinesis_records("renamed-out-stream").len()
            >= 230),
        "log:\n{}",
        agent.log_text()
    );
    agent.kill9();
    append(230, 260);
    fs::rename(logs.join("app.log.1"), logs.join("app.log.2")).expect("rotate");
    fs::rename(logs.join("app.log"), logs.join("app.log.1")).expect("rotate");
    append(260, 270);
    let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    assert!(
        eventually(WAIT, || emu.kinesis_records("renamed-out-stream").len()
            >= 270),
        "log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let log = agent.log_text();
    assert!(
        log.contains("app.log.1 (150 bytes after its checkpoint")
            || log.contains("renamed out of the pattern while the agent was stopped"),
        "the recovery is logged:\n{log}"
    );

    let got = received(emu, "renamed-out-stream");
    let written: Vec<String> = (0..270).map(line).collect();
    let (missing, duplicates) = compare(&written, &got);
    assert!(missing.is_empty(), "missing: {missing:?}\nlog:\n{log}");
    // A kill -9 may resend what was sent after the last checkpoint save (about a second).
    assert!(
        duplicates <= 50,
        "{duplicates} duplicates: more than the last checkpoint interval allows"
    );
}

#[test]
fn rename_and_copytruncate_rotation_at_2000_lines_a_second_lose_nothing() {
    let emu = Emulators::shared();
    emu.create_stream("rotate-stream", 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let writer = Writer::new(&logs);
    let mut agent = Agent::start(
        dir.path(),
        &config(emu, &logs.join("app.log*"), "rotate-stream"),
        &aws_test_env(),
    );
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let handle = writer.run(2000);
    for i in 0..6 {
        thread::sleep(Duration::from_millis(700));
        if i % 2 == 0 {
            writer.rotate_rename();
        } else {
            writer.rotate_copytruncate();
        }
    }
    thread::sleep(Duration::from_millis(500));
    let written = writer.finish(handle);
    assert!(
        eventually(WAIT, || compare(&written, &received(emu, "rotate-stream"))
            .0
            .is_empty()),
        "lines missing; log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let (missing, duplicates) = compare(&written, &received(emu, "rotate-stream"));
    println!(
        "rotation under load: {} lines written, {} missing, {duplicates} duplicates",
        written.len(),
        missing.len()
    );
    assert!(missing.is_empty());
    assert_eq!(
        duplicates,
        0,
        "rotation alone must not resend anything; log:\n{}",
        agent.log_text()
    );
    assert!(
        agent.log_text().contains("copytruncate"),
        "the copies were recognised"
    );
}

#[test]
fn five_kill_9_restarts_while_writing_and_rotating_lose_nothing() {
    let emu = Emulators::shared();
    emu.create_stream("crash-stream", 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let cfg = config(emu, &logs.join("app.log*"), "crash-stream");
    let writer = Writer::new(&logs);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    agent.wait_for_log("Agent: Startup completed", WAIT);
    let handle = writer.run(2000);
    for kill in 0..5 {
        thread::sleep(Duration::from_millis(rng.random_range(400..1500)));
        if kill % 2 == 0 {
            writer.rotate_rename();
        } else {
            writer.rotate_copytruncate();
        }
        thread::sleep(Duration::from_millis(rng.random_range(100..800)));
        agent.kill9();
        agent = Agent::start(dir.path(), &cfg, &aws_test_env());
    }
    thread::sleep(Duration::from_millis(500));
    let written = writer.finish(handle);
    assert!(
        eventually(WAIT, || compare(&written, &received(emu, "crash-stream"))
            .0
            .is_empty()),
        "lines missing after kill -9 restarts; log:\n{}",
        agent.log_text()
    );
    assert!(agent.stop().success());
    let (missing, duplicates) = compare(&written, &received(emu, "crash-stream"));
    println!(
        "kill -9 x5: {} lines written, {} missing, {duplicates} duplicates",
        written.len(),
        missing.len()
    );
    for line in agent
        .log_text()
        .lines()
        .filter(|l| l.contains("Opening") || l.contains("Starting up"))
    {
        println!("  {}", line.split("]: ").last().unwrap_or(line));
    }
    assert!(missing.is_empty());
}
