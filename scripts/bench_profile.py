#!/usr/bin/env python3
"""Where the agent's CPU goes, by stage, from a `perf record --call-graph dwarf` profile (as
`scripts/bench --perf DIR` writes them).

    scripts/bench --only backlog-kinesis --perf /tmp/prof
    scripts/bench_profile.py /tmp/prof/backlog-kinesis.perf.data --records 1000000 --cpu 1.46

Each sample goes to the first stage whose pattern matches a frame, walking from the sampled
frame towards the thread's root, so a malloc called by the SDK's JSON parser counts as JSON
parsing and a kernel `read` under the tailer counts as reading. `--cpu` (the agent's CPU
seconds in an unprofiled run) and `--records` turn shares into nanoseconds per record.
"""

import argparse
import collections
import subprocess
import sys

# (stage, substrings of a frame's symbol). Walking from the sampled frame up, the first frame
# that matches any stage decides; within one frame, the earlier stage wins (a response's
# `deserialize_members` also contains `serialize_members`).
STAGES = [
    ("SigV4 signing (SHA-256 of the body, canonical request)", ["aws_sigv4::"]),
    ("SDK response parsing (JSON, 500 result entries)", [
        "DeserializeResponse>::deserialize", "JsonDeserializer", "ResultEntry::deserialize",
        "ResponseEntry::deserialize", "OutputBuilder::deserialize",
    ]),
    ("SDK request serialisation (JSON, base64)", [
        "SerializeRequest>::serialize_input", "JsonSerializer", "base64_simd", "base64::encode",
        "SerializableStruct>::serialize_members", "ClientProtocolInner>::serialize_request",
    ]),
    ("drop of the SDK input (entries, Blobs)", ["drop_in_place<aws_sdk_"]),
    ("agent: request entries (Blob copy, partition key)", [
        "kinesis_agent::sink::kinesis::", "kinesis_agent::sink::firehose::",
        "RequestEntryBuilder", "firehose::types::_record::RecordBuilder",
    ]),
    ("TLS (rustls, aws-lc AES-GCM)", ["rustls::", "aws_lc_", "tokio_rustls"]),
    # Socket reads and writes (kernel TCP) sit under hyper_util's TokioIo, inside rustls.
    ("HTTP/1.1 and socket I/O (hyper; kernel TCP)", ["hyper::", "hyper_util::"]),
    ("SDK orchestrator (interceptors, retries, config bag)", [
        "aws_smithy_runtime::", "aws_runtime::", "aws_smithy_types::config_bag",
        "aws_smithy_runtime_api::",
    ]),
    ("agent: tail (read, split)", ["kinesis_agent::tail::"]),
    ("agent: batch, acks, checkpoints, send loop", [
        "kinesis_agent::sink::", "kinesis_agent::checkpoint::",
    ]),
    ("agent: other", ["kinesis_agent::"]),
]
OTHER = "tokio runtime, threads, other"


def samples(perf_data):
    """Yields the frames (address, symbol; sampled frame first) of each sample."""
    out = subprocess.run(
        ["perf", "script", "-i", perf_data, "-F", "ip,sym"],
        check=True, capture_output=True, text=True, errors="replace",
    ).stdout
    frames = []
    for line in out.splitlines():
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if line.startswith((" ", "\t")):
            parts = line.strip().split(" ", 1)
            frames.append((parts[0], parts[1] if len(parts) > 1 else ""))
    if frames:
        yield frames


def stage_of(frames):
    for _, frame in frames:
        for stage, patterns in STAGES:
            if any(p in frame for p in patterns):
                return stage
    return OTHER


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("perf_data")
    ap.add_argument("--records", type=int, help="records shipped during the profile")
    ap.add_argument("--cpu", type=float, help="the agent's CPU seconds without the profiler")
    args = ap.parse_args()
    counts = collections.Counter()
    kernel = collections.Counter()
    total = 0
    for frames in samples(args.perf_data):
        total += 1
        stage = stage_of(frames)
        counts[stage] += 1
        if frames[0][0].startswith("ffffffff8"):
            kernel[stage] += 1
    if not total:
        sys.exit("no samples")
    per_record = args.records and args.cpu
    head = f"{'stage':<58} {'share':>6} {'kernel':>7}"
    if per_record:
        head += f" {'ns/record':>10}"
    print(head)
    for stage, n in counts.most_common():
        line = f"{stage:<58} {100 * n / total:5.1f}% {100 * kernel[stage] / total:6.1f}%"
        if per_record:
            line += f" {1e9 * args.cpu * n / total / args.records:10.0f}"
        print(line)
    print(f"{'total (' + str(total) + ' samples)':<58} {100.0:5.1f}% "
          f"{100 * sum(kernel.values()) / total:6.1f}%", end="")
    if per_record:
        print(f" {1e9 * args.cpu / args.records:10.0f}")
    else:
        print()


if __name__ == "__main__":
    main()
