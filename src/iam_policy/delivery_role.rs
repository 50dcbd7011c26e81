//! `iam-policy --firehose-role`: the permissions and trust policies of the role a Firehose
//! delivery stream assumes to read the agent's Kinesis stream and deliver to S3.
//!
//! Owns: which statements a delivery role needs for the options given (S3 always; the source
//! stream, its KMS key, the bucket's KMS key, the Lambda transformation, the Glue table and the
//! error log group only when asked for), the ARNs and the KMS conditions, and checking the
//! option values. Does not own: reading the configuration (the caller passes the source streams
//! and the region it found there) or printing.
//!
//! The actions are the ones AWS's Firehose developer guide lists for a delivery role
//! ("Controlling access with Amazon Data Firehose", "Grant Firehose access to an Amazon S3
//! destination"): nothing more, each on the narrowest resource IAM accepts for it.

use serde_json::{json, Map, Value};

use super::{partition_of, Policy, PolicyOptions};

/// Read on the source stream (Firehose's Kinesis source reads it shard by shard).
pub const SOURCE_STREAM_ACTIONS: &[&str] = &[
    "kinesis:DescribeStream",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
];
/// On the bucket itself.
pub const BUCKET_ACTIONS: &[&str] = &[
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
];
/// On the bucket's objects.
pub const OBJECT_ACTIONS: &[&str] = &["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"];
/// On the bucket's KMS key (SSE-KMS objects).
pub const BUCKET_KEY_ACTIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];
/// On the source stream's KMS key (server-side encrypted stream).
pub const STREAM_KEY_ACTIONS: &[&str] = &["kms:Decrypt"];
/// On the transformation function.
pub const LAMBDA_ACTIONS: &[&str] = &["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"];
/// On the Glue catalog, database and table of record format conversion.
pub const GLUE_ACTIONS: &[&str] = &[
    "glue:GetTable",
    "glue:GetTableVersion",
    "glue:GetTableVersions",
];
/// On the delivery stream's error log streams.
pub const LOG_ACTIONS: &[&str] = &["logs:PutLogEvents"];
/// The service that assumes the role.
pub const FIREHOSE_PRINCIPAL: &str = "firehose.amazonaws.com";

/// What the delivery role is for: `--bucket`, `--source-stream` (or the configuration's Kinesis
/// streams), `--kms-key`, `--stream-kms-key`, `--lambda`, `--glue-database`/`--glue-table`,
/// `--log-group`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryRole {
    pub bucket: String,
    /// Stream names; empty for a Direct PUT delivery stream (nothing to read).
    pub source_streams: Vec<String>,
    /// Key ARN the bucket's objects are encrypted with.
    pub kms_key: Option<String>,
    /// Key ARN the source stream is encrypted with.
    pub stream_kms_key: Option<String>,
    /// Function name or ARN.
    pub lambda: Option<String>,
    /// (database, table).
    pub glue: Option<(String, String)>,
    pub log_group: Option<String>,
}

/// The delivery role's permissions policy. `region` is `--region`, else the configuration's;
/// an error when an option needs something the others do not give (a stream key without a
/// source stream).
pub fn delivery_role_policy(
    role: &DeliveryRole,
    options: &PolicyOptions,
    region: Option<&str>,
) -> Result<Policy, String> {
    let mut notes = Vec::new();
    let region = region.unwrap_or("*");
    let partition = options
        .partition
        .clone()
        .unwrap_or_else(|| partition_of(region).to_string());
    let account = options.account.as_deref().unwrap_or("*");
    let arn = |service: &str, resource: &str| {
        format!("arn:{partition}:{service}:{region}:{account}:{resource}")
    };
    let needs_account = role
        .lambda
        .as_deref()
        .is_some_and(|l| !l.starts_with("arn:"))
        || !role.source_streams.is_empty()
        || role.glue.is_some()
        || role.log_group.is_some();
    if account == "*" && needs_account {
        notes.push("account: `*` (any account); pass --account ID to name yours".to_string());
    }
    if region == "*" {
        notes.push(
            "region: `*` (the configuration names none and --region is not given); pass --region R to name it".to_string(),
        );
    }

    let bucket_arn = format!("arn:{partition}:s3:::{}", role.bucket);
    let objects_arn = format!("{bucket_arn}/*");
    let mut statements = vec![
        json!({
            "Sid": "S3Bucket",
            "Effect": "Allow",
            "Action": BUCKET_ACTIONS,
            "Resource": [bucket_arn],
        }),
        json!({
            "Sid": "S3Objects",
            "Effect": "Allow",
            "Action": OBJECT_ACTIONS,
            "Resource": [objects_arn],
        }),
    ];
    if let Some(key) = &role.kms_key {
        statements.push(json!({
            "Sid": "S3ObjectsKmsKey",
            "Effect": "Allow",
            "Action": BUCKET_KEY_ACTIONS,
            "Resource": [key],
            "Condition": kms_condition(
                &via_service("s3", region, &partition),
                "kms:EncryptionContext:aws:s3:arn",
                // The context S3 passes is the object's ARN; a pattern needs StringLike.
                vec![objects_arn.clone()],
            ),
        }));
    }
    let stream_arns: Vec<String> = role
        .source_streams
        .iter()
        .map(|s| arn("kinesis", &format!("stream/{s}")))
        .collect();
    if !stream_arns.is_empty() {
        statements.push(json!({
            "Sid": "SourceStream",
            "Effect": "Allow",
            "Action": SOURCE_STREAM_ACTIONS,
            "Resource": stream_arns,
        }));
        if stream_arns.len() > 1 {
            notes.push(format!(
                "the role may read {} streams ({}); a delivery stream reads one: pass --source-stream NAME for the role of one",
                stream_arns.len(),
                role.source_streams.join(", ")
            ));
        }
    } else {
        notes.push(
            "no source stream (no --source-stream and no Kinesis flow in the configuration): the role is for a Direct PUT delivery stream".to_string(),
        );
    }
    if let Some(key) = &role.stream_kms_key {
        if stream_arns.is_empty() {
            return Err(
                "--stream-kms-key needs a source stream: pass --source-stream NAME (or a configuration with a Kinesis flow)".to_string(),
            );
        }
        statements.push(json!({
            "Sid": "SourceStreamKmsKey",
            "Effect": "Allow",
            "Action": STREAM_KEY_ACTIONS,
            "Resource": [key],
            "Condition": kms_condition(
                &via_service("kinesis", region, &partition),
                "kms:EncryptionContext:aws:kinesis:arn",
                stream_arns.clone(),
            ),
        }));
    }
    if let Some(lambda) = &role.lambda {
        let function = if lambda.starts_with("arn:") {
            lambda.clone()
        } else {
            arn("lambda", &format!("function:{lambda}"))
        };
        statements.push(json!({
            "Sid": "TransformationFunction",
            "Effect": "Allow",
            "Action": LAMBDA_ACTIONS,
            "Resource": [function],
        }));
    }
    if let Some((database, table)) = &role.glue {
        statements.push(json!({
            "Sid": "GlueTable",
            "Effect": "Allow",
            "Action": GLUE_ACTIONS,
            "Resource": [
                arn("glue", "catalog"),
                arn("glue", &format!("database/{database}")),
                arn("glue", &format!("table/{database}/{table}")),
            ],
        }));
    }
    if let Some(group) = &role.log_group {
        statements.push(json!({
            "Sid": "ErrorLogs",
            "Effect": "Allow",
            "Action": LOG_ACTIONS,
            "Resource": [arn("logs", &format!("log-group:{group}:log-stream:*"))],
        }));
    }
    Ok(Policy {
        document: json!({ "Version": "2012-10-17", "Statement": statements }),
        notes,
    })
}

/// The trust policy: Firehose may assume the role for deliveries of `account` only
/// (`sts:ExternalId` is the account id Firehose passes when it assumes a delivery role). An
/// error for `*`: a condition on any account limits nothing.
pub fn delivery_role_trust(account: &str) -> Result<Value, String> {
    if account == "*" {
        return Err("--trust needs --account with your 12-digit account id, not *".to_string());
    }
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FirehoseAssumesRole",
            "Effect": "Allow",
            "Principal": { "Service": FIREHOSE_PRINCIPAL },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": account } },
        }]
    }))
}

/// `kms:ViaService` for `service` in `region`, e.g. `s3.eu-west-1.amazonaws.com`.
fn via_service(service: &str, region: &str, partition: &str) -> String {
    // Service hosts of the China regions end in .com.cn.
    let suffix = if partition == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{service}.{region}.{suffix}")
}

/// `kms:ViaService` = `via` and `context_key` = `context`: StringEquals, except that a value
/// holding `*` (an unknown region or account, the bucket's objects) is matched with StringLike.
fn kms_condition(via: &str, context_key: &str, context: Vec<String>) -> Value {
    let mut equals = Map::new();
    let mut like = Map::new();
    let via_target = if via.contains('*') {
        &mut like
    } else {
        &mut equals
    };
    via_target.insert("kms:ViaService".to_string(), json!(via));
    let context_target = if context.iter().any(|c| c.contains('*')) {
        &mut like
    } else {
        &mut equals
    };
    context_target.insert(context_key.to_string(), json!(context));
    let mut condition = Map::new();
    if !equals.is_empty() {
        condition.insert("StringEquals".to_string(), Value::Object(equals));
    }
    if !like.is_empty() {
        condition.insert("StringLike".to_string(), Value::Object(like));
    }
    Value::Object(condition)
}

/// `--bucket`: an S3 bucket name (3 to 63 lower-case letters, digits, dots and dashes,
/// beginning and ending with a letter or digit; S3's naming rules).
pub fn parse_bucket(s: &str) -> Result<String, String> {
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge_ok(s.as_bytes().first())
        && edge_ok(s.as_bytes().last());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected an S3 bucket name (3-63 lower-case letters, digits, dots and dashes), got '{s}'"
        ))
    }
}

/// `--source-stream`: a Kinesis stream name (1 to 128 letters, digits, `_`, `.`, `-`).
pub fn parse_stream(s: &str) -> Result<String, String> {
    if (1..=128).contains(&s.len()) && s.bytes().all(name_byte) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a Kinesis stream name (1-128 letters, digits, '_', '.', '-'), got '{s}'"
        ))
    }
}

/// `--kms-key`, `--stream-kms-key`: a KMS key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`). An
/// alias ARN is refused: IAM matches a key by its key ARN, so a policy naming an alias grants
/// nothing.
pub fn parse_kms_key(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "kms"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[5].strip_prefix("key/").is_some_and(|id| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID; not an alias), got '{s}'"
        ))
    }
}

/// `--lambda`: a function name (1 to 64 letters, digits, `-`, `_`) or a function ARN
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
pub fn parse_lambda(s: &str) -> Result<String, String> {
    let name_ok = |n: &str| {
        (1..=64).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ok = if s.starts_with("arn:") {
        let parts: Vec<&str> = s.split(':').collect();
        (7..=8).contains(&parts.len())
            && parts[2] == "lambda"
            && !parts[3].is_empty()
            && parts[4].len() == 12
            && parts[5] == "function"
            && name_ok(parts[6])
            && parts.get(7).is_none_or(|q| name_ok(q) || *q == "$LATEST")
    } else {
        name_ok(s)
    };
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a Lambda function name or ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME), got '{s}'"
        ))
    }
}

/// `--glue-database`, `--glue-table`: 1 to 255 letters, digits, `_`, `.`, `-`.
pub fn parse_glue_name(s: &str) -> Result<String, String> {
    if (1..=255).contains(&s.len()) && s.bytes().all(name_byte) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a Glue name (letters, digits, '_', '.', '-'), got '{s}'"
        ))
    }
}

/// `--log-group`: a CloudWatch Logs group name (1 to 512 letters, digits, `_`, `-`, `/`, `.`,
/// `#`).
pub fn parse_log_group(s: &str) -> Result<String, String> {
    let ok =
        (1..=512).contains(&s.len()) && s.bytes().all(|b| name_byte(b) || b == b'/' || b == b'#');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected a log group name (letters, digits, '_', '-', '/', '.', '#'), got '{s}'"
        ))
    }
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named() -> PolicyOptions {
        PolicyOptions {
            account: Some("123456789012".into()),
            ..Default::default()
        }
    }

    #[test]
    fn bucket_only_grants_s3_alone() {
        let role = DeliveryRole {
            bucket: "logs-bucket".into(),
            ..Default::default()
        };
        let p = delivery_role_policy(&role, &named(), Some("eu-west-1")).expect("policy");
        assert_eq!(
            p.document,
            json!({
                "Version": "2012-10-17",
                "Statement": [
                    { "Sid": "S3Bucket", "Effect": "Allow", "Action": BUCKET_ACTIONS,
                      "Resource": ["arn:aws:s3:::logs-bucket"] },
                    { "Sid": "S3Objects", "Effect": "Allow", "Action": OBJECT_ACTIONS,
                      "Resource": ["arn:aws:s3:::logs-bucket/*"] },
                ]
            })
        );
        assert!(p.notes.iter().any(|n| n.contains("Direct PUT")));
        // S3 ARNs name no account: no note about one.
        assert!(!p.notes.iter().any(|n| n.starts_with("account")));
    }

    #[test]
    fn every_option_adds_its_statement_with_the_kms_conditions() {
        let role = DeliveryRole {
            bucket: "logs-bucket".into(),
            source_streams: vec!["app-logs".into()],
            kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/1111-22".into()),
            stream_kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/3333-44".into()),
            lambda: Some("enrich".into()),
            glue: Some(("analytics".into(), "app_logs".into())),
            log_group: Some("/aws/kinesisfirehose/app-logs".into()),
        };
        let p = delivery_role_policy(&role, &named(), Some("eu-west-1")).expect("policy");
        let st = p.document["Statement"].as_array().expect("statements");
        let sids: Vec<&str> = st.iter().filter_map(|s| s["Sid"].as_str()).collect();
        assert_eq!(
            sids,
            [
                "S3Bucket",
                "S3Objects",
                "S3ObjectsKmsKey",
                "SourceStream",
                "SourceStreamKmsKey",
                "TransformationFunction",
                "GlueTable",
                "ErrorLogs"
            ]
        );
        assert_eq!(
            st[2]["Condition"],
            json!({
                "StringEquals": { "kms:ViaService": "s3.eu-west-1.amazonaws.com" },
                "StringLike": { "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::logs-bucket/*"] },
            })
        );
        assert_eq!(
            st[2]["Action"],
            json!(["kms:Decrypt", "kms:GenerateDataKey"])
        );
        assert_eq!(
            st[3]["Resource"],
            json!(["arn:aws:kinesis:eu-west-1:123456789012:stream/app-logs"])
        );
        assert_eq!(
            st[4]["Condition"],
            json!({ "StringEquals": {
                "kms:ViaService": "kinesis.eu-west-1.amazonaws.com",
                "kms:EncryptionContext:aws:kinesis:arn": ["arn:aws:kinesis:eu-west-1:123456789012:stream/app-logs"],
            } })
        );
        assert_eq!(st[4]["Action"], json!(["kms:Decrypt"]));
        assert_eq!(
            st[5]["Resource"],
            json!(["arn:aws:lambda:eu-west-1:123456789012:function:enrich"])
        );
        assert_eq!(
            st[6]["Resource"],
            json!([
                "arn:aws:glue:eu-west-1:123456789012:catalog",
                "arn:aws:glue:eu-west-1:123456789012:database/analytics",
                "arn:aws:glue:eu-west-1:123456789012:table/analytics/app_logs"
            ])
        );
        assert_eq!(
            st[7]["Resource"],
            json!(["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/kinesisfirehose/app-logs:log-stream:*"])
        );
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn unknown_region_and_china_partition() {
        let role = DeliveryRole {
            bucket: "b-1".into(),
            source_streams: vec!["s".into()],
            stream_kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/k".into()),
            lambda: Some("arn:aws:lambda:eu-west-1:123456789012:function:f:live".into()),
            ..Default::default()
        };
        let p = delivery_role_policy(&role, &PolicyOptions::default(), None).expect("policy");
        let st = &p.document["Statement"];
        // Unknown region and account: the condition matches any region, by pattern.
        assert_eq!(
            st[3]["Condition"],
            json!({ "StringLike": {
                "kms:ViaService": "kinesis.*.amazonaws.com",
                "kms:EncryptionContext:aws:kinesis:arn": ["arn:aws:kinesis:*:*:stream/s"],
            } })
        );
        // A function ARN is used as given (with its qualifier).
        assert_eq!(
            st[4]["Resource"],
            json!(["arn:aws:lambda:eu-west-1:123456789012:function:f:live"])
        );
        assert!(p.notes.iter().any(|n| n.starts_with("account: `*`")));
        assert!(p.notes.iter().any(|n| n.starts_with("region: `*`")));

        let p = delivery_role_policy(&role, &named(), Some("cn-north-1")).expect("policy");
        assert_eq!(
            p.document["Statement"][3]["Condition"]["StringEquals"]["kms:ViaService"],
            "kinesis.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            p.document["Statement"][0]["Resource"],
            json!(["arn:aws-cn:s3:::b-1"])
        );
    }

    #[test]
    fn a_stream_key_without_a_stream_is_refused_and_many_streams_are_noted() {
        let mut role = DeliveryRole {
            bucket: "bucket".into(),
            stream_kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/k".into()),
            ..Default::default()
        };
        let e = delivery_role_policy(&role, &named(), Some("eu-west-1")).expect_err("no stream");
        assert!(e.contains("--source-stream"), "{e}");
        role.source_streams = vec!["a".into(), "b".into()];
        let p = delivery_role_policy(&role, &named(), Some("eu-west-1")).expect("policy");
        assert!(p.notes.iter().any(|n| n.contains("2 streams (a, b)")));
    }

    #[test]
    fn trust_policy_names_firehose_and_the_account() {
        assert!(delivery_role_trust("*").is_err());
        assert_eq!(
            delivery_role_trust("123456789012").expect("trust"),
            json!({ "Version": "2012-10-17", "Statement": [{
                "Sid": "FirehoseAssumesRole", "Effect": "Allow",
                "Principal": { "Service": "firehose.amazonaws.com" },
                "Action": "sts:AssumeRole",
                "Condition": { "StringEquals": { "sts:ExternalId": "123456789012" } } }] })
        );
    }

    #[test]
    fn option_values_are_checked() {
        assert!(parse_bucket("my.logs-1").is_ok());
        for bad in ["ab", "My-Bucket", "-logs", "logs_1", "logs-"] {
            assert!(parse_bucket(bad).is_err(), "{bad}");
        }
        assert!(parse_stream("app.logs_1-a").is_ok());
        assert!(parse_stream("a/b").is_err());
        assert!(parse_kms_key("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab").is_ok());
        assert!(parse_kms_key("arn:aws:kms:eu-west-1:123456789012:alias/logs").is_err());
        assert!(parse_kms_key("1234abcd").is_err());
        assert!(parse_lambda("enrich_logs-1").is_ok());
        assert!(parse_lambda("arn:aws:lambda:eu-west-1:123456789012:function:f").is_ok());
        assert!(parse_lambda("arn:aws:lambda:eu-west-1:123456789012:function:f:$LATEST").is_ok());
        assert!(parse_lambda("arn:aws:lambda:eu-west-1:1:function:f").is_err());
        assert!(parse_lambda("a b").is_err());
        assert!(parse_glue_name("analytics_db").is_ok());
        assert!(parse_glue_name("").is_err());
        assert!(parse_log_group("/aws/kinesisfirehose/x#1").is_ok());
        assert!(parse_log_group("a b").is_err());
    }
}
