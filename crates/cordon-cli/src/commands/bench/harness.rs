//! `cordon bench harness`: what a turn of the agent loop costs cordon, against the scripted
//! server with zero model delay, at a short and a long run side by side (a long run's
//! history is larger, so anything cordon does per turn in proportion to it shows up as a
//! higher cost per turn).

use super::percentile;
use crate::cli::ApiArg;
use cordon_core::Event;
use cordon_harness::{Agent, RunObserver, Runner};
use cordon_model::{Api, ModelClient, ProviderConfig};
use cordon_testkit::{Script, ScriptedCall, ScriptedServer, Turn};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Notes when each event was appended.
#[derive(Default)]
struct Clock {
    marks: Mutex<Vec<(String, Instant)>>,
}

impl RunObserver for Clock {
    fn on_event(&self, event: &Event) {
        self.marks
            .lock()
            .expect("clock lock")
            .push((event.kind.clone(), Instant::now()));
    }
}

/// One measured run.
struct Measured {
    turns: u32,
    events: usize,
    total: Duration,
    per_turn: Vec<Duration>,
    store_bytes: u64,
}

impl Measured {
    /// Wall time per turn, over the whole run.
    fn mean(&self) -> Duration {
        self.total / self.turns
    }

    fn json(&self) -> serde_json::Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pair = |v: &[Duration]| serde_json::json!({ "median": ms(percentile(v, 50)), "p95": ms(percentile(v, 95)) });
        serde_json::json!({
            "turns": self.turns, "events": self.events, "total_ms": ms(self.total),
            "mean_per_turn_ms": ms(self.mean()),
            "per_turn_ms": pair(&self.per_turn),
            "store_bytes": self.store_bytes,
        })
    }
}

/// A scripted session of `turns` model calls, each but the last asking for one calculator
/// call, the run log in a fresh file on disk.
async fn measure(turns: u32, api: Api) -> anyhow::Result<Measured> {
    let mut script = Script::default();
    for i in 1..turns {
        script.turns.push(Turn {
            tool_calls: vec![ScriptedCall {
                name: "calculator".into(),
                arguments: Some(serde_json::json!({ "expression": format!("{i} * 2 + 1") })),
                ..ScriptedCall::default()
            }],
            ..Turn::default()
        });
    }
    script.turns.push(Turn {
        text: Some("All done.".into()),
        ..Turn::default()
    });
    let server = ScriptedServer::start(script).await?;
    let mut provider = ProviderConfig::new("scripted", api, &server.base_url(), None);
    provider.max_retries = 0;
    let dir = tempfile::Builder::new().prefix("cordon-bench-").tempdir()?;
    let db = dir.path().join("bench.db");
    let store = cordon_store::Store::open(&db).await?;
    let clock = Arc::new(Clock::default());
    let runner = Runner::new(Arc::new(ModelClient::new(provider)?), store).observer(clock.clone());
    let agent = Agent::new("bench", "scripted:bench", "scripted-model")
        .tool(cordon_tools::builtin::calculator())
        .max_turns(turns);
    let started = Instant::now();
    let out = runner.run(&agent, "benchmark").await?;
    let total = started.elapsed();
    anyhow::ensure!(
        out.state.turns == turns,
        "the bench run ended early: {:?}",
        out.error
    );
    let marks = clock.marks.lock().expect("clock lock").clone();
    let at = |kind: &str| -> Vec<Instant> {
        marks
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, t)| *t)
            .collect()
    };
    // Each turn, from one model request being stored to the next (the last: to the end).
    let requests = at("model_request");
    let end = marks.last().map_or(started, |(_, t)| *t);
    let per_turn = requests
        .iter()
        .enumerate()
        .map(|(i, req)| requests.get(i + 1).copied().unwrap_or(end) - *req)
        .collect();
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    Ok(Measured {
        turns,
        events: marks.len(),
        total,
        per_turn,
        store_bytes: size("bench.db") + size("bench.db-wal"),
    })
}

/// How many times each length runs.
const REPEATS: usize = 5;

/// The run whose time per turn is the median of these.
fn median_run(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by_key(|m| m.mean());
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// `cordon bench harness`: `short` turns, then `turns`, side by side.
pub async fn harness(turns: u32, short: u32, api: ApiArg, json: bool) -> anyhow::Result<ExitCode> {
    let (short, long) = (short.max(2), turns.max(2));
    let wire = match api {
        ApiArg::Responses => Api::Responses,
        ApiArg::Chat => Api::Chat,
    };
    if !json {
        eprintln!(
            "running {short} and then {long} scripted turns ({}), {REPEATS} times each, run logs on disk …",
            wire.as_str()
        );
    }
    // A first short run warms the binary's pages and the allocator, as a user's second run
    // would find them. Then each length runs several times; the run whose time per turn is
    // the median of its length's is the one reported (a 2-core machine is noisy).
    let progress = crate::progress::Bars::for_stderr();
    progress.begin("runs", Some(1 + 2 * REPEATS as u64));
    measure(short, wire).await?;
    progress.advance(1);
    let mut shorts = Vec::new();
    for _ in 0..REPEATS {
        shorts.push(measure(short, wire).await?);
        progress.advance(1);
    }
    let mut longs = Vec::new();
    for _ in 0..REPEATS {
        longs.push(measure(long, wire).await?);
        progress.advance(1);
    }
    progress.end();
    let (a, b) = (median_run(shorts), median_run(longs));
    let ratio = b.mean().as_secs_f64() / a.mean().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "harness", "api": wire.as_str(), "runs": [a.json(), b.json()],
                "long_over_short_per_turn": ratio,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("harness bench ({}):", wire.as_str());
    println!(
        "  {:<34} {:>12} {:>12}",
        "",
        format!("{} turns", a.turns),
        format!("{} turns", b.turns)
    );
    let row = |label: &str, x: f64, y: f64| println!("  {label:<34} {x:>9.3} ms {y:>9.3} ms");
    row("per turn (whole run / turns)", ms(a.mean()), ms(b.mean()));
    println!(
        "  {:<34} {:>9.1} ms {:>9.1} ms",
        "whole run",
        ms(a.total),
        ms(b.total)
    );
    row(
        "per turn, median",
        ms(percentile(&a.per_turn, 50)),
        ms(percentile(&b.per_turn, 50)),
    );
    row(
        "per turn, p95",
        ms(percentile(&a.per_turn, 95)),
        ms(percentile(&b.per_turn, 95)),
    );
    println!(
        "  {:<34} {:>12} {:>12}",
        "events appended", a.events, b.events
    );
    println!(
        "  {:<34} {:>9.1} KiB {:>8.1} KiB",
        "run log on disk",
        a.store_bytes as f64 / 1024.0,
        b.store_bytes as f64 / 1024.0
    );
    println!("  per turn at {long} over per turn at {short}: {ratio:.2}×");
    println!(
        "  (the scripted server runs in this process and shares its CPU: all of a turn is cordon's cost)"
    );
    Ok(ExitCode::SUCCESS)
}
