//! The HTTP/1.1 server: accepts connections on the loopback listener and routes each request to
//! the control API, the awsJson1_1 route (`POST /` with `X-Amz-Target`) or the CloudWatch CBOR
//! route, then turns the answer into a response. A dropped connection is a service error, which
//! makes hyper close the connection without writing anything.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::batch::Batch;
use crate::error::{ApiError, Service};
use crate::faults::CallFault;
use crate::store::{record_shard, Store};
use crate::{cloudwatch, control, firehose, kinesis};

/// Largest request body read: a 5 MiB PutRecords is about 7 MiB of base64 JSON.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const AWS_JSON: &str = "application/x-amz-json-1.1";
const CBOR: &str = "application/cbor";

/// Shared by every connection.
pub struct App {
    store: Mutex<Store>,
    request_ids: AtomicU64,
}

impl App {
    pub fn new(store: Store) -> App {
        App {
            store: Mutex::new(store),
            request_ids: AtomicU64::new(1),
        }
    }

    /// The store; a panic elsewhere while holding the lock does not stop the fake.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        format!("00000000-0000-4000-8000-{n:012x}")
    }
}

/// The service error that makes hyper close the connection without an answer.
#[derive(Debug)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Reply = Result<Response<Full<Bytes>>, DropConnection>;

/// Accepts connections until the process exits; with `tls`, each one does a TLS handshake first
/// (a failed handshake just closes that connection).
pub async fn serve(listener: TcpListener, app: Arc<App>, tls: Option<TlsAcceptor>) -> Infallible {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: wait a little instead of spinning.
                eprintln!("fake-aws: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, app).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, app).await;
                    }
                }
            }
        });
    }
}

/// HTTP/1.1 on one connection, plain or TLS, until the client goes away.
async fn serve_connection<S>(stream: S, app: Arc<App>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(app.clone(), req));
    // Errors here are clients going away and injected drops; nothing to report.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(response(
                413,
                "text/plain",
                format!("cannot read the request body (at most {MAX_BODY_BYTES} bytes): {e}\n")
                    .into_bytes(),
                None,
            ))
        }
    };
    let path = parts.uri.path();
    if let Some(rest) = path.strip_prefix(control::PREFIX) {
        let answer = control::handle(
            &mut app.store(),
            &parts.method,
            rest,
            parts.uri.query(),
            &body,
        );
        return Ok(response(
            answer.status,
            answer.content_type,
            answer.body,
            None,
        ));
    }
    if parts.method == Method::POST {
        if let Some(operation) = path.strip_prefix(cloudwatch::PATH_PREFIX) {
            return Ok(cloudwatch_call(&app, &parts.headers, operation, &body));
        }
        if path == "/" {
            if let Some(target) = parts.headers.get("x-amz-target") {
                let target = target.to_str().unwrap_or("");
                return aws_json_call(&app, &parts.headers, target, &body).await;
            }
        }
    }
    let error = ApiError::unknown_operation(&format!("{} {path}", parts.method));
    app.store().count_rejected(None, &error);
    Ok(aws_json_error(
        &app,
        &ApiError {
            status: 404,
            ..error
        },
    ))
}

/// The service and operation of an `X-Amz-Target` value.
fn operation(target: &str) -> Option<(Service, &'static str)> {
    let (prefix, op) = target.split_once('.')?;
    let ops: &[&'static str] = match prefix {
        "Kinesis_20131202" => &[
            kinesis::PUT_RECORDS,
            kinesis::DESCRIBE_STREAM_SUMMARY,
            kinesis::LIST_SHARDS,
        ],
        "Firehose_20150804" => &[
            firehose::PUT_RECORD_BATCH,
            firehose::DESCRIBE_DELIVERY_STREAM,
        ],
        _ => return None,
    };
    let service = if prefix.starts_with("Kinesis") {
        Service::Kinesis
    } else {
        Service::Firehose
    };
    ops.iter().find(|o| **o == op).map(|o| (service, *o))
}

/// The access key id in a SigV4 `Authorization` header (`... Credential=AKID/date/...`).
fn access_key_of(auth: &HeaderValue) -> Option<&str> {
    let text = auth.to_str().ok()?;
    let rest = &text[text.find("Credential=")? + "Credential=".len()..];
    rest.split('/').next()
}

async fn aws_json_call(app: &App, headers: &HeaderMap, target: &str, body: &[u8]) -> Reply {
    let Some((service, op)) = operation(target) else {
        return Ok(reject(app, None, ApiError::unknown_operation(target)));
    };
    let Some(auth) = headers.get(AUTHORIZATION) else {
        return Ok(reject(app, Some(op), ApiError::missing_authentication()));
    };
    if let Some(key) = access_key_of(auth) {
        app.store().count_access_key(key);
    }
    match op {
        kinesis::PUT_RECORDS | firehose::PUT_RECORD_BATCH => {
            let parsed = if service == Service::Kinesis {
                kinesis::parse_put_records(body)
            } else {
                firehose::parse_put_record_batch(body)
            };
            match parsed {
                Ok(batch) => put(app, service, op, batch).await,
                Err(e) => Ok(reject(app, Some(op), e)),
            }
        }
        _ => {
            let name = if service == Service::Kinesis {
                kinesis::parse_stream_input(body)
            } else {
                firehose::parse_delivery_stream_input(body)
            };
            let name = match name {
                Ok(name) => name,
                Err(e) => return Ok(reject(app, Some(op), e)),
            };
            let delay = app.store().prepare(op, &name).delay_ms;
            sleep_ms(delay).await;
            let described = app.store().describe(service, op, &name);
            match described {
                Ok((shards, created)) => Ok(aws_json_ok(
                    app,
                    match op {
                        kinesis::DESCRIBE_STREAM_SUMMARY => {
                            kinesis::describe_stream_summary_response(&name, shards, created)
                        }
                        kinesis::LIST_SHARDS => kinesis::list_shards_response(shards),
                        _ => firehose::describe_delivery_stream_response(&name, created),
                    },
                )),
                Err(fault) => fault_reply(app, fault),
            }
        }
    }
}

async fn put(app: &App, service: Service, op: &'static str, batch: Batch) -> Reply {
    let prepared = app.store().prepare(op, &batch.name);
    sleep_ms(prepared.delay_ms).await;
    // Hash partition keys outside the lock when the stream has several shards.
    let shard_of: Option<Vec<u32>> = match (service, prepared.shards) {
        (Service::Kinesis, Some(n)) if n > 1 => Some(
            (0..batch.records.len())
                .map(|i| record_shard(&batch, i, n))
                .collect(),
        ),
        _ => None,
    };
    let result = app.store().put(service, op, &batch, shard_of.as_deref());
    match result {
        Ok(outcomes) => Ok(aws_json_ok(
            app,
            match service {
                Service::Kinesis => kinesis::put_records_response(&batch.name, &outcomes),
                Service::Firehose => firehose::put_record_batch_response(&outcomes),
            },
        )),
        Err(fault) => fault_reply(app, fault),
    }
}

fn cloudwatch_call(
    app: &App,
    headers: &HeaderMap,
    operation: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let result = if !headers.contains_key(AUTHORIZATION) {
        Err(ApiError::missing_authentication())
    } else if operation != cloudwatch::PUT_METRIC_DATA {
        Err(ApiError::unknown_operation(operation))
    } else {
        let gzipped = headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")));
        cloudwatch::parse_put_metric_data(body, gzipped)
    };
    let request_id = app.request_id();
    let (status, body) = match result {
        Ok(datums) => {
            app.store().put_metrics(datums);
            (200, cloudwatch::EMPTY_MAP.to_vec())
        }
        Err(e) => {
            let op =
                (operation == cloudwatch::PUT_METRIC_DATA).then_some(cloudwatch::PUT_METRIC_DATA);
            app.store().count_rejected(op, &e);
            (e.status, e.cbor_body())
        }
    };
    let mut resp = response(status, CBOR, body, Some(request_id));
    resp.headers_mut()
        .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    resp
}

fn reject(app: &App, op: Option<&'static str>, error: ApiError) -> Response<Full<Bytes>> {
    app.store().count_rejected(op, &error);
    aws_json_error(app, &error)
}

fn fault_reply(app: &App, fault: CallFault) -> Reply {
    match fault {
        CallFault::Drop => Err(DropConnection),
        CallFault::Error(e) => Ok(aws_json_error(app, &e)),
    }
}

fn aws_json_ok(app: &App, body: Vec<u8>) -> Response<Full<Bytes>> {
    response(200, AWS_JSON, body, Some(app.request_id()))
}

fn aws_json_error(app: &App, error: &ApiError) -> Response<Full<Bytes>> {
    response(
        error.status,
        AWS_JSON,
        error.json_body(),
        Some(app.request_id()),
    )
}

fn response(
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    request_id: Option<String>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert("x-amzn-requestid", id);
    }
    resp
}

async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            operation("Kinesis_20131202.PutRecords"),
            Some((Service::Kinesis, "PutRecords"))
        );
        assert_eq!(
            operation("Firehose_20150804.DescribeDeliveryStream"),
            Some((Service::Firehose, "DescribeDeliveryStream"))
        );
        assert_eq!(operation("Kinesis_20131202.GetRecords"), None);
        assert_eq!(operation("Firehose_20150804.PutRecords"), None);
        assert_eq!(operation("nonsense"), None);
    }
}
