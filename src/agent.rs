//! Builds one pipeline per flow from the plan, supervises it, and drains it on shutdown.
//!
//! Per flow: tailer -> (record chunks) -> batcher -> (batches, `publishQueueCapacity`) ->
//! sender -> service; acknowledgements go to the flow's tracker. Every channel is bounded, so a
//! slow destination makes the tailer read less, never makes the agent hold more.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::aws::Clients;
use crate::checkpoint::store::{import_java_database, CheckpointStore, StoreError};
use crate::checkpoint::writer::{run_writer, FlowCheckpoints};
use crate::checkpoint::AckTracker;
use crate::config::{AgentPlan, Destination, FlowPlan, ProcessingOption, JAVA_CHECKPOINT_FILE};
use crate::discovery::PathMatcher;
use crate::ec2_metadata::ImdsSource;
use crate::metrics::cloudwatch::{self, MetricsFlow, Publisher};
use crate::metrics::progress::{self, Progress};
use crate::metrics::FlowCounters;
use crate::process::FlowRecords;
use crate::sdnotify;
use crate::sink::backoff::Backoff;
use crate::sink::batcher::{run_batcher, BatchBuilder};
use crate::sink::dry_run::DryRunPut;
use crate::sink::firehose::FirehosePut;
use crate::sink::kinesis::KinesisPut;
use crate::sink::queue::{publish_queue, QueueReceiver, QUEUE_BYTES};
use crate::sink::sender::{run_sender, SendContext};
use crate::sink::PutBatch;
use crate::status::{self, FlowStatus, SNAPSHOT_INTERVAL};
use crate::tail::budget::Descriptors;
use crate::tail::resume::Stored;
use crate::tail::Tailer;

/// Record chunks (one per tailer pass, at most about 256 KiB each) waiting for the batcher.
/// Small: the bound that matters is the publish queue behind it.
const RECORD_CHUNKS_QUEUED: usize = 2;

/// After the shutdown deadline, how long aborted sends get to wind down.
const ABORT_GRACE: Duration = Duration::from_millis(500);

struct FlowHandle {
    name: String,
    counters: Arc<FlowCounters>,
    emit_internal_metrics: bool,
}

/// Rewrites the status snapshot every few seconds until `stop`, then marks it stopped.
async fn run_status(
    path: std::path::PathBuf,
    flows: Vec<FlowStatus>,
    started: std::time::SystemTime,
    stop: CancellationToken,
) {
    let mut failed = false;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(SNAPSHOT_INTERVAL) => false,
            _ = stop.cancelled() => true,
        };
        let snapshot = status::snapshot(&flows, started, !stopping);
        match status::write(&path, &snapshot) {
            Ok(()) => failed = false,
            Err(e) if !failed => {
                failed = true;
                warn!("Cannot write the status file {}: {e}; `aws-kinesis-agent status` will not see this agent.", path.display());
            }
            Err(_) => {}
        }
        if stopping {
            return;
        }
    }
}

/// The checkpoint database, opened (and the Java agent's imported) before any flow starts.
pub struct Checkpoints {
    store: CheckpointStore,
}

/// Opens the checkpoint database. When ours does not exist yet, the default path is in use and
/// a Java agent's database exists, its positions are imported once, so switching agents
/// neither resends nor skips.
pub fn open_checkpoints(plan: &AgentPlan) -> Result<Checkpoints, StoreError> {
    let java = std::path::Path::new(JAVA_CHECKPOINT_FILE);
    if plan.checkpoint_file_is_default && !plan.checkpoint_file.exists() && java.exists() {
        if let Some(n) = import_java_database(java, &plan.checkpoint_file)? {
            info!(
                "Imported {n} checkpoint(s) from the Java agent's database {} into {}.",
                java.display(),
                plan.checkpoint_file.display()
            );
        }
    }
    let (store, deleted) = CheckpointStore::open(&plan.checkpoint_file, plan.checkpoint_ttl_days)?;
    info!("Deleted {deleted} old checkpoints.");
    Ok(Checkpoints { store })
}

/// Where compressed rotations are decompressed to be read (unnamed files, gone when closed):
/// the checkpoint database's directory, which the service may write (the rest of the file
/// system is read-only under the packaged unit).
fn scratch_dir(plan: &AgentPlan) -> PathBuf {
    plan.checkpoint_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

/// Where a run's records go.
#[allow(clippy::large_enum_variant)] // one value per run, never moved around in bulk
enum Output {
    /// To AWS, with checkpoints, the status file and CloudWatch metrics.
    Aws {
        clients: Clients,
        checkpoints: Checkpoints,
    },
    /// `--dry-run`: printed to standard output; no checkpoint is read or written, no status
    /// file, no metrics, no AWS client.
    DryRun,
}

/// Runs every flow until `stop` is cancelled, then sends what was read (within
/// `shutdownTimeoutMillis`), saves the final checkpoints and returns.
pub async fn run(
    plan: AgentPlan,
    clients: Clients,
    checkpoints: Checkpoints,
    stop: CancellationToken,
) {
    run_to(
        plan,
        Output::Aws {
            clients,
            checkpoints,
        },
        stop,
    )
    .await;
}

/// `--dry-run`: runs every flow as [`run`] does (from `initialPosition`, as on a first start),
/// but prints each record that would be sent to standard output instead of sending it. Stops
/// when `stop` is cancelled or standard output is closed.
pub async fn dry_run(plan: AgentPlan, stop: CancellationToken) {
    run_to(plan, Output::DryRun, stop).await;
}

async fn run_to(plan: AgentPlan, output: Output, stop: CancellationToken) {
    let started = Instant::now();
    info!("Agent: Starting up...");
    for notice in &plan.warnings {
        warn!(
            "{}: {}: {}",
            notice.file.display(),
            notice.key,
            notice.message
        );
    }
    for notice in &plan.not_supported {
        warn!(
            "{}: {}: {}",
            notice.file.display(),
            notice.key,
            notice.message
        );
    }
    match &output {
        Output::Aws { clients, .. } => info!(
            "Agent: using region {} for every AWS client.",
            clients.region
        ),
        Output::DryRun => info!(
            "Agent: dry run: records are printed to standard output, not sent; no checkpoint is read or written."
        ),
    }

    let tasks = TaskTracker::new();
    let read_stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let global = Arc::new(Semaphore::new(plan.max_sending_threads.max(1)));
    let descriptors = Descriptors::new(max_open_files(&plan));
    info!(
        "Agent: up to {} tailed files held open at once (maxOpenFiles{}); files read to their end are closed when more wait, and after {} s without a write.",
        descriptors.limit(),
        if plan.max_open_files.is_some() { "" } else { ", from the open-files limit" },
        crate::tail::IDLE_CLOSE.as_secs()
    );
    let mut flows = Vec::new();
    let mut saved = Vec::new();
    let mut metrics = Vec::new();
    let mut statuses = Vec::new();
    let urgent_save = Arc::new(tokio::sync::Notify::new());
    for flow in &plan.flows {
        info!("Agent: Starting tailer for file {}", flow.id);
        let loaded = match &output {
            Output::Aws { checkpoints, .. } => checkpoints.store.load(&flow.id),
            Output::DryRun => Ok(Vec::new()),
        };
        let stored = match loaded {
            Ok(rows) => rows
                .into_iter()
                .map(|r| Stored {
                    file_id: r.file_id,
                    offset: r.offset,
                    fingerprint: r.fingerprint,
                    last_modified_ms: r.last_modified_ms,
                    size: r.size,
                    path: r.path,
                })
                .collect(),
            Err(e) => {
                error!(
                    "Agent: cannot read the checkpoints of {}: {e}; starting it as if it had none.",
                    flow.id
                );
                Vec::new()
            }
        };
        let acks = AckTracker::new(urgent_save.clone());
        let sink = match &output {
            Output::Aws { clients, .. } => FlowSink::Aws(clients),
            Output::DryRun => FlowSink::DryRun(&stop),
        };
        match start_flow(
            flow,
            sink,
            Reading {
                scratch_dir: scratch_dir(&plan),
                descriptors: descriptors.clone(),
            },
            &tasks,
            &read_stop,
            &abort,
            &global,
            acks.clone(),
            stored,
        ) {
            Ok(handle) => {
                let destination = flow.destination.metric_dimension();
                metrics.push(MetricsFlow {
                    destination: destination.clone(),
                    counters: handle.counters.clone(),
                });
                statuses.push(FlowStatus {
                    id: flow.id.clone(),
                    destination,
                    counters: handle.counters.clone(),
                    acks: acks.clone(),
                });
                flows.push(handle);
                saved.push(FlowCheckpoints {
                    flow_id: flow.id.clone(),
                    acks,
                });
            }
            Err(e) => error!("Agent: cannot start flow {}: {e}", flow.id),
        }
    }
    tasks.close();
    let writer_stop = CancellationToken::new();
    let reporters_stop = CancellationToken::new();
    let reporters = TaskTracker::new();
    let mut writer = None;
    if let Output::Aws {
        clients,
        checkpoints,
    } = output
    {
        writer = Some(tokio::spawn(run_writer(
            checkpoints.store,
            saved,
            urgent_save,
            writer_stop.clone(),
        )));
        let status_path = status::status_path(&plan.checkpoint_file);
        reporters.spawn(run_status(
            status_path,
            statuses,
            std::time::SystemTime::now(),
            reporters_stop.clone(),
        ));
        if plan.cloudwatch.emit_metrics {
            let publisher = Publisher {
                client: clients.cloudwatch.clone(),
                namespace: plan.cloudwatch.namespace.clone(),
                instance: plan.cloudwatch.tag_instance.then(cloudwatch::instance_name),
                period: plan.cloudwatch.buffer_time,
                max_datums: plan.cloudwatch.queue_size,
                flows: metrics,
            };
            reporters.spawn(publisher.run(reporters_stop.clone()));
        }
    }
    reporters.close();
    info!(
        "Agent: Startup completed in {} ms.",
        started.elapsed().as_millis()
    );
    // Same moment as the line above: configuration read, checkpoints open, every flow running
    // with its pattern listed and watched.
    sdnotify::tell(&format!(
        "READY=1\nSTATUS={}",
        progress::service_status(flows.len(), plan.flows.len(), &Progress::default())
    ));

    let mut status =
        tokio::time::interval_at(Instant::now() + plan.status_period, plan.status_period);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = status.tick() => {
                let total = report(&flows, started, plan.log_emit_internal_metrics);
                sdnotify::tell(&format!(
                    "STATUS={}",
                    progress::service_status(flows.len(), plan.flows.len(), &total)
                ));
            }
        }
    }

    let stopping = Instant::now();
    info!("Agent: Shutting down...");
    sdnotify::tell("STOPPING=1\nSTATUS=Shutting down: sending what was read, saving checkpoints");
    read_stop.cancel();
    if tokio::time::timeout(plan.shutdown_timeout, tasks.wait())
        .await
        .is_err()
    {
        warn!(
            "Agent: records still unsent after shutdownTimeoutMillis ({} ms); they were not checkpointed and will be sent again after restart.",
            plan.shutdown_timeout.as_millis()
        );
        abort.cancel();
        let _ = tokio::time::timeout(ABORT_GRACE, tasks.wait()).await;
    }
    writer_stop.cancel();
    if let Some(writer) = writer {
        if let Err(e) = writer.await {
            error!("Agent: the checkpoint writer failed: {e}");
        }
    }
    reporters_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), reporters.wait()).await;
    report(&flows, started, plan.log_emit_internal_metrics);
    info!(
        "Agent: Shut down completed in {} ms. Uptime: {} ms",
        stopping.elapsed().as_millis(),
        started.elapsed().as_millis()
    );
}

/// What a flow's sender sends through.
#[derive(Clone, Copy)]
enum FlowSink<'a> {
    Aws(&'a Clients),
    /// Standard output; the token stops the agent when it is closed.
    DryRun(&'a CancellationToken),
}

/// What every flow's tailer shares with the others.
struct Reading {
    /// Where compressed rotations are decompressed to.
    scratch_dir: PathBuf,
    descriptors: Descriptors,
}

/// `maxOpenFiles`, or what the open-files limit leaves for tailed files.
fn max_open_files(plan: &AgentPlan) -> usize {
    plan.max_open_files.unwrap_or_else(|| {
        let soft = crate::sys::open_files_limit().map_or(1024, |l| l.soft);
        crate::tail::budget::default_max_open_files(soft)
    })
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the list
fn start_flow(
    flow: &FlowPlan,
    sink: FlowSink<'_>,
    reading: Reading,
    tasks: &TaskTracker,
    read_stop: &CancellationToken,
    abort: &CancellationToken,
    global: &Arc<Semaphore>,
    acks: AckTracker,
    stored: Vec<Stored>,
) -> Result<FlowHandle, String> {
    let flow = Arc::new(flow.clone());
    let name = format!("FileTailer[{}]", flow.id);
    let counters = Arc::new(FlowCounters::default());
    let matcher = PathMatcher::new(&flow.file_pattern).map_err(|e| e.to_string())?;

    let (record_tx, record_rx) = mpsc::channel(RECORD_CHUNKS_QUEUED);
    let (batch_tx, batch_rx) = publish_queue(flow.publish_queue_capacity, QUEUE_BYTES);
    let limits = flow.batch_limits();
    let builder = BatchBuilder::new(
        limits.lines,
        limits.bytes,
        limits.overhead,
        flow.max_buffer_age,
    );
    let ctx = Arc::new(SendContext::new(
        name.clone(),
        counters.clone(),
        acks.clone(),
        Backoff::new(flow.retry_initial_backoff, flow.retry_max_backoff),
        global.clone(),
        abort.clone(),
    ));

    let ec2 = if flow
        .processing
        .iter()
        .any(|o| matches!(o, ProcessingOption::AddEc2Metadata { .. }))
    {
        let ttl = flow
            .processing
            .iter()
            .find_map(|o| match o {
                ProcessingOption::AddEc2Metadata { metadata_ttl, .. } => Some(*metadata_ttl),
                _ => None,
            })
            .unwrap_or(Duration::from_secs(3600));
        let source = Arc::new(ImdsSource::default());
        tasks.spawn(
            source
                .clone()
                .run(ttl, crate::logging::local_offset(), read_stop.clone()),
        );
        Some(source as Arc<dyn crate::process::Ec2MetadataSource>)
    } else {
        None
    };
    let records = Arc::new(FlowRecords::new(&flow, flow.max_record_data_bytes(), ec2)?);
    let mut tailer = Tailer::new(
        flow.clone(),
        matcher,
        counters.clone(),
        acks.clone(),
        record_tx,
        stored,
        records,
    )
    .with_scratch_dir(reading.scratch_dir)
    .with_descriptors(reading.descriptors);
    tailer.start_watching();
    tasks.spawn(tailer.run(read_stop.clone()));
    tasks.spawn(run_batcher(builder, record_rx, batch_tx, acks));
    match (sink, &flow.destination) {
        (
            FlowSink::Aws(clients),
            Destination::Kinesis {
                stream,
                partition_key,
                kpl_aggregate,
            },
        ) => {
            let put = KinesisPut::new(clients.kinesis.clone(), stream.clone(), *partition_key)
                .aggregating(*kpl_aggregate, counters.clone());
            spawn_sender(tasks, put, batch_rx, ctx);
        }
        (
            FlowSink::Aws(clients),
            Destination::Firehose {
                delivery_stream, ..
            },
        ) => {
            let put = FirehosePut::new(clients.firehose.clone(), delivery_stream.clone());
            spawn_sender(tasks, put, batch_rx, ctx);
        }
        (FlowSink::DryRun(stop), destination) => {
            let put = DryRunPut::stdout(destination.metric_dimension(), stop.clone());
            spawn_sender(tasks, put, batch_rx, ctx);
        }
    }
    Ok(FlowHandle {
        name,
        counters,
        emit_internal_metrics: flow.log_emit_internal_metrics,
    })
}

fn spawn_sender<P: PutBatch>(
    tasks: &TaskTracker,
    put: P,
    queue: QueueReceiver,
    ctx: Arc<SendContext>,
) {
    tasks.spawn(run_sender(Arc::new(put), queue, ctx));
}

fn snapshot(c: &FlowCounters) -> Progress {
    Progress {
        records_parsed: FlowCounters::get(&c.records_parsed),
        bytes_parsed: FlowCounters::get(&c.bytes_parsed),
        records_transformed: FlowCounters::get(&c.records_transformed),
        records_skipped: FlowCounters::get(&c.records_skipped),
        records_sent: FlowCounters::get(&c.records_sent),
        kinesis_records_sent: FlowCounters::get(&c.kinesis_records_sent),
        bytes_behind: FlowCounters::get(&c.bytes_behind),
        files_behind: FlowCounters::get(&c.files_behind),
    }
}

/// The Java agent's progress lines: each tailer, then the agent.
/// Logs the progress lines of every flow and of the agent; returns the agent's totals.
fn report(flows: &[FlowHandle], started: Instant, agent_internal: bool) -> Progress {
    let mut total = Progress::default();
    for flow in flows {
        let p = snapshot(&flow.counters);
        info!("{}", progress::tailer_progress(&flow.name, &p));
        let subject = format!("{}: Tailer", flow.name);
        log_at(progress::behind(
            &subject,
            &p,
            agent_internal || flow.emit_internal_metrics,
        ));
        total.records_parsed += p.records_parsed;
        total.bytes_parsed += p.bytes_parsed;
        total.records_sent += p.records_sent;
        total.bytes_behind += p.bytes_behind;
        total.files_behind += p.files_behind;
    }
    info!(
        "{}",
        progress::agent_progress(&total, started.elapsed().as_millis())
    );
    log_at(progress::behind("Agent: Tailing", &total, agent_internal));
    total
}

fn log_at(line: Option<(tracing::Level, String)>) {
    match line {
        Some((tracing::Level::WARN, text)) => warn!("{text}"),
        Some((tracing::Level::INFO, text)) => info!("{text}"),
        Some((_, text)) => tracing::debug!("{text}"),
        None => {}
    }
}
