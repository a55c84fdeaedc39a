//! `cordon stats`: the figures a platform team watches, from the runs' logs.

use super::store_failure;
use super::trace::duration;
use crate::render::plural;
use cordon_evidence::stats::{RunFigures, run_figures, summarize};
use cordon_store::Store;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// What to count.
pub struct Filter {
    /// Only runs started this long ago or later.
    pub since: Option<std::time::Duration>,
    /// Only runs of this agent.
    pub agent: Option<String>,
}

/// `cordon stats [--since DURATION] [--agent NAME] [--json]`.
pub async fn stats(
    store: Option<&Store>,
    config: &cordon_session::Config,
    filter: &Filter,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut runs: Vec<RunFigures> = Vec::new();
    let mut unreadable = 0u64;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    let from_ms = filter
        .since
        .map(|d| now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    if let Some(store) = store {
        for run_id in store.run_ids().await.map_err(store_failure)? {
            let Ok(events) = store.events(&run_id).await else {
                unreadable += 1;
                continue;
            };
            let recorded = cordon_core::RunStatus::of_events(&events);
            let status = store.live_status(&run_id, recorded);
            let Some(f) = run_figures(&events, status) else {
                unreadable += 1;
                continue;
            };
            if from_ms.is_some_and(|from| f.started_ms < from)
                || filter.agent.as_ref().is_some_and(|a| *a != f.agent)
            {
                continue;
            }
            runs.push(f);
        }
    }
    let price =
        |model: &str, usage: &cordon_core::Usage| config.prices.get(model).map(|p| p.cost(usage));
    let s = summarize(&runs, &price);
    if json {
        let mut v = serde_json::to_value(&s)?;
        v["unreadable_runs"] = unreadable.into();
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let scope = match (&filter.since, &filter.agent) {
        (Some(d), Some(a)) => format!(
            " of agent {a} in the last {}",
            humantime::format_duration(*d)
        ),
        (Some(d), None) => format!(" in the last {}", humantime::format_duration(*d)),
        (None, Some(a)) => format!(" of agent {a}"),
        (None, None) => String::new(),
    };
    if s.runs == 0 {
        println!("no runs{scope}");
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.0}%", r * 100.0));
    let list = |m: &BTreeMap<String, u64>| {
        if m.is_empty() {
            return "none".to_string();
        }
        let mut v: Vec<(&String, &u64)> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(k, n)| format!("{n} × {k}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let ms = |v: Option<i64>| v.map_or("-".to_string(), duration);
    let ended = ["completed", "failed", "budget_exceeded"]
        .iter()
        .filter_map(|k| s.by_status.get(*k))
        .sum::<u64>();
    println!("{}{scope}", plural(s.runs, "run", "runs"));
    println!("  by status           {}", list(&s.by_status));
    println!(
        "  completion rate     {} of the {} that ended",
        pct(s.completion_rate),
        ended
    );
    println!("  failures            {}", list(&s.failures));
    println!(
        "  approvals           {} requested; waited p50 {}, p95 {}",
        s.approvals_requested,
        ms(s.approval_wait_p50_ms),
        ms(s.approval_wait_p95_ms)
    );
    println!(
        "  people acted in     {} of {} runs ({})",
        s.runs_with_intervention,
        s.runs,
        pct(s.intervention_ratio)
    );
    println!("  denials by rule     {}", list(&s.denials_by_rule));
    println!(
        "  escapes blocked     {} (network requests refused; denied system calls are not recorded)",
        list(&s.refused_requests_by_rule)
    );
    println!(
        "  per completed run   {} tokens; {}",
        s.tokens_per_completed_run
            .map_or("-".to_string(), |t| format!("{t:.0}")),
        match s.cost_per_completed_run {
            Some(c) => format!(
                "${c:.4} (over {} with a price in the config)",
                plural(s.priced_completed_runs, "run", "runs")
            ),
            None => "no cost (no model of theirs has a price in the config)".into(),
        }
    );
    println!(
        "  duration            p50 {}, p95 {} (first event to last, less waits for people)",
        ms(s.duration_p50_ms),
        ms(s.duration_p95_ms)
    );
    if unreadable > 0 {
        println!(
            "  note: {} could not be read (`cordon verify --all` says why)",
            plural(unreadable, "run", "runs")
        );
    }
    Ok(ExitCode::SUCCESS)
}
