//! AWS SDK clients from the plan: region, credentials, endpoints and timeouts.
//!
//! Owns: turning `kinesis.endpoint`, `firehose.endpoint`, `kinesis.region`, the static keys and
//! the HTTP timeouts into SDK clients. Every client takes its region from the same place
//! (the Java agent sends Firehose and CloudWatch to us-east-1 unless told otherwise).

use std::fmt;

use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::{AgentPlan, AwsPlan};

/// The region could not be found anywhere; the agent cannot start.
#[derive(Debug)]
pub struct NoRegion {
    pub config_file: String,
}

impl fmt::Display for NoRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no AWS region found. Looked at: 'kinesis.region' in {}; the host names of 'kinesis.endpoint' and 'firehose.endpoint'; the AWS_REGION and AWS_DEFAULT_REGION environment variables; the profile (AWS_PROFILE, ~/.aws/config); the EC2 instance metadata service. Fix: set \"kinesis.region\" in the configuration, or AWS_REGION in the agent's environment file.",
            self.config_file
        )
    }
}

impl std::error::Error for NoRegion {}

/// Clients shared by all flows.
#[derive(Debug, Clone)]
pub struct Clients {
    pub kinesis: aws_sdk_kinesis::Client,
    pub firehose: aws_sdk_firehose::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub region: Region,
    /// Where every client gets its credentials (`check --aws` asks it directly).
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

/// Builds the clients. Resolving the region may ask the standard chain (environment, profile,
/// instance metadata).
pub async fn clients(plan: &AgentPlan) -> Result<Clients, NoRegion> {
    let aws = &plan.aws;
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(aws.connection_timeout)
            .read_timeout(aws.socket_timeout)
            .build(),
    );
    if let Some(creds) = &aws.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            &creds.access_key_id,
            &creds.secret_access_key,
            None,
            None,
            "agent.json",
        ));
    }
    if let Some(region) = configured_region(aws) {
        loader = loader.region(Region::new(region));
    }
    if let Some(app) = app_name(aws) {
        loader = loader.app_name(app);
    }
    let mut sdk = loader.load().await;
    let Some(region) = sdk.region().cloned() else {
        let config_file = plan
            .sources
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        return Err(NoRegion { config_file });
    };
    if let Some(role) = &aws.assume_role_arn {
        sdk = assume_role(sdk, role, aws).await;
    }

    let mut kinesis = aws_sdk_kinesis::config::Builder::from(&sdk);
    if let Some(endpoint) = &aws.kinesis_endpoint {
        kinesis = kinesis.endpoint_url(with_scheme(endpoint));
    }
    let mut firehose = aws_sdk_firehose::config::Builder::from(&sdk);
    if let Some(endpoint) = &aws.firehose_endpoint {
        firehose = firehose.endpoint_url(with_scheme(endpoint));
        if let Some(r) = aws
            .firehose_endpoint
            .as_deref()
            .and_then(region_of_endpoint)
        {
            firehose = firehose.region(Region::new(r));
        }
    }
    let mut cloudwatch = aws_sdk_cloudwatch::config::Builder::from(&sdk);
    if let Some(endpoint) = &aws.cloudwatch_endpoint {
        cloudwatch = cloudwatch.endpoint_url(with_scheme(endpoint));
        if let Some(r) = region_of_endpoint(endpoint) {
            cloudwatch = cloudwatch.region(Region::new(r));
        }
    }
    Ok(Clients {
        kinesis: aws_sdk_kinesis::Client::from_conf(kinesis.build()),
        firehose: aws_sdk_firehose::Client::from_conf(firehose.build()),
        cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch.build()),
        region,
        credentials: sdk.credentials_provider(),
    })
}

/// Session name of the assumed role (Java `AgentContext`).
pub const ASSUMED_ROLE_SESSION: &str = "AWSKinesisAgent";
/// Length of an assumed-role session (Java: 3600 s); the SDK refreshes before it ends.
pub const ASSUMED_ROLE_SESSION_LENGTH: Duration = Duration::from_secs(3600);

/// Every client uses the role `role`, assumed with the credentials `sdk` has (config keys or
/// the standard chain), through STS at `sts.endpoint` when set.
async fn assume_role(sdk: SdkConfig, role: &str, aws: &AwsPlan) -> SdkConfig {
    let mut sts = sdk.clone().into_builder();
    if let Some(endpoint) = &aws.sts_endpoint {
        sts.set_endpoint_url(Some(with_scheme(endpoint)));
    }
    let mut builder = AssumeRoleProvider::builder(role)
        .session_name(ASSUMED_ROLE_SESSION)
        .session_length(ASSUMED_ROLE_SESSION_LENGTH)
        .configure(&sts.build());
    if let Some(id) = &aws.assume_role_external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.build().await;
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// The SDK adds `app/<name>` to its user agent: `userAgent` when it is a valid name there,
/// else `aws-kinesis-agent`. (`userAgentOverride`, replacing the whole user agent, is not
/// possible with the SDK; the configuration reports it.)
fn app_name(aws: &AwsPlan) -> Option<AppName> {
    aws.user_agent
        .as_deref()
        .and_then(|ua| AppName::new(ua.replace(' ', "_")).ok())
        .or_else(|| AppName::new("aws-kinesis-agent").ok())
}

/// `kinesis.region`, else the region in a standard Kinesis endpoint host name.
fn configured_region(aws: &AwsPlan) -> Option<String> {
    aws.kinesis_region
        .clone()
        .or_else(|| aws.kinesis_endpoint.as_deref().and_then(region_of_endpoint))
}

/// Endpoints may be written without a scheme, as with the Java agent (the SDK added https).
pub fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("https://{endpoint}")
    }
}

/// The region of a standard AWS endpoint (`kinesis.eu-west-1.amazonaws.com`,
/// `firehose-fips.us-east-1.amazonaws.com`, `...amazonaws.com.cn`); None for other hosts.
pub fn region_of_endpoint(endpoint: &str) -> Option<String> {
    let rest = endpoint.split("://").last()?;
    let host = rest.split(['/', ':']).next()?;
    let labels: Vec<&str> = host.split('.').collect();
    let suffix_len = if host.ends_with(".amazonaws.com") {
        2
    } else if host.ends_with(".amazonaws.com.cn") {
        3
    } else {
        return None;
    };
    if labels.len() < suffix_len + 2 {
        return None;
    }
    let region = labels[labels.len() - suffix_len - 1];
    let looks_like_region =
        region.split('-').count() >= 3 && region.chars().last()?.is_ascii_digit();
    looks_like_region.then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_from_standard_host_names_only() {
        assert_eq!(
            region_of_endpoint("https://kinesis.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_endpoint("kinesis.us-gov-west-1.amazonaws.com").as_deref(),
            Some("us-gov-west-1")
        );
        assert_eq!(
            region_of_endpoint("firehose-fips.us-east-2.amazonaws.com:443/").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(
            region_of_endpoint("kinesis.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(region_of_endpoint("http://127.0.0.1:4567"), None);
        assert_eq!(region_of_endpoint("my-proxy.example.com"), None);
        assert_eq!(region_of_endpoint("kinesis.amazonaws.com"), None);
    }

    #[test]
    fn scheme_is_added_when_missing() {
        assert_eq!(
            with_scheme("kinesis.us-east-1.amazonaws.com"),
            "https://kinesis.us-east-1.amazonaws.com"
        );
        assert_eq!(
            with_scheme("http://127.0.0.1:4567"),
            "http://127.0.0.1:4567"
        );
    }
}
