#!/usr/bin/env python3
"""The agent's benchmark: runs the release binary against tools/fake-aws on 127.0.0.1 and prints
one table row and one JSON line per scenario. Started by scripts/bench (which builds first); see
the README, "Benchmark". Nothing is asserted: targets are printed next to the figures.

Measures, per scenario: wall seconds from the agent's start until the endpoint acknowledged the
last record (the fake's /__control/stats polled over one keep-alive connection), the agent's CPU
seconds (utime + stime of /proc/PID/stat, read just before it is stopped) and its peak RSS
(VmHWM of /proc/PID/status).
"""

import argparse
import base64
import http.client
import json
import os
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
LINE_BYTES = 200
MIB = 1024 * 1024
STREAM = "bench"

# The issues' targets (issues 9 and 20), printed next to the measured figures, never asserted.
TARGET_RECORDS_PER_CPU_S = 700_000
# Issue 17: lines per agent CPU-second with kplAggregation.
TARGET_KPL_LINES_PER_CPU_S = 1_500_000
TARGET_BACKLOG_WALL_S = 2.0
TARGET_RSS_MIB = 32
TARGET_TAIL_CORE_PCT = 5.0
LATENCY_BUFFER_AGE_MS = 1000
TARGET_P99_MS = LATENCY_BUFFER_AGE_MS + 200
TARGET_SCALE_IDLE_PCT = 1.0
TARGET_SCALE_RSS_MIB = 64
TARGET_SCALE_FIRST_S = 30


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# fake-aws


class Fake:
    """One fake-aws process on 127.0.0.1; it exits when we close its stdin."""

    def __init__(self, binary, workdir, tls, keep_records=False, faults=None):
        self.stderr = open(os.path.join(workdir, "fake-aws.stderr"), "wb")
        args = [binary, "--threads", "2", "--exit-on-stdin-eof", "--stream", STREAM]
        if not keep_records:
            args.append("--discard-records")
        self.ca = None
        if tls:
            self.ca = os.path.join(workdir, "fake-ca.pem")
            args += ["--tls", "--cert-out", self.ca]
        if faults:
            args += ["--faults", json.dumps(faults)]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr
        )
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("fake-aws listening on "):
            self.stop()
            raise RuntimeError(f"fake-aws did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.conn = None

    def _connect(self):
        if self.ca:
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def get(self, path):
        """GET a control route over a kept connection (reconnects once if it was closed)."""
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = self._connect()
                self.conn.request("GET", path)
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {path}: HTTP {resp.status}: {body[:200]!r}")
                return body
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def stats(self):
        return json.loads(self.get("/__control/stats"))

    def accepted(self):
        """Lines accepted: records, each user record of a KPL aggregated record counted."""
        d = self.stats().get("destinations", {}).get(STREAM, {})
        return d.get("user_records_accepted", 0)

    def wait_accepted(self, n, timeout, interval=0.01):
        """Polls until `n` records were accepted; returns that instant (monotonic) or None."""
        deadline = time.monotonic() + timeout
        while True:
            if self.accepted() >= n:
                return time.monotonic()
            if time.monotonic() >= deadline:
                return None
            time.sleep(interval)

    def cpu_seconds(self):
        return proc_cpu_seconds(self.proc.pid)

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


# ---------------------------------------------------------------------------------------------
# the agent


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Agent:
    """The release binary with a generated configuration, its own checkpoint database and log."""

    def __init__(self, binary, workdir, flow, fake, perf_out=None, perf_freq=1999,
                 extra_env=None, prefix=None):
        self.workdir = workdir
        flows_dir = os.path.join(workdir, "agent.d")
        os.makedirs(flows_dir, exist_ok=True)
        self.log_path = os.path.join(workdir, "agent.log")
        config = {
            "checkpointFile": os.path.join(workdir, "checkpoints"),
            "kinesis.endpoint": fake.url,
            "firehose.endpoint": fake.url,
            "kinesis.region": "us-east-1",
            "cloudwatch.emitMetrics": False,
            "flows": [flow],
        }
        config_path = os.path.join(workdir, "agent.json")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)
        aws_config = os.path.join(workdir, "aws-config")
        aws_credentials = os.path.join(workdir, "aws-credentials")
        for p in (aws_config, aws_credentials):
            open(p, "w").close()
        # A clean environment: static test credentials, no profile, no instance metadata, no
        # proxy; the fake's CA through the standard SSL_CERT_FILE.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": workdir,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": aws_config,
            "AWS_SHARED_CREDENTIALS_FILE": aws_credentials,
        }
        if fake.ca:
            env["SSL_CERT_FILE"] = fake.ca
        env.update(extra_env or {})
        self.stderr = open(os.path.join(workdir, "agent.stderr"), "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(prefix or [])
            + [binary, "-c", config_path, "--flows-dir", flows_dir, "-l", self.log_path],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        self.perf = None
        if perf_out:
            self.perf = subprocess.Popen(
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(perf_freq),
                 "--call-graph", "dwarf,32768", "-p", str(self.proc.pid), "-o", perf_out],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_for_log(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        return proc_cpu_seconds(self.proc.pid)

    def peak_rss_mib(self):
        return proc_peak_rss_mib(self.proc.pid)

    def stop(self):
        """Returns (cpu seconds, peak RSS MiB) read just before SIGTERM, then stops it."""
        cpu, rss = float("nan"), float("nan")
        if self.alive():
            cpu, rss = self.cpu_seconds(), self.peak_rss_mib()
        if self.perf is not None:
            self.perf.send_signal(signal.SIGINT)
            try:
                self.perf.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.perf.kill()
                self.perf.wait()
            self.perf = None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return cpu, rss


# ---------------------------------------------------------------------------------------------
# input


def log_line(i, extra=""):
    """A 200-byte log line (with its newline), unique by `i`."""
    head = (
        f"2026-01-01T00:00:00.000Z INFO [worker-{i % 8}] seq={i:09d} {extra}"
        f"GET /api/v1/items/{i % 10007} status=200 took_ms={i % 997} "
    )
    return (head + "x" * (LINE_BYTES - 1 - len(head)))[: LINE_BYTES - 1] + "\n"


def write_backlog(path, lines):
    chunk = 10_000
    with open(path, "wb") as f:
        for start in range(0, lines, chunk):
            f.write(
                "".join(log_line(i) for i in range(start, min(lines, start + chunk))).encode()
            )


# ---------------------------------------------------------------------------------------------
# scenarios


def result(name, lines, wall, cpu, rss, delivered, **extra):
    mb = lines * LINE_BYTES / 1e6
    r = {
        "scenario": name,
        "lines": lines,
        "bytes": lines * LINE_BYTES,
        "delivered": delivered,
        "wall_s": round(wall, 3) if wall is not None else None,
        "records_per_s": round(lines / wall) if wall else None,
        "mb_per_s": round(mb / wall, 2) if wall else None,
        "agent_cpu_s": round(cpu, 2),
        "records_per_cpu_s": round(lines / cpu) if cpu and cpu == cpu else None,
        "peak_rss_mib": round(rss, 1),
    }
    r.update(extra)
    return r


def run_backlog(args, tmp, name, input_dir, lines, destination, faults=None, keys=None):
    """Scenarios 1 and 2: `lines` lines from the start of one file."""
    workdir = os.path.join(tmp, name)
    os.makedirs(workdir)
    fake = Fake(args.fake, workdir, args.tls, faults=faults)
    flow = {
        "filePattern": os.path.join(input_dir, "*.log"),
        destination: STREAM,
        "initialPosition": "START_OF_FILE",
        # Only a last partial batch waits for it (--lines not a multiple of 500).
        "maxBufferAgeMillis": 1000,
    }
    flow.update(keys or {})
    flow.update(args.flow_keys)
    perf_out = os.path.join(args.perf, f"{name}.perf.data") if args.perf else None
    agent = Agent(args.agent, workdir, flow, fake, perf_out, args.perf_freq, args.env,
                  args.prefix)
    try:
        timeout = args.backlog_timeout
        done = fake.wait_accepted(lines, timeout)
        wall = None if done is None else done - agent.started
        fake_cpu = fake.cpu_seconds()
        cpu, rss = agent.stop()
        stats = fake.stats()
        totals = stats.get("totals", {})
        dest = stats.get("destinations", {}).get(STREAM, {})
        delivered = dest.get("user_records_accepted", 0)
        extra = {
            "calls": totals.get("calls"),
            "calls_failed": totals.get("calls_failed"),
            "fake_cpu_s": round(fake_cpu, 2),
        }
        if destination == "kinesisStream":
            # Per million lines: Kinesis records, and PUT payload units (one per started
            # 25 KiB of a record), which Kinesis bills.
            per_million = 1_000_000 / max(delivered, 1)
            extra["kinesis_records_per_m_lines"] = round(dest.get("records_accepted", 0) * per_million)
            extra["put_units_per_m_lines"] = round(dest.get("put_payload_units", 0) * per_million)
        if done is None:
            extra["timed_out_after_s"] = timeout
        return result(name, lines, wall, cpu, rss, delivered, **extra)
    finally:
        agent.stop()
        fake.stop()


def run_many_files(args, tmp, files, seconds):
    """Scenario 3: `files` files under one pattern, each appended 10 lines a second."""
    name = f"tail-{files}-files"
    workdir = os.path.join(tmp, name)
    input_dir = os.path.join(workdir, "in")
    os.makedirs(input_dir)
    paths = [os.path.join(input_dir, f"app-{i:04d}.log") for i in range(files)]
    for p in paths:
        open(p, "w").close()
    fake = Fake(args.fake, workdir, args.tls)
    flow = {
        "filePattern": os.path.join(input_dir, "*.log"),
        "kinesisStream": STREAM,
        "initialPosition": "START_OF_FILE",
        "maxBufferAgeMillis": 1000,
    }
    flow.update(args.flow_keys)
    perf_out = os.path.join(args.perf, f"{name}.perf.data") if args.perf else None
    agent = Agent(args.agent, workdir, flow, fake, perf_out, args.perf_freq, args.env,
                  args.prefix)
    fds = []
    try:
        if not agent.wait_for_log("Startup completed", 30):
            raise RuntimeError(f"the agent did not start; log:\n{agent.log_text()[-2000:]}")
        fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in paths]
        ticks = seconds * 10
        cpu0 = agent.cpu_seconds()
        t0 = time.monotonic()
        n = 0
        late_ticks = 0
        for tick in range(ticks):
            for fd in fds:
                os.write(fd, log_line(n).encode())
                n += 1
            next_tick = t0 + (tick + 1) * 0.1
            pause = next_tick - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                late_ticks += 1
        write_end = time.monotonic()
        done = fake.wait_accepted(n, 60, interval=0.05)
        t_end = done if done is not None else time.monotonic()
        cpu1 = agent.cpu_seconds()
        # Idle: nothing written any more, after the last checkpoint and status writes have
        # settled (2 s); the agent should sleep.
        time.sleep(2)
        idle_s = args.idle_seconds
        cpu_idle0 = agent.cpu_seconds()
        time.sleep(idle_s)
        cpu2 = agent.cpu_seconds()
        cpu, rss = agent.stop()
        delivered = fake.accepted()
        busy = cpu1 - cpu0
        return result(
            name,
            n,
            t_end - t0,
            cpu,
            rss,
            delivered,
            files=files,
            append_seconds=round(write_end - t0, 2),
            late_ticks=late_ticks,
            drain_s_after_last_write=round(t_end - write_end, 3),
            cpu_while_appending_s=round(busy, 2),
            core_pct_while_appending=round(100 * busy / (t_end - t0), 2),
            idle_core_pct=round(100 * (cpu2 - cpu_idle0) / idle_s, 2),
            fake_cpu_s=round(fake.cpu_seconds(), 2),
        )
    finally:
        for fd in fds:
            os.close(fd)
        agent.stop()
        fake.stop()


def run_scale(args, tmp, files):
    """Scenario 5: `files` files of one line each under one pattern, the agent started with
    `--scale-limit` open files at most (soft and hard, as systemd's default soft limit): the
    time until every file's first line is acknowledged, the idle CPU once they are, peak RSS,
    then one more line appended to every file and the time until all of those are in."""
    name = f"scale-{files}-files"
    workdir = os.path.join(tmp, name)
    input_dir = os.path.join(workdir, "in")
    os.makedirs(input_dir)
    paths = [os.path.join(input_dir, f"f{i:06d}.log") for i in range(files)]
    for i, p in enumerate(paths):
        with open(p, "w") as f:
            f.write(log_line(i))
    fake = Fake(args.fake, workdir, args.tls)
    flow = {
        "filePattern": os.path.join(input_dir, "*.log"),
        "kinesisStream": STREAM,
        "initialPosition": "START_OF_FILE",
        "maxBufferAgeMillis": 1000,
    }
    flow.update(args.flow_keys)
    prefix = ["prlimit", f"--nofile={args.scale_limit}:{args.scale_limit}", "--"]
    agent = Agent(args.agent, workdir, flow, fake, None, args.perf_freq, args.env,
                  prefix + list(args.prefix or []))
    try:
        timeout = 120 + files / 500
        done = fake.wait_accepted(files, timeout)
        first_s = None if done is None else done - agent.started
        # Idle: every first line sent, the last checkpoint and status writes settled.
        time.sleep(3)
        idle_s = args.scale_idle_seconds
        cpu_idle0 = agent.cpu_seconds()
        time.sleep(idle_s)
        idle_pct = 100 * (agent.cpu_seconds() - cpu_idle0) / idle_s
        rss_idle = proc_rss_mib(agent.proc.pid)
        t0 = time.monotonic()
        for i, p in enumerate(paths):
            with open(p, "a") as f:
                f.write(log_line(files + i))
        done2 = fake.wait_accepted(2 * files, timeout, interval=0.1)
        appended_s = None if done2 is None else done2 - t0
        cpu, rss = agent.stop()
        delivered = fake.accepted()
        errors = sum(1 for line in agent.log_text().splitlines() if " ERROR " in line)
        extra = {
            "files": files,
            "open_files_limit": args.scale_limit,
            "first_lines_s": None if first_s is None else round(first_s, 2),
            "appended_lines_s": None if appended_s is None else round(appended_s, 2),
            "idle_core_pct": round(idle_pct, 2),
            "idle_rss_mib": round(rss_idle, 1),
            "duplicates": max(0, delivered - 2 * files),
            "error_lines": errors,
        }
        if done is None or done2 is None:
            extra["timed_out_after_s"] = timeout
        return result(name, 2 * files, first_s, cpu, rss, delivered, **extra)
    finally:
        agent.stop()
        fake.stop()


def proc_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def scale_slope(results):
    """CPU and memory per thousand files, between the smallest and the largest scale run."""
    runs = sorted((r for r in results if r["scenario"].startswith("scale-")),
                  key=lambda r: r["files"])
    if len(runs) < 2:
        return None
    a, b = runs[0], runs[-1]
    k = (b["files"] - a["files"]) / 1000
    return (
        f"scale slope ({a['files']:,} to {b['files']:,} files): "
        f"{(b['peak_rss_mib'] - a['peak_rss_mib']) / k:.2f} MiB peak RSS, "
        f"{(b['idle_rss_mib'] - a['idle_rss_mib']) / k:.2f} MiB idle RSS, "
        f"{(b['idle_core_pct'] - a['idle_core_pct']) / k:.4f} % of a core idle, "
        f"{(b['first_lines_s'] or 0) - (a['first_lines_s'] or 0):.1f} s more until every "
        f"first line, per 1,000 files"
    )


def percentile(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def run_latency(args, tmp, seconds):
    """Scenario 4: one line every 100 ms; latency from the write to the acknowledgement."""
    name = "latency"
    workdir = os.path.join(tmp, name)
    input_dir = os.path.join(workdir, "in")
    os.makedirs(input_dir)
    path = os.path.join(input_dir, "app.log")
    open(path, "w").close()
    fake = Fake(args.fake, workdir, args.tls, keep_records=True)
    flow = {
        "filePattern": os.path.join(input_dir, "*.log"),
        "kinesisStream": STREAM,
        "initialPosition": "START_OF_FILE",
        "maxBufferAgeMillis": LATENCY_BUFFER_AGE_MS,
    }
    flow.update(args.flow_keys)
    agent = Agent(args.agent, workdir, flow, fake, extra_env=args.env, prefix=args.prefix)
    fd = None
    try:
        if not agent.wait_for_log("Startup completed", 30):
            raise RuntimeError(f"the agent did not start; log:\n{agent.log_text()[-2000:]}")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        n = seconds * 10
        t0 = time.monotonic()
        cpu0 = agent.cpu_seconds()
        for i in range(n):
            written_us = time.time_ns() // 1000
            os.write(fd, log_line(i, f"written_us={written_us} ").encode())
            pause = t0 + (i + 1) * 0.1 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        done = fake.wait_accepted(n, 10 + LATENCY_BUFFER_AGE_MS / 1000, interval=0.05)
        t_end = done if done is not None else time.monotonic()
        cpu1 = agent.cpu_seconds()
        cpu, rss = agent.stop()
        latencies = []
        body = fake.get(f"/__control/records?destination={STREAM}&format=lines")
        for raw in body.splitlines():
            rec = json.loads(raw)
            data = base64.b64decode(rec["data_b64"]).decode()
            written = int(data.split("written_us=", 1)[1].split(" ", 1)[0])
            latencies.append((rec["arrival_us"] - written) / 1000)
        latencies.sort()
        return result(
            name,
            n,
            t_end - t0,
            cpu,
            rss,
            len(latencies),
            p50_ms=round(percentile(latencies, 50), 1) if latencies else None,
            p99_ms=round(percentile(latencies, 99), 1) if latencies else None,
            max_ms=round(latencies[-1], 1) if latencies else None,
            core_pct=round(100 * (cpu1 - cpu0) / (t_end - t0), 2),
        )
    finally:
        if fd is not None:
            os.close(fd)
        agent.stop()
        fake.stop()


# ---------------------------------------------------------------------------------------------
# report


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def target_of(r):
    name = r["scenario"]
    if name == "backlog-kinesis-kpl":
        return (f">= {TARGET_KPL_LINES_PER_CPU_S:,} lines/CPU-s, <= {TARGET_RSS_MIB} MiB, "
                "all delivered")
    if name == "backlog-kinesis" or name == "backlog-firehose":
        return (
            f">= {TARGET_RECORDS_PER_CPU_S:,} rec/CPU-s, < {TARGET_BACKLOG_WALL_S:g} s, "
            f"<= {TARGET_RSS_MIB} MiB"
        )
    if name.startswith("backlog-throttled"):
        return f"<= {TARGET_RSS_MIB} MiB"
    if name.startswith("tail-"):
        return f"< {TARGET_TAIL_CORE_PCT:g} % core, <= {TARGET_RSS_MIB} MiB, all delivered"
    if name.startswith("scale-"):
        return (f"every line once, 0 ERROR, idle <= {TARGET_SCALE_IDLE_PCT:g} % core, "
                f"<= {TARGET_SCALE_RSS_MIB} MiB, first lines <= {TARGET_SCALE_FIRST_S} s "
                f"(at 100,000 files)")
    return f"p99 <= {TARGET_P99_MS} ms, <= {TARGET_RSS_MIB} MiB"


def notes_of(r):
    name = r["scenario"]
    parts = []
    if name.startswith("tail-"):
        parts.append(
            f"{r['core_pct_while_appending']:.1f} % core, idle {r['idle_core_pct']:.1f} %"
        )
    if name.startswith("scale-"):
        parts.append(
            f"first lines {fmt(r['first_lines_s'], '.1f')} s, appended {fmt(r['appended_lines_s'], '.1f')} s, "
            f"idle {r['idle_core_pct']:.2f} % core, idle RSS {r['idle_rss_mib']:.1f} MiB, "
            f"{r['duplicates']} dup, {r['error_lines']} ERROR"
        )
    if name == "latency":
        parts.append(f"p50 {fmt(r['p50_ms'], '.0f')} ms, p99 {fmt(r['p99_ms'], '.0f')} ms")
    if "kinesis_records_per_m_lines" in r:
        parts.append(
            f"per 1M lines: {r['kinesis_records_per_m_lines']:,} Kinesis records, "
            f"{r['put_units_per_m_lines']:,} PUT units"
        )
    if r.get("calls_failed"):
        parts.append(f"{r['calls_failed']}/{r['calls']} calls throttled")
    if r["delivered"] < r["lines"]:
        parts.append(f"ONLY {r['delivered']} DELIVERED")
    if r.get("timed_out_after_s"):
        parts.append(f"timed out after {r['timed_out_after_s']} s")
    return "; ".join(parts)


def print_table(results, tls):
    cols = [
        ("scenario", 18, lambda r: r["scenario"]),
        ("lines", 9, lambda r: f"{r['lines']:,}"),
        ("MB", 6, lambda r: f"{r['bytes'] / 1e6:.0f}"),
        ("wall s", 7, lambda r: fmt(r["wall_s"], ".2f")),
        ("rec/s", 9, lambda r: fmt(r["records_per_s"], ",")),
        ("MB/s", 6, lambda r: fmt(r["mb_per_s"], ".1f")),
        ("CPU s", 6, lambda r: fmt(r["agent_cpu_s"], ".2f")),
        ("rec/CPU-s", 10, lambda r: fmt(r["records_per_cpu_s"], ",")),
        ("RSS MiB", 7, lambda r: fmt(r["peak_rss_mib"], ".1f")),
    ]
    print(f"kinesis-agent benchmark ({'TLS' if tls else 'plain HTTP'} to fake-aws on 127.0.0.1, "
          f"{os.cpu_count()} cores; CPU and RSS are the agent's)")
    header = "  ".join(f"{h:>{w}}" if i else f"{h:<{w}}" for i, (h, w, _) in enumerate(cols))
    print(header + "  notes | target")
    print("-" * (len(header) + 16))
    for r in results:
        cells = "  ".join(
            f"{f(r):>{w}}" if i else f"{f(r):<{w}}" for i, (_, w, f) in enumerate(cols)
        )
        print(f"{cells}  {notes_of(r)} | target: {target_of(r)}")
    slope = scale_slope(results)
    if slope:
        print(slope)
    print()
    for r in results:
        print(json.dumps(r, separators=(",", ":")))
    sys.stdout.flush()


SCENARIOS = ["backlog-kinesis", "backlog-kinesis-kpl", "backlog-firehose", "backlog-throttled", "tail-1000-files",
             "latency", "scale"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agent", required=True, help="the aws-kinesis-agent binary")
    ap.add_argument("--fake", required=True, help="the fake-aws binary")
    ap.add_argument("--plain", dest="tls", action="store_false", help="HTTP instead of HTTPS")
    ap.add_argument("--quick", action="store_true",
                    help="shorter tail (15 s) and latency (10 s) scenarios, for development")
    ap.add_argument("--lines", type=int, default=1_000_000, help="backlog lines (1,000,000)")
    ap.add_argument("--files", type=int, default=1000, help="files of the tail scenario")
    ap.add_argument("--only", action="append", choices=SCENARIOS,
                    help="run only this scenario (repeatable)")
    ap.add_argument("--perf", metavar="DIR",
                    help="record a cpu-clock perf profile of the agent per backlog and tail "
                         "scenario into DIR (needs perf)")
    ap.add_argument("--perf-freq", type=int, default=1999, metavar="HZ",
                    help="perf sampling frequency (1999; lower it for the long tail scenario)")
    ap.add_argument("--agent-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment variable for the agent (repeatable), e.g. "
                         "MALLOC_ARENA_MAX=1")
    ap.add_argument("--flow-key", action="append", default=[], metavar="KEY=JSON",
                    help="extra key of every scenario's flow (repeatable), e.g. "
                         "publishQueueCapacity=10")
    ap.add_argument("--agent-prefix", metavar="COMMAND",
                    help="run the agent through COMMAND (e.g. 'valgrind --tool=callgrind "
                         "--callgrind-out-file=/tmp/cg.%%p'); CPU and RSS are then the wrapper's")
    ap.add_argument("--scale-files", default="1000,10000,100000", metavar="N,N,...",
                    help="file counts of the scale scenario (1000,10000,100000)")
    ap.add_argument("--scale-limit", type=int, default=1024, metavar="N",
                    help="open-files limit (soft and hard) of the agent in the scale scenario")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    args = ap.parse_args()
    args.env = dict(kv.split("=", 1) for kv in args.agent_env)
    args.flow_keys = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.flow_key)}
    args.prefix = shlex.split(args.agent_prefix) if args.agent_prefix else None
    args.backlog_timeout = 240
    args.idle_seconds = 3 if args.quick else 5
    args.scale_idle_seconds = 5 if args.quick else 20
    tail_seconds = 15 if args.quick else 60
    latency_seconds = 10 if args.quick else 30
    chosen = args.only or SCENARIOS
    if args.perf:
        os.makedirs(args.perf, exist_ok=True)
        args.perf = os.path.abspath(args.perf)

    tmp = tempfile.mkdtemp(prefix="kinesis-agent-bench-")
    results = []
    try:
        backlog_dir = os.path.join(tmp, "backlog")
        if any(s.startswith("backlog") for s in chosen):
            os.makedirs(backlog_dir)
            log(f"writing {args.lines:,} lines of {LINE_BYTES} bytes")
            write_backlog(os.path.join(backlog_dir, "backlog.log"), args.lines)
        for s in chosen:
            log(f"scenario {s}")
            if s == "backlog-kinesis":
                r = run_backlog(args, tmp, s, backlog_dir, args.lines, "kinesisStream")
            elif s == "backlog-kinesis-kpl":
                r = run_backlog(args, tmp, s, backlog_dir, args.lines, "kinesisStream",
                                keys={"kplAggregation": True})
            elif s == "backlog-firehose":
                r = run_backlog(args, tmp, s, backlog_dir, args.lines, "deliveryStream")
            elif s == "backlog-throttled":
                faults = {"throttle_calls": 0.5, "operations": ["PutRecords"]}
                r = run_backlog(args, tmp, s, backlog_dir, args.lines, "kinesisStream", faults)
            elif s == "tail-1000-files":
                r = run_many_files(args, tmp, args.files, tail_seconds)
            elif s == "scale":
                for n in (int(x) for x in args.scale_files.split(",")):
                    r = run_scale(args, tmp, n)
                    log(json.dumps(r))
                    results.append(r)
                continue
            else:
                r = run_latency(args, tmp, latency_seconds)
            log(json.dumps(r))
            results.append(r)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(results, args.tls)


if __name__ == "__main__":
    main()
