//! The supervisor: a small program inside the sandbox that confines itself, then spawns
//! the commands the harness asks for and streams their output back. One runs per sandbox,
//! so a command is cheap and processes live on between tool calls.
//!
//! It reads requests on stdin and writes replies on stdout (see [`crate::protocol`]).

use crate::hardening;
use crate::protocol::{self, PROTOCOL_VERSION, Reply, Request, Stream};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;

/// Where a command's input goes: a pipe, or its terminal.
enum Input {
    Pipe(ChildStdin),
    Pty(pty_process::OwnedWritePty),
}

impl Input {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Input::Pipe(p) => {
                p.write_all(bytes).await?;
                p.flush().await
            }
            Input::Pty(p) => {
                p.write_all(bytes).await?;
                p.flush().await
            }
        }
    }
}

/// A running command: its pid (also its process group) and its input.
struct Running {
    pid: i32,
    pgid: i32,
    stdin: Option<Input>,
    /// Whether `pid` is the command's shim, which ends everything the command started.
    shimmed: bool,
}

/// Replies waiting for the writer, at most this many: output waits when the harness falls
/// behind, and so does the command whose pipe fills.
const QUEUED_REPLIES: usize = 64;

/// Where replies go: a bounded queue to the writer.
#[derive(Clone)]
struct Replies(tokio::sync::mpsc::Sender<Reply>);

impl Replies {
    /// Queues a reply, waiting for room.
    async fn send(&self, reply: Reply) {
        let _ = self.0.send(reply).await;
    }

    /// Queues a reply from code that cannot wait: now if there is room, else from a task.
    fn post(&self, reply: Reply) {
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(reply)) = self.0.try_send(reply) {
            let tx = self.0.clone();
            tokio::spawn(async move {
                let _ = tx.send(reply).await;
            });
        }
    }
}

/// What the harness's hello set up.
struct Setup {
    workspace: PathBuf,
    disk_reserve: u64,
    shim: Option<Vec<String>>,
    /// Whether signals are scoped to the sandbox (see `main`).
    scoped: bool,
}

/// How long a command's output may go on after its main process ended (background
/// processes holding its pipes): then its end is reported and the rest dropped.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Ends a command and everything it started: through its shim when it has one (which kills
/// its whole domain), then its process group.
fn end(running: &Running) {
    if running.shimmed {
        let _ = nix::sys::signal::kill(Pid::from_raw(running.pid), crate::shim::SWEEP);
        let pgid = running.pgid;
        // If the shim cannot, the group goes anyway.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        });
    } else {
        let _ = killpg(Pid::from_raw(running.pgid), Signal::SIGKILL);
    }
}

/// Ends every process in the sandbox but the supervisor: all of the sandbox's Landlock
/// domain when signals are scoped to it, else each command's group.
fn end_all(table: &Table, scoped: bool) {
    for running in table.lock().expect("table lock").values() {
        let _ = killpg(Pid::from_raw(running.pgid), Signal::SIGKILL);
    }
    if scoped {
        let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
    }
}

type Table = Arc<Mutex<HashMap<u64, Running>>>;

/// Runs the supervisor until the harness closes the channel. Never returns early on a bad
/// request: it answers with an error instead.
/// The argument that makes a program embedding cordon its own sandboxes' supervisor (see
/// [`main_if_asked`] and [`crate::SupervisorCommand::this_program`]).
pub const SUPERVISOR_ARG: &str = "__supervisor";

/// This build of the supervisor: the sandbox crate's version and a hash of its sources. A
/// harness uses a separate supervisor binary only when it reports the harness's own build.
pub const BUILD: &str = env!("CORDON_SANDBOX_BUILD");

/// For a program that is its own sandboxes' supervisor: call this first thing in `main`,
/// before any runtime or thread starts. When the program was started as a supervisor it
/// runs as one and returns the exit code to end with; otherwise `None`, and `main` goes on.
pub fn main_if_asked() -> Option<ExitCode> {
    std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == SUPERVISOR_ARG)
        .then(main)
}

/// Runs the supervisor (or a command's shim) in this process, from its arguments and the
/// harness's first frame on stdin.
pub fn main() -> ExitCode {
    // The same program is each command's shim (see [`crate::shim`]).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == crate::shim::SHIM_ARG) {
        return crate::shim::main(&args[i + 1..]);
    }
    // The first frame arrives before any thread exists, so the confinement applied next is
    // inherited by every thread and command that follows.
    let hello: Request = match protocol::read_frame_blocking(&mut std::io::stdin().lock()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cordon supervisor: no hello from the harness: {e}");
            return ExitCode::from(2);
        }
    };
    let Request::Hello {
        version,
        hardening,
        workspace,
        disk_reserve,
        shim,
        egress,
    } = hello
    else {
        eprintln!("cordon supervisor: the first frame must be hello");
        return ExitCode::from(2);
    };
    let confinement = match hardening
        .as_ref()
        .map_or_else(|| Ok(hardening::Applied::none()), hardening::apply)
    {
        Ok(a) => a,
        Err(e) => {
            // Never run anything unconfined: say why and stop.
            eprintln!("cordon supervisor: cannot confine the sandbox: {e}");
            return ExitCode::from(3);
        }
    };
    // The way to the egress proxy is open before any command runs, so none can take its
    // port first.
    let egress = match egress {
        None => None,
        Some((port, socket)) => match crate::egress::listen(port) {
            Ok(listener) => Some((listener, PathBuf::from(socket))),
            Err(e) => {
                eprintln!(
                    "cordon supervisor: cannot listen on 127.0.0.1:{port} for the egress proxy: {e}"
                );
                return ExitCode::from(3);
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cordon supervisor: {e}");
            return ExitCode::from(2);
        }
    };
    // Orphaned processes come to the supervisor, which reaps them (see `reap_orphans`), so
    // they never pile up as zombies holding the sandbox's process budget.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("cordon supervisor: cannot become a subreaper: {e}");
    }
    // Signals scoped to the sandbox's Landlock domain: `kill(-1)` then reaches exactly the
    // sandbox's processes (never without that, not even in the unconfined tier).
    let scoped = hardening.is_some() && confinement.landlock_abi >= 6;
    let setup = Setup {
        workspace: PathBuf::from(workspace),
        disk_reserve,
        shim: shim.filter(|s| !s.is_empty()),
        scoped,
    };
    runtime.block_on(async move {
        if let Some((listener, socket)) = egress {
            tokio::spawn(crate::egress::forward(listener, socket));
        }
        serve(version, confinement, setup).await
    })
}

/// Kills every command when free space on the workspace's filesystem falls below
/// `reserve`: a disk fill is stopped before it harms the host.
async fn guard_disk(workspace: PathBuf, reserve: u64, scoped: bool, table: Table, tx: Replies) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(st) = nix::sys::statvfs::statvfs(&workspace) else {
            continue;
        };
        let free = st.blocks_available() * st.fragment_size();
        if free >= reserve {
            continue;
        }
        if table.lock().expect("table lock").is_empty() {
            continue;
        }
        end_all(&table, scoped);
        tx.post(Reply::Error {
            id: None,
            message: format!("the disk is nearly full ({free} bytes free, {reserve} kept in reserve): every command was killed"),
        });
    }
}

/// Reaps exited processes that the supervisor did not start itself (orphans of commands).
/// Its own children are left to tokio, which reports their exit status: the zombie is only
/// peeked at (`WNOWAIT`) until its pid is known not to be one of them.
async fn reap_orphans(table: Table) {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
    let Ok(mut sigchld) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
    else {
        return;
    };
    loop {
        // Every SIGCHLD, and every 200 ms in case one was coalesced away.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), sigchld.recv()).await;
        for _ in 0..4096 {
            let peek = waitid(
                Id::All,
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            );
            let pid = match peek {
                Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _)) => pid,
                _ => break,
            };
            let ours = table
                .lock()
                .expect("table lock")
                .values()
                .any(|r| r.pid == pid.as_raw());
            if ours {
                // Tokio will collect it; look again after it has.
                break;
            }
            let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        }
    }
}

async fn serve(version: u32, confinement: hardening::Applied, setup: Setup) -> ExitCode {
    let (sender, mut rx) = tokio::sync::mpsc::channel::<Reply>(QUEUED_REPLIES);
    let tx = Replies(sender);
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(reply) = rx.recv().await {
            if protocol::write_frame(&mut out, &reply).await.is_err() {
                break;
            }
        }
    });
    if version != PROTOCOL_VERSION {
        tx.post(Reply::Error {
            id: None,
            message: format!("protocol version {version} is not {PROTOCOL_VERSION}: harness and sandbox are different cordon builds"),
        });
    }
    tx.post(Reply::Hello {
        version: PROTOCOL_VERSION,
        confinement,
        build: BUILD.to_string(),
    });
    let table: Table = Arc::default();
    let reaper = tokio::spawn(reap_orphans(table.clone()));
    let guard = tokio::spawn(guard_disk(
        setup.workspace.clone(),
        setup.disk_reserve,
        setup.scoped,
        table.clone(),
        tx.clone(),
    ));
    let mut input = tokio::io::stdin();
    loop {
        let request: Request = match protocol::read_frame(&mut input).await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                tx.post(Reply::Error {
                    id: None,
                    message: e.to_string(),
                });
                break;
            }
        };
        handle(request, &setup, &table, &tx).await;
    }
    // The harness is gone: nothing here may outlive it, background processes included.
    end_all(&table, setup.scoped);
    // The writer ends when every sender is gone. The background tasks never end by
    // themselves; the commands' tasks end once their output is drained (within `DRAIN`).
    reaper.abort();
    guard.abort();
    drop(tx);
    let _ = writer.await;
    ExitCode::SUCCESS
}

async fn handle(request: Request, setup: &Setup, table: &Table, tx: &Replies) {
    let workspace = setup.workspace.as_path();
    let fail = |id: Option<u64>, message: String| {
        tx.post(Reply::Error { id, message });
    };
    let file = |r| {
        tx.post(crate::files::serve(workspace, r));
    };
    match request {
        Request::Hello { .. } => fail(None, "hello was already said".into()),
        Request::ReadFile { id, path } => file(crate::files::FileRequest::Read { id, path }),
        Request::WriteFile {
            id,
            path,
            data,
            mode,
        } => file(crate::files::FileRequest::Write {
            id,
            path,
            data,
            mode,
        }),
        Request::MakeDir { id, path, mode } => {
            file(crate::files::FileRequest::MakeDir { id, path, mode })
        }
        Request::ListDir { id, path } => file(crate::files::FileRequest::List { id, path }),
        Request::Symlink { id, path, target } => {
            file(crate::files::FileRequest::Symlink { id, path, target })
        }
        Request::Commit { id, changes } => file(crate::files::FileRequest::Commit { id, changes }),
        Request::Remove {
            id,
            path,
            recursive,
        } => file(crate::files::FileRequest::Remove {
            id,
            path,
            recursive,
        }),
        Request::Exec {
            id,
            argv,
            cwd,
            env,
            tty,
        } => {
            if let Err(e) = spawn(id, argv, &cwd, env, tty, setup, table, tx) {
                fail(Some(id), e.to_string());
            }
        }
        Request::Write { id, data } => {
            let bytes = match protocol::decode(&data) {
                Ok(b) => b,
                Err(e) => return fail(Some(id), e.to_string()),
            };
            let stdin = table
                .lock()
                .expect("table lock")
                .get_mut(&id)
                .and_then(|r| r.stdin.take());
            match stdin {
                Some(mut stdin) => {
                    let result = stdin.write_all(&bytes).await;
                    if let Some(r) = table.lock().expect("table lock").get_mut(&id) {
                        r.stdin = Some(stdin);
                    }
                    if let Err(e) = result {
                        fail(Some(id), format!("write to stdin: {e}"));
                    }
                }
                None => fail(
                    Some(id),
                    "no running process with open stdin has this id".into(),
                ),
            }
        }
        Request::CloseStdin { id } => {
            if let Some(r) = table.lock().expect("table lock").get_mut(&id) {
                r.stdin = None;
            }
        }
        Request::Resize { id, rows, cols } => {
            let table = table.lock().expect("table lock");
            match table.get(&id).and_then(|r| r.stdin.as_ref()) {
                Some(Input::Pty(pty)) => {
                    if let Err(e) = pty.resize(pty_process::Size::new(rows, cols)) {
                        fail(Some(id), format!("resize: {e}"));
                    }
                }
                _ => fail(Some(id), "not a running PTY session".into()),
            }
        }
        Request::Signal { id, signal } => {
            let signal = Signal::try_from(signal);
            let table = table.lock().expect("table lock");
            match (table.get(&id), signal) {
                (Some(running), Ok(Signal::SIGKILL)) => end(running),
                (Some(_), Ok(s)) if s == crate::shim::SWEEP => fail(
                    Some(id),
                    format!("{s} is reserved: cordon uses it to end a command"),
                ),
                (Some(running), Ok(sig)) => {
                    if let Err(e) = killpg(Pid::from_raw(running.pgid), sig) {
                        fail(Some(id), format!("signal: {e}"));
                    }
                }
                (None, _) => fail(Some(id), "no running process has this id".into()),
                (_, Err(e)) => fail(Some(id), format!("signal: {e}")),
            }
        }
    }
}

/// Why a command could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// No program was given.
    #[error("empty command")]
    Empty,
    /// The working directory cannot be used.
    #[error("workdir '{cwd}' {reason}")]
    Workdir {
        /// The directory as given.
        cwd: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The working directory cannot be read.
    #[error("workdir '{cwd}': {source}")]
    WorkdirIo {
        /// The directory as given.
        cwd: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("cannot start '{program}': {source}")]
    Start {
        /// The program.
        program: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// No terminal could be made for it.
    #[error("cannot set up a terminal: {0}")]
    Pty(#[from] pty_process::Error),
    /// It ended before its pid could be read.
    #[error("the process ended before it started")]
    Vanished,
}

/// The working directory, resolved through symlinks, refused unless inside the workspace.
pub fn resolve_cwd(workspace: &Path, cwd: &str) -> Result<PathBuf, SpawnError> {
    let wanted = if Path::new(cwd).is_absolute() {
        PathBuf::from(cwd)
    } else {
        workspace.join(cwd)
    };
    let io = |source| SpawnError::WorkdirIo {
        cwd: cwd.to_string(),
        source,
    };
    let real = std::fs::canonicalize(&wanted).map_err(io)?;
    let root = std::fs::canonicalize(workspace).map_err(io)?;
    if !real.starts_with(&root) {
        return Err(SpawnError::Workdir {
            cwd: cwd.to_string(),
            reason: format!(
                "resolves to {} which is outside the workspace {}",
                real.display(),
                root.display()
            ),
        });
    }
    if !real.is_dir() {
        return Err(SpawnError::Workdir {
            cwd: cwd.to_string(),
            reason: "is not a directory".into(),
        });
    }
    Ok(real)
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    id: u64,
    argv: Vec<String>,
    cwd: &str,
    env: Vec<(String, String)>,
    tty: Option<(u16, u16)>,
    setup: &Setup,
    table: &Table,
    tx: &Replies,
) -> Result<(), SpawnError> {
    let shown = argv.first().ok_or(SpawnError::Empty)?.clone();
    let cwd = resolve_cwd(&setup.workspace, cwd)?;
    // Under its shim, which ends everything the command starts when it must end.
    let argv: Vec<String> = match &setup.shim {
        Some(shim) => shim
            .iter()
            .cloned()
            .chain(std::iter::once("--".to_string()))
            .chain(argv)
            .collect(),
        None => argv,
    };
    let program = &argv[0];
    let cannot = |source| SpawnError::Start {
        program: shown.clone(),
        source,
    };
    let (mut child, input, pumps) = match tty {
        None => {
            let mut child = tokio::process::Command::new(program)
                .args(&argv[1..])
                .current_dir(&cwd)
                .env_clear()
                .envs(env)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .map_err(cannot)?;
            let input = child.stdin.take().map(Input::Pipe);
            let pumps = vec![
                tokio::spawn(pump(id, Stream::Stdout, child.stdout.take(), tx.clone())),
                tokio::spawn(pump(id, Stream::Stderr, child.stderr.take(), tx.clone())),
            ];
            (child, input, pumps)
        }
        Some((rows, cols)) => {
            // The command leads a new session with the pty as its controlling terminal, so
            // its process group is its own pid, as for piped commands.
            let (pty, pts) = pty_process::open()?;
            pty.resize(pty_process::Size::new(rows, cols))?;
            let child = pty_process::Command::new(program)
                .args(&argv[1..])
                .current_dir(&cwd)
                .env_clear()
                .envs(env)
                .spawn(pts)
                .map_err(|e| cannot(std::io::Error::other(e)))?;
            let (read, write) = pty.into_split();
            let pumps = vec![tokio::spawn(pump(id, Stream::Pty, Some(read), tx.clone()))];
            (child, Some(Input::Pty(write)), pumps)
        }
    };
    let pid = child.id().ok_or(SpawnError::Vanished)?;
    table.lock().expect("table lock").insert(
        id,
        Running {
            pid: pid as i32,
            pgid: pid as i32,
            stdin: input,
            shimmed: setup.shim.is_some(),
        },
    );
    tx.post(Reply::Started { id, pid });
    let tx = tx.clone();
    let table = table.clone();
    tokio::spawn(async move {
        let status = child.wait().await;
        // A terminal's reader sees EIO once every holder of the terminal is gone; dropping
        // our side of it then ends the pump.
        let input = table
            .lock()
            .expect("table lock")
            .remove(&id)
            .and_then(|r| r.stdin);
        // Its output, up to the end of its pipes, or for a while when background
        // processes hold them open.
        let aborts: Vec<_> = pumps.iter().map(|p| p.abort_handle()).collect();
        let drained = tokio::time::timeout(DRAIN, async {
            for p in pumps {
                let _ = p.await;
            }
        })
        .await;
        if drained.is_err() {
            for a in aborts {
                a.abort();
            }
        }
        drop(input);
        let (code, signal) = match status {
            Ok(s) => (s.code(), s.signal()),
            Err(_) => (None, None),
        };
        tx.send(Reply::Exited { id, code, signal }).await;
    });
    Ok(())
}

/// Streams one pipe to the harness until it closes.
async fn pump<R: AsyncRead + Unpin>(id: u64, stream: Stream, pipe: Option<R>, tx: Replies) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                tx.send(Reply::Output {
                    id,
                    stream,
                    data: protocol::encode(&buf[..n]),
                })
                .await;
            }
        }
    }
}
