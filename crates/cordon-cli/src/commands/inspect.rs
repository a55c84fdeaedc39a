//! `cordon runs`, `cordon show` and `cordon verify`: reading the run log.

use super::find_run;
use crate::cli::StatusArg;
use crate::exit;
use crate::render::event::{Entry, LABEL_WIDTH, entry};
use crate::render::{Limit, Style, clip, clip_middle, displayable, safe, text};
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
        StatusArg::Interrupted => RunStatus::Interrupted,
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
        match status {
            Some(s) => eprintln!(
                "no run has status {} in {}",
                s.as_str(),
                store.path().display()
            ),
            None => eprintln!("no runs in {}", store.path().display()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let damaged = runs.iter().filter(|r| r.damaged.is_some()).count();
    println!(
        "{:<36}  {:<17}  {:<20}  {:>6}  {:<24}  TASK",
        "RUN", "STATUS", "STARTED", "EVENTS", "MODEL"
    );
    // Sub-agents go on with their tree: the first run of it is the one to resume.
    let stopped: Vec<&cordon_store::RunSummary> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Interrupted && r.parent.is_none())
        .collect();
    let interrupted_count = stopped.len();
    let interrupted = stopped.first().map(|r| r.run_id.to_string());
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
            clip_middle(&r.model, 24),
            match &r.parent {
                // A sub-agent: its tree's runs list it (`cordon show PARENT`).
                Some(p) => format!("↳ {} · of {}", clip(&r.task, 40), clip(p.as_str(), 13)),
                None => clip(&r.task, 60),
            }
        );
    }
    if let Some(r) = interrupted {
        eprintln!(
            "interrupted: no process drives {}; `cordon resume {}` continues one",
            if interrupted_count == 1 {
                "this run".to_string()
            } else {
                format!("these {interrupted_count} runs")
            },
            r
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

/// What `cordon show` prints.
pub struct ShowOptions {
    /// Only this call, in full.
    pub call: Option<String>,
    /// Every long text in full.
    pub full: bool,
    /// JSON Lines, as stored.
    pub json: bool,
    /// What the server sent, under each model response.
    pub raw: bool,
}

/// Prints the sub-agents a run started, and theirs, as a tree: each one's tool, status, run,
/// the call that started it and how it ended.
async fn sub_agents(
    store: &Store,
    run_id: &cordon_core::RunId,
    style: Style,
) -> anyhow::Result<()> {
    let mut stack: Vec<(cordon_core::RunId, String, usize)> = store
        .children(run_id)
        .await
        .map_err(super::store_failure)?
        .into_iter()
        .rev()
        .map(|(id, call)| (id, call, 1))
        .collect();
    if stack.is_empty() {
        return Ok(());
    }
    println!("{}", style.dim("── sub-agents ──"));
    let mut shown = 0;
    while let Some((id, call, depth)) = stack.pop() {
        shown += 1;
        if shown > 1000 {
            println!("  … (more than 1000: `cordon show RUN` on one of them shows its own)");
            break;
        }
        let events = store.events(&id).await.map_err(super::store_failure)?;
        let tool = events
            .iter()
            .find(|e| e.kind == "spawned_by")
            .and_then(|e| e.payload["tool"].as_str())
            .unwrap_or("?")
            .to_string();
        let (status, ended) = match cordon_core::RunState::fold(&events) {
            Ok(state) => {
                let status = store.live_status(&id, state.status);
                let ended = state
                    .final_output
                    .clone()
                    .or(state.ended_by.clone())
                    .map(|t| format!(" · “{}”", clip(t.trim(), 80)))
                    .unwrap_or_default();
                (status.as_str().to_string(), ended)
            }
            Err(e) => (
                format!("unreadable ({})", clip(&e.to_string(), 60)),
                String::new(),
            ),
        };
        println!(
            "{:indent$}↳ {} · {status} · run {id} · call {}{ended}",
            "",
            clip(&tool, 64),
            clip(&call, 64),
            indent = depth * 2
        );
        for (child, c) in store
            .children(&id)
            .await
            .map_err(super::store_failure)?
            .into_iter()
            .rev()
        {
            stack.push((child, c, depth + 1));
        }
    }
    Ok(())
}

pub async fn show(store: &Store, run: &str, how: &ShowOptions) -> anyhow::Result<ExitCode> {
    let run_id = find_run(store, run).await?;
    let rows = store.rows(&run_id).await.map_err(super::store_failure)?;
    let style = Style::stdout();
    let limit = if how.full || how.call.is_some() {
        Limit::Full
    } else {
        Limit::Clip
    };
    if let Some(call) = &how.call {
        let calls = call_ids(&rows);
        if !calls.iter().any(|c| c == call) {
            let known = if calls.is_empty() {
                "it made no tool calls".to_string()
            } else {
                format!("its calls are {}", clip(&calls.join(", "), 300))
            };
            return Err(exit::Failure::bad_input(
                format!("run {run_id} has no call '{call}': {known}"),
                "`cordon show RUN` lists each call's id beside its tool",
            ));
        }
    }
    let mut damaged = 0;
    let mut day = String::new();
    for (i, row) in rows.iter().enumerate() {
        match row {
            StoredRow::Event(e) if how.json => {
                if how.call.is_none() || belongs_to(e, how.call.as_deref()) {
                    println!("{}", serde_json::to_string(e)?);
                }
            }
            StoredRow::Event(e) => {
                if !belongs_to(e, how.call.as_deref()) {
                    continue;
                }
                let ts = safe(&e.ts);
                let (date, time) = ts.split_once('T').unwrap_or(("", &ts));
                if date != day {
                    println!("{}", style.dim(&format!("── {date} ──")));
                    day = date.to_string();
                }
                let time = time.trim_end_matches('Z');
                let entry = match displayable(e) {
                    Ok(p) => entry(&p, style, limit),
                    Err(err) => Entry {
                        label: "unknown",
                        summary: format!(
                            "{} (this cordon cannot read it: {}) {}",
                            clip(&e.kind, 40),
                            clip(&err.to_string(), 80),
                            clip(&e.payload.to_string(), 100)
                        ),
                        details: Vec::new(),
                    },
                };
                println!(
                    "{:>4}  {time:<12}  {:<width$}  {}",
                    e.seq,
                    entry.label,
                    entry.summary,
                    width = LABEL_WIDTH
                );
                for line in &entry.details {
                    println!("{:indent$}{line}", "", indent = DETAIL_INDENT);
                }
                if how.raw && e.kind == "model_response" {
                    print_raw(&e.payload["response"]);
                }
            }
            StoredRow::Damaged { seq, reason } => {
                damaged += 1;
                let seq = seq.unwrap_or(i as u64);
                if how.json {
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
    if !how.json && how.call.is_none() {
        let target = store
            .tree_root(&run_id)
            .await
            .unwrap_or_else(|_| run_id.clone());
        still_going(store, &run_id, &target, &rows, style);
        sub_agents(store, &run_id, style).await?;
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

/// Under a run whose log ends without an end: whether a process still drives it, or it was
/// interrupted and how to go on.
fn still_going(
    store: &Store,
    run_id: &cordon_core::RunId,
    target: &cordon_core::RunId,
    rows: &[StoredRow],
    style: Style,
) {
    let recorded = rows
        .iter()
        .rev()
        .find_map(|r| match r {
            StoredRow::Event(e) => RunStatus::after_kind(&e.kind),
            StoredRow::Damaged { .. } => None,
        })
        .unwrap_or(RunStatus::Running);
    let indent = DETAIL_INDENT - LABEL_WIDTH - 2;
    match store.live_status(run_id, recorded) {
        RunStatus::Running => {
            let pid = store
                .owner(run_id)
                .flatten()
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            println!(
                "{:indent$}{}  running: still driven by another process{pid}; `cordon pause {run_id}` pauses it after its current step",
                "",
                style.yellow(&format!("{:<LABEL_WIDTH$}", "status")),
            );
        }
        RunStatus::Interrupted => println!(
            "{:indent$}{}  interrupted: no process drives this run any more (it was killed or crashed before recording its end); `cordon resume {target}` continues it",
            "",
            style.yellow(&format!("{:<LABEL_WIDTH$}", "status")),
        ),
        _ => {}
    }
}

/// Where lines under an event start: past the sequence number, time and label.
const DETAIL_INDENT: usize = 4 + 2 + 12 + 2 + LABEL_WIDTH + 2;

/// The ids of the run's tool calls, in order.
fn call_ids(rows: &[StoredRow]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| match r {
            StoredRow::Event(e) if e.kind == "tool_call_intent" => {
                e.payload["call_id"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .collect()
}

/// Whether `e` is about `call` (every event is, when no call is asked for).
fn belongs_to(e: &Event, call: Option<&str>) -> bool {
    call.is_none_or(|c| e.payload["call_id"].as_str() == Some(c))
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

/// A problem, in one line.
pub fn describe(p: &Problem) -> String {
    p.to_string()
}

/// `cordon verify RUN` or `cordon verify --all`.
pub async fn verify(
    store: &Store,
    run: Option<&str>,
    all: bool,
    key: Option<&cordon_store::signing::PublicKey>,
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
        let v = cordon_store::verify::verify_run_with(store, run_id, key)
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
                    "signed_by": v.signed_by, "key_trusted": v.key_trusted,
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
                let signed = match (&v.signed_by, v.key_trusted) {
                    (Some(k), true) => format!(", signed by {k}"),
                    (Some(k), false) => format!(
                        ", signed by {k}, the key its head names (this store has no key file to trust; pass --key with the store's public key)"
                    ),
                    (None, _) if v.events > 0 => {
                        ", not signed (this store has no signing key: it was recorded before cordon signed heads, or the key was removed)".into()
                    }
                    (None, _) => String::new(),
                };
                println!(
                    "ok: run {run_id}: {} events, hash chain intact, {head}{signed} (last hash {last}…)",
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
        println!(
            "{} checked, {bad} with problems",
            crate::render::plural(ids.len() as u64, "run", "runs")
        );
    }
    Ok(if bad > 0 {
        ExitCode::from(exit::TAMPERED)
    } else {
        ExitCode::SUCCESS
    })
}
