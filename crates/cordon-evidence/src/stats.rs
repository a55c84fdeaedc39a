//! Fleet figures: what a platform team watches across many runs, computed from their logs
//! (`cordon stats`).

use crate::trace::{SpanKind, millis, spans};
use cordon_core::{Event, EventPayload, RunState, RunStatus, Usage};
use serde::Serialize;
use std::collections::BTreeMap;

/// What one run contributes to the figures.
#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    /// The run.
    pub run_id: String,
    /// Its agent's name.
    pub agent: String,
    /// The model's name at its provider.
    pub model: String,
    /// Where it stands (as `cordon runs` shows it).
    pub status: RunStatus,
    /// When it started, in ms since the epoch.
    pub started_ms: i64,
    /// From its first event to its last.
    pub duration_ms: i64,
    /// The same, less the time it waited for people.
    pub working_ms: i64,
    /// Tokens spent.
    pub usage: Usage,
    /// How long each approval it asked for waited for a decision (ms; unanswered ones to
    /// its last event).
    pub approval_waits_ms: Vec<i64>,
    /// Whether a person had to act: an approval, a rejection, a host, a resume after a
    /// pause.
    pub intervened: bool,
    /// Calls the policy denied, by rule (`policy` when no rule is named).
    pub denied_calls: BTreeMap<String, u64>,
    /// Network requests refused, by rule.
    pub refused_requests: BTreeMap<String, u64>,
    /// For a run that failed or ran out of budget, what class of failure.
    pub failure: Option<String>,
}

/// The figures of one run, from its events; `status` is its live status.
pub fn run_figures(events: &[Event], status: RunStatus) -> Option<RunFigures> {
    let first = events.first()?;
    let state = RunState::fold(events).ok()?;
    let spans = spans(events);
    let root = spans.first()?;
    let waits: Vec<i64> = spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::Approval | SpanKind::Wait))
        .map(|s| s.duration_ms())
        .collect();
    let approval_waits_ms = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Approval)
        .map(|s| s.duration_ms())
        .collect();
    let mut denied_calls = BTreeMap::new();
    let mut refused_requests = BTreeMap::new();
    let mut intervened = false;
    let mut failure = None;
    for e in events {
        let Ok(p) = EventPayload::from_parts(&e.kind, &e.payload) else {
            continue;
        };
        match p {
            EventPayload::PolicyDecision { verdict, rules, .. } if verdict == "deny" => {
                count_rules(&mut denied_calls, &rules, "policy");
            }
            EventPayload::NetworkRequest {
                verdict,
                rules,
                count,
                ..
            } if verdict == "deny" => {
                for _ in 0..count.max(1) {
                    count_rules(&mut refused_requests, &rules, "network");
                }
            }
            EventPayload::ApprovalGranted { .. }
            | EventPayload::ApprovalRejected { .. }
            | EventPayload::HostGranted { .. }
            | EventPayload::ApprovalRequested { .. }
            | EventPayload::HostRequested { .. } => intervened = true,
            EventPayload::RunFailed { error } => failure = Some(failure_class(&error)),
            EventPayload::BudgetExceeded { budget, .. } => {
                failure = Some(format!("budget {budget} ran out"));
            }
            EventPayload::RunCompleted { .. } => failure = None,
            _ => {}
        }
    }
    let agent = state.agent.as_ref();
    Some(RunFigures {
        run_id: first.run_id.to_string(),
        agent: agent.map(|a| a.name.clone()).unwrap_or_default(),
        model: agent
            .map(|a| {
                a.model
                    .split_once(':')
                    .map_or(a.model.as_str(), |(_, m)| m)
                    .to_string()
            })
            .unwrap_or_default(),
        status,
        started_ms: millis(&first.ts).unwrap_or(0),
        duration_ms: root.duration_ms(),
        working_ms: root
            .duration_ms()
            .saturating_sub(waits.iter().fold(0, |a, b| a.saturating_add(*b)))
            .max(0),
        usage: state.usage,
        approval_waits_ms,
        intervened,
        denied_calls,
        refused_requests,
        failure: matches!(status, RunStatus::Failed | RunStatus::BudgetExceeded)
            .then_some(failure)
            .flatten(),
    })
}

fn count_rules(into: &mut BTreeMap<String, u64>, rules: &[String], none: &str) {
    if rules.is_empty() {
        *into.entry(none.to_string()).or_default() += 1;
    }
    for r in rules {
        *into.entry(r.clone()).or_default() += 1;
    }
}

/// A failure's class: its message up to the first colon (where the particulars begin),
/// without numbers, at most 80 characters.
pub fn failure_class(error: &str) -> String {
    let head = error.lines().next().unwrap_or_default();
    let head = head.split(':').next().unwrap_or(head).trim();
    let words: Vec<&str> = head
        .split_whitespace()
        .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
        .collect();
    let class: String = words.join(" ").chars().take(80).collect();
    if class.is_empty() {
        "other".into()
    } else {
        class
    }
}

/// The figures over many runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Runs counted.
    pub runs: u64,
    /// Runs by status.
    pub by_status: BTreeMap<String, u64>,
    /// Completed runs among those that ended (completed, failed or out of budget), 0 to 1.
    pub completion_rate: Option<f64>,
    /// Failed runs by class.
    pub failures: BTreeMap<String, u64>,
    /// Approvals asked for.
    pub approvals_requested: u64,
    /// How long approvals waited for a decision: median and 95th percentile, ms.
    pub approval_wait_p50_ms: Option<i64>,
    /// See `approval_wait_p50_ms`.
    pub approval_wait_p95_ms: Option<i64>,
    /// Runs in which a person had to act.
    pub runs_with_intervention: u64,
    /// `runs_with_intervention` over `runs`, 0 to 1.
    pub intervention_ratio: Option<f64>,
    /// Calls the policy denied, by rule.
    pub denials_by_rule: BTreeMap<String, u64>,
    /// Network requests out of a sandbox that were refused, by rule: escape attempts
    /// blocked, as far as cordon records them (denied system calls are not recorded).
    pub refused_requests_by_rule: BTreeMap<String, u64>,
    /// Tokens per completed run (mean).
    pub tokens_per_completed_run: Option<f64>,
    /// Cost per completed run (mean, US dollars), over completed runs whose model has a price.
    pub cost_per_completed_run: Option<f64>,
    /// Completed runs that had a price to count.
    pub priced_completed_runs: u64,
    /// How long runs took, first event to last, less the waits for people: median, ms.
    pub duration_p50_ms: Option<i64>,
    /// The same, 95th percentile.
    pub duration_p95_ms: Option<i64>,
}

/// The `q`-quantile (0 to 1) of `values`, nearest rank.
pub fn quantile(values: &[i64], q: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Sums `runs` into the figures; `cost` prices a run's usage by its model's name (`None`
/// when the model has no price).
pub fn summarize(runs: &[RunFigures], cost: &dyn Fn(&str, &Usage) -> Option<f64>) -> Stats {
    let mut s = Stats {
        runs: runs.len() as u64,
        ..Stats::default()
    };
    let mut waits = Vec::new();
    let mut durations = Vec::new();
    let (mut ended, mut completed) = (0u64, 0u64);
    let mut tokens = 0u64;
    let mut costs = Vec::new();
    for r in runs {
        *s.by_status
            .entry(r.status.as_str().to_string())
            .or_default() += 1;
        match r.status {
            RunStatus::Completed => {
                ended += 1;
                completed += 1;
                tokens = tokens.saturating_add(r.usage.total_tokens());
                costs.extend(cost(&r.model, &r.usage));
            }
            RunStatus::Failed | RunStatus::BudgetExceeded => ended += 1,
            _ => {}
        }
        if let Some(f) = &r.failure {
            *s.failures.entry(f.clone()).or_default() += 1;
        }
        s.approvals_requested += r.approval_waits_ms.len() as u64;
        waits.extend(&r.approval_waits_ms);
        s.runs_with_intervention += u64::from(r.intervened);
        for (rule, n) in &r.denied_calls {
            *s.denials_by_rule.entry(rule.clone()).or_default() += n;
        }
        for (rule, n) in &r.refused_requests {
            *s.refused_requests_by_rule.entry(rule.clone()).or_default() += n;
        }
        if !matches!(r.status, RunStatus::Running) {
            durations.push(r.working_ms);
        }
    }
    s.completion_rate = (ended > 0).then(|| completed as f64 / ended as f64);
    s.intervention_ratio = (s.runs > 0).then(|| s.runs_with_intervention as f64 / s.runs as f64);
    s.approval_wait_p50_ms = quantile(&waits, 0.5);
    s.approval_wait_p95_ms = quantile(&waits, 0.95);
    s.tokens_per_completed_run = (completed > 0).then(|| tokens as f64 / completed as f64);
    s.priced_completed_runs = costs.len() as u64;
    s.cost_per_completed_run =
        (!costs.is_empty()).then(|| costs.iter().sum::<f64>() / costs.len() as f64);
    s.duration_p50_ms = quantile(&durations, 0.5);
    s.duration_p95_ms = quantile(&durations, 0.95);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_and_failures_are_classed_without_particulars() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[5], 0.95), Some(5));
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.95), Some(95));
        assert_eq!(
            failure_class("the run ended without the output it must produce: review.md"),
            "the run ended without the output it must produce"
        );
        assert_eq!(
            failure_class("model error after 3 attempts: HTTP 500"),
            "model error after attempts"
        );
        assert_eq!(failure_class(""), "other");
    }
}
