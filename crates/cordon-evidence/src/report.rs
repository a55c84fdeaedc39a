//! `cordon report RUN --html FILE`: one self-contained HTML page about a run, for people who
//! were not there: its timeline as a chart, each tool call with its output, the workspace's
//! changes between checkpoints, approvals, policy decisions, budgets and cost, artifacts, and
//! whether the record verifies.
//!
//! The page needs no network: styles and the chart's script are inline, and its Content
//! Security Policy forbids loading anything. Everything from the run (model text, command
//! output, file contents) is escaped; the spans the chart draws are embedded as JSON with `<`
//! escaped, so nothing in a run can end the script or add markup.

use crate::trace::{Span, SpanKind, spans};
use cordon_core::{Event, EventPayload, RunState};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The most of one tool output the page shows.
const MAX_OUTPUT: usize = 64 * 1024;
/// The most of one file's diff the page shows.
const MAX_DIFF: usize = 64 * 1024;

/// Whether the run's record holds, as `cordon verify` found.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Nothing is wrong.
    pub ok: bool,
    /// One line: what holds (and who signed), or what is wrong.
    pub detail: String,
}

/// How one path changed between two checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Workspace-relative path.
    pub path: String,
    /// `added`, `removed` or `modified` (also a change of kind or mode).
    pub what: &'static str,
    /// A unified diff, for text files small enough to show.
    pub diff: Option<String>,
}

/// The changes between one checkpoint and the next.
#[derive(Debug, Clone)]
pub struct Step {
    /// The earlier checkpoint's snapshot (`None` for the first: against nothing).
    pub from: Option<String>,
    /// The later one's.
    pub to: String,
    /// What changed.
    pub changes: Vec<Change>,
}

/// The workspace's changes between consecutive snapshots of `listings` (in the order the
/// run took them), reading file contents with `read` (by BLAKE3 hash; `None` when it cannot).
pub fn steps(
    listings: &[cordon_store::Snapshot],
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Vec<Step> {
    use cordon_store::snapshot::{Entry, Kind};
    let mut out = Vec::new();
    let mut before: BTreeMap<String, Entry> = BTreeMap::new();
    let mut from = None;
    for snap in listings {
        let now: BTreeMap<String, Entry> = snap
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.clone()))
            .collect();
        let mut changes = Vec::new();
        for (path, e) in &now {
            let old = before.get(path);
            let what = match old {
                None => "added",
                Some(o)
                    if o.kind != e.kind
                        || o.mode != e.mode
                        || o.hash != e.hash
                        || o.target != e.target =>
                {
                    "modified"
                }
                Some(_) => continue,
            };
            if e.kind == Kind::Dir
                && what == "added"
                && old.is_none()
                && now.keys().any(|k| k.starts_with(&format!("{path}/")))
            {
                continue;
            }
            let text = |entry: Option<&Entry>| -> Option<String> {
                match entry {
                    None => Some(String::new()),
                    Some(x) if x.kind == Kind::File && x.size <= 256 * 1024 => {
                        String::from_utf8(read(x.hash.as_deref()?)?).ok()
                    }
                    _ => None,
                }
            };
            let diff = match (text(old), text(Some(e))) {
                (Some(a), Some(b)) if e.kind == Kind::File => Some(unified(&a, &b, path)),
                _ => None,
            };
            changes.push(Change {
                path: path.clone(),
                what,
                diff,
            });
        }
        for (path, o) in &before {
            if !now.contains_key(path) {
                let diff = (o.kind == Kind::File && o.size <= 256 * 1024)
                    .then(|| o.hash.as_deref().and_then(read))
                    .flatten()
                    .and_then(|b| String::from_utf8(b).ok())
                    .map(|a| unified(&a, "", path));
                changes.push(Change {
                    path: path.clone(),
                    what: "removed",
                    diff,
                });
            }
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        if !changes.is_empty() || from.is_none() {
            out.push(Step {
                from: from.clone(),
                to: snap.id.clone(),
                changes,
            });
        }
        before = now;
        from = Some(snap.id.clone());
    }
    out
}

/// The start of a snapshot id, as people read it (the id is stored text: cut by characters).
fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

fn unified(a: &str, b: &str, path: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// What the page is made from.
pub struct Input<'a> {
    /// The run's events, as stored.
    pub events: &'a [Event],
    /// Whether its record holds.
    pub verification: Verification,
    /// The workspace's changes between its checkpoints.
    pub steps: Vec<Step>,
    /// Why the changes are not shown, when they are left out.
    pub changes_withheld: Option<String>,
    /// What it cost, when its model has a price.
    pub cost_usd: Option<f64>,
}

/// Text made safe inside HTML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn clipped(text: &str, max: usize) -> (String, usize) {
    if text.len() <= max {
        return (text.to_string(), 0);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), text.len() - end)
}

fn when(ts: &str) -> String {
    ts.replace('T', " ").trim_end_matches('Z').to_string()
}

fn ms(d: i64) -> String {
    match d {
        ..1_000 => format!("{d} ms"),
        1_000..60_000 => format!("{:.1} s", d as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", d / 60_000, d % 60_000 / 1000),
        _ => format!("{}h {:02}m", d / 3_600_000, d % 3_600_000 / 60_000),
    }
}

/// The page.
pub fn html(input: &Input<'_>) -> String {
    let events = input.events;
    let spans = spans(events);
    let state = RunState::fold(events).ok();
    let run_id = events
        .first()
        .map(|e| e.run_id.to_string())
        .unwrap_or_default();
    let agent = state.as_ref().and_then(|s| s.agent.clone());
    let mut page = String::new();
    let _ = write!(
        page,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cordon run {id}</title>
<style>{STYLE}</style></head><body>
"#,
        id = escape(&run_id)
    );
    // The header: what ran, how it ended, whether the record holds.
    let root = spans.first();
    let status = root
        .and_then(|r| r.attributes.get("cordon.run.status"))
        .and_then(|v| v.as_str())
        .unwrap_or("unknown");
    let _ = write!(
        page,
        r#"<header><h1>Run <code>{id}</code></h1>
<p class="facts"><span>agent <b>{agent}</b></span> <span>model <b>{model}</b></span> <span>status <b class="status-{status}">{status}</b></span> <span>took <b>{took}</b></span></p>
<p id="verification" class="{vclass}">{vmark} {vdetail}</p></header>
"#,
        id = escape(&run_id),
        agent = escape(agent.as_ref().map_or("?", |a| a.name.as_str())),
        model = escape(agent.as_ref().map_or("?", |a| a.model.as_str())),
        status = escape(status),
        took = ms(root.map_or(0, Span::duration_ms)),
        vclass = if input.verification.ok { "ok" } else { "bad" },
        vmark = if input.verification.ok {
            "✔ verified:"
        } else {
            "✘ does not verify:"
        },
        vdetail = escape(&input.verification.detail),
    );
    let task: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "user_input")
        .filter_map(|e| e.payload["text"].as_str())
        .collect();
    if !task.is_empty() {
        page.push_str("<section id=\"task\"><h2>Task</h2>");
        for t in task {
            let _ = write!(page, "<pre>{}</pre>", escape(t));
        }
        page.push_str("</section>\n");
    }
    timeline(&mut page, &spans);
    budgets(&mut page, events, state.as_ref(), root, input.cost_usd);
    calls(&mut page, events);
    approvals(&mut page, &spans);
    policy(&mut page, events);
    match &input.changes_withheld {
        Some(why) => {
            let _ = writeln!(
                page,
                "<section id=\"changes\"><h2>Workspace changes between checkpoints</h2><p class=\"meta\">{}</p></section>",
                escape(why)
            );
        }
        None => changes(&mut page, &input.steps),
    }
    artifacts(&mut page, events);
    if let Some(s) = &state
        && let Some(out) = &s.final_output
    {
        let _ = writeln!(
            page,
            "<section id=\"answer\"><h2>Final answer</h2><pre>{}</pre></section>",
            escape(out)
        );
    }
    let _ = write!(
        page,
        "<footer>Made by cordon {} from the run's log ({} events).</footer>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        events.len()
    );
    page
}

/// The timeline: the spans as JSON, drawn into an SVG by an inline script (and listed in a
/// table for readers without scripts).
fn timeline(page: &mut String, spans: &[Span]) {
    let Some(root) = spans.first() else { return };
    let data: Vec<serde_json::Value> = spans
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name, "kind": s.kind, "start": s.start_ms.saturating_sub(root.start_ms),
                "end": s.end_ms.saturating_sub(root.start_ms), "error": s.error,
            })
        })
        .collect();
    // `<` never appears raw inside the script, so nothing in a span's name can close it.
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "[]".into())
        .replace('<', "\\u003c");
    let _ = write!(
        page,
        r#"<section id="timeline"><h2>Timeline</h2>
<svg id="chart" role="img" aria-label="timeline of the run" width="100%"></svg>
<script type="application/json" id="spans">{json}</script>
<script>{CHART}</script>
<noscript><table>"#
    );
    for s in spans {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            ms(s.duration_ms())
        );
    }
    page.push_str("</table></noscript></section>\n");
}

fn budgets(
    page: &mut String,
    events: &[Event],
    state: Option<&RunState>,
    root: Option<&Span>,
    cost: Option<f64>,
) {
    let Some(state) = state else { return };
    let limits = state
        .agent
        .as_ref()
        .and_then(|a| a.budgets.clone())
        .unwrap_or(serde_json::Value::Null);
    let limit = |k: &str| {
        limits
            .get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "—".into())
    };
    let max_turns = state.agent.as_ref().map(|a| a.max_turns.to_string());
    let wall = root.map_or(0, Span::duration_ms);
    let requests = events
        .iter()
        .filter(|e| e.kind == "network_request")
        .count();
    let _ = write!(
        page,
        r#"<section id="budgets"><h2>Budgets and cost</h2><table>
<tr><th>measure</th><th>used</th><th>limit</th></tr>
<tr><td>turns</td><td>{turns}</td><td>{max_turns}</td></tr>
<tr><td>tool calls</td><td>{calls}</td><td>{max_calls}</td></tr>
<tr><td>tokens</td><td>{tokens} ({input} in, {output} out)</td><td>{max_tokens}</td></tr>
<tr><td>wall time</td><td>{wall}</td><td>{max_wall}</td></tr>
<tr><td>cost</td><td>{cost}</td><td>{max_cost}</td></tr>
<tr><td>network requests</td><td>{requests}</td><td>—</td></tr>
</table></section>
"#,
        turns = state.turns,
        max_turns = escape(&max_turns.unwrap_or_else(|| limit("max_turns"))),
        calls = state.tool_calls,
        max_calls = escape(&limit("max_tool_calls")),
        tokens = state.usage.total_tokens(),
        input = state.usage.input_tokens,
        output = state.usage.output_tokens,
        max_tokens = escape(&limit("max_tokens")),
        wall = ms(wall),
        max_wall = escape(&limit("max_wall_secs")),
        cost = cost.map_or("no price for the model in the config".into(), |c| format!(
            "${c:.4}"
        )),
        max_cost = escape(&limit("max_cost_usd")),
    );
}

fn calls(page: &mut String, events: &[Event]) {
    let mut intents: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut decisions: BTreeMap<String, String> = BTreeMap::new();
    let mut approvals: BTreeMap<String, String> = BTreeMap::new();
    page.push_str("<section id=\"calls\"><h2>Tool calls</h2>\n");
    let mut any = false;
    for e in events {
        let Ok(p) = EventPayload::from_parts(&e.kind, &e.payload) else {
            continue;
        };
        match p {
            EventPayload::ToolCallIntent {
                call_id,
                tool,
                arguments,
                ..
            } => {
                intents.insert(call_id, (tool, arguments, e.ts.clone()));
            }
            EventPayload::PolicyDecision {
                call_id,
                verdict,
                rules,
                summary,
                ..
            } => {
                let why = if summary.is_empty() {
                    rules.join(", ")
                } else {
                    summary
                };
                decisions.insert(call_id, format!("policy {verdict}: {why}"));
            }
            EventPayload::ApprovalGranted { call_id, by, .. } => {
                approvals.insert(call_id, format!("approved by {by} at {}", when(&e.ts)));
            }
            EventPayload::ApprovalRejected {
                call_id,
                by,
                message,
            } => {
                approvals.insert(
                    call_id,
                    format!("rejected by {by} at {}: {message}", when(&e.ts)),
                );
            }
            EventPayload::ToolResult {
                call_id,
                tool,
                output,
                is_error,
                duration_ms,
                not_run,
                ..
            } => {
                any = true;
                let (args, at) = intents
                    .remove(&call_id)
                    .map(|(_, a, t)| (a, t))
                    .unwrap_or_default();
                let (shown, cut) = clipped(&output, MAX_OUTPUT);
                let _ = write!(
                    page,
                    r#"<details class="call{err}" open><summary><b>{tool}</b> <code>{id}</code> · {status} · {took} · {at}</summary>
<p class="meta">{decision}{approval}</p>
<h4>arguments</h4><pre class="args">{args}</pre>
<h4>output</h4><pre class="output">{shown}</pre>{cut}</details>
"#,
                    err = if is_error { " error" } else { "" },
                    tool = escape(&tool),
                    id = escape(&call_id),
                    status = if not_run {
                        "not run"
                    } else if is_error {
                        "failed"
                    } else {
                        "ran"
                    },
                    took = ms(i64::try_from(duration_ms).unwrap_or(i64::MAX)),
                    at = escape(&when(&at)),
                    decision = escape(decisions.get(&call_id).map_or("", String::as_str)),
                    approval = escape(
                        &approvals
                            .get(&call_id)
                            .map_or(String::new(), |a| format!(" · {a}"))
                    ),
                    args = escape(&args),
                    shown = escape(&shown),
                    cut = if cut > 0 {
                        format!(
                            "<p class=\"meta\">… {cut} more bytes: <code>cordon show RUN {}</code> prints all of it</p>",
                            escape(&call_id)
                        )
                    } else {
                        String::new()
                    },
                );
            }
            _ => {}
        }
    }
    if !any {
        page.push_str("<p>No tool calls.</p>\n");
    }
    page.push_str("</section>\n");
}

fn approvals(page: &mut String, spans: &[Span]) {
    let asked: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Approval)
        .collect();
    page.push_str("<section id=\"approvals\"><h2>Approvals</h2>\n");
    if asked.is_empty() {
        page.push_str("<p>No call waited for a person.</p></section>\n");
        return;
    }
    page.push_str("<table><tr><th>call</th><th>asked by rules</th><th>asked at</th><th>decision</th><th>by</th><th>waited</th></tr>\n");
    for s in asked {
        let a = |k: &str| {
            s.attributes
                .get(k)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .unwrap_or_default()
        };
        let _ = writeln!(
            page,
            "<tr><td>{} <code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            escape(&a("gen_ai.tool.call.id")),
            escape(&a("cordon.approval.rules")),
            escape(&when(&millis_text(s.start_ms))),
            escape(&{
                let d = a("cordon.approval.decision");
                if d.is_empty() {
                    "still waiting".to_string()
                } else {
                    d
                }
            }),
            escape(&a("cordon.approval.by")),
            ms(s.duration_ms())
        );
    }
    page.push_str("</table></section>\n");
}

fn millis_text(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn policy(page: &mut String, events: &[Event]) {
    page.push_str("<section id=\"policy\"><h2>Policy decisions</h2>\n<table><tr><th>at</th><th>call</th><th>verdict</th><th>class</th><th>rules</th><th>why</th></tr>\n");
    let mut network: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in events {
        match EventPayload::from_parts(&e.kind, &e.payload) {
            Ok(EventPayload::PolicyDecision {
                call_id,
                tool,
                verdict,
                class,
                rules,
                summary,
            }) => {
                let _ = writeln!(
                    page,
                    "<tr class=\"verdict-{v}\"><td>{}</td><td>{} <code>{}</code></td><td>{v}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&when(&e.ts)),
                    escape(&tool),
                    escape(&call_id),
                    escape(&class),
                    escape(&rules.join(", ")),
                    escape(&summary),
                    v = escape(&verdict),
                );
            }
            Ok(EventPayload::NetworkRequest {
                host,
                port,
                verdict,
                count,
                ..
            }) => {
                *network
                    .entry((format!("{host}:{port}"), verdict))
                    .or_default() += count.max(1);
            }
            _ => {}
        }
    }
    page.push_str("</table>\n");
    if !network.is_empty() {
        page.push_str("<h3>Network</h3><table><tr><th>destination</th><th>verdict</th><th>requests</th></tr>\n");
        for ((dest, verdict), n) in network {
            let _ = writeln!(
                page,
                "<tr class=\"verdict-{v}\"><td>{}</td><td>{v}</td><td>{n}</td></tr>",
                escape(&dest),
                v = escape(&verdict)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n");
}

fn changes(page: &mut String, steps: &[Step]) {
    page.push_str("<section id=\"changes\"><h2>Workspace changes between checkpoints</h2>\n");
    if steps.iter().all(|s| s.changes.is_empty()) {
        page.push_str("<p>The workspace did not change (or its checkpoints are not in the snapshot store).</p></section>\n");
        return;
    }
    for step in steps.iter().filter(|s| !s.changes.is_empty()) {
        let from = step
            .from
            .as_deref()
            .map_or("the empty workspace".to_string(), |f| {
                format!("checkpoint {}", short_id(f))
            });
        let _ = writeln!(
            page,
            "<h3>{} → checkpoint {}</h3>",
            escape(&from),
            escape(&short_id(&step.to))
        );
        for c in &step.changes {
            let _ = write!(
                page,
                "<details class=\"change {w}\"><summary><code>{}</code> {w}</summary>",
                escape(&c.path),
                w = c.what
            );
            match &c.diff {
                Some(d) => {
                    let (shown, cut) = clipped(d, MAX_DIFF);
                    page.push_str("<pre class=\"diff\">");
                    for line in shown.lines() {
                        let class = match line.chars().next() {
                            Some('+') if !line.starts_with("+++") => "add",
                            Some('-') if !line.starts_with("---") => "del",
                            Some('@') => "hunk",
                            _ => "ctx",
                        };
                        let _ = writeln!(page, "<span class=\"{class}\">{}</span>", escape(line));
                    }
                    page.push_str("</pre>");
                    if cut > 0 {
                        let _ = write!(page, "<p class=\"meta\">… {cut} more bytes of diff</p>");
                    }
                }
                None => page.push_str(
                    "<p class=\"meta\">not shown: not text, too large, or not a file</p>",
                ),
            }
            page.push_str("</details>\n");
        }
    }
    page.push_str("</section>\n");
}

fn artifacts(page: &mut String, events: &[Event]) {
    let found =
        events
            .iter()
            .rev()
            .find_map(|e| match EventPayload::from_parts(&e.kind, &e.payload) {
                Ok(EventPayload::ArtifactsCollected {
                    artifacts, missing, ..
                }) => Some((artifacts, missing)),
                _ => None,
            });
    page.push_str("<section id=\"artifacts\"><h2>Artifacts</h2>\n");
    let Some((artifacts, missing)) = found else {
        page.push_str("<p>The run collected no artifacts.</p></section>\n");
        return;
    };
    page.push_str(
        "<table><tr><th>path</th><th>bytes</th><th>media type</th><th>SHA-256</th></tr>\n",
    );
    for a in &artifacts {
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&a.path),
            a.bytes,
            escape(&a.media_type),
            escape(&a.sha256)
        );
    }
    page.push_str("</table>\n");
    for m in missing {
        let _ = writeln!(
            page,
            "<p class=\"bad\">missing required output <code>{}</code></p>",
            escape(&m)
        );
    }
    page.push_str("</section>\n");
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#1d2330}
h1{font-size:1.4em}h2{margin-top:2em;border-bottom:1px solid #ccd;padding-bottom:.2em}
code,pre{font-family:ui-monospace,monospace;font-size:12.5px}
pre{background:#f5f6f8;padding:.6em;overflow:auto;max-height:28em;white-space:pre-wrap}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e5ea;padding:.3em .5em;text-align:left;vertical-align:top}
.facts span{margin-right:1.2em}.ok{color:#1a7f37}.bad{color:#b42318;font-weight:600}
.status-completed{color:#1a7f37}.status-failed,.status-budget_exceeded{color:#b42318}
details.call{border:1px solid #e3e5ea;border-radius:6px;margin:.6em 0;padding:.4em .8em}
details.call.error{border-color:#f0a9a0}.meta{color:#5b6270}
.diff .add{color:#1a7f37;display:block}.diff .del{color:#b42318;display:block}.diff .hunk{color:#6639ba;display:block}.diff .ctx{display:block}
.verdict-deny td{color:#b42318}.verdict-ask td{color:#9a6700}
#chart rect.span{fill:#3b6fd8}#chart rect.span.model{fill:#7c4dff}#chart rect.span.approval,#chart rect.span.wait{fill:#e3b341}
#chart rect.span.error{fill:#d1242f}#chart text{font-size:11px;fill:#1d2330}
footer{margin-top:3em;color:#5b6270;font-size:12px}
"#;

/// Draws the spans into the SVG: one row per span, on the run's time scale.
const CHART: &str = r#"
(function () {
  var spans = JSON.parse(document.getElementById('spans').textContent);
  var svg = document.getElementById('chart');
  var ns = 'http://www.w3.org/2000/svg';
  var total = Math.max(1, spans.length ? spans[0].end - spans[0].start : 1);
  var row = 18, left = 330, width = 700;
  svg.setAttribute('height', String(spans.length * row + 10));
  svg.setAttribute('viewBox', '0 0 ' + (left + width + 20) + ' ' + (spans.length * row + 10));
  spans.forEach(function (s, i) {
    var label = document.createElementNS(ns, 'text');
    label.setAttribute('x', '4');
    label.setAttribute('y', String(i * row + 13));
    label.textContent = s.name.length > 48 ? s.name.slice(0, 47) + '…' : s.name;
    svg.appendChild(label);
    var r = document.createElementNS(ns, 'rect');
    var x = left + width * (s.start / total);
    var w = Math.max(2, width * ((s.end - s.start) / total));
    r.setAttribute('x', String(x));
    r.setAttribute('y', String(i * row + 3));
    r.setAttribute('width', String(w));
    r.setAttribute('height', '12');
    r.setAttribute('class', 'span ' + s.kind + (s.error ? ' error' : ''));
    var t = document.createElementNS(ns, 'title');
    t.textContent = s.name + ': ' + (s.end - s.start) + ' ms';
    r.appendChild(t);
    svg.appendChild(r);
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_from_a_run_becomes_markup() {
        assert_eq!(
            escape("</script><img src=x onerror=\"a\">'\u{1b}"),
            "&lt;/script&gt;&lt;img src=x onerror=&quot;a&quot;&gt;&#39;\\u{1b}"
        );
    }
}
