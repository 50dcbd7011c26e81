//! Runs the real `aws-kinesis-agent` binary for binary-level tests: a temp dir with its config,
//! an empty flows directory and its log file; SIGTERM and bounded waits.
//!
//! Waiting here is on a real external process, so it polls with real sleeps and a deadline;
//! no test asserts a duration.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn agent_bin() -> &'static str {
    env!("CARGO_BIN_EXE_aws-kinesis-agent")
}

/// A running agent.
pub struct Agent {
    child: Option<Child>,
    stderr_text: String,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Agent {
    /// Writes `config` to `<dir>/agent.json` and starts the agent with its log in `<dir>/agent.log`,
    /// an empty flows directory, and `env` (which should come from `Emulators::env`).
    pub fn start(dir: &Path, config: &str, env: &[(String, String)]) -> Agent {
        Agent::start_with(dir, config, env, &[])
    }

    /// Like [`Agent::start`], the binary run through `prefix` (e.g. `setpriv ... --`, which
    /// execs it, so signals still reach the agent).
    pub fn start_with(
        dir: &Path,
        config: &str,
        env: &[(String, String)],
        prefix: &[&str],
    ) -> Agent {
        let config_path = dir.join("agent.json");
        fs::write(&config_path, with_local_checkpoints(config, dir)).expect("write config");
        let flows_dir = dir.join("agent.d");
        fs::create_dir_all(&flows_dir).expect("flows dir");
        let log = dir.join("agent.log");
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(agent_bin());
                cmd
            }
            None => Command::new(agent_bin()),
        };
        cmd.arg("-c")
            .arg(&config_path)
            .arg("--flows-dir")
            .arg(&flows_dir)
            .arg("-l")
            .arg(&log);
        super::apply_aws_test_env(&mut cmd);
        // An empty value removes the variable (e.g. the test credentials, to test without).
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("start the agent");
        Agent {
            child: Some(child),
            stderr_text: String::new(),
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// The agent's log so far, rolled parts first (the log rolls at every full hour).
    pub fn log_text(&self) -> String {
        let stem = self
            .log
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rolled: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{stem}-")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        rolled.sort();
        let mut text = String::new();
        for part in rolled.iter().chain(std::iter::once(&self.log)) {
            text.push_str(&fs::read_to_string(part).unwrap_or_default());
        }
        text
    }

    /// Waits until the log contains `needle` (panics with the log after `timeout`).
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_text().contains(needle) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "agent exited ({status}) before logging {needle:?}; log:\n{}",
                        self.log_text()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the agent log after {timeout:?}; log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log contains `needle` at least `count` times (the log is shared by
    /// successive runs in one directory).
    pub fn wait_for_log_count(&mut self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.log_text().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "fewer than {count} {needle:?} in the log after {timeout:?}:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit (bounded).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait(Duration::from_secs(30))
    }

    /// What the agent wrote to standard error (after it exited).
    pub fn stderr(&mut self) -> String {
        self.stderr_text.clone()
    }

    /// Sends SIGKILL and waits.
    pub fn kill9(&mut self) -> ExitStatus {
        self.signal("-KILL");
        self.wait(Duration::from_secs(10))
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            // `kill` the command: no libc needed for one signal.
            let _ = Command::new("kill")
                .arg(sig)
                .arg(child.id().to_string())
                .status();
        }
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("agent running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut self.stderr_text);
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "agent did not exit within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the agent to completion with `config` (for configuration errors): its output.
pub fn run_to_exit(dir: &Path, config: &str) -> Output {
    let config_path = dir.join("agent.json");
    fs::write(&config_path, with_local_checkpoints(config, dir)).expect("write config");
    let flows_dir = dir.join("agent.d");
    fs::create_dir_all(&flows_dir).expect("flows dir");
    let mut cmd = Command::new(agent_bin());
    cmd.arg("-c")
        .arg(&config_path)
        .arg("--flows-dir")
        .arg(&flows_dir)
        .arg("-l")
        .arg(dir.join("agent.log"));
    super::apply_aws_test_env(&mut cmd);
    cmd.stdin(Stdio::null());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run agent");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("agent did not exit on a bad configuration");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Tests never touch /var: a config without `checkpointFile` gets one in the test's directory.
/// (Text that is not a JSON object is left alone: it is a bad-config test.)
fn with_local_checkpoints(config: &str, dir: &Path) -> String {
    match serde_json::from_str::<serde_json::Value>(config) {
        Ok(serde_json::Value::Object(mut map)) => {
            if !map.contains_key("checkpointFile") {
                let path = dir.join("checkpoints").display().to_string();
                map.insert("checkpointFile".into(), serde_json::Value::String(path));
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => config.to_string(),
    }
}

/// Polls `probe` until it returns true or `timeout` passes; returns the last answer.
pub fn eventually(timeout: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if probe() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(250));
    }
}
