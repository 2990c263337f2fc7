//! A batch is a trace of its own, linked to the requests it carries.

use opentelemetry::trace::{SpanContext, TraceContextExt};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The current span's context, for a batch to link to the request it carries.
pub fn current_span_context() -> Option<SpanContext> {
    let context = Span::current().context();
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// Links `span` to the spans of `contexts`.
pub fn link<'a>(span: &Span, contexts: impl IntoIterator<Item = &'a SpanContext>) {
    for context in contexts {
        span.add_link(context.clone());
    }
}
