//! Publishes the Java agent's CloudWatch metrics (reference 6.1), plus lag per flow.
//!
//! Owns: turning each flow's statistic sets into `PutMetricData` datums (namespace
//! `cloudwatch.namespace`, dimension `Destination` = `KinesisStream:<s>` / `DeliveryStream:<s>`,
//! and `Instance` with `cloudwatch.tagInstance`), every `cloudwatch.metricsBufferTimeMillis`
//! and once at shutdown. A failed publish is logged and dropped, as in the Java agent; it never
//! touches shipping.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{FlowCounters, StatSet, Unit};

/// Datums per `PutMetricData` call (Java `CWMetricsFactory.BATCH_SIZE`).
const DATUMS_PER_CALL: usize = 20;
/// How often a failing publish is reported again.
const REPEAT_FAILURE: Duration = Duration::from_secs(300);

/// One flow's metrics source.
pub struct MetricsFlow {
    /// `KinesisStream:<s>` or `DeliveryStream:<s>`.
    pub destination: String,
    pub counters: Arc<FlowCounters>,
}

pub struct Publisher {
    pub client: aws_sdk_cloudwatch::Client,
    pub namespace: String,
    /// `Instance` dimension value, with `cloudwatch.tagInstance`.
    pub instance: Option<String>,
    pub period: Duration,
    /// `cloudwatch.metricsQueueSize`: datums kept for one publish at most.
    pub max_datums: usize,
    pub flows: Vec<MetricsFlow>,
}

impl Publisher {
    /// Publishes every period until `stop`, then once more.
    pub async fn run(self, stop: CancellationToken) {
        let mut last_failure: Option<Instant> = None;
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(self.period) => false,
                _ = stop.cancelled() => true,
            };
            self.publish_once(&mut last_failure).await;
            if stopping {
                return;
            }
        }
    }

    async fn publish_once(&self, last_failure: &mut Option<Instant>) {
        let mut datums = Vec::new();
        for flow in &self.flows {
            for (name, unit, set) in flow.counters.take_stats() {
                datums.push(datum(
                    name,
                    unit,
                    set,
                    &flow.destination,
                    self.instance.as_deref(),
                ));
            }
        }
        if datums.len() > self.max_datums {
            warn!(
                "Metrics queue full - dropping {} datums (cloudwatch.metricsQueueSize is {}).",
                datums.len() - self.max_datums,
                self.max_datums
            );
            datums.truncate(self.max_datums);
        }
        let mut published = 0;
        for chunk in datums.chunks(DATUMS_PER_CALL) {
            let call = self
                .client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await;
            match call {
                Ok(_) => published += chunk.len(),
                Err(e) => {
                    if last_failure.is_none_or(|t| t.elapsed() >= REPEAT_FAILURE) {
                        *last_failure = Some(Instant::now());
                        warn!(
                            "Could not publish {} datums to CloudWatch: {}. Shipping is not affected. Fix: allow cloudwatch:PutMetricData for namespace {}, or set \"cloudwatch.emitMetrics\": false.",
                            chunk.len(),
                            aws_smithy_types::error::display::DisplayErrorContext(&e),
                            self.namespace
                        );
                    }
                }
            }
        }
        if published > 0 {
            info!("Successfully published {published} datums.");
        }
    }
}

/// One datum with the Java agent's dimensions.
pub fn datum(
    name: &str,
    unit: Unit,
    set: StatSet,
    destination: &str,
    instance: Option<&str>,
) -> MetricDatum {
    let mut dims = vec![Dimension::builder()
        .name("Destination")
        .value(destination)
        .build()];
    if let Some(instance) = instance {
        dims.push(
            Dimension::builder()
                .name("Instance")
                .value(instance)
                .build(),
        );
    }
    MetricDatum::builder()
        .metric_name(name)
        .set_dimensions(Some(dims))
        .statistic_values(
            StatisticSet::builder()
                .sample_count(set.count)
                .sum(set.sum)
                .minimum(set.min)
                .maximum(set.max)
                .build(),
        )
        .unit(match unit {
            Unit::Count => StandardUnit::Count,
            Unit::Bytes => StandardUnit::Bytes,
        })
        .build()
}

/// The `Instance` dimension: the host name (the Java agent asks the instance metadata service
/// for the instance id first; that lookup is not in this build).
pub fn instance_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datums_carry_the_java_names_and_dimensions() {
        let set = StatSet {
            count: 2.0,
            sum: 506.0,
            min: 6.0,
            max: 500.0,
        };
        let d = datum(
            "RecordsSent",
            Unit::Count,
            set,
            "KinesisStream:logs",
            Some("i-123"),
        );
        assert_eq!(d.metric_name(), Some("RecordsSent"));
        let dims: Vec<(&str, &str)> = d
            .dimensions()
            .iter()
            .map(|x| (x.name().unwrap_or(""), x.value().unwrap_or("")))
            .collect();
        assert_eq!(
            dims,
            vec![("Destination", "KinesisStream:logs"), ("Instance", "i-123")]
        );
        let s = d.statistic_values().expect("statistic set");
        assert_eq!(
            (s.sample_count(), s.sum(), s.minimum(), s.maximum()),
            (Some(2.0), Some(506.0), Some(6.0), Some(500.0))
        );
        assert_eq!(d.unit(), Some(&StandardUnit::Count));
    }
}
