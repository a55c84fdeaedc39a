//! Budgets: limits on what one run may spend, counted from its log (so they survive a
//! resume) and checked before each model call and each batch of tool calls.

use cordon_core::{RunState, Usage};
use serde::{Deserialize, Serialize};

/// Limits beyond `max_turns`. Unset means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Tool calls in the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u64>,
    /// Input tokens over all model calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_tokens: Option<u64>,
    /// Output tokens over all model calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Seconds since the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_time_secs: Option<u64>,
    /// US dollars, from usage and the model's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

impl Budgets {
    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Budgets::default()
    }
}

/// What a model costs, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million input tokens.
    pub input_per_mtok: f64,
    /// Per million cached input tokens (default: the input price).
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// Per million output tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of `usage`, in US dollars.
    pub fn cost(&self, u: &Usage) -> f64 {
        let cached = u.cached_input_tokens.min(u.input_tokens);
        let fresh = u.input_tokens - cached;
        (fresh as f64 * self.input_per_mtok
            + cached as f64 * self.cached_input_per_mtok.unwrap_or(self.input_per_mtok)
            + u.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// A budget that ran out: its name, its limit, what was used.
pub type Overrun = (&'static str, f64, f64);

/// What runs have spent: what budgets count, beside turns.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// Tool calls finished.
    pub tool_calls: u64,
    /// Tokens.
    pub usage: Usage,
    /// US dollars, at each run's model's price (0 without one).
    pub cost: f64,
}

impl Spent {
    /// What one run has spent, from its state, at `price`.
    pub fn of(state: &RunState, price: Option<&Price>) -> Self {
        Spent {
            tool_calls: state.tool_calls as u64,
            usage: state.usage,
            cost: price.map_or(0.0, |p| p.cost(&state.usage)),
        }
    }

    fn add(&mut self, other: &Spent) {
        self.tool_calls += other.tool_calls;
        self.usage.add(&other.usage);
        self.cost += other.cost;
    }
}

/// What a tree of runs (a run and the sub-agents it started) has spent, run by run, so that
/// their budgets are shared: each run of the tree writes what it has spent before each
/// check, and checks the tree's total against the budgets. Wall time counts from the tree's
/// first run's start.
#[derive(Debug, Default)]
pub struct Ledger {
    runs: std::sync::Mutex<std::collections::BTreeMap<String, Spent>>,
    started: std::sync::Mutex<Option<time::OffsetDateTime>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// Sets what `run` has spent so far (what it had spent before this process, on resume).
    pub fn set(&self, run: &str, spent: Spent) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run.to_string(), spent);
    }

    /// The tree's total.
    pub fn total(&self) -> Spent {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = Spent::default();
        for s in runs.values() {
            total.add(s);
        }
        total
    }

    /// Counts wall time from `t`, unless an earlier start is known.
    pub fn started_at(&self, t: time::OffsetDateTime) {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if started.is_none_or(|s| t < s) {
            *started = Some(t);
        }
    }

    /// Checks a batch of `calls` tool calls of `run` (which has spent `own`) against the
    /// tree's total, and when it fits, counts them as spent at once (until `run` writes what
    /// it has spent again), so that runs going on at once cannot all take the same room.
    pub fn take_batch(
        &self,
        run: &str,
        own: Spent,
        calls: usize,
        b: &Budgets,
        elapsed_secs: f64,
    ) -> Option<Overrun> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.insert(run.to_string(), own);
        let mut total = Spent::default();
        for s in runs.values() {
            total.add(s);
        }
        let overrun = before_tools(b, &total, calls, elapsed_secs);
        if overrun.is_none() {
            let mut taken = own;
            taken.tool_calls += calls as u64;
            runs.insert(run.to_string(), taken);
        }
        overrun
    }

    /// When the tree started, if known.
    pub fn started(&self) -> Option<time::OffsetDateTime> {
        *self.started.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The first budget used up before another model call, if any: `turns` is the run's own,
/// `spent` the run's (or its tree's).
pub fn before_model(
    max_turns: u32,
    b: &Budgets,
    turns: u32,
    spent: &Spent,
    elapsed_secs: f64,
) -> Option<Overrun> {
    let checks: [(&'static str, Option<f64>, f64); 5] = [
        ("max_turns", Some(max_turns as f64), turns as f64),
        (
            "max_input_tokens",
            b.max_input_tokens.map(|v| v as f64),
            spent.usage.input_tokens as f64,
        ),
        (
            "max_output_tokens",
            b.max_output_tokens.map(|v| v as f64),
            spent.usage.output_tokens as f64,
        ),
        (
            "max_wall_time_secs",
            b.max_wall_time_secs.map(|v| v as f64),
            elapsed_secs,
        ),
        ("max_cost_usd", b.max_cost_usd, spent.cost),
    ];
    checks
        .into_iter()
        .find_map(|(name, limit, used)| limit.filter(|l| used >= *l).map(|l| (name, l, used)))
}

/// The budget a batch of `calls` tool calls would break, if any.
pub fn before_tools(
    b: &Budgets,
    spent: &Spent,
    calls: usize,
    elapsed_secs: f64,
) -> Option<Overrun> {
    if let Some(max) = b.max_tool_calls {
        let after = spent.tool_calls + calls as u64;
        if after > max {
            return Some(("max_tool_calls", max as f64, after as f64));
        }
    }
    b.max_wall_time_secs
        .filter(|l| elapsed_secs >= *l as f64)
        .map(|l| ("max_wall_time_secs", l as f64, elapsed_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_cached_input_at_its_own_price() {
        let p = Price {
            input_per_mtok: 2.0,
            cached_input_per_mtok: Some(0.5),
            output_per_mtok: 8.0,
        };
        let u = Usage {
            input_tokens: 1_000_000,
            cached_input_tokens: 500_000,
            output_tokens: 250_000,
            reasoning_tokens: 0,
            estimated: false,
        };
        assert!((p.cost(&u) - (1.0 + 0.25 + 2.0)).abs() < 1e-9);
    }

    #[test]
    fn the_first_budget_used_up_is_named() {
        let mut s = RunState::default();
        s.usage.output_tokens = 120;
        let b = Budgets {
            max_output_tokens: Some(100),
            ..Budgets::default()
        };
        assert_eq!(
            before_model(10, &b, s.turns, &Spent::of(&s, None), 0.0),
            Some(("max_output_tokens", 100.0, 120.0))
        );
        s.tool_calls = 3;
        let b = Budgets {
            max_tool_calls: Some(4),
            ..Budgets::default()
        };
        assert_eq!(
            before_tools(&b, &Spent::of(&s, None), 2, 0.0),
            Some(("max_tool_calls", 4.0, 5.0))
        );
        assert_eq!(before_tools(&b, &Spent::of(&s, None), 1, 0.0), None);
        // A tree's runs count together.
        let ledger = Ledger::new();
        ledger.set("a", Spent::of(&s, None));
        ledger.set("b", Spent::of(&s, None));
        ledger.set("a", Spent::of(&s, None));
        assert_eq!(ledger.total().tool_calls, 6);
        assert_eq!(
            before_tools(&b, &ledger.total(), 1, 0.0),
            Some(("max_tool_calls", 4.0, 7.0))
        );
    }
}
