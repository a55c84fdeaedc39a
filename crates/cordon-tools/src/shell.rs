//! `exec_command` and `write_stdin`: the model's shell, inside a sandbox, with the reference
//! SDK's names and semantics.
//!
//! A command runs until it exits or its yield window (`yield_time_ms`) ends, whichever comes
//! first. One still running then stays alive as a session; its id goes back to the model,
//! which talks to it with `write_stdin`. A separate hard timeout kills any command that runs
//! too long, and at most [`MAX_SESSIONS`] sessions live at once.

use crate::exec_report::{ExecReport, ExecStatus, TIMEOUT_MARK};
use crate::truncate::{DEFAULT_MAX_TOKENS, approx_tokens, truncate_middle};
use crate::{Effects, FunctionTool, Tool, ToolError};
use cordon_sandbox::{Process, ProcessEvent, Sandbox};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What the model is told `exec_command` does.
pub const EXEC_DESCRIPTION: &str = "Runs a shell command in the sandboxed workspace and returns its output. A command still running after yield_time_ms keeps running as a session: use write_stdin with its session ID to send input or read more output.";
/// What the model is told `write_stdin` does.
pub const WRITE_DESCRIPTION: &str = "Writes characters to a running exec_command session's standard input (or nothing, to wait for more output) and returns what it printed since.";

/// The most sessions alive at once; exited ones are pruned first, then the oldest.
pub const MAX_SESSIONS: usize = 64;
/// `exec_command`'s default yield window.
const DEFAULT_EXEC_YIELD_MS: u64 = 10_000;
/// `write_stdin`'s default yield window.
const DEFAULT_WRITE_YIELD_MS: u64 = 250;
/// The longest yield window a call may ask for.
const MAX_YIELD_MS: u64 = 300_000;

/// Arguments of `exec_command`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// The shell command to run.
    pub cmd: String,
    /// Working directory, relative to the workspace (default: the workspace).
    #[serde(default)]
    pub workdir: Option<String>,
    /// The shell to run it with (default /bin/bash).
    #[serde(default)]
    pub shell: Option<String>,
    /// Run as a login shell (`-lc`), reading profile files (default true).
    #[serde(default)]
    pub login: Option<bool>,
    /// Run under a pseudo-terminal (for interactive programs).
    #[serde(default)]
    pub tty: Option<bool>,
    /// How long to wait for output before returning, in milliseconds (default 10000). A
    /// command still running then keeps running as a session.
    #[serde(default)]
    pub yield_time_ms: Option<u64>,
    /// The most output to return, in tokens (default 10000); the middle is cut beyond it.
    #[serde(default)]
    pub max_output_tokens: Option<usize>,
}

/// Arguments of `write_stdin`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// The session, as `exec_command` returned it.
    pub session_id: u64,
    /// Characters to write to its standard input (empty: only wait for output).
    #[serde(default)]
    pub chars: String,
    /// How long to wait for output, in milliseconds (default 250).
    #[serde(default)]
    pub yield_time_ms: Option<u64>,
    /// The most output to return, in tokens (default 10000).
    #[serde(default)]
    pub max_output_tokens: Option<usize>,
}

/// The most of a session's output kept between two responses: its first and last this
/// many bytes (the model sees less still; see `max_output_tokens`).
const SESSION_KEEP: usize = 256 * 1024;

/// What a session has produced and how it ended, filled in by its reader task. Its output is
/// bounded whatever the command prints.
struct SessionState {
    output: cordon_sandbox::HeadTail,
    exit: Option<ExecStatus>,
}

impl Default for SessionState {
    fn default() -> Self {
        SessionState {
            output: cordon_sandbox::HeadTail::new(SESSION_KEEP, SESSION_KEEP),
            exit: None,
        }
    }
}

struct Session {
    process: Arc<Process>,
    state: Arc<Mutex<SessionState>>,
    changed: Arc<Notify>,
    started: Instant,
}

/// The shell tools over one sandbox. Clone the [`Arc`] from [`ShellTools::tools`] into an agent.
pub struct ShellTools {
    sandbox: Arc<dyn Sandbox>,
    sessions: Mutex<BTreeMap<u64, Session>>,
    next_session: Mutex<u64>,
    hard_timeout: Duration,
}

impl ShellTools {
    /// Shell tools running in `sandbox`; no command may run longer than `hard_timeout`.
    pub fn new(sandbox: Arc<dyn Sandbox>, hard_timeout: Duration) -> Arc<Self> {
        Arc::new(ShellTools {
            sandbox,
            sessions: Mutex::new(BTreeMap::new()),
            next_session: Mutex::new(1),
            hard_timeout,
        })
    }

    /// The two tools, `exec_command` and `write_stdin`, to add to an agent.
    pub fn tools(self: &Arc<Self>) -> Vec<Arc<dyn Tool>> {
        // Commands in a sandbox without network or writable host paths touch only the
        // workspace, which a restore puts back: then resume may run them again.
        let effects = if self.sandbox.isolation().confined_to_workspace {
            Effects::Workspace
        } else {
            Effects::External
        };
        let (exec, write) = (self.clone(), self.clone());
        vec![
            Arc::new(
                FunctionTool::new("exec_command", EXEC_DESCRIPTION, move |a: ExecArgs| {
                    let tools = exec.clone();
                    async move { tools.exec(a).await }
                })
                .with_effects(effects),
            ),
            Arc::new(
                FunctionTool::new("write_stdin", WRITE_DESCRIPTION, move |a: WriteArgs| {
                    let tools = write.clone();
                    async move { tools.write(a).await }
                })
                .with_effects(effects),
            ),
        ]
    }

    /// How many sessions are alive.
    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    async fn exec(&self, a: ExecArgs) -> Result<String, ToolError> {
        let started = Instant::now();
        let shell = a.shell.unwrap_or_else(|| "/bin/bash".into());
        let flag = if a.login.unwrap_or(true) { "-lc" } else { "-c" };
        let tty = a.tty.unwrap_or(false).then_some((24, 80));
        let argv = vec![shell, flag.to_string(), a.cmd];
        let cwd = a.workdir.unwrap_or_else(|| ".".into());
        let process = self
            .sandbox
            .spawn(&argv, &cwd, &[], tty)
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let session = self.start_session(process);
        let yield_ms = a
            .yield_time_ms
            .unwrap_or(DEFAULT_EXEC_YIELD_MS)
            .min(MAX_YIELD_MS);
        self.respond(session, yield_ms, a.max_output_tokens, started)
            .await
    }

    async fn write(&self, a: WriteArgs) -> Result<String, ToolError> {
        let started = Instant::now();
        let process = {
            let sessions = self.sessions.lock().expect("sessions lock");
            let s = sessions.get(&a.session_id).ok_or_else(|| {
                ToolError::Failed(format!(
                    "no session {}: it exited (its output was returned then) or never existed",
                    a.session_id
                ))
            })?;
            s.process.clone()
        };
        if !a.chars.is_empty() {
            process
                .write(a.chars.as_bytes())
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
        }
        let yield_ms = a
            .yield_time_ms
            .unwrap_or(DEFAULT_WRITE_YIELD_MS)
            .min(MAX_YIELD_MS);
        self.respond(a.session_id, yield_ms, a.max_output_tokens, started)
            .await
    }

    /// Registers a process as a session and starts its reader and its hard timeout.
    fn start_session(&self, mut process: Process) -> u64 {
        let id = {
            let mut next = self.next_session.lock().expect("session id lock");
            let id = *next;
            *next += 1;
            id
        };
        let state = Arc::new(Mutex::new(SessionState::default()));
        let changed = Arc::new(Notify::new());
        let events = process.take_events();
        let process = Arc::new(process);
        tokio::spawn(read_session(events, state.clone(), changed.clone()));
        let killer = process.clone();
        let hard = self.hard_timeout;
        let timeout_state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hard).await;
            if timeout_state.lock().expect("state lock").exit.is_none() {
                let _ = killer.kill().await;
                timeout_state.lock().expect("state lock").output.push(
                    format!(
                        "\n{TIMEOUT_MARK}{}s hard timeout, with everything it started]\n",
                        hard.as_secs()
                    )
                    .as_bytes(),
                );
            }
        });
        let mut sessions = self.sessions.lock().expect("sessions lock");
        prune(&mut sessions);
        sessions.insert(
            id,
            Session {
                process,
                state,
                changed,
                started: Instant::now(),
            },
        );
        id
    }

    /// Waits until the session exits or the yield window ends, then returns what it printed.
    async fn respond(
        &self,
        id: u64,
        yield_ms: u64,
        max_tokens: Option<usize>,
        started: Instant,
    ) -> Result<String, ToolError> {
        let (state, changed) = {
            let sessions = self.sessions.lock().expect("sessions lock");
            let s = sessions
                .get(&id)
                .ok_or_else(|| ToolError::Failed(format!("session {id} is gone")))?;
            (s.state.clone(), s.changed.clone())
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(yield_ms);
        loop {
            let notified = changed.notified();
            if state.lock().expect("state lock").exit.is_some() {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        let (output, total, dropped, exit) = {
            let mut st = state.lock().expect("state lock");
            let (total, dropped) = (st.output.total(), st.output.dropped());
            (st.output.take_marked(), total, dropped, st.exit.clone())
        };
        if exit.is_some() {
            self.sessions.lock().expect("sessions lock").remove(&id);
        }
        let text = String::from_utf8_lossy(&output);
        Ok(ExecReport {
            chunk_id: chunk_id(),
            wall_secs: started.elapsed().as_secs_f64(),
            status: exit.unwrap_or(ExecStatus::Running(id)),
            original_tokens: (total as usize).div_ceil(4).max(approx_tokens(&text)),
            dropped_bytes: dropped,
            output: truncate_middle(&text, max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        }
        .to_string())
    }
}

/// Drops exited sessions, then the oldest, until there is room for one more.
fn prune(sessions: &mut BTreeMap<u64, Session>) {
    if sessions.len() < MAX_SESSIONS {
        return;
    }
    sessions.retain(|_, s| s.state.lock().expect("state lock").exit.is_none());
    while sessions.len() >= MAX_SESSIONS {
        let oldest = sessions
            .iter()
            .min_by_key(|(_, s)| s.started)
            .map(|(id, _)| *id);
        if let Some(id) = oldest
            && let Some(s) = sessions.remove(&id)
        {
            let p = s.process.clone();
            tokio::spawn(async move {
                let _ = p.kill().await;
            });
        }
    }
}

/// Collects a process's events into its session's state.
async fn read_session(
    mut events: tokio::sync::mpsc::Receiver<ProcessEvent>,
    state: Arc<Mutex<SessionState>>,
    changed: Arc<Notify>,
) {
    while let Some(event) = events.recv().await {
        let mut st = state.lock().expect("state lock");
        match event {
            ProcessEvent::Started(_) => continue,
            ProcessEvent::Output(_, data) => st.output.push(&data),
            ProcessEvent::Exited { code, signal } => {
                st.exit = Some(match (code, signal) {
                    (Some(c), _) => ExecStatus::Exited(c),
                    (None, Some(s)) => ExecStatus::Signaled(s),
                    (None, None) => ExecStatus::Ended("Process ended".into()),
                });
            }
            ProcessEvent::Failed(why) => {
                st.exit = Some(ExecStatus::Ended(format!("Process failed: {why}")))
            }
        }
        drop(st);
        changed.notify_waiters();
    }
    let mut st = state.lock().expect("state lock");
    if st.exit.is_none() {
        st.exit = Some(ExecStatus::Ended(
            "Process ended (the sandbox stopped)".into(),
        ));
    }
    drop(st);
    changed.notify_waiters();
}

fn chunk_id() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:06x}", n & 0xff_ffff)
}
