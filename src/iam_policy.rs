//! `aws-kinesis-agent iam-policy`: the least-privilege IAM policy for a configuration.
//!
//! Owns: which actions the agent and `check --aws` call, on which ARNs, and the document's
//! layout (fixed statement order, sorted resources, so the output only changes with the
//! configuration). Pure: the plan and the options in, the policy and notes for the operator out.
//! The policies of the Firehose delivery role that reads the agent's stream (`--firehose-role`)
//! live in [`delivery_role`].

pub mod delivery_role;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::aws::region_of_endpoint;
use crate::config::{AgentPlan, Destination, PartitionKeyOption};

/// What the agent calls on a Kinesis stream: `PutRecords`; `check --aws` calls
/// `DescribeStreamSummary`. (Nothing calls `DescribeStream`.)
pub const KINESIS_ACTIONS: &[&str] = &["kinesis:DescribeStreamSummary", "kinesis:PutRecords"];
/// What the agent also calls on a stream that a flow with `partitionKeyOption: DETERMINISTIC`
/// and `kplAggregation` sends to: `ListShards`, for the shard map its lines are grouped by.
pub const SHARD_MAP_ACTIONS: &[&str] = &["kinesis:ListShards"];
/// What the agent calls on a delivery stream: `PutRecordBatch`; `check --aws` calls
/// `DescribeDeliveryStream`.
pub const FIREHOSE_ACTIONS: &[&str] =
    &["firehose:DescribeDeliveryStream", "firehose:PutRecordBatch"];

/// `--account`, `--region`, `--partition`.
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    pub account: Option<String>,
    pub region: Option<String>,
    pub partition: Option<String>,
}

/// The policy document and what the operator should know about it (for standard error).
#[derive(Debug, Clone)]
pub struct Policy {
    pub document: Value,
    pub notes: Vec<String>,
}

/// The region the configuration sends Kinesis calls to: `kinesis.region`, else the region of a
/// standard `kinesis.endpoint` host.
pub fn kinesis_region_of(plan: &AgentPlan) -> Option<String> {
    plan.aws.kinesis_region.clone().or_else(|| {
        plan.aws
            .kinesis_endpoint
            .as_deref()
            .and_then(region_of_endpoint)
    })
}

/// The Kinesis streams the configuration's flows write to, sorted, each once.
pub fn kinesis_streams_of(plan: &AgentPlan) -> Vec<String> {
    let streams: BTreeSet<&str> = plan
        .flows
        .iter()
        .filter_map(|flow| match &flow.destination {
            Destination::Kinesis { stream, .. } => Some(stream.as_str()),
            Destination::Firehose { .. } => None,
        })
        .collect();
    streams.into_iter().map(str::to_string).collect()
}

/// The policy for `plan`.
pub fn policy(plan: &AgentPlan, options: &PolicyOptions) -> Policy {
    let mut notes = Vec::new();
    let aws = &plan.aws;
    let kinesis_region_of_config = kinesis_region_of(plan);
    let kinesis_region = options
        .region
        .clone()
        .or_else(|| kinesis_region_of_config.clone());
    // The agent sends Firehose calls to the region of `firehose.endpoint` when it names one.
    let firehose_region = options.region.clone().or_else(|| {
        aws.firehose_endpoint
            .as_deref()
            .and_then(region_of_endpoint)
            .or(kinesis_region_of_config)
    });
    let account = options.account.clone().unwrap_or_else(|| "*".to_string());
    if account == "*" {
        notes.push("account: `*` (any account); pass --account ID to name yours".to_string());
    }

    let mut kinesis = BTreeSet::new();
    let mut shard_maps = BTreeSet::new();
    let mut firehose = BTreeSet::new();
    for flow in &plan.flows {
        match &flow.destination {
            Destination::Kinesis {
                stream,
                partition_key,
                kpl_aggregate,
            } => {
                let stream_arn = arn(
                    options,
                    &kinesis_region,
                    "kinesis",
                    &account,
                    "stream",
                    stream,
                );
                if *partition_key == PartitionKeyOption::Deterministic && kpl_aggregate.is_some() {
                    shard_maps.insert(stream_arn.clone());
                }
                kinesis.insert(stream_arn);
            }
            Destination::Firehose {
                delivery_stream, ..
            } => {
                firehose.insert(arn(
                    options,
                    &firehose_region,
                    "firehose",
                    &account,
                    "deliverystream",
                    delivery_stream,
                ));
            }
        }
    }
    if (!kinesis.is_empty() && kinesis_region.is_none())
        || (!firehose.is_empty() && firehose_region.is_none())
    {
        notes.push(
            "region: `*` (the configuration names none: no kinesis.region and no standard endpoint host); pass --region R to name it".to_string(),
        );
    }

    let mut statements = Vec::new();
    if !kinesis.is_empty() {
        statements.push(json!({
            "Sid": "KinesisStreams",
            "Effect": "Allow",
            "Action": KINESIS_ACTIONS,
            "Resource": kinesis.into_iter().collect::<Vec<_>>(),
        }));
    }
    if !shard_maps.is_empty() {
        statements.push(json!({
            "Sid": "KinesisShardMaps",
            "Effect": "Allow",
            "Action": SHARD_MAP_ACTIONS,
            "Resource": shard_maps.into_iter().collect::<Vec<_>>(),
        }));
    }
    if !firehose.is_empty() {
        statements.push(json!({
            "Sid": "FirehoseDeliveryStreams",
            "Effect": "Allow",
            "Action": FIREHOSE_ACTIONS,
            "Resource": firehose.into_iter().collect::<Vec<_>>(),
        }));
    }
    if plan.cloudwatch.emit_metrics {
        // PutMetricData has no resource ARN; the namespace condition is what limits it.
        statements.push(json!({
            "Sid": "CloudWatchMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": ["*"],
            "Condition": {
                "StringEquals": { "cloudwatch:namespace": plan.cloudwatch.namespace }
            },
        }));
    }
    if let Some(role) = &aws.assume_role_arn {
        statements.push(json!({
            "Sid": "AssumeRole",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": [role],
        }));
        notes.push(format!(
            "assumeRoleARN is set: the AssumeRole statement belongs to the identity the agent starts with, the others to {role} (whose trust policy must let that identity assume it). This build does not assume the role yet: until it does, the starting identity needs every statement."
        ));
    }
    let lists = if statements.iter().any(|s| s["Sid"] == "KinesisShardMaps") {
        " (and lists the shards of the streams in KinesisShardMaps: DETERMINISTIC keys with kplAggregation group lines by shard)"
    } else {
        ""
    };
    notes.push(format!(
        "kinesis:DescribeStreamSummary and firehose:DescribeDeliveryStream are only used by `aws-kinesis-agent check --aws`; the agent itself only puts records{lists}. `check --aws` also lists the delivery streams that read a Kinesis stream when firehose:ListDeliveryStreams (and DescribeDeliveryStream on them) is allowed, which is not granted here: without it, it says it did not look."
    ));
    Policy {
        document: json!({ "Version": "2012-10-17", "Statement": statements }),
        notes,
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<kind>/<name>`; the partition follows the
/// region (`cn-*`: aws-cn, `us-gov-*`: aws-us-gov) unless `--partition` names it.
fn arn(
    options: &PolicyOptions,
    region: &Option<String>,
    service: &str,
    account: &str,
    kind: &str,
    name: &str,
) -> String {
    let region = region.as_deref().unwrap_or("*");
    let partition = options
        .partition
        .clone()
        .unwrap_or_else(|| partition_of(region).to_string());
    format!("arn:{partition}:{service}:{region}:{account}:{kind}/{name}")
}

/// The partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `--account`: 12 digits or `*`.
pub fn parse_account(s: &str) -> Result<String, String> {
    if s == "*" || (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a 12-digit AWS account id or *, got '{s}'"
        ))
    }
}

/// `--region` (`eu-west-1`, or `*`) and `--partition` (`aws`, `aws-cn`, ...): lower-case
/// letters, digits and dashes.
pub fn parse_name(s: &str) -> Result<String, String> {
    let ok = s == "*"
        || (!s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected lower-case letters, digits and dashes (e.g. eu-west-1, aws), got '{s}'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_document, Environment};
    use std::path::Path;

    fn plan(text: &str) -> AgentPlan {
        parse_document(
            (Path::new("/etc/aws-kinesis/agent.json"), text),
            &[],
            &Environment { cpus: 2 },
        )
        .expect("valid config")
    }

    #[test]
    fn sample_config_names_both_streams_with_wildcards() {
        let p = policy(
            &plan(include_str!("../config/agent.json")),
            &PolicyOptions::default(),
        );
        let want = json!({
            "Version": "2012-10-17",
            "Statement": [
                { "Sid": "KinesisStreams", "Effect": "Allow", "Action": KINESIS_ACTIONS,
                  "Resource": ["arn:aws:kinesis:*:*:stream/yourkinesisstream"] },
                { "Sid": "FirehoseDeliveryStreams", "Effect": "Allow", "Action": FIREHOSE_ACTIONS,
                  "Resource": ["arn:aws:firehose:*:*:deliverystream/yourdeliverystream"] },
                { "Sid": "CloudWatchMetrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"],
                  "Resource": ["*"],
                  "Condition": { "StringEquals": { "cloudwatch:namespace": "AWSKinesisAgent" } } },
            ]
        });
        assert_eq!(p.document, want);
        assert!(p.notes.iter().any(|n| n.starts_with("account: `*`")));
        assert!(p.notes.iter().any(|n| n.starts_with("region: `*`")));
    }

    #[test]
    fn regions_from_config_endpoints_and_options() {
        let text = r#"{ "kinesis.endpoint": "kinesis.cn-north-1.amazonaws.com.cn",
            "firehose.endpoint": "https://firehose.eu-west-1.amazonaws.com",
            "cloudwatch.emitMetrics": false, "assumeRoleARN": "arn:aws:iam::123456789012:role/shipper",
            "flows": [ { "filePattern": "/a/*.log", "kinesisStream": "b" },
                       { "filePattern": "/a/*.log", "kinesisStream": "a" },
                       { "filePattern": "/c/*.log", "kinesisStream": "a" },
                       { "filePattern": "/a/*.log", "deliveryStream": "f" } ] }"#;
        let p = policy(
            &plan(text),
            &PolicyOptions {
                account: Some("123456789012".into()),
                ..Default::default()
            },
        );
        let st = p.document["Statement"].as_array().expect("statements");
        assert_eq!(st.len(), 3);
        assert_eq!(
            st[0]["Resource"],
            json!([
                "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a",
                "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/b"
            ])
        );
        assert_eq!(
            st[1]["Resource"],
            json!(["arn:aws:firehose:eu-west-1:123456789012:deliverystream/f"])
        );
        assert_eq!(st[2]["Sid"], "AssumeRole");
        assert_eq!(
            st[2]["Resource"],
            json!(["arn:aws:iam::123456789012:role/shipper"])
        );
        assert!(!p
            .notes
            .iter()
            .any(|n| n.starts_with("account") || n.starts_with("region")));

        let p = policy(
            &plan(text),
            &PolicyOptions {
                region: Some("us-gov-west-1".into()),
                partition: Some("aws-us-gov".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            p.document["Statement"][1]["Resource"],
            json!(["arn:aws-us-gov:firehose:us-gov-west-1:*:deliverystream/f"])
        );
    }

    #[test]
    fn list_shards_only_for_streams_of_deterministic_aggregated_flows() {
        let flows = |flows: &str| {
            format!(
                r#"{{ "kinesis.region": "eu-west-1", "cloudwatch.emitMetrics": false, "flows": [ {flows} ] }}"#
            )
        };
        let sids = |p: &Policy| -> Vec<String> {
            p.document["Statement"]
                .as_array()
                .expect("statements")
                .iter()
                .map(|s| s["Sid"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        let without = [
            r#"{ "filePattern": "/a/*", "kinesisStream": "r", "kplAggregation": true }"#,
            r#"{ "filePattern": "/a/*", "kinesisStream": "d", "partitionKeyOption": "DETERMINISTIC" }"#,
        ];
        for flow in without {
            let p = policy(&plan(&flows(flow)), &PolicyOptions::default());
            assert_eq!(sids(&p), ["KinesisStreams"], "{flow}");
        }
        let p = policy(
            &plan(&flows(&format!(
                r#"{}, {}, {{ "filePattern": "/b/*", "kinesisStream": "da", "kplAggregation": "true",
                    "partitionKeyOption": "DETERMINISTIC" }}"#,
                without[0], without[1]
            ))),
            &PolicyOptions::default(),
        );
        assert_eq!(sids(&p), ["KinesisStreams", "KinesisShardMaps"]);
        let st = &p.document["Statement"][1];
        assert_eq!(st["Action"], json!(["kinesis:ListShards"]));
        assert_eq!(
            st["Resource"],
            json!(["arn:aws:kinesis:eu-west-1:*:stream/da"])
        );
        assert_eq!(
            p.document["Statement"][0]["Resource"],
            json!([
                "arn:aws:kinesis:eu-west-1:*:stream/d",
                "arn:aws:kinesis:eu-west-1:*:stream/da",
                "arn:aws:kinesis:eu-west-1:*:stream/r"
            ])
        );
    }

    #[test]
    fn option_values_are_checked() {
        assert!(parse_account("123456789012").is_ok());
        assert!(parse_account("*").is_ok());
        assert!(parse_account("12345").is_err());
        assert!(parse_name("eu-west-1").is_ok());
        assert!(parse_name("EU west").is_err());
        assert_eq!(partition_of("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of("eu-west-1"), "aws");
    }
}
