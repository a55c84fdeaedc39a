//! `cordon runs`, `cordon show` and `cordon verify`: reading the run log.

use super::find_run;
use crate::cli::StatusArg;
use crate::display::{clip, text};
use crate::exit;
use cordon_core::{Event, RunStatus, verify_chain};
use cordon_store::Store;
use std::process::ExitCode;

pub async fn runs(
    store: &Store,
    status: Option<StatusArg>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let status = status.map(|s| match s {
        StatusArg::Running => RunStatus::Running,
        StatusArg::Completed => RunStatus::Completed,
        StatusArg::Failed => RunStatus::Failed,
        StatusArg::BudgetExceeded => RunStatus::BudgetExceeded,
        StatusArg::AwaitingApproval => RunStatus::AwaitingApproval,
        StatusArg::Paused => RunStatus::Paused,
    });
    let runs = store.list_runs(status, limit).await?;
    if json {
        for r in &runs {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        eprintln!("no runs in {}", store.path().display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<15}  {:<20}  {:>6}  {:<24}  TASK",
        "RUN", "STATUS", "STARTED", "EVENTS", "MODEL"
    );
    for r in runs {
        let started: String = r.started.chars().take(19).collect();
        println!(
            "{:<36}  {:<15}  {:<20}  {:>6}  {:<24}  {}",
            r.run_id,
            r.status.as_str(),
            started.replace('T', " "),
            r.events,
            clip(&r.model, 24),
            clip(&r.task, 60)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(store: &Store, run: &str, json: bool) -> anyhow::Result<ExitCode> {
    let run_id = find_run(store, run).await?;
    let events = store.events(&run_id).await?;
    for e in &events {
        if json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!("{:>4}  {}  {:<16}  {}", e.seq, e.ts, e.kind, summary(e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about an event, for people.
fn summary(e: &Event) -> String {
    let p = &e.payload;
    match e.kind.as_str() {
        "run_started" => format!(
            "agent {} · model {} ({}) · tools [{}]",
            text(&p["agent"]["name"]),
            text(&p["agent"]["model"]),
            text(&p["agent"]["api"]),
            p["agent"]["tools"]
                .as_array()
                .map(|t| t.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ),
        "user_input" => clip(&text(&p["text"]), 100),
        "model_request" => format!("turn {} · {} items", p["turn"], p["input_items"]),
        "model_retry" => format!(
            "turn {} attempt {} failed: {}",
            p["turn"],
            p["attempt"],
            clip(&text(&p["error"]), 80)
        ),
        "model_response" => {
            let r = &p["response"];
            let items = r["items"].as_array().cloned().unwrap_or_default();
            let calls = items.iter().filter(|i| i["type"] == "tool_call").count();
            let text_out: String = items
                .iter()
                .filter(|i| i["type"] == "message")
                .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
                .map(|c| text(&c["text"]))
                .collect();
            let tokens = r["usage"]["input_tokens"].as_u64().unwrap_or(0)
                + r["usage"]["output_tokens"].as_u64().unwrap_or(0);
            format!(
                "turn {} · {calls} tool calls · {tokens} tokens · {}",
                p["turn"],
                clip(&text_out, 60)
            )
        }
        "tool_call_intent" => format!(
            "{} {} {}",
            text(&p["call_id"]),
            text(&p["tool"]),
            clip(&text(&p["arguments"]), 80)
        ),
        "tool_result" => format!(
            "{} {}{} ({} ms)",
            text(&p["call_id"]),
            if p["is_error"] == true { "error: " } else { "" },
            clip(&text(&p["output"]), 80),
            p["duration_ms"]
        ),
        "tool_replayed" => format!(
            "{} {} replayed after the restore{} ({} ms)",
            text(&p["call_id"]),
            text(&p["tool"]),
            if p["same_output"] == true {
                ", same output"
            } else {
                ", different output"
            },
            p["duration_ms"]
        ),
        "run_completed" => clip(&text(&p["output"]), 100),
        "run_failed" | "output_invalid" => clip(&text(&p["error"]), 100),
        "budget_exceeded" => format!(
            "{} (limit {}, used {})",
            text(&p["budget"]),
            p["limit"],
            p["used"]
        ),
        _ => clip(&p.to_string(), 100),
    }
}

pub async fn verify(store: &Store, run: &str, json: bool) -> anyhow::Result<ExitCode> {
    let run_id = find_run(store, run).await?;
    let events = store.events(&run_id).await?;
    let result = verify_chain(&events);
    if json {
        let v = match &result {
            Ok(()) => serde_json::json!({
                "run_id": run_id, "ok": true, "events": events.len(),
                "last_hash": events.last().map(|e| e.hash.clone()),
            }),
            Err(b) => serde_json::json!({
                "run_id": run_id, "ok": false, "events": events.len(),
                "bad_seq": b.seq, "bad_kind": b.kind, "reason": b.reason,
            }),
        };
        println!("{v}");
    }
    match result {
        Ok(()) => {
            if !json {
                let last = events.last().map(|e| &e.hash[..16]).unwrap_or("-");
                println!(
                    "ok: run {run_id}: {} events, hash chain intact (last hash {last}…)",
                    events.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(b) => {
            if !json {
                eprintln!("TAMPERED: run {run_id}: the first bad event is {b}");
                eprintln!(
                    "  hint: events from {} on cannot be trusted; compare with a backup of the store",
                    b.seq
                );
            }
            Ok(ExitCode::from(exit::TAMPERED))
        }
    }
}
