//! Progress bars on a terminal: long work (building a workspace, checkpoints, restores,
//! benchmarks) shows how far it has got on stderr. Nothing is drawn when stderr is not a
//! terminal, and nothing for work that ends within [`QUIET_FOR`] (or
//! `CORDON_PROGRESS_AFTER_MS`), so quick steps never flicker.

use cordon_core::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long work goes before its bar appears, unless `CORDON_PROGRESS_AFTER_MS` says.
const QUIET_FOR: Duration = Duration::from_millis(400);

/// Draws progress on stderr, when stderr is a terminal.
pub struct Bars {
    state: Mutex<Option<Work>>,
    quiet_for: Duration,
}

struct Work {
    what: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Bars {
    /// Bars for this process: drawn only if stderr is a terminal.
    pub fn for_stderr() -> std::sync::Arc<dyn Progress> {
        if std::io::stderr().is_terminal() {
            let quiet_for = std::env::var("CORDON_PROGRESS_AFTER_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(QUIET_FOR, Duration::from_millis);
            std::sync::Arc::new(Bars {
                state: Mutex::new(None),
                quiet_for,
            })
        } else {
            std::sync::Arc::new(cordon_core::NoProgress)
        }
    }

    fn bar(what: &str, total: Option<u64>) -> ProgressBar {
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "  {msg} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("  {spinner} {msg}: {pos} files ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(what.to_string());
        bar
    }
}

impl Progress for Bars {
    fn begin(&self, what: &str, total: Option<u64>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Work { bar: Some(b), .. }) = state.take() {
            b.finish_and_clear();
        }
        *state = Some(Work {
            what: what.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            bar: None,
        });
    }

    fn advance(&self, n: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(work) = state.as_mut() else {
            return;
        };
        work.done += n;
        match &work.bar {
            Some(bar) => bar.set_position(work.done),
            None if work.started.elapsed() >= self.quiet_for => {
                let bar = Self::bar(&work.what, work.total);
                bar.set_position(work.done);
                bar.enable_steady_tick(Duration::from_millis(120));
                work.bar = Some(bar);
            }
            None => {}
        }
    }

    fn end(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Work { bar: Some(b), .. }) = state.take() {
            b.finish_and_clear();
        }
    }
}
