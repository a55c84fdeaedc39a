//! The client side of the supervisor's protocol: starting processes, routing their events,
//! file requests, archive and restore. Backend-independent: whatever started the
//! supervisor (bubblewrap here; a container or a remote host later) hands its channel to a
//! [`Client`].

use crate::error::SandboxError;
use crate::protocol::{self, Reply, Request, Stream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

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
    procs: Mutex<HashMap<u64, UnboundedSender<ProcessEvent>>>,
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
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
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

    /// The workspace as a tar archive, made inside the sandbox.
    pub async fn archive(&self) -> Result<Vec<u8>, SandboxError> {
        let argv: Vec<String> = ["tar", "-C", &self.workspace, "-cf", "-", "."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = self.run(&argv, ".", Duration::from_secs(3600)).await?;
        if out.code != Some(0) {
            return Err(SandboxError::Refused(format!(
                "archive failed: {}",
                out.stderr_text().trim()
            )));
        }
        Ok(out.stdout)
    }

    /// Unpacks a tar archive into the workspace, inside the sandbox (so an archive with
    /// hostile paths can do no more than a command could).
    pub async fn restore(&self, tar: &[u8]) -> Result<(), SandboxError> {
        let argv: Vec<String> = ["tar", "-C", &self.workspace, "--no-same-owner", "-xf", "-"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = self.spawn(&argv, ".", &[], None).await?;
        for chunk in tar.chunks(1 << 20) {
            p.write(chunk).await?;
        }
        p.close_stdin().await?;
        let out = p.collect(Duration::from_secs(3600)).await?;
        if out.code != Some(0) {
            return Err(SandboxError::Refused(format!(
                "restore failed: {}",
                out.stderr_text().trim()
            )));
        }
        Ok(())
    }
}

/// A process in a sandbox.
pub struct Process {
    id: u64,
    events: UnboundedReceiver<ProcessEvent>,
    inner: Arc<Inner>,
}

impl Process {
    /// Takes the process's event stream, to read it elsewhere while this handle still
    /// writes, signals and kills (`next_event` and `collect` see nothing afterwards).
    pub fn take_events(&mut self) -> UnboundedReceiver<ProcessEvent> {
        let (_, empty) = tokio::sync::mpsc::unbounded_channel();
        std::mem::replace(&mut self.events, empty)
    }
}

/// A finished command's output.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Standard output (or the terminal's output).
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
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
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Output::default();
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
                Some(ProcessEvent::Output(Stream::Stderr, data)) => out.stderr.extend(data),
                Some(ProcessEvent::Output(_, data)) => out.stdout.extend(data),
                Some(ProcessEvent::Exited { code, signal }) => {
                    out.code = code;
                    out.signal = signal;
                    out.duration = started.elapsed();
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
        let mut procs = inner.procs.lock().expect("procs lock");
        if let Some(tx) = procs.get(&id) {
            let _ = tx.send(event);
        }
        if last {
            procs.remove(&id);
        }
    };
    inner.pending.lock().expect("pending lock").clear();
    for (_, tx) in inner.procs.lock().expect("procs lock").drain() {
        let _ = tx.send(ProcessEvent::Failed(format!("the sandbox broke: {why}")));
    }
}
