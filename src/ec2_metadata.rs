//! ADDEC2METADATA's facts from the EC2 instance metadata service (IMDSv2, with tokens, through
//! the SDK's IMDS client; `AWS_EC2_METADATA_SERVICE_ENDPOINT` points it elsewhere and
//! `AWS_EC2_METADATA_DISABLED=true` turns it off).
//!
//! Owns: fetching the identity document and the instance tags (from the metadata service's
//! `tags/instance`, available when the instance allows tags in metadata; the Java agent calls
//! EC2 DescribeTags instead), caching them, and refreshing every `metadataTTL` in a task.
//! Converters read the cache and never wait on the network.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::imds::Client;
use time::{OffsetDateTime, UtcOffset};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::process::{Ec2Metadata, Ec2MetadataSource};

/// Cached facts, refreshed by [`ImdsSource::run`].
#[derive(Debug, Default)]
pub struct ImdsSource {
    cache: Mutex<Option<Arc<Ec2Metadata>>>,
}

impl Ec2MetadataSource for ImdsSource {
    fn metadata(&self) -> Option<Arc<Ec2Metadata>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ImdsSource {
    /// Fetches now and then every `ttl` until `stop`. `offset` is the agent's UTC offset (for
    /// `metadataTimestamp`, which the Java agent writes in its time zone).
    pub async fn run(self: Arc<Self>, ttl: Duration, offset: UtcOffset, stop: CancellationToken) {
        // The SDK's IMDS client does not itself honour AWS_EC2_METADATA_DISABLED (only its
        // credential and region providers do), so check it here.
        let disabled = std::env::var("AWS_EC2_METADATA_DISABLED")
            .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        if disabled {
            warn!("ADDEC2METADATA: AWS_EC2_METADATA_DISABLED is set, so records pass unchanged (Unable to append metadata, no metadata found).");
            return;
        }
        let client = Client::builder().build();
        let mut warned = false;
        loop {
            match fetch(&client, offset).await {
                Ok(facts) => {
                    *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(facts))
                }
                Err(e) if !warned => {
                    warned = true;
                    warn!("ADDEC2METADATA: cannot read the EC2 instance metadata service ({e}); records pass unchanged until it answers.");
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(ttl) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

async fn fetch(client: &Client, offset: UtcOffset) -> Result<Ec2Metadata, String> {
    let doc = client
        .get("/latest/dynamic/instance-identity/document")
        .await
        .map_err(|e| aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())?;
    let doc: serde_json::Value =
        serde_json::from_str(doc.as_ref()).map_err(|e| format!("identity document: {e}"))?;
    let field = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let tags = match client.get("/latest/meta-data/tags/instance").await {
        Ok(keys) => {
            let mut tags = Vec::new();
            for key in keys.as_ref().lines().filter(|k| !k.is_empty()) {
                if let Ok(value) = client
                    .get(&format!("/latest/meta-data/tags/instance/{key}"))
                    .await
                {
                    tags.push((key.to_string(), value.as_ref().to_string()));
                }
            }
            Some(Ec2Metadata::java_tags(tags))
        }
        // Tags in metadata not enabled on this instance: the `tags` key is left out, as in Java
        // when DescribeTags fails.
        Err(_) => None,
    };
    Ok(Ec2Metadata {
        private_ip: field("privateIp"),
        availability_zone: field("availabilityZone"),
        instance_id: field("instanceId"),
        instance_type: field("instanceType"),
        account_id: field("accountId"),
        ami_id: field("imageId"),
        region: field("region"),
        metadata_timestamp: Ec2Metadata::format_timestamp(
            OffsetDateTime::now_utc().to_offset(offset),
        ),
        tags,
    })
}
