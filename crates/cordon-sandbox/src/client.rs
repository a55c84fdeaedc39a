//! The client side of the supervisor's protocol: starting processes, routing their events
//! (with backpressure), file requests. Backend-independent: whatever started the
//! supervisor (bubblewrap here; a container or a remote host later) hands its channel to a
//! [`Client`].

use crate::error::SandboxError;
use crate::protocol::{self, Reply, Request, Stream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{Receiver, Sender};

/// Events buffered per process: a consumer that falls behind holds the supervisor back
/// (and so the command, whose output pipe fills) instead of growing memory.
const EVENTS_PER_PROCESS: usize = 16;
/// The most of each stream [`Process::collect`] keeps: its start and its end, this much each.
const COLLECT_KEEP: usize = 4 << 20;

/// What happens to a process, in order: started, output, exited (or failed).
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEvent {
    /// It started with this pid (inside the sandbox).
    Started(u32),
    /// Output.
    Output(Stream, Vec<u8>),
    /// It ended; all its output came before this.
    Exited {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal, if one killed it.
        signal: Option<i32>,
    },
    /// It could not start, or the sandbox broke.
    Failed(String),
}

struct Inner {
    stdin: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    procs: Mutex<HashMap<u64, Sender<ProcessEvent>>>,
    /// File requests waiting for their one reply.
    pending: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<Reply>>>,
    next_id: AtomicU64,
}

impl Inner {
    async fn send(&self, req: &Request) -> Result<(), SandboxError> {
        let mut stdin = self.stdin.lock().await;
        protocol::write_frame(&mut *stdin, req)
            .await
            .map_err(|e| SandboxError::Gone(e.to_string()))
    }
}

/// A connection to a running supervisor.
pub struct Client {
    inner: Arc<Inner>,
    env: Vec<(String, String)>,
    workspace: String,
}

impl Client {
    /// Takes over a supervisor's channel (after the hello exchange): `stdin` carries
    /// requests, `stdout` replies. `env` is every command's base environment; `workspace` is
    /// the workspace's path inside.
    pub fn start<W, R>(stdin: W, stdout: R, env: Vec<(String, String)>, workspace: String) -> Client
    where
        W: AsyncWrite + Send + Unpin + 'static,
        R: AsyncRead + Send + Unpin + 'static,
    {
        let inner = Arc::new(Inner {
            stdin: tokio::sync::Mutex::new(Box::new(stdin)),
            procs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(route_replies(stdout, inner.clone()));
        Client {
            inner,
            env,
            workspace,
        }
    }

    /// The workspace's path as commands see it.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// Closes the channel to the supervisor, which then ends every process in the sandbox
    /// and exits. Later requests fail.
    pub async fn close(&self) {
        *self.inner.stdin.lock().await = Box::new(tokio::io::sink());
    }

    /// [`Client::close`] without waiting (from a `Drop`); `false` if a request was being
    /// written at that moment (the channel then closes when the last handle goes).
    pub fn close_now(&self) -> bool {
        match self.inner.stdin.try_lock() {
            Ok(mut stdin) => {
                *stdin = Box::new(tokio::io::sink());
                true
            }
            Err(_) => false,
        }
    }

    /// Starts a command. `cwd` is relative to the workspace (or absolute inside it); `env`
    /// adds to the sandbox's environment.
    pub async fn spawn(
        &self,
        argv: &[String],
        cwd: &str,
        env: &[(String, String)],
        tty: Option<(u16, u16)>,
    ) -> Result<Process, SandboxError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::mpsc::channel(EVENTS_PER_PROCESS);
        self.inner.procs.lock().expect("procs lock").insert(id, tx);
        let mut full_env = self.env.clone();
        full_env.extend(env.iter().cloned());
        let req = Request::Exec {
            id,
            argv: argv.to_vec(),
            cwd: cwd.to_string(),
            env: full_env,
            tty,
        };
        if let Err(e) = self.inner.send(&req).await {
            self.inner.procs.lock().expect("procs lock").remove(&id);
            return Err(e);
        }
        Ok(Process {
            id,
            events: rx,
            inner: self.inner.clone(),
        })
    }

    /// Runs a command to its end (or `timeout`, when its whole process group is killed)
    /// and collects its output.
    pub async fn run(
        &self,
        argv: &[String],
        cwd: &str,
        timeout: Duration,
    ) -> Result<Output, SandboxError> {
        let p = self.spawn(argv, cwd, &[], None).await?;
        p.close_stdin().await?;
        p.collect(timeout).await
    }

    /// Sends a file request and waits for its reply.
    async fn file_request(&self, make: impl FnOnce(u64) -> Request) -> Result<Reply, SandboxError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .pending
            .lock()
            .expect("pending lock")
            .insert(id, tx);
        self.inner.send(&make(id)).await?;
        match rx.await {
            Ok(Reply::Error { message, .. }) => Err(SandboxError::Refused(message)),
            Ok(reply) => Ok(reply),
            Err(_) => Err(SandboxError::Gone(
                "the supervisor ended during a file request".into(),
            )),
        }
    }

    /// Reads a file in the workspace (workspace-relative path); `None` if there is none.
    pub async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SandboxError> {
        match self
            .file_request(|id| Request::ReadFile {
                id,
                path: path.into(),
            })
            .await?
        {
            Reply::File { data: None, .. } => Ok(None),
            Reply::File {
                data: Some(data), ..
            } => protocol::decode(&data)
                .map(Some)
                .map_err(|e| SandboxError::Gone(e.to_string())),
            other => Err(SandboxError::Gone(format!("unexpected reply {other:?}"))),
        }
    }

    /// Writes a file in the workspace, creating its directories.
    pub async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
    ) -> Result<(), SandboxError> {
        let data = protocol::encode(data);
        self.file_request(|id| Request::WriteFile {
            id,
            path: path.into(),
            data,
            mode,
        })
        .await
        .map(|_| ())
    }

    /// Makes a directory (and its parents) in the workspace.
    pub async fn make_dir(&self, path: &str, mode: Option<u32>) -> Result<(), SandboxError> {
        self.file_request(|id| Request::MakeDir {
            id,
            path: path.into(),
            mode,
        })
        .await
        .map(|_| ())
    }

    /// Lists a directory in the workspace.
    pub async fn list_dir(&self, path: &str) -> Result<Vec<protocol::DirEntry>, SandboxError> {
        match self
            .file_request(|id| Request::ListDir {
                id,
                path: path.into(),
            })
            .await?
        {
            Reply::Entries { entries, .. } => Ok(entries),
            other => Err(SandboxError::Gone(format!("unexpected reply {other:?}"))),
        }
    }

    /// Makes a symbolic link in the workspace, pointing at `target` verbatim.
    pub async fn symlink(&self, path: &str, target: &str) -> Result<(), SandboxError> {
        self.file_request(|id| Request::Symlink {
            id,
            path: path.into(),
            target: target.into(),
        })
        .await
        .map(|_| ())
    }

    /// Applies file changes all or nothing, inside the sandbox (see [`crate::files::commit`]).
    pub async fn commit(&self, changes: &[crate::files::Change]) -> Result<(), SandboxError> {
        let changes = changes
            .iter()
            .map(|c| protocol::FileChange {
                path: c.path.clone(),
                data: c.data.as_deref().map(protocol::encode),
                mode: c.mode,
            })
            .collect();
        self.file_request(|id| Request::Commit { id, changes })
            .await
            .map(|_| ())
    }

    /// Removes a file, or a directory (with `recursive`, and everything in it).
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<(), SandboxError> {
        self.file_request(|id| Request::Remove {
            id,
            path: path.into(),
            recursive,
        })
        .await
        .map(|_| ())
    }
}

/// A process in a sandbox. Its events must be read (with [`Process::next_event`],
/// [`Process::collect`], or from [`Process::take_events`]): unread, they hold the sandbox's
/// output back.
pub struct Process {
    id: u64,
    events: Receiver<ProcessEvent>,
    inner: Arc<Inner>,
}

impl Process {
    /// Takes the process's event stream, to read it elsewhere while this handle still
    /// writes, signals and kills (`next_event` and `collect` see nothing afterwards).
    pub fn take_events(&mut self) -> Receiver<ProcessEvent> {
        let (_, empty) = tokio::sync::mpsc::channel(1);
        std::mem::replace(&mut self.events, empty)
    }
}

/// A finished command's output: of each stream, at most its first and last 4 MiB.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Standard output (or the terminal's output), marked where the middle was dropped.
    pub stdout: Vec<u8>,
    /// Standard error, marked where the middle was dropped.
    pub stderr: Vec<u8>,
    /// Bytes dropped from the middle of the two streams.
    pub dropped: u64,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal, if one ended it.
    pub signal: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// How long it ran.
    pub duration: Duration,
}

impl Output {
    /// Standard output as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl Process {
    /// The next thing that happened to the process; `None` once it has ended.
    pub async fn next_event(&mut self) -> Option<ProcessEvent> {
        self.events.recv().await
    }

    /// Writes to its standard input.
    pub async fn write(&self, data: &[u8]) -> Result<(), SandboxError> {
        self.inner
            .send(&Request::Write {
                id: self.id,
                data: protocol::encode(data),
            })
            .await
    }

    /// Closes its standard input.
    pub async fn close_stdin(&self) -> Result<(), SandboxError> {
        self.inner.send(&Request::CloseStdin { id: self.id }).await
    }

    /// Resizes its terminal (PTY sessions only).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), SandboxError> {
        self.inner
            .send(&Request::Resize {
                id: self.id,
                rows,
                cols,
            })
            .await
    }

    /// Kills its whole process group.
    pub async fn kill(&self) -> Result<(), SandboxError> {
        self.inner
            .send(&Request::Signal {
                id: self.id,
                signal: libc::SIGKILL,
            })
            .await
    }

    /// Collects everything until it ends, killing its process group at `timeout`.
    pub async fn collect(mut self, timeout: Duration) -> Result<Output, SandboxError> {
        let started = Instant::now();
        // A timeout too large to add is no timeout at all (a century).
        let deadline = tokio::time::Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| {
                tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 86_400)
            });
        let mut out = Output::default();
        let mut stdout = crate::HeadTail::new(COLLECT_KEEP, COLLECT_KEEP);
        let mut stderr = crate::HeadTail::new(COLLECT_KEEP, COLLECT_KEEP);
        loop {
            let event = match tokio::time::timeout_at(deadline, self.next_event()).await {
                Ok(e) => e,
                Err(_) => {
                    out.timed_out = true;
                    self.kill().await?;
                    // Keep reading: the kill brings the exit and the last output.
                    match tokio::time::timeout(Duration::from_secs(5), self.next_event()).await {
                        Ok(e) => e,
                        Err(_) => {
                            return Err(SandboxError::Gone(
                                "the process did not die after SIGKILL".into(),
                            ));
                        }
                    }
                }
            };
            match event {
                Some(ProcessEvent::Started(_)) => {}
                Some(ProcessEvent::Output(Stream::Stderr, data)) => stderr.push(&data),
                Some(ProcessEvent::Output(_, data)) => stdout.push(&data),
                Some(ProcessEvent::Exited { code, signal }) => {
                    out.code = code;
                    out.signal = signal;
                    out.duration = started.elapsed();
                    out.dropped = stdout.dropped() + stderr.dropped();
                    out.stdout = stdout.take_marked();
                    out.stderr = stderr.take_marked();
                    return Ok(out);
                }
                Some(ProcessEvent::Failed(why)) => return Err(SandboxError::Refused(why)),
                None => return Err(SandboxError::Gone("the process's events stopped".into())),
            }
        }
    }
}

/// Reads the supervisor's replies and hands each to its process.
async fn route_replies<R: AsyncRead + Unpin>(mut stdout: R, inner: Arc<Inner>) {
    let why = loop {
        let reply: Reply = match protocol::read_frame(&mut stdout).await {
            Ok(Some(r)) => r,
            Ok(None) => break "the supervisor exited".to_string(),
            Err(e) => break e.to_string(),
        };
        let waiting = match &reply {
            Reply::File { id, .. }
            | Reply::Entries { id, .. }
            | Reply::Done { id }
            | Reply::Error { id: Some(id), .. } => {
                inner.pending.lock().expect("pending lock").remove(id)
            }
            _ => None,
        };
        if let Some(tx) = waiting {
            let _ = tx.send(reply);
            continue;
        }
        let (id, event, last) = match reply {
            Reply::Started { id, pid } => (id, ProcessEvent::Started(pid), false),
            Reply::Output { id, stream, data } => match protocol::decode(&data) {
                Ok(bytes) => (id, ProcessEvent::Output(stream, bytes), false),
                Err(e) => (id, ProcessEvent::Failed(e.to_string()), true),
            },
            Reply::Exited { id, code, signal } => (id, ProcessEvent::Exited { code, signal }, true),
            Reply::Error {
                id: Some(id),
                message,
            } => (id, ProcessEvent::Failed(message), true),
            Reply::Error { id: None, message } => {
                tracing::warn!(%message, "sandbox supervisor reported an error");
                continue;
            }
            Reply::Hello { .. }
            | Reply::File { .. }
            | Reply::Entries { .. }
            | Reply::Done { .. } => continue,
        };
        let tx = {
            let mut procs = inner.procs.lock().expect("procs lock");
            if last {
                procs.remove(&id)
            } else {
                procs.get(&id).cloned()
            }
        };
        // Waits while the process's reader is behind: the supervisor, and then the
        // command, wait with it.
        if let Some(tx) = tx {
            let _ = tx.send(event).await;
        }
    };
    inner.pending.lock().expect("pending lock").clear();
    let left: Vec<_> = inner
        .procs
        .lock()
        .expect("procs lock")
        .drain()
        .map(|(_, tx)| tx)
        .collect();
    for tx in left {
        let _ = tx
            .send(ProcessEvent::Failed(format!("the sandbox broke: {why}")))
            .await;
    }
}
