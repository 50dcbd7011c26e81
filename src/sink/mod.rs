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
    let no_credentials =
        message.contains("no credentials") || message.contains("credential provider");
    if no_credentials {
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
        SdkError::ConstructionFailure(_) => {
            // The request could not even be built or signed: most often no credentials.
            let fix = if message.contains("credentials") || message.contains("identity") {
                Some("no AWS credentials were found: set awsAccessKeyId/awsSecretAccessKey in agent.json, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the agent's environment file, a profile, or attach an instance profile.".to_string())
            } else {
                None
            };
            SendError {
                kind: ErrorKind::Fatal,
                code: "RequestNotSent".into(),
                message,
                fix,
            }
        }
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
