//! `cordon runs`, `cordon show` and `cordon verify`: reading the run log.

use super::find_run;
use crate::cli::StatusArg;
use crate::display::{clip, text};
use crate::exit;
use cordon_core::{Event, RunStatus};
use cordon_store::verify::{Problem, verify_run};
use cordon_store::{Store, StoredRow};
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
    let runs = store
        .list_runs(status, limit)
        .await
        .map_err(super::store_failure)?;
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
    let damaged = runs.iter().filter(|r| r.damaged.is_some()).count();
    println!(
        "{:<36}  {:<17}  {:<20}  {:>6}  {:<24}  TASK",
        "RUN", "STATUS", "STARTED", "EVENTS", "MODEL"
    );
    for r in runs {
        let started: String = r.started.chars().take(19).collect();
        let status = if r.damaged.is_some() {
            "DAMAGED"
        } else {
            r.status.as_str()
        };
        println!(
            "{:<36}  {:<17}  {:<20}  {:>6}  {:<24}  {}",
            clip(r.run_id.as_str(), 36),
            status,
            started.replace('T', " "),
            r.events,
            clip(&r.model, 24),
            clip(&r.task, 60)
        );
    }
    if damaged > 0 {
        eprintln!(
            "{damaged} run(s) have damaged records: `cordon verify --all` says what is wrong"
        );
        return Ok(ExitCode::from(exit::TAMPERED));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(store: &Store, run: &str, json: bool, raw: bool) -> anyhow::Result<ExitCode> {
    let run_id = find_run(store, run).await?;
    let rows = store.rows(&run_id).await.map_err(super::store_failure)?;
    let mut damaged = 0;
    for (i, row) in rows.iter().enumerate() {
        match row {
            StoredRow::Event(e) if json => println!("{}", serde_json::to_string(e)?),
            StoredRow::Event(e) => {
                println!(
                    "{:>4}  {}  {:<16}  {}",
                    e.seq,
                    e.ts,
                    clip(&e.kind, 16),
                    summary(e)
                );
                if raw && e.kind == "model_response" {
                    print_raw(&e.payload["response"]);
                }
            }
            StoredRow::Damaged { seq, reason } => {
                damaged += 1;
                let seq = seq.unwrap_or(i as u64);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "run_id": run_id, "seq": seq, "damaged": reason })
                    );
                } else {
                    println!("{seq:>4}  DAMAGED: {reason}");
                }
            }
        }
    }
    if damaged > 0 {
        eprintln!(
            "error: {damaged} stored event(s) of run {run_id} cannot be read; the others are shown"
        );
        eprintln!("  hint: `cordon verify {run_id}` checks the whole record");
        return Ok(ExitCode::from(exit::TAMPERED));
    }
    // What was shown is only worth believing if the record is intact: say so when it is not.
    let verdict = verify_run(store, &run_id)
        .await
        .map_err(super::store_failure)?;
    if let Some(first) = verdict.problems.first() {
        eprintln!(
            "TAMPERED: run {run_id}: {}; what is shown above cannot be trusted",
            describe(first)
        );
        eprintln!("  hint: `cordon verify {run_id}` lists every problem");
        return Ok(ExitCode::from(exit::TAMPERED));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the server sent for one response, and what decoding noticed, indented under it.
fn print_raw(response: &serde_json::Value) {
    for note in response["notes"].as_array().into_iter().flatten() {
        println!("        note: {}", clip(&text(note), 200));
    }
    let wire = &response["wire"];
    if wire.is_null() {
        println!(
            "        (what the server sent was not kept: nothing unexpected came; set record_raw = true for the provider to keep it always)"
        );
        return;
    }
    if let Some(events) = wire["events"].as_array() {
        for e in events {
            println!("        data: {}", clip(&text(e), 300));
        }
        if let Some(n) = wire["events_dropped"].as_u64() {
            println!("        ({n} more events were not kept: the capture is capped at 2 MiB)");
        }
    } else if !wire["body"].is_null() {
        println!("        body: {}", clip(&wire["body"].to_string(), 300));
    }
}

/// One line about an event, for people.
fn summary(e: &Event) -> String {
    let p = &e.payload;
    match e.kind.as_str() {
        "run_started" => {
            let mut line = format!(
                "agent {} · model {} ({}) · tools [{}]",
                text(&p["agent"]["name"]),
                clip(&text(&p["agent"]["model"]), 80),
                text(&p["agent"]["api"]),
                clip(
                    &p["agent"]["tools"]
                        .as_array()
                        .map(|t| t.iter().map(text).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                    120
                )
            );
            if let Some(ws) = p["sandbox"]["host_workspace"].as_str() {
                line.push_str(&format!(
                    " · workspace {} ({} tier)",
                    ws,
                    text(&p["sandbox"]["tier"])
                ));
            }
            line
        }
        "run_resumed" => {
            let mut parts = Vec::new();
            if let Some(ws) = p["workspace"].as_str() {
                parts.push(if p["restored"] == true {
                    format!("in {ws}, restored from the last checkpoint")
                } else {
                    format!("in {ws}")
                });
            }
            if let Some(c) = p["from_checkpoint"].as_str() {
                parts.push(format!("checkpoint {}", clip(c, 16)));
            }
            if let Some(r) = p["raised"].as_object() {
                parts.push(format!(
                    "raised {}",
                    r.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            parts.join(" · ")
        }
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
            let estimated = if r["usage"]["estimated"] == true {
                " (estimated: the server reported none)"
            } else {
                ""
            };
            let notes = r["notes"].as_array().map_or(0, Vec::len);
            let notes = if notes > 0 {
                format!(" · {notes} decoding notes (--raw)")
            } else {
                String::new()
            };
            format!(
                "turn {} · {calls} tool calls · {tokens} tokens{estimated}{notes} · {}",
                p["turn"],
                clip(&text_out, 60)
            )
        }
        "tool_call_intent" => format!(
            "{} {} {}",
            clip(&text(&p["call_id"]), 64),
            clip(&text(&p["tool"]), 64),
            clip(&text(&p["arguments"]), 80)
        ),
        "tool_result" => format!(
            "{} {}{} ({} ms)",
            clip(&text(&p["call_id"]), 64),
            if p["is_error"] == true { "error: " } else { "" },
            clip(&text(&p["output"]), 80),
            p["duration_ms"]
        ),
        "tool_replayed" => format!(
            "{} {} replayed after the restore{} ({} ms)",
            clip(&text(&p["call_id"]), 64),
            clip(&text(&p["tool"]), 64),
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

/// A problem, in one line.
pub fn describe(p: &Problem) -> String {
    p.to_string()
}

/// `cordon verify RUN` or `cordon verify --all`.
pub async fn verify(
    store: &Store,
    run: Option<&str>,
    all: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ids = match (run, all) {
        (Some(run), false) => vec![find_run(store, run).await?],
        (None, true) => store.run_ids().await.map_err(super::store_failure)?,
        _ => {
            return Err(exit::Failure::bad_input(
                "give one run, or --all",
                "`cordon verify RUN` checks one run; `cordon verify --all` every run in the store",
            ));
        }
    };
    let mut bad = 0;
    for run_id in &ids {
        let v = verify_run(store, run_id)
            .await
            .map_err(super::store_failure)?;
        if !v.ok() {
            bad += 1;
        }
        if json {
            let first = v.problems.first();
            println!(
                "{}",
                serde_json::json!({
                    "run_id": v.run_id, "ok": v.ok(), "events": v.events,
                    "last_hash": v.last_hash, "head": v.head, "head_expected": v.head_expected,
                    "bad_seq": first.and_then(|p| p.seq), "bad_kind": first.and_then(|p| p.kind.clone()),
                    "reason": first.map(|p| p.reason.clone()), "problems": v.problems,
                })
            );
            continue;
        }
        match v.problems.first() {
            None => {
                let last = v
                    .last_hash
                    .as_deref()
                    .map_or("-", |h| &h[..h.len().min(16)]);
                let head = match (&v.head, v.head_expected) {
                    (Some(_), _) => "head record matches",
                    (None, false) => {
                        "no head record (recorded before cordon kept them: events deleted at its end would not show)"
                    }
                    (None, true) => "no head record",
                };
                println!(
                    "ok: run {run_id}: {} events, hash chain intact, {head} (last hash {last}…)",
                    v.events
                );
            }
            Some(first) => {
                eprintln!("TAMPERED: run {run_id}: {}", describe(first));
                for p in &v.problems[1..] {
                    eprintln!("  also: {}", describe(p));
                }
                match first.seq {
                    Some(seq) => eprintln!(
                        "  hint: events from {seq} on cannot be trusted; compare with a backup of the store"
                    ),
                    None => eprintln!("  hint: compare with a backup of the store"),
                }
            }
        }
    }
    if all && !json {
        println!("{} runs checked, {bad} with problems", ids.len());
    }
    Ok(if bad > 0 {
        ExitCode::from(exit::TAMPERED)
    } else {
        ExitCode::SUCCESS
    })
}
