//! Sending a run's spans ([`crate::trace`]) to an OpenTelemetry collector over OTLP, gRPC or
//! HTTP, configured by the standard `OTEL_EXPORTER_OTLP_*` variables.
//!
//! Spans are made from the log, so their ids are too: the trace id is the run's id (a UUID
//! is 16 bytes, as a trace id is) and each span id is derived from the run's id and the
//! span's first event. The same run sent twice is the same trace, and a run continued in
//! another process continues the same trace.
//!
//! Message and tool content (answers, call arguments, command output) is left out unless
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`; it is the log's content, with
//! secrets already replaced.

use crate::trace::{Span, SpanKind as Kind};
use cordon_core::Event;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value as OtelValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// The variable that turns on message and tool content in spans (the GenAI conventions').
pub const CONTENT_VAR: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// How spans leave: the transport and whether content goes with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The wire protocol.
    pub protocol: Protocol,
    /// The longest one export may take (`OTEL_EXPORTER_OTLP_TIMEOUT`, default 10 s).
    pub timeout: Duration,
    /// Where to, as the variables said (for messages).
    pub endpoint: String,
    /// Whether message and tool content is sent.
    pub content: bool,
}

/// The settings the environment gives, `Ok(None)` when no OTLP endpoint is set (or
/// `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`).
pub fn from_env() -> Result<Option<Settings>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    let Some(endpoint) =
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
    else {
        return Ok(None);
    };
    let (name, asked) = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
        Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(p)),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            var("OTEL_EXPORTER_OTLP_PROTOCOL"),
        ),
    };
    let protocol = match asked.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Protocol::HttpBinary,
        Some("http/json") => Protocol::HttpJson,
        Some("grpc") => Protocol::Grpc,
        Some(other) => {
            return Err(format!(
                "{name}={other} is not an OTLP protocol (grpc, http/protobuf or http/json)"
            ));
        }
    };
    let content = var(CONTENT_VAR).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let timeout = match var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .map(|t| ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", t))
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT").map(|t| ("OTEL_EXPORTER_OTLP_TIMEOUT", t)))
    {
        None => Duration::from_secs(10),
        Some((name, t)) => Duration::from_millis(
            t.trim()
                .parse()
                .map_err(|_| format!("{name}={t} is not a number of milliseconds"))?,
        ),
    };
    Ok(Some(Settings {
        protocol,
        timeout,
        endpoint,
        content,
    }))
}

/// The spans a process that drove a run from event `from_seq` on sends when it stops: those
/// that ended in its events, finished; the run's own once the run has ended. A run
/// continued later sends the rest then, in the same trace.
pub fn finished_since(spans: &[Span], from_seq: u64, run_ended: bool) -> Vec<Span> {
    spans
        .iter()
        .filter(|s| match s.parent {
            None => run_ended,
            Some(_) => {
                !s.attributes.contains_key("cordon.unfinished")
                    && s.events.last().is_some_and(|last| *last >= from_seq)
            }
        })
        .cloned()
        .collect()
}

/// Where a process that continues a run with these events starts sending from: just after
/// the event the last process stopped at (its pause, its wait for approval), so a span
/// finished in between (an approval given by `cordon approve`) is sent by this one. 0 for a
/// run no process stopped (new, or one whose process died and so sent nothing).
pub fn resume_point(events: &[Event]) -> u64 {
    events
        .iter()
        .rev()
        .find(|e| {
            cordon_core::RunStatus::after_kind(&e.kind)
                .is_some_and(|s| s != cordon_core::RunStatus::Running)
        })
        .map_or(0, |e| e.seq.saturating_add(1))
}

/// Sends `spans` of the run `events` belong to; returns how many were sent.
pub async fn send(settings: &Settings, events: &[Event], spans: &[Span]) -> Result<usize, String> {
    let Some(first) = events.first() else {
        return Ok(0);
    };
    let trace_id = trace_id(first.run_id.as_str());
    let root = span_id(first.run_id.as_str(), 0);
    let scope = InstrumentationScope::builder("cordon")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let batch: Vec<SpanData> = spans
        .iter()
        .map(|s| span_data(s, trace_id, root, first.run_id.as_str(), &scope))
        .collect();
    let n = batch.len();
    if n == 0 {
        return Ok(0);
    }
    let built = match settings.protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_protocol(Protocol::Grpc)
            .with_timeout(settings.timeout)
            .build(),
        protocol => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_timeout(settings.timeout)
            .with_http_client(http::Client::new(settings.timeout))
            .build(),
    };
    let mut exporter = built.map_err(|e| format!("cannot set up OTLP export: {e}"))?;
    let resource = match std::env::var("OTEL_SERVICE_NAME") {
        Ok(name) if !name.trim().is_empty() => Resource::builder().build(),
        _ => Resource::builder().with_service_name("cordon").build(),
    };
    exporter.set_resource(&resource);
    // A collector that takes the connection and never answers must not hold the run's
    // process (and its lock) open.
    let result = match tokio::time::timeout(settings.timeout, exporter.export(batch)).await {
        Ok(r) => r,
        Err(_) => {
            return Err(format!(
                "the collector at {} did not answer within {} ms",
                settings.endpoint,
                settings.timeout.as_millis()
            ));
        }
    };
    let _ = exporter.shutdown_with_timeout(Duration::from_secs(2));
    result.map(|()| n).map_err(|e| {
        format!(
            "the collector at {} did not take the spans: {e}",
            settings.endpoint
        )
    })
}

/// The trace id of a run: its UUID's 16 bytes.
pub fn trace_id(run_id: &str) -> TraceId {
    let hex: String = run_id.chars().filter(char::is_ascii_hexdigit).collect();
    match u128::from_str_radix(&hex, 16) {
        Ok(n) if hex.len() == 32 && n != 0 => TraceId::from(n),
        _ => TraceId::from(u128::from_be_bytes(
            digest(run_id, u64::MAX)[..16].try_into().unwrap_or([1; 16]),
        )),
    }
}

/// The id of the span whose first event is `seq`.
pub fn span_id(run_id: &str, seq: u64) -> SpanId {
    let d = digest(run_id, seq);
    let id = u64::from_be_bytes(d[..8].try_into().unwrap_or([1; 8]));
    SpanId::from(id.max(1))
}

fn digest(run_id: &str, seq: u64) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(format!("cordon span {run_id} {seq}").as_bytes()).into()
}

fn span_data(
    s: &Span,
    trace_id: TraceId,
    root: SpanId,
    run_id: &str,
    scope: &InstrumentationScope,
) -> SpanData {
    let id = match s.parent {
        None => root,
        Some(_) => span_id(run_id, s.events.first().copied().unwrap_or(0) + 1),
    };
    let at =
        |ms: i64| SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    SpanData {
        span_context: SpanContext::new(
            trace_id,
            id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: if s.parent.is_some() {
            root
        } else {
            SpanId::INVALID
        },
        parent_span_is_remote: false,
        span_kind: match s.kind {
            Kind::Model => SpanKind::Client,
            _ => SpanKind::Internal,
        },
        name: s.name.clone().into(),
        start_time: at(s.start_ms),
        end_time: at(s.end_ms),
        attributes: s
            .attributes
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), otel_value(v)))
            .collect(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match &s.error {
            Some(e) => Status::error(e.clone()),
            None => Status::Unset,
        },
        instrumentation_scope: scope.clone(),
    }
}

fn otel_value(v: &Value) -> OtelValue {
    match v {
        Value::Bool(b) => OtelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => OtelValue::I64(i),
            (None, Some(f)) => OtelValue::F64(f),
            _ => OtelValue::String(n.to_string().into()),
        },
        Value::String(s) => OtelValue::String(s.clone().into()),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            OtelValue::Array(opentelemetry::Array::String(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(|s| s.to_string().into()))
                    .collect(),
            ))
        }
        other => OtelValue::String(other.to_string().into()),
    }
}

/// The HTTP client the OTLP HTTP exporter uses: cordon's own reqwest, with its TLS.
mod http {
    use opentelemetry_http::{Bytes, HttpError, Request, Response};
    use std::future::Future;
    use std::pin::Pin;

    /// The most of a collector's answer that is read.
    const MAX_ANSWER: usize = 1024 * 1024;

    #[derive(Debug, Clone)]
    pub struct Client(reqwest::Client);

    impl Client {
        pub fn new(timeout: std::time::Duration) -> Self {
            Client(
                reqwest::Client::builder()
                    .timeout(timeout)
                    .build()
                    .unwrap_or_default(),
            )
        }
    }

    impl opentelemetry_http::HttpClient for Client {
        fn send_bytes<'a, 'b>(
            &'a self,
            request: Request<Bytes>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
        where
            'a: 'b,
            Self: 'b,
        {
            Box::pin(async move {
                let (parts, body) = request.into_parts();
                let mut req = self.0.request(parts.method, parts.uri.to_string());
                for (name, value) in &parts.headers {
                    req = req.header(name, value);
                }
                let mut answer = req.body(body).send().await?;
                let mut builder = Response::builder().status(answer.status().as_u16());
                for (name, value) in answer.headers() {
                    builder = builder.header(name.as_str(), value.as_bytes());
                }
                let mut body = Vec::new();
                while let Some(chunk) = answer.chunk().await? {
                    if body.len() + chunk.len() > MAX_ANSWER {
                        return Err("the collector's answer is larger than 1 MiB".into());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(builder.body(Bytes::from(body))?)
            })
        }
    }
}
