//! OpenTelemetry traces, exported to a real OTLP/HTTP receiver the test runs: an order sent
//! with a `traceparent` continues that trace through its request, the batch that stored it
//! (by a link), its event's delivery and the platform's consumption, in-process or through
//! JetStream.
//!
//! The test's spans go to a subscriber set for its own thread only, so other tests neither
//! see nor need OTLP; its runtime has that one thread, so the committer and the batch
//! processor, tasks of that runtime, run under the same subscriber.

use crate::harness::{Backend, TestApp};
use crate::platform::platform_app;
use crate::platform_nats::{nats_settings, start_pipeline, with_nats, SHARED_NATS};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use commerce::telemetry::Traces;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver on a free loopback port: `POST /v1/traces` with a protobuf body.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let received = spans.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (StatusCode::BAD_REQUEST, Vec::new());
                };
                let mut spans = received.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
                (
                    StatusCode::OK,
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, spans }
    }

    /// The spans received in the test's trace, by name.
    fn in_trace(&self) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|span| hex(&span.trace_id) == TRACE_ID)
            .cloned()
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .any(|span| span.name == name)
    }

    fn all(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| {
            let names: Vec<_> = spans.iter().map(|s| &s.name).collect();
            panic!("no {name} span in the trace; got {names:?}")
        })
}

#[derive(Clone, Copy, PartialEq)]
enum Via {
    InProcess,
    JetStream,
}

async fn an_orders_trace_runs_from_its_request_to_the_platform(backend: Backend, via: Via) {
    let receiver = Receiver::start().await;
    let traces = Traces::to_endpoint(&receiver.url).expect("the OTLP pipeline");
    // tracing caches a callsite's interest process-wide, and while one dispatcher exists the
    // thread that first reaches a callsite decides it by its own default: another test's
    // thread, without a subscriber, could switch this test's spans off for good
    // (tokio-rs/tracing#3611). With a second dispatcher, every registered one is asked.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let subscriber = tracing_subscriber::registry().with(traces.layer());
    let guard = tracing::subscriber::set_default(subscriber);

    let app = match via {
        Via::InProcess => platform_app(backend).await,
        Via::JetStream => TestApp::with_settings(backend, nats_settings(SHARED_NATS)).await,
    };
    let product = app.product("Traced", 1000, 10).await;
    app.charge(1, 100_000).await;
    let response = app
        .post("/api/v1/orders")
        .token(&app.token(1))
        .header("traceparent", &format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(json!({"items": [{"product_id": product, "quantity": 2}]}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let stored = app
        .raw()
        .scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE traceparent LIKE '00-{TRACE_ID}-%-01'"
        ))
        .await;
    assert_eq!(stored, 1, "the order's event keeps its request's trace");
    let pipeline = match via {
        Via::InProcess => {
            assert_eq!(app.deliver_events().await, 1);
            None
        }
        Via::JetStream => {
            let transport = app.state.settings.transport().await;
            Some(start_pipeline(&app, Arc::new(transport.expect("NATS"))))
        }
    };
    // The consumption's span ends once its transaction has committed; a loaded machine may
    // take a while to export.
    let started = Instant::now();
    while !(receiver.has("platform.consume") && receiver.has("db.batch"))
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        traces.flush().await.expect("flush");
    }
    if let Some(pipeline) = pipeline {
        pipeline.cancel();
    }
    drop(guard);
    // Before any assertion: the SDK's drop would otherwise shut the exporter down on this
    // runtime's only thread, which the exporter needs.
    traces.shutdown().await.expect("shutdown");

    let trace = receiver.in_trace();
    let request = named(&trace, "request");
    assert_eq!(
        hex(&request.parent_span_id),
        CALLER_SPAN,
        "the caller's span is the parent"
    );
    let delivery = named(&trace, "outbox.deliver");
    assert_eq!(delivery.parent_span_id, request.span_id);
    let consumption = named(&trace, "platform.consume");
    assert_eq!(consumption.parent_span_id, delivery.span_id);

    // The batch that stored the order is a trace of its own, linked to the order's request.
    let batches: Vec<Span> = receiver
        .all()
        .into_iter()
        .filter(|span| span.name == "db.batch")
        .collect();
    assert!(
        batches.iter().any(|batch| batch
            .links
            .iter()
            .any(|link| link.trace_id == request.trace_id && link.span_id == request.span_id)),
        "no batch links to the order's request: {batches:?}"
    );
}

mod sqlite {
    use super::Via;

    #[tokio::test(flavor = "current_thread")]
    async fn an_orders_trace_runs_from_its_request_to_the_platform() {
        super::an_orders_trace_runs_from_its_request_to_the_platform(
            crate::harness::Backend::Sqlite,
            Via::InProcess,
        )
        .await
    }

    /// The NATS message carries the trace: the path does not depend on the backend.
    #[tokio::test(flavor = "current_thread")]
    #[cfg_attr(skip_nats_tests, ignore = "built with COMMERCE_TEST_SKIP_NATS=1")]
    async fn an_orders_trace_runs_through_jetstream_to_the_platform() {
        super::with_nats(
            |backend| {
                super::an_orders_trace_runs_from_its_request_to_the_platform(
                    backend,
                    Via::JetStream,
                )
            },
            crate::harness::Backend::Sqlite,
        )
        .await
    }
}

mod postgres {
    use super::Via;

    #[tokio::test(flavor = "current_thread")]
    async fn an_orders_trace_runs_from_its_request_to_the_platform() {
        if crate::harness::postgres_available().await {
            super::an_orders_trace_runs_from_its_request_to_the_platform(
                crate::harness::Backend::Postgres,
                Via::InProcess,
            )
            .await
        }
    }
}
