//! `cordon trace RUN`: the run as a waterfall of its spans, drawn from its log.

use super::{find_run, store_failure};
use crate::render::{Style, plural, safe};
use cordon_evidence::trace::{Span, SpanKind, spans};
use cordon_store::Store;
use std::process::ExitCode;

/// How many columns the bars take.
const BAR: usize = 40;

/// `cordon trace RUN [--json]`.
pub async fn trace(store: &Store, run: &str, json: bool) -> anyhow::Result<ExitCode> {
    let run_id = find_run(store, run).await?;
    let events = store.events(&run_id).await.map_err(store_failure)?;
    let spans = spans(&events);
    if json {
        for s in &spans {
            println!("{}", serde_json::to_string(s)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(root) = spans.first() else {
        println!("run {run_id} has no events");
        return Ok(ExitCode::SUCCESS);
    };
    let style = Style::stdout();
    let count = |k: SpanKind| spans.iter().filter(|s| s.kind == k).count() as u64;
    let tokens = root.attributes["gen_ai.usage.input_tokens"]
        .as_u64()
        .unwrap_or(0)
        .saturating_add(
            root.attributes["gen_ai.usage.output_tokens"]
                .as_u64()
                .unwrap_or(0),
        );
    let waited: i64 = spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::Approval | SpanKind::Wait))
        .map(Span::duration_ms)
        .fold(0, i64::saturating_add);
    println!(
        "{} · {} · {} · {} · {} · {} · {}{}",
        style.bold(&format!("run {run_id}")),
        safe(&root.name),
        root.attributes["cordon.run.status"].as_str().unwrap_or("?"),
        duration(root.duration_ms()),
        plural(count(SpanKind::Model), "model call", "model calls"),
        plural(count(SpanKind::Tool), "tool call", "tool calls"),
        plural(tokens, "token", "tokens"),
        if waited > 0 {
            format!(" · {} waiting for people", duration(waited))
        } else {
            String::new()
        }
    );
    let total = root.duration_ms().max(1);
    for s in &spans {
        let offset = s.start_ms.saturating_sub(root.start_ms);
        let from = (offset.max(0) as u128 * BAR as u128 / total as u128) as usize;
        let width = ((s.duration_ms() as u128 * BAR as u128).div_ceil(total as u128) as usize)
            .clamp(1, BAR - from.min(BAR - 1));
        let fill = match s.kind {
            SpanKind::Approval | SpanKind::Wait => "░",
            _ => "█",
        };
        let bar = format!(
            "{}{}{}",
            " ".repeat(from.min(BAR - 1)),
            fill.repeat(width),
            " ".repeat(BAR.saturating_sub(from.min(BAR - 1) + width))
        );
        let bar = match (&s.error, s.kind) {
            (Some(_), _) => style.red(&bar),
            (None, SpanKind::Approval | SpanKind::Wait) => style.yellow(&bar),
            (None, SpanKind::Agent) => style.dim(&bar),
            _ => bar,
        };
        let indent = if s.parent.is_some() { "  " } else { "" };
        println!(
            "{:>9}  {:>8}  {bar}  {indent}{}",
            seconds(offset),
            duration(s.duration_ms()),
            safe(&label(s))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `cordon trace RUN --otlp`: sends every span of the run, with the ids it always has.
pub async fn send(store: &Store, run: &str) -> anyhow::Result<ExitCode> {
    use cordon_evidence::otlp;
    let settings = otlp::from_env()
        .map_err(|e| crate::exit::Failure::bad_input(e, "fix or unset the OTEL_EXPORTER_OTLP_* variable"))?
        .ok_or_else(|| {
            crate::exit::Failure::bad_input(
                "no OpenTelemetry collector is named",
                "set OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_EXPORTER_OTLP_PROTOCOL: grpc, http/protobuf or http/json)",
            )
        })?;
    let run_id = find_run(store, run).await?;
    let events = store.events(&run_id).await.map_err(store_failure)?;
    let spans = cordon_evidence::trace::spans_with(&events, settings.content);
    let n = otlp::send(&settings, &events, &spans).await.map_err(|e| {
        anyhow::Error::new(crate::exit::Failure {
            code: crate::exit::RUN_FAILED,
            message: e,
            hint: Some("check that the collector runs and the variables name it".into()),
        })
    })?;
    println!(
        "run {run_id}: {} sent to {}",
        plural(n as u64, "span", "spans"),
        settings.endpoint
    );
    Ok(ExitCode::SUCCESS)
}

/// A span's name with what matters about it.
fn label(s: &Span) -> String {
    let a = |k: &str| s.attributes.get(k);
    let mut out = s.name.clone();
    match s.kind {
        SpanKind::Model => {
            if let (Some(i), Some(o)) = (
                a("gen_ai.usage.input_tokens"),
                a("gen_ai.usage.output_tokens"),
            ) {
                out.push_str(&format!(" · {i}→{o} tokens"));
            }
            if let Some(t) = a("cordon.turn") {
                out.push_str(&format!(" · turn {t}"));
            }
            if let Some(r) = a("cordon.retries") {
                out.push_str(&format!(" · {r} retries"));
            }
        }
        SpanKind::Tool => {
            if let Some(id) = a("gen_ai.tool.call.id").and_then(|v| v.as_str()) {
                out.push_str(&format!(" {id}"));
            }
            if let Some(v) = a("cordon.policy.verdict").and_then(|v| v.as_str())
                && v != "allow"
            {
                out.push_str(&format!(" · policy {v}"));
            }
            if a("cordon.tool.not_run").is_some() {
                out.push_str(" · not run");
            }
            if a("cordon.tool.replayed").is_some() {
                out.push_str(" · replayed");
            }
        }
        SpanKind::Approval => match (a("cordon.approval.decision"), a("cordon.approval.by")) {
            (Some(d), Some(by)) => out.push_str(&format!(
                " · {} by {}",
                d.as_str().unwrap_or("?"),
                by.as_str().unwrap_or("?")
            )),
            _ => out.push_str(" · still waiting"),
        },
        SpanKind::Checkpoint => {
            if let Some(n) = a("cordon.checkpoint.files_read").and_then(|v| v.as_u64()) {
                out.push_str(&format!(" · read {}", plural(n, "file", "files")));
            }
        }
        SpanKind::Wait | SpanKind::Agent | SpanKind::Workspace | SpanKind::Sandbox => {}
    }
    if let Some(e) = &s.error {
        out.push_str(&format!(" · ✗ {e}"));
    }
    if a("cordon.unfinished").is_some() && s.kind != SpanKind::Approval {
        out.push_str(" · unfinished");
    }
    out
}

/// An offset from the run's start, in seconds.
fn seconds(ms: i64) -> String {
    format!("{:.3}s", ms as f64 / 1000.0)
}

/// A duration as people read it.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}
