//! One event of the run log as a labelled line with, where it helps, lines under it.

use super::call::{self, ResultView, bytes, seconds};
use super::{Limit, Style, clip, first_line, lines_within, number, plural, safe, text};
use cordon_core::EventPayload;
use cordon_harness::approval::describe_rule;
use serde_json::Value;

/// An event as people read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What happened, in a word or two (at most [`LABEL_WIDTH`] characters).
    pub label: &'static str,
    /// The line beside the label.
    pub summary: String,
    /// Lines under it: output, a diff, the answer's text.
    pub details: Vec<String>,
}

/// The widest label, so that summaries line up.
pub const LABEL_WIDTH: usize = 10;

/// The entry for one event.
pub fn entry(p: &EventPayload, style: Style, limit: Limit) -> Entry {
    let (label, summary, details) = match p {
        EventPayload::RunStarted {
            agent,
            cordon_version,
            manifest_digest,
            policy_digest: _,
            sandbox,
            policy,
        } => {
            let mut line = format!(
                "agent {} · model {} ({}) · {}",
                agent.name,
                clip(&agent.model, 80),
                agent.api,
                plural(agent.tools.len() as u64, "tool", "tools")
            );
            if let Some(sb) = sandbox
                && let Some(ws) = sb["host_workspace"].as_str()
            {
                line.push_str(&format!(" · workspace {ws} ({} tier)", text(&sb["tier"])));
            }
            let mut details = Vec::new();
            if !agent.tools.is_empty() {
                details.push(format!("tools: {}", agent.tools.join(", ")));
            }
            let mut limits = vec![format!("max_turns {}", agent.max_turns)];
            if let Some(Value::Object(b)) = &agent.budgets {
                limits.extend(
                    b.iter()
                        .filter_map(|(k, v)| v.as_f64().map(|v| format!("{k} {}", number(v)))),
                );
            }
            details.push(format!("budgets: {}", limits.join(", ")));
            if let Some(rules) = approval_rules(agent.approvals.as_ref()) {
                details.push(format!("asks before: {rules}"));
            }
            if let Some(d) = manifest_digest {
                details.push(format!("manifest {}", short(d)));
            }
            if let Some(p) = policy {
                details.push(policy_line(p));
            }
            details.push(style.dim(&format!("cordon {cordon_version}")));
            ("started", line, details)
        }
        EventPayload::ConversationContinued {
            from,
            conversation,
            items,
        } => (
            "continues",
            format!(
                "{}{} · {} carried over",
                match from {
                    Some(run) => format!("run {run}"),
                    None => "a new conversation".to_string(),
                },
                conversation
                    .as_ref()
                    .map(|c| format!(" · conversation {}", clip(c, 80)))
                    .unwrap_or_default(),
                plural(items.len() as u64, "item", "items")
            ),
            Vec::new(),
        ),
        EventPayload::GuardrailTripped {
            guardrail,
            stage,
            call_id,
            reason,
        } => (
            "guardrail",
            format!(
                "{guardrail} tripped on the {}{}: {}",
                stage.replace('_', " "),
                call_id
                    .as_ref()
                    .map(|c| format!(" of call {c}"))
                    .unwrap_or_default(),
                clip(reason, 200)
            ),
            Vec::new(),
        ),
        EventPayload::ContinuedBy { run } => ("continued", format!("by run {run}"), Vec::new()),
        EventPayload::HandedOff {
            from,
            to,
            reason,
            history,
            ..
        } => (
            "handoff",
            format!(
                "{} → {} · history: {history}{}",
                clip(from, 64),
                clip(to, 64),
                reason
                    .as_ref()
                    .map(|r| format!(" · “{}”", clip(r, 160)))
                    .unwrap_or_default()
            ),
            Vec::new(),
        ),
        EventPayload::RunWaiting { reason } => {
            ("waiting", style.yellow(&clip(reason, 300)), Vec::new())
        }
        EventPayload::ToolSuspended {
            call_id,
            tool,
            reason,
        } => (
            "suspended",
            format!(
                "{} {} · {}",
                clip(tool, 64),
                clip(call_id, 64),
                clip(reason, 240)
            ),
            Vec::new(),
        ),
        EventPayload::SpawnedBy {
            parent,
            call_id,
            tool,
            workspace,
        } => (
            "sub-agent",
            format!(
                "{} of run {parent} (call {call_id}) · workspace: {workspace}",
                clip(tool, 64)
            ),
            Vec::new(),
        ),
        EventPayload::McpServerStarted {
            server,
            runs,
            transport,
            protocol,
            implementation,
            tools,
            withheld,
        } => {
            let place = match runs.as_str() {
                "sandbox" => "in the sandbox".to_string(),
                "host" => "ON THE HOST (trusted)".to_string(),
                "remote" => "remote".to_string(),
                other => other.to_string(),
            };
            let mut details = vec![format!("tools: {}", tools.join(", "))];
            if !withheld.is_empty() {
                details.push(format!("withheld by its lists: {}", withheld.join(", ")));
            }
            if let Some(i) = implementation {
                details.push(format!("server {}", clip(i, 120)));
            }
            (
                "mcp",
                format!(
                    "server {server} {place} · {transport} · protocol {protocol} · {}",
                    plural(tools.len() as u64, "tool", "tools")
                ),
                details,
            )
        }
        EventPayload::ToolsChanged {
            source,
            tools,
            error,
        } => (
            "mcp",
            format!(
                "server {source} changed its tools · now {}{}",
                plural(tools.len() as u64, "tool", "tools"),
                error
                    .as_ref()
                    .map(|e| format!(" · {e}"))
                    .unwrap_or_default()
            ),
            vec![format!("tools: {}", tools.join(", "))],
        ),
        EventPayload::ContextCompacted {
            turn,
            kept_head,
            replaced,
            summary,
            tokens_before,
            tokens_after,
            usage,
            items,
        } => (
            "compacted",
            format!(
                "before turn {turn}: {} {} · ~{tokens_before} → ~{tokens_after} tokens · {} took {} in, {} out",
                plural(*replaced as u64, "item", "items"),
                if items.is_some() {
                    "compacted by the provider"
                } else {
                    "summarised"
                },
                if items.is_some() { "it" } else { "the summary" },
                usage.input_tokens,
                usage.output_tokens
            ),
            match limit {
                _ if items.is_some() => Vec::new(),
                Limit::Full => {
                    let mut d = vec![format!("kept first: {kept_head}")];
                    d.extend(summary.lines().map(str::to_string));
                    d
                }
                Limit::Clip => vec![clip(summary.lines().next().unwrap_or(""), 160)],
            },
        ),
        EventPayload::SecretsRedacted { seq, event, found } => {
            let what: Vec<String> = found
                .iter()
                .map(|(name, n)| format!("{n} × {name}"))
                .collect();
            (
                "redacted",
                format!(
                    "{} in event {seq} ({event}) before it was stored",
                    what.join(", ")
                ),
                Vec::new(),
            )
        }
        EventPayload::ArtifactsCollected {
            artifacts,
            missing,
            notes,
        } => {
            let size: u64 = artifacts.iter().map(|a| a.bytes).sum();
            let mut line = format!(
                "{} · {}",
                plural(artifacts.len() as u64, "file", "files"),
                bytes(size)
            );
            if !missing.is_empty() {
                line.push_str(&format!(" · missing: {}", safe(&missing.join(", "))));
            }
            let shown = match limit {
                Limit::Full => artifacts.len(),
                Limit::Clip => artifacts.len().min(10),
            };
            let mut details: Vec<String> = artifacts[..shown]
                .iter()
                .map(|a| {
                    format!(
                        "{} · {} · {} · {}",
                        safe(&a.path),
                        bytes(a.bytes),
                        a.media_type,
                        short(a.sha256.trim_start_matches("sha256:"))
                    )
                })
                .collect();
            if shown < artifacts.len() {
                details.push(format!("… {} more …", artifacts.len() - shown));
            }
            details.extend(notes.iter().map(|n| format!("note: {n}")));
            ("artifacts", line, details)
        }
        EventPayload::WorkspaceMaterialized {
            manifest_digest,
            receipts,
            duration_ms,
            ..
        } => {
            let entries = receipts.as_array().map_or(&[][..], Vec::as_slice);
            let files: u64 = entries.iter().filter_map(|r| r["files"].as_u64()).sum();
            let size: u64 = entries.iter().filter_map(|r| r["bytes"].as_u64()).sum();
            let details = match limit {
                Limit::Full => entries
                    .iter()
                    .map(|r| format!("{} {}", text(&r["type"]), text(&r["path"])))
                    .collect(),
                Limit::Clip => Vec::new(),
            };
            (
                "workspace",
                format!(
                    "built from manifest {} · {} · {} · {}{}",
                    short(manifest_digest),
                    plural(entries.len() as u64, "entry", "entries"),
                    plural(files, "file", "files"),
                    bytes(size),
                    duration_ms.map_or(String::new(), |ms| format!(" · {ms} ms"))
                ),
                details,
            )
        }
        EventPayload::UserInput { text } => {
            ("input", first_line(text, 120), rest_lines(text, limit))
        }
        EventPayload::ModelRequest { turn, input_items } => (
            "model",
            format!(
                "turn {turn} · sends {}",
                plural(*input_items as u64, "item", "items")
            ),
            Vec::new(),
        ),
        EventPayload::ModelRetry {
            turn,
            attempt,
            error,
            delay_ms,
        } => (
            "retry",
            style.yellow(&format!(
                "turn {turn} · attempt {attempt} failed: {} · tries again in {}",
                clip(error, 100),
                seconds(*delay_ms as f64 / 1000.0)
            )),
            Vec::new(),
        ),
        EventPayload::ModelResponse { turn, response } => {
            let calls = response.tool_calls().len() as u64;
            let usage = &response.usage;
            let mut line = format!(
                "turn {turn} · {} · {} tokens",
                plural(calls, "tool call", "tool calls"),
                usage.total_tokens()
            );
            if usage.estimated {
                line.push_str(" (estimated: the server reported none)");
            }
            if let Some(why) = response.cut_off() {
                line.push_str(&style.red(&format!(" · cut off ({why})")));
            }
            if !response.notes.is_empty() {
                line.push_str(&format!(
                    " · {} (--raw)",
                    plural(
                        response.notes.len() as u64,
                        "decoding note",
                        "decoding notes"
                    )
                ));
            }
            let said = response.text();
            let thought = response.reasoning_text();
            let mut details: Vec<String> = lines_within(thought.trim(), limit)
                .into_iter()
                .filter(|l| !l.is_empty())
                .map(|l| style.dim(&format!("∴ {l}")))
                .collect();
            if !said.trim().is_empty() {
                details.extend(
                    lines_within(said.trim(), limit)
                        .into_iter()
                        .map(|l| format!("“ {l}")),
                );
            }
            ("answer", line, details)
        }
        EventPayload::ToolCallIntent {
            call_id,
            tool,
            arguments,
            idempotency_key: _,
        } => (
            "call",
            format!(
                "{} {}",
                named(tool, call_id, style),
                call::call_line(tool, arguments)
            ),
            call::call_details(tool, arguments, style, limit),
        ),
        EventPayload::ToolResult {
            call_id,
            tool,
            output,
            images,
            is_error,
            duration_ms,
            not_run,
        } => {
            let view = ResultView {
                tool,
                output,
                images,
                is_error: *is_error,
                not_run: *not_run,
            };
            let (result, details) = call::result(&view, style, limit);
            let mut line = format!("{} {result}", named(tool, call_id, style));
            if !matches!(tool.as_str(), "exec_command" | "write_stdin") || *is_error {
                line.push_str(&style.dim(&format!(" ({duration_ms} ms)")));
            }
            ("result", line, details)
        }
        EventPayload::ToolReplayed {
            call_id,
            tool,
            is_error,
            same_output,
            duration_ms,
        } => (
            "replayed",
            format!(
                "{} again, into the restored workspace · {} · {}",
                named(tool, call_id, style),
                match (is_error, same_output) {
                    (true, _) => style.red("failed"),
                    (false, true) => "same output".into(),
                    (false, false) => style.yellow("different output"),
                },
                seconds(*duration_ms as f64 / 1000.0)
            ),
            Vec::new(),
        ),
        EventPayload::ApprovalRequested {
            call_id,
            tool,
            arguments,
            arguments_hash: _,
            rules,
            approvers,
        } => {
            let mut asked = if rules.is_empty() {
                String::new()
            } else {
                format!(
                    " · asked by {}",
                    rules
                        .iter()
                        .map(|r| describe_rule(r))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            if !approvers.is_empty() {
                asked.push_str(&format!(
                    " · approvers: {}",
                    clip(&approvers.join(", "), 120)
                ));
            }
            let mut details = vec![call::call_line(tool, arguments)];
            details.extend(call::call_details(tool, arguments, style, limit));
            (
                "approval",
                style.yellow(&format!(
                    "{} {} waits for a person{asked}",
                    clip(tool, 64),
                    clip(call_id, 64)
                )),
                details,
            )
        }
        EventPayload::PolicyDecision {
            call_id,
            tool,
            verdict,
            class,
            rules: _,
            summary,
        } => {
            let line = format!(
                "{} {verdict} · {} · {}",
                named(tool, call_id, style),
                clip(class, 32),
                clip(summary, 240)
            );
            let line = match verdict.as_str() {
                "deny" => style.red(&line),
                "ask" => style.yellow(&line),
                _ => style.dim(&line),
            };
            ("policy", line, Vec::new())
        }
        EventPayload::NetworkRequest {
            host,
            port,
            method,
            path,
            verdict,
            rules: _,
            summary,
            status,
            sent,
            received,
            count,
        } => {
            let times = if *count > 1 {
                format!(" ×{count}")
            } else {
                String::new()
            };
            let status = status.map_or_else(|| "no answer".to_string(), |s| s.to_string());
            let mut line = format!(
                "{} {}:{port}{}{times} → {status} · {} out, {} in",
                clip(method, 16),
                clip(host, 120),
                clip(path.as_deref().unwrap_or(""), 120),
                super::call::bytes(*sent),
                super::call::bytes(*received),
            );
            if verdict != "allow" || summary.contains("failed") {
                line.push_str(&format!(" · {}", clip(summary, 240)));
            }
            let line = match verdict.as_str() {
                "allow" => style.dim(&line),
                _ => style.red(&line),
            };
            ("network", line, Vec::new())
        }
        EventPayload::HostRequested { hosts } => (
            "host",
            style.yellow(&format!(
                "the sandbox waits for a person to allow {}",
                clip(&hosts.join(", "), 200)
            )),
            Vec::new(),
        ),
        EventPayload::HostGranted { host, by } => (
            "grant",
            format!(
                "{} may be reached for the rest of the run, allowed by {}",
                clip(host, 120),
                clip(by, 64)
            ),
            Vec::new(),
        ),
        EventPayload::ApprovalGranted {
            call_id,
            arguments_hash: _,
            by,
            always,
            always_rules,
        } => {
            let mut line = format!("{} by {}", clip(call_id, 64), clip(by, 64));
            if *always && !always_rules.is_empty() {
                line.push_str(&format!(
                    ", and from then on {}",
                    always_rules
                        .iter()
                        .map(|r| describe_rule(r))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            ("approved", style.green(&line), Vec::new())
        }
        EventPayload::ApprovalRejected {
            call_id,
            by,
            message,
        } => {
            let mut line = format!("{} by {}", clip(call_id, 64), clip(by, 64));
            if !message.is_empty() {
                line.push_str(&format!(" · the model is told: {}", clip(message, 100)));
            }
            ("rejected", style.red(&line), Vec::new())
        }
        EventPayload::Checkpoint {
            snapshot_id,
            files_read,
            bytes_read,
            skipped,
            skipped_count,
        } => {
            let mut line = format!(
                "snapshot {} · read {}, {}",
                short(snapshot_id),
                plural(*files_read, "changed file", "changed files"),
                bytes(*bytes_read)
            );
            if *skipped_count > 0 {
                line.push_str(&format!(
                    " · left out {}",
                    plural(*skipped_count, "path", "paths")
                ));
            }
            let mut details = Vec::new();
            if !skipped.is_empty() {
                details.push(style.dim(&format!(
                    "left out: {}",
                    super::left_out(skipped, *skipped_count)
                )));
            }
            ("checkpoint", line, details)
        }
        EventPayload::OutputInvalid { error } => (
            "invalid",
            style.red(&format!(
                "the answer does not match the output schema: {}",
                clip(error, 100)
            )),
            Vec::new(),
        ),
        EventPayload::BudgetExceeded {
            budget,
            limit: max,
            used,
            ..
        } => {
            let (max, used) = if budget == "max_cost_usd" {
                (format!("${}", number(*max)), format!("${}", number(*used)))
            } else {
                (number(*max), number(*used))
            };
            (
                "budget",
                style.red(&format!("{budget} ran out: limit {max}, needed {used}")),
                Vec::new(),
            )
        }
        EventPayload::RunResumed {
            from_checkpoint,
            raised,
            workspace,
            restored,
            sandbox: _,
            notes,
            policy,
        } => {
            let mut parts = Vec::new();
            if let Some(ws) = workspace {
                parts.push(if *restored {
                    format!("in {ws}, restored from the last checkpoint")
                } else {
                    format!("in {ws}")
                });
            }
            if let Some(c) = from_checkpoint {
                parts.push(format!("checkpoint {}", short(c)));
            }
            if let Some(Value::Object(r)) = raised {
                parts.push(format!(
                    "raised {}",
                    r.iter()
                        .map(|(k, v)| match v.as_f64() {
                            Some(n) => format!("{k} to {}", number(n)),
                            None => format!("{k} to {v}"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if parts.is_empty() {
                parts.push("continues".into());
            }
            let mut details: Vec<String> = notes.iter().map(|n| format!("note: {n}")).collect();
            if let Some(p) = policy {
                parts.push(style.yellow("under another policy"));
                details.push(policy_line(p));
            }
            ("resumed", parts.join(" · "), details)
        }
        EventPayload::RunPaused { reason } => ("paused", style.yellow(reason), Vec::new()),
        EventPayload::RunCompleted {
            output,
            structured: _,
        } => (
            "completed",
            style.green(&first_line(output, 120)),
            rest_lines(output, limit),
        ),
        EventPayload::RunFailed { error } => (
            "failed",
            style.red(&first_line(error, 160)),
            rest_lines(error, limit),
        ),
    };
    Entry {
        label,
        summary,
        details,
    }
}

/// The lines of `text` after its first (which the summary shows).
fn rest_lines(text: &str, limit: Limit) -> Vec<String> {
    match text.split_once('\n') {
        Some((_, rest)) if !rest.trim().is_empty() => lines_within(rest, limit),
        _ => Vec::new(),
    }
}

/// The approval rules an agent recorded, in words.
fn approval_rules(v: Option<&Value>) -> Option<String> {
    let v = v?;
    let mut rules: Vec<String> = Vec::new();
    for t in v["tools"].as_array().into_iter().flatten() {
        rules.push(describe_rule(&format!("tool:{}", text(t))));
    }
    for c in v["commands"].as_array().into_iter().flatten() {
        rules.push(describe_rule(&format!("command:{}", text(c))));
    }
    (!rules.is_empty()).then(|| rules.join("; "))
}

/// A long id or digest, shortened as people quote it.
fn short(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    if id.chars().count() > 12 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_string()
    }
}

/// A call as every view names it: its tool in bold, then its id.
fn named(tool: &str, call_id: &str, style: Style) -> String {
    format!(
        "{} {}",
        style.bold(&clip(tool, 64)),
        style.dim(&clip(call_id, 64))
    )
}

/// A recorded policy in one line: its name, digest and files.
fn policy_line(p: &cordon_core::PolicyRecord) -> String {
    let files: Vec<&str> = p.files.iter().map(|f| f.origin.as_str()).collect();
    format!(
        "policy {} {} ({})",
        clip(&p.name, 64),
        short(&p.digest),
        clip(&files.join(" < "), 200)
    )
}
