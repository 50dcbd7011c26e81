//! Sending: records into batches, batches to the service, acknowledgements to the tracker.
//!
//! Owns: [`batch`] (the records of one call), [`batcher`] (pure batch decisions and the task
//! around them), [`queue`] (the bounded queue to the sender), [`sender`] (the per-flow
//! send loop: bounded concurrency, retry of failed records only, backoff), [`backoff`] (the Java
//! agent's schedule), the implementations of [`PutBatch`]: [`kinesis`], [`firehose`] and
//! [`dry_run`] (standard output), and what `kplAggregation` adds to Kinesis: [`kpl`] (the
//! aggregated record format) and [`shards`] (lines grouped by shard for DETERMINISTIC keys).
//! Does not own: reading files or storing checkpoints.

pub mod backoff;
pub mod batch;
pub mod batcher;
pub mod dry_run;
pub mod firehose;
pub mod kinesis;
pub mod kpl;
pub mod queue;
pub mod sender;
pub mod shards;

use std::fmt;
use std::future::Future;

use bytes::Bytes;

/// The one thing a sender needs from AWS: send these records, tell which failed.
pub trait PutBatch: Send + Sync + 'static {
    /// Sends `records` in one call. `Ok` lists the records the service refused (by index);
    /// `Err` means the call as a whole failed and no record is known to be accepted.
    fn put(
        &self,
        records: &[Bytes],
    ) -> impl Future<Output = Result<Vec<RecordFailure>, SendError>> + Send;

    /// For messages: e.g. `Kinesis stream 'logs' (PutRecords)`.
    fn describe(&self) -> String;
}

/// One record of a call that the service refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub index: usize,
    pub code: String,
    pub message: String,
}

/// How a failed call should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The service asked us to slow down.
    Throttled,
    /// Network trouble, timeouts, 5xx: retry with backoff.
    Transient,
    /// A retry cannot fix it (stream not found, access denied, bad credentials): the operator
    /// must act. Still retried, slowly, so nothing is lost once it is fixed.
    Fatal,
}

/// A call that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub kind: ErrorKind,
    /// The service's error code, or a short name of the client-side failure.
    pub code: String,
    pub message: String,
    /// What the operator should do, for fatal errors.
    pub fix: Option<String>,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " Fix: {fix}")?;
        }
        Ok(())
    }
}

/// The failed records of an answer, from each entry's (error code, error message) in order.
/// Shared by Kinesis and Firehose, whose answer entries differ only in type.
pub(crate) fn failures<'a>(
    entries: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> Vec<RecordFailure> {
    entries
        .enumerate()
        .filter_map(|(index, (code, message))| {
            code.map(|code| RecordFailure {
                index,
                code: code.to_string(),
                message: message.unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// A request the SDK refused to build (a required field missing): never retried successfully.
pub(crate) fn invalid_request(e: impl fmt::Display) -> SendError {
    SendError {
        kind: ErrorKind::Fatal,
        code: "InvalidRequest".into(),
        message: e.to_string(),
        fix: None,
    }
}

/// Error codes a retry cannot fix, with what to do. Shared by Kinesis and Firehose.
pub(crate) fn fatal_fix(code: &str, target: &str) -> Option<String> {
    let fix = match code {
        "ResourceNotFoundException" => format!(
            "{target} does not exist in this account and region: check the name in agent.json and the region (kinesis.region, AWS_REGION), or create it."
        ),
        "AccessDeniedException" | "AccessDenied" | "KMSAccessDeniedException" => format!(
            "the agent's credentials are not allowed to write to {target}: grant the missing permission in the IAM policy of the role or user the agent uses."
        ),
        "UnrecognizedClientException" | "InvalidSignatureException" | "InvalidClientTokenId"
        | "IncompleteSignature" | "MissingAuthenticationToken" | "SignatureDoesNotMatch" => {
            "the AWS credentials are invalid: check awsAccessKeyId/awsSecretAccessKey in agent.json, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the instance profile.".to_string()
        }
        "ExpiredTokenException" | "ExpiredToken" => {
            "the AWS credentials have expired: refresh them (temporary credentials in the environment are not renewed by the agent).".to_string()
        }
        "KMSDisabledException" | "KMSNotFoundException" | "KMSInvalidStateException" => {
            format!("the KMS key used to encrypt {target} is not usable: enable it or change the stream's encryption.")
        }
        _ => return None,
    };
    Some(fix)
}

/// Error codes that mean "slow down".
pub(crate) fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "Throttling"
            | "LimitExceededException"
            | "ServiceUnavailableException"
            | "SlowDown"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
    )
}

/// Whether `err` or one of its sources is the SDK's "no credentials":
/// [`CredentialsError::CredentialsNotLoaded`], which the default chain returns when none of its
/// providers had credentials (its source lists what was tried) and a provider returns when it
/// does not apply. The orchestrator resolves credentials just before sending, so the error
/// reaches [`classify`] as `SdkError::DispatchFailure` holding a `ConnectorError` holding the
/// `CredentialsError`; an assume-role provider whose own credentials are missing wraps it once
/// more (its STS call's `SdkError`), hence the walk down the whole chain.
///
/// [`CredentialsError::CredentialsNotLoaded`]: aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded
fn is_no_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    std::iter::successors(Some(err), |e| e.source()).any(|e| {
        matches!(
            e.downcast_ref::<CredentialsError>(),
            Some(CredentialsError::CredentialsNotLoaded(_))
        )
    })
}

/// Classifies an SDK error of any operation.
pub(crate) fn classify<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    target: &str,
) -> SendError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    // One line in the log: the SDK's messages can span lines (e.g. the providers it tried).
    let message = aws_smithy_types::error::display::DisplayErrorContext(err)
        .to_string()
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if std::error::Error::source(err).is_some_and(is_no_credentials) {
        let fix = "no AWS credentials were found: set awsAccessKeyId/awsSecretAccessKey in agent.json, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the agent's environment file, a profile, or attach an instance profile. The agent keeps retrying and ships as soon as credentials appear.";
        return SendError {
            kind: ErrorKind::Fatal,
            code: "NoCredentials".into(),
            message,
            fix: Some(fix.into()),
        };
    }
    match err {
        SdkError::ServiceError(service) => {
            let code = service
                .err()
                .code()
                .unwrap_or("UnknownServiceError")
                .to_string();
            let message = service
                .err()
                .message()
                .map(str::to_string)
                .unwrap_or(message);
            if let Some(fix) = fatal_fix(&code, target) {
                SendError {
                    kind: ErrorKind::Fatal,
                    code,
                    message,
                    fix: Some(fix),
                }
            } else if is_throttling(&code) {
                SendError {
                    kind: ErrorKind::Throttled,
                    code,
                    message,
                    fix: None,
                }
            } else {
                SendError {
                    kind: ErrorKind::Transient,
                    code,
                    message,
                    fix: None,
                }
            }
        }
        // The request could not be built (a required field missing, a value that does not
        // serialize). Missing credentials are not this: the SDK resolves them in the transmit
        // phase, so they come as a dispatch failure and are recognised above.
        SdkError::ConstructionFailure(_) => SendError {
            kind: ErrorKind::Fatal,
            code: "RequestNotSent".into(),
            message,
            fix: None,
        },
        SdkError::TimeoutError(_) => SendError {
            kind: ErrorKind::Transient,
            code: "Timeout".into(),
            message,
            fix: None,
        },
        SdkError::DispatchFailure(_) => SendError {
            kind: ErrorKind::Transient,
            code: "ConnectionError".into(),
            message,
            fix: None,
        },
        _ => SendError {
            kind: ErrorKind::Transient,
            code: "ResponseError".into(),
            message,
            fix: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_kinesis::operation::put_records::PutRecordsError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};

    type Error = SdkError<PutRecordsError, HttpResponse>;

    /// How the orchestrator reports a credentials error: a dispatch failure around it.
    fn dispatch_failure(source: impl std::error::Error + Send + Sync + 'static) -> Error {
        SdkError::dispatch_failure(ConnectorError::other(Box::new(source), None))
    }

    fn no_credentials_in_chain() -> CredentialsError {
        CredentialsError::not_loaded(
            "no credentials found in chain. Attempted:\n  Environment: not loaded",
        )
    }

    #[test]
    fn credentials_not_loaded_is_no_credentials_with_the_fix() {
        let err = classify(
            &dispatch_failure(no_credentials_in_chain()),
            "Kinesis stream 's'",
        );
        assert_eq!(
            (err.kind, err.code.as_str()),
            (ErrorKind::Fatal, "NoCredentials")
        );
        assert!(err.fix.is_some_and(|f| f.contains("awsAccessKeyId")));
        // One line in the log, whatever the SDK's message spans.
        assert!(!err.message.contains('\n'), "{}", err.message);
    }

    #[test]
    fn missing_credentials_under_an_assumed_role_are_no_credentials() {
        // The assume-role provider's STS call failed for want of its own credentials.
        let sts = dispatch_failure(no_credentials_in_chain());
        let err = dispatch_failure(CredentialsError::provider_error(sts));
        assert_eq!(classify(&err, "t").code, "NoCredentials");
        // The same error as a construction failure (should the SDK move it there).
        let err = Error::construction_failure(no_credentials_in_chain());
        assert_eq!(classify(&err, "t").code, "NoCredentials");
    }

    #[test]
    fn other_failures_are_not_no_credentials() {
        let missing_field =
            aws_smithy_types::error::operation::BuildError::missing_field("stream_name", "needed");
        let err = classify(&Error::construction_failure(missing_field), "t");
        assert_eq!(
            (err.kind, err.code.as_str(), err.fix),
            (ErrorKind::Fatal, "RequestNotSent", None)
        );
        // A provider that has credentials but failed to fetch them (IMDS down) is not "none".
        let imds = CredentialsError::provider_error("instance metadata returned 500");
        let err = classify(&dispatch_failure(imds), "t");
        assert_eq!(
            (err.kind, err.code.as_str()),
            (ErrorKind::Transient, "ConnectionError")
        );
        // Words are not the type: a message that mentions credentials is still a network error.
        let refused =
            std::io::Error::other("no credentials: connection refused by credential provider");
        let err = classify(&dispatch_failure(refused), "t");
        assert_eq!(err.code, "ConnectionError");
    }

    #[tokio::test]
    async fn the_sdks_own_error_for_no_credentials_is_recognised() {
        // A real client whose credentials provider has none: the SDK fails before it connects
        // (credentials are resolved before the endpoint), so no network is used.
        let provider = aws_credential_types::credential_fn::provide_credentials_fn(|| async {
            Err(no_credentials_in_chain())
        });
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(provider)
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
            .build();
        let entry = aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
            .data(aws_smithy_types::Blob::new("line"))
            .partition_key("k")
            .build()
            .expect("entry");
        let err = aws_sdk_kinesis::Client::from_conf(config)
            .put_records()
            .stream_name("s")
            .records(entry)
            .send()
            .await
            .expect_err("no credentials");
        assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
        assert_eq!(classify(&err, "Kinesis stream 's'").code, "NoCredentials");
    }
}
