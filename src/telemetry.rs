//! OpenTelemetry traces, exported over OTLP/HTTP when the standard `OTEL_*` variables name a
//! receiver, off otherwise.
//!
//! The `tracing` spans become OTel spans: a request's span continues an incoming W3C
//! `traceparent`; a batch of writes gets a span of its own linked to the requests it carries;
//! an order's event keeps its request's `traceparent` in the outbox row and in the NATS
//! message, so its delivery and the platform's consumption join the order's trace.

use anyhow::Context as _;
use axum::http::{HeaderMap, Request, Response};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{span_processor_with_async_runtime, SdkTracerProvider};
use opentelemetry_sdk::{runtime, Resource};
use std::collections::HashMap;
use std::time::Duration;
use tower_http::trace::{DefaultOnResponse, OnResponse};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The W3C header (and NATS message header) that carries a trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The OTLP trace pipeline: spans are batched on the tokio runtime and exported in the
/// background.
pub struct Traces {
    /// Taken only when dropped.
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// From the environment: `None` unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and neither `OTEL_SDK_DISABLED=true` nor
    /// `OTEL_TRACES_EXPORTER=none`). The exporter reads the other `OTEL_EXPORTER_OTLP_*`
    /// variables (headers, timeout, compression) itself; the SDK reads `OTEL_TRACES_SAMPLER*`,
    /// `OTEL_BSP_*`, `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn from_env() -> anyhow::Result<Option<Traces>> {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let is = |name: &str, value: &str| {
            std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
        };
        if is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none") {
            return Ok(None);
        }
        if !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_ENDPOINT") {
            return Ok(None);
        }
        Self::build(None).map(Some)
    }

    /// Exporting to `endpoint`, the receiver's full URL (`http://host:4318/v1/traces`).
    pub fn to_endpoint(endpoint: &str) -> anyhow::Result<Traces> {
        Self::build(Some(endpoint))
    }

    /// Must run inside the tokio runtime: the batch processor is a task of it.
    fn build(endpoint: Option<&str>) -> anyhow::Result<Traces> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol()?);
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter.build().context("the OTLP trace exporter")?;
        let processor = span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            runtime::Tokio,
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource())
            .build();
        Ok(Traces {
            provider: Some(provider),
        })
    }

    /// The layer that turns this process's spans (INFO and above, whatever `RUST_LOG` says
    /// for the logs) into OTel spans.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider().tracer("commerce"))
            .with_filter(LevelFilter::INFO)
    }

    fn provider(&self) -> &SdkTracerProvider {
        self.provider.as_ref().expect("taken only when dropped")
    }

    /// Exports the spans ended so far.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let provider = self.provider().clone();
        // The SDK blocks this thread until the processor (a task of this runtime) is done.
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await?
            .context("flushing traces")
    }

    /// Exports what is left and stops the pipeline.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let provider = self.provider().clone();
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(5)))
            .await?
            .context("shutting the trace exporter down")
    }
}

/// The SDK shuts a provider down when its last handle is dropped, blocking until the batch
/// processor answers; that processor is a task of the runtime, so dropping it there (an early
/// return from `serve`, a failing test) could wait for itself. Another thread does it.
impl Drop for Traces {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            std::thread::spawn(move || drop(provider));
        }
    }
}

/// `http/protobuf` unless `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`
/// says `http/json`; gRPC is not built in.
fn protocol() -> anyhow::Result<Protocol> {
    let named = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default();
    match named.trim() {
        "" | "http/protobuf" => Ok(Protocol::HttpBinary),
        "http/json" => Ok(Protocol::HttpJson),
        other => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not supported: use http/protobuf or http/json"
        ),
    }
}

/// The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), named `commerce`
/// unless those name it.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::new("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named {
        builder.build()
    } else {
        builder.with_service_name("commerce").build()
    }
}

/// The span of one HTTP request, carrying its `x-request-id`; it continues the trace of an
/// incoming `traceparent`.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        request_id = %id,
        status = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the answer's status on the request's span (and logs as tower-http would).
pub fn record_status<B>(response: &Response<B>, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    DefaultOnResponse::default().on_response(response, latency, span);
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span's W3C `traceparent`, when it is traced.
pub fn traceparent(span: &Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the span `traceparent` names; a missing or malformed one is
/// ignored (the span starts a trace of its own).
pub fn continue_trace(span: &Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}
