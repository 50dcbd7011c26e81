#!/usr/bin/env python3
"""Small boto3 CLI for the local AWS emulators (kinesalite for Kinesis, moto for Firehose/S3/STS).

Run it with the emulator venv:  .venv-emu/bin/python tests/emu/emu.py [GLOBAL ARGS] COMMAND ...

Global arguments:
  --kinesis-endpoint URL   kinesalite (default: $EMU_KINESIS_ENDPOINT or http://127.0.0.1:4567)
  --moto-endpoint URL      moto server (default: $EMU_MOTO_ENDPOINT or http://127.0.0.1:4566)

Commands (output is JSON Lines on stdout; errors go to stderr with exit status 1):
  create-stream NAME [--shards N]               Kinesis CreateStream, waits until ACTIVE (<= 10 s);
                                                {"stream","shards","status","arn"}
  delete-stream NAME                            Kinesis DeleteStream
  create-delivery-stream NAME --bucket B [--prefix P] [--source-stream-arn ARN]
                                                S3 CreateBucket (if missing), then a DirectPut
                                                Firehose stream (KinesisStreamAsSource with ARN)
                                                with an ExtendedS3 destination; waits until ACTIVE
  kinesis-records NAME                          every record of every shard, per-shard sequence order:
                                                {"shard","seq","partition_key","data_b64"}
  list-shards NAME                              every shard, open and closed, in shard id order:
                                                {"shard","start","end","open"} (hash keys as decimal strings)
  split-shard NAME SHARD --at HASH_KEY          Kinesis SplitShard (HASH_KEY decimal: the new upper
                                                shard's starting hash key), waits until ACTIVE
  s3-objects BUCKET [--prefix P]                every object in key order: {"key","data_b64"}
  put-records NAME [--b64] [--partition-key K] LINE...
                                                Kinesis PutRecords, one record per LINE
  put-record-batch NAME [--b64] LINE...         Firehose PutRecordBatch, one record per LINE
  reset-moto                                    POST /moto-api/reset (wipe all moto state)
  create-stack NAME --template FILE [--param K=V]...
                                                CloudFormation CreateStack on moto, waits until it
                                                is no longer CREATE_IN_PROGRESS; prints
                                                {"stack_status"}, then one {"logical","type",
                                                "physical","status"} per resource, then one
                                                {"output","value"} per output
  role-policies ROLE                            IAM role on moto: {"trust"}, then one
                                                {"policy_name","document"} per inline policy
  call SERVICE OPERATION [JSON]                 any boto3 call on moto (snake_case operation,
                                                JSON object of parameters); prints the response
  serve-moto --port P [--exit-on-stdin-eof]     run moto_server on 127.0.0.1:P (used by the Rust
                                                harness so that moto dies with its parent)

Safety: only loopback endpoints are accepted, credentials are the static test/test pair, region
us-east-1, and no AWS config/credentials file or instance metadata is ever read.
"""

import os
import sys

# Never read a developer's real AWS profile, and never reach the instance metadata service.
# This must happen before botocore is imported.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
             "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "test"
os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
os.environ["AWS_REGION"] = "us-east-1"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class EmuError(Exception):
    pass


def die(msg):
    print(f"emu.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def check_loopback(url, what):
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOOPBACK_HOSTS:
        die(f"{what} must be an http(s) URL on 127.0.0.1/localhost/[::1], got {url!r}")
    return url


def client(service, endpoint):
    import boto3
    from botocore.config import Config

    cfg = Config(
        region_name=REGION,
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"},
    )
    return boto3.session.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name=REGION,
    ).client(service, endpoint_url=endpoint, config=cfg)


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")


def b64(data):
    return base64.b64encode(data).decode("ascii")


def line_bytes(args):
    if args.b64:
        try:
            return [base64.b64decode(x, validate=True) for x in args.lines]
        except ValueError as e:
            raise EmuError(f"--b64 given but a LINE is not valid base64: {e}")
    return [x.encode("utf-8") for x in args.lines]


def chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i:i + n]


# ---- Kinesis (kinesalite) ----------------------------------------------------------------------

def cmd_create_stream(args):
    k = client("kinesis", args.kinesis_endpoint)
    k.create_stream(StreamName=args.name, ShardCount=args.shards)
    deadline = time.monotonic() + 10
    while True:
        status = k.describe_stream_summary(StreamName=args.name)["StreamDescriptionSummary"]["StreamStatus"]
        if status == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise EmuError(f"stream {args.name} still {status} after 10 s")
        time.sleep(0.05)
    arn = k.describe_stream_summary(StreamName=args.name)["StreamDescriptionSummary"]["StreamARN"]
    emit({"stream": args.name, "shards": args.shards, "status": "ACTIVE", "arn": arn})


def cmd_delete_stream(args):
    k = client("kinesis", args.kinesis_endpoint)
    k.delete_stream(StreamName=args.name)
    emit({"stream": args.name, "status": "DELETING"})


def list_shards(k, name):
    shards, token = [], None
    for _ in range(1000):
        resp = k.list_shards(NextToken=token) if token else k.list_shards(StreamName=name)
        shards.extend(resp["Shards"])
        token = resp.get("NextToken")
        if not token:
            return shards
    raise EmuError("ListShards did not finish after 1000 pages")


def cmd_kinesis_records(args):
    k = client("kinesis", args.kinesis_endpoint)
    shards = sorted(list_shards(k, args.name), key=lambda s: s["ShardId"])
    for shard in shards:
        sid = shard["ShardId"]
        it = k.get_shard_iterator(StreamName=args.name, ShardId=sid,
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = []
        for _ in range(10000):
            if not it:
                break  # closed shard fully read
            resp = k.get_records(ShardIterator=it, Limit=10000)
            records.extend(resp["Records"])
            it = resp.get("NextShardIterator")
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                break  # caught up
        else:
            raise EmuError(f"GetRecords on {sid} did not catch up after 10000 calls")
        records.sort(key=lambda r: int(r["SequenceNumber"]))
        for r in records:
            emit({"shard": sid, "seq": r["SequenceNumber"], "partition_key": r["PartitionKey"],
                  "data_b64": b64(r["Data"])})


def cmd_list_shards(args):
    k = client("kinesis", args.kinesis_endpoint)
    for shard in sorted(list_shards(k, args.name), key=lambda s: s["ShardId"]):
        emit({"shard": shard["ShardId"], "start": shard["HashKeyRange"]["StartingHashKey"],
              "end": shard["HashKeyRange"]["EndingHashKey"],
              "open": "EndingSequenceNumber" not in shard["SequenceNumberRange"]})


def cmd_split_shard(args):
    k = client("kinesis", args.kinesis_endpoint)
    k.split_shard(StreamName=args.name, ShardToSplit=args.shard, NewStartingHashKey=args.at)
    deadline = time.monotonic() + 10
    while True:
        status = k.describe_stream_summary(StreamName=args.name)["StreamDescriptionSummary"]["StreamStatus"]
        if status == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise EmuError(f"stream {args.name} still {status} 10 s after SplitShard")
        time.sleep(0.05)
    emit({"stream": args.name, "split": args.shard, "at": args.at, "status": "ACTIVE"})


def cmd_put_records(args):
    k = client("kinesis", args.kinesis_endpoint)
    data = line_bytes(args)
    n = 0
    for batch in chunks(data, 500):
        entries = []
        for d in batch:
            pk = args.partition_key if args.partition_key is not None else f"pk-{n}"
            entries.append({"Data": d, "PartitionKey": pk})
            n += 1
        resp = k.put_records(StreamName=args.name, Records=entries)
        if resp.get("FailedRecordCount", 0):
            failed = [r for r in resp["Records"] if r.get("ErrorCode")]
            raise EmuError(f"PutRecords: {resp['FailedRecordCount']} failed, first: {failed[0]}")
        for e, r in zip(entries, resp["Records"]):
            emit({"shard": r["ShardId"], "seq": r["SequenceNumber"], "partition_key": e["PartitionKey"]})


# ---- Firehose + S3 (moto) ----------------------------------------------------------------------

def ensure_bucket(s3, bucket):
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    s3.create_bucket(Bucket=bucket)  # us-east-1: no CreateBucketConfiguration


def cmd_create_delivery_stream(args):
    s3 = client("s3", args.moto_endpoint)
    fh = client("firehose", args.moto_endpoint)
    ensure_bucket(s3, args.bucket)
    dest = {
        "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose-test",
        "BucketARN": f"arn:aws:s3:::{args.bucket}",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        "CompressionFormat": "UNCOMPRESSED",
    }
    if args.prefix:
        dest["Prefix"] = args.prefix
    if args.source_stream_arn:
        fh.create_delivery_stream(
            DeliveryStreamName=args.name, DeliveryStreamType="KinesisStreamAsSource",
            KinesisStreamSourceConfiguration={"KinesisStreamARN": args.source_stream_arn,
                                              "RoleARN": dest["RoleARN"]},
            ExtendedS3DestinationConfiguration=dest)
    else:
        fh.create_delivery_stream(DeliveryStreamName=args.name, DeliveryStreamType="DirectPut",
                                  ExtendedS3DestinationConfiguration=dest)
    deadline = time.monotonic() + 10
    while True:
        desc = fh.describe_delivery_stream(DeliveryStreamName=args.name)["DeliveryStreamDescription"]
        status = desc["DeliveryStreamStatus"]
        if status == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise EmuError(f"delivery stream {args.name} still {status} after 10 s")
        time.sleep(0.05)
    emit({"delivery_stream": args.name, "bucket": args.bucket, "prefix": args.prefix, "status": "ACTIVE"})


def cmd_put_record_batch(args):
    fh = client("firehose", args.moto_endpoint)
    for batch in chunks(line_bytes(args), 500):
        resp = fh.put_record_batch(DeliveryStreamName=args.name, Records=[{"Data": d} for d in batch])
        if resp.get("FailedPutCount", 0):
            failed = [r for r in resp["RequestResponses"] if r.get("ErrorCode")]
            raise EmuError(f"PutRecordBatch: {resp['FailedPutCount']} failed, first: {failed[0]}")
        for r in resp["RequestResponses"]:
            emit({"record_id": r.get("RecordId")})


def cmd_s3_objects(args):
    s3 = client("s3", args.moto_endpoint)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    for key in sorted(keys):
        body = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read()
        emit({"key": key, "data_b64": b64(body)})


# ---- CloudFormation and any other call (moto) --------------------------------------------------

def cmd_create_stack(args):
    cfn = client("cloudformation", args.moto_endpoint)
    params = []
    for kv in args.param:
        key, sep, value = kv.partition("=")
        if not sep:
            raise EmuError(f"--param wants KEY=VALUE, got {kv!r}")
        params.append({"ParameterKey": key, "ParameterValue": value})
    with open(args.template, encoding="utf-8") as f:
        body = f.read()
    cfn.create_stack(StackName=args.name, TemplateBody=body, Parameters=params,
                     Capabilities=["CAPABILITY_IAM"])
    deadline = time.monotonic() + 30
    while True:
        stack = cfn.describe_stacks(StackName=args.name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_IN_PROGRESS":
            break
        if time.monotonic() > deadline:
            raise EmuError(f"stack {args.name} still CREATE_IN_PROGRESS after 30 s")
        time.sleep(0.05)
    emit({"stack_status": stack["StackStatus"], "reason": stack.get("StackStatusReason")})
    for r in cfn.list_stack_resources(StackName=args.name)["StackResourceSummaries"]:
        # moto lists a resource type it does not implement (and skipped) with empty names.
        if not r["LogicalResourceId"]:
            continue
        emit({"logical": r["LogicalResourceId"], "type": r["ResourceType"],
              "physical": r.get("PhysicalResourceId"), "status": r["ResourceStatus"]})
    for o in stack.get("Outputs", []):
        emit({"output": o["OutputKey"], "value": o["OutputValue"]})


def cmd_role_policies(args):
    import ast

    iam = client("iam", args.moto_endpoint)
    role = iam.get_role(RoleName=args.role)["Role"]
    emit({"trust": role["AssumeRolePolicyDocument"]})
    for name in iam.list_role_policies(RoleName=args.role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=args.role, PolicyName=name)["PolicyDocument"]
        if isinstance(doc, str):
            # moto 5.2.5 returns the inline policy of a role made by CloudFormation as the
            # Python repr of the dict it kept, not JSON.
            try:
                doc = json.loads(doc)
            except ValueError:
                doc = ast.literal_eval(doc)
        emit({"policy_name": name, "document": doc})


def cmd_call(args):
    try:
        params = json.loads(args.params)
    except ValueError as e:
        raise EmuError(f"JSON parameters: {e}")
    response = getattr(client(args.service, args.moto_endpoint), args.operation)(**params)
    response.pop("ResponseMetadata", None)
    emit(json.loads(json.dumps(response, default=str)))


def cmd_reset_moto(args):
    url = args.moto_endpoint.rstrip("/") + "/moto-api/reset"
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=30) as r:
        emit(json.loads(r.read() or b"{}"))


def cmd_serve_moto(args):
    """Run moto_server on 127.0.0.1 only; optionally exit when stdin closes (parent died)."""
    if args.exit_on_stdin_eof:
        def watch():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


# ---- CLI ---------------------------------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(prog="emu.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--kinesis-endpoint", default=os.environ.get("EMU_KINESIS_ENDPOINT", "http://127.0.0.1:4567"))
    p.add_argument("--moto-endpoint", default=os.environ.get("EMU_MOTO_ENDPOINT", "http://127.0.0.1:4566"))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("create-stream", help="Kinesis CreateStream and wait until ACTIVE")
    s.add_argument("name")
    s.add_argument("--shards", type=int, default=1)
    s.set_defaults(func=cmd_create_stream)

    s = sub.add_parser("delete-stream", help="Kinesis DeleteStream")
    s.add_argument("name")
    s.set_defaults(func=cmd_delete_stream)

    s = sub.add_parser("create-delivery-stream", help="S3 bucket + Firehose ExtendedS3 delivery stream")
    s.add_argument("name")
    s.add_argument("--bucket", required=True)
    s.add_argument("--prefix", default="")
    s.add_argument("--source-stream-arn", help="KinesisStreamAsSource reading this stream (moto does not read it)")
    s.set_defaults(func=cmd_create_delivery_stream)

    s = sub.add_parser("kinesis-records", help="read back every record of a Kinesis stream")
    s.add_argument("name")
    s.set_defaults(func=cmd_kinesis_records)

    s = sub.add_parser("list-shards", help="every shard of a Kinesis stream with its hash key range")
    s.add_argument("name")
    s.set_defaults(func=cmd_list_shards)

    s = sub.add_parser("split-shard", help="Kinesis SplitShard and wait until ACTIVE")
    s.add_argument("name")
    s.add_argument("shard")
    s.add_argument("--at", required=True, help="the new starting hash key (decimal)")
    s.set_defaults(func=cmd_split_shard)

    s = sub.add_parser("s3-objects", help="read back every S3 object under a prefix")
    s.add_argument("bucket")
    s.add_argument("--prefix", default="")
    s.set_defaults(func=cmd_s3_objects)

    s = sub.add_parser("put-records", help="Kinesis PutRecords, one record per LINE")
    s.add_argument("name")
    s.add_argument("lines", nargs="+", metavar="LINE")
    s.add_argument("--b64", action="store_true", help="each LINE is base64 of the record bytes")
    s.add_argument("--partition-key", help="default: pk-<index>")
    s.set_defaults(func=cmd_put_records)

    s = sub.add_parser("put-record-batch", help="Firehose PutRecordBatch, one record per LINE")
    s.add_argument("name")
    s.add_argument("lines", nargs="+", metavar="LINE")
    s.add_argument("--b64", action="store_true", help="each LINE is base64 of the record bytes")
    s.set_defaults(func=cmd_put_record_batch)

    s = sub.add_parser("reset-moto", help="wipe all moto state")
    s.set_defaults(func=cmd_reset_moto)

    s = sub.add_parser("create-stack", help="CloudFormation CreateStack on moto")
    s.add_argument("name")
    s.add_argument("--template", required=True)
    s.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    s.set_defaults(func=cmd_create_stack)

    s = sub.add_parser("role-policies", help="an IAM role's trust policy and inline policies (moto)")
    s.add_argument("role")
    s.set_defaults(func=cmd_role_policies)

    s = sub.add_parser("call", help="any boto3 call on moto")
    s.add_argument("service")
    s.add_argument("operation")
    s.add_argument("params", nargs="?", default="{}")
    s.set_defaults(func=cmd_call)

    s = sub.add_parser("serve-moto", help="run moto_server bound to 127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--exit-on-stdin-eof", action="store_true")
    s.set_defaults(func=cmd_serve_moto)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_loopback(args.kinesis_endpoint, "--kinesis-endpoint")
    check_loopback(args.moto_endpoint, "--moto-endpoint")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        args.func(args)
    except (ClientError, BotoCoreError, EmuError, OSError) as e:
        die(str(e))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
