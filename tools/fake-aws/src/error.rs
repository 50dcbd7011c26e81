//! Whole-call errors as the real services send them: an HTTP status, an error code and a message.
//!
//! awsJson1_1 (Kinesis, Firehose) puts the code in `__type` and the text in `message`; the Rust
//! SDK reads `__type` (or the `x-amzn-ErrorType` header) to pick the modeled error.
//! Smithy RPC v2 CBOR (CloudWatch) uses the same two keys in a CBOR map. This module only builds
//! the values; the server turns them into responses.

/// The account id used in ARNs and messages.
pub const ACCOUNT: &str = "123456789012";
/// The region used in ARNs.
pub const REGION: &str = "us-east-1";

/// An error answer for a whole call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

/// The two services that share the awsJson1_1 route; they word some errors differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kinesis,
    Firehose,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A request that breaks a documented limit (count, size, name pattern).
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(
            400,
            "ValidationException",
            format!("1 validation error detected: {}", message.into()),
        )
    }

    /// A body that is not the expected JSON / CBOR / base64.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "SerializationException", message)
    }

    pub fn unknown_operation(target: &str) -> ApiError {
        ApiError::new(
            400,
            "UnknownOperationException",
            format!("Unknown operation {target}"),
        )
    }

    /// A request with no `Authorization` header: the SDK did not sign it.
    pub fn missing_authentication() -> ApiError {
        ApiError::new(
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    }

    /// The real messages: Kinesis "Stream X under account N not found.", Firehose
    /// "Firehose X under account N not found.".
    pub fn not_found(service: Service, name: &str) -> ApiError {
        let what = match service {
            Service::Kinesis => "Stream",
            Service::Firehose => "Firehose",
        };
        ApiError::new(
            400,
            "ResourceNotFoundException",
            format!("{what} {name} under account {ACCOUNT} not found."),
        )
    }

    pub fn access_denied(service: Service, operation: &str, name: &str) -> ApiError {
        let prefix = match service {
            Service::Kinesis => "kinesis",
            Service::Firehose => "firehose",
        };
        ApiError::new(
            400,
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{ACCOUNT}:user/test is not authorized to perform: \
                 {prefix}:{operation} on resource: {} because no identity-based policy allows \
                 the {prefix}:{operation} action",
                arn(service, name)
            ),
        )
    }

    /// Call-level throttling. Kinesis answers HTTP 400 `ProvisionedThroughputExceededException`;
    /// Firehose has no throttling error in its model and answers PutRecordBatch over its limits
    /// with HTTP 503 `ServiceUnavailableException` ("Slow down."), which is what we send.
    pub fn throttled(service: Service, name: &str) -> ApiError {
        match service {
            Service::Kinesis => ApiError::new(
                400,
                "ProvisionedThroughputExceededException",
                format!("Rate exceeded for stream {name} under account {ACCOUNT}."),
            ),
            Service::Firehose => ApiError::new(503, "ServiceUnavailableException", "Slow down."),
        }
    }

    pub fn internal_failure() -> ApiError {
        ApiError::new(500, "InternalFailure", "Internal service failure.")
    }

    pub fn service_unavailable() -> ApiError {
        ApiError::new(503, "ServiceUnavailable", "Service is unavailable.")
    }

    /// The awsJson1_1 error body.
    pub fn json_body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "__type": self.code,
            "message": self.message,
        }))
        .unwrap_or_default()
    }

    /// The Smithy RPC v2 CBOR error body.
    pub fn cbor_body(&self) -> Vec<u8> {
        let value = ciborium::Value::Map(vec![
            (
                ciborium::Value::Text("__type".into()),
                ciborium::Value::Text(self.code.into()),
            ),
            (
                ciborium::Value::Text("message".into()),
                ciborium::Value::Text(self.message.clone()),
            ),
        ]);
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = ciborium::into_writer(&value, &mut out);
        out
    }
}

/// The ARN of a stream or delivery stream.
pub fn arn(service: Service, name: &str) -> String {
    match service {
        Service::Kinesis => format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"),
        Service::Firehose => {
            format!("arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_shape_is_what_the_sdk_reads() {
        let body = ApiError::not_found(Service::Kinesis, "logs").json_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "ResourceNotFoundException");
        assert_eq!(
            v["message"],
            "Stream logs under account 123456789012 not found."
        );
        let fh = ApiError::not_found(Service::Firehose, "d");
        assert_eq!(
            fh.message,
            "Firehose d under account 123456789012 not found."
        );
    }

    #[test]
    fn throttling_differs_per_service() {
        let k = ApiError::throttled(Service::Kinesis, "s");
        assert_eq!(
            (k.status, k.code),
            (400, "ProvisionedThroughputExceededException")
        );
        let f = ApiError::throttled(Service::Firehose, "s");
        assert_eq!((f.status, f.code), (503, "ServiceUnavailableException"));
    }

    #[test]
    fn cbor_error_body_decodes() {
        let body = ApiError::validation("x").cbor_body();
        let v: ciborium::Value = ciborium::from_reader(&body[..]).unwrap();
        let map = v.as_map().unwrap();
        assert_eq!(map[0].0.as_text(), Some("__type"));
        assert_eq!(map[0].1.as_text(), Some("ValidationException"));
    }
}
