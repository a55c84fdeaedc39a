//! The byte pipes to stdio servers: a process in the run's sandbox (its output relayed by
//! the sandbox's supervisor), or a trusted process on the host. Either way rmcp reads and
//! writes plain async streams, and what the server wrote to stderr last, and how it ended,
//! are kept to say why it stopped.

use cordon_sandbox::{ProcessEvent, Sandbox, Stream};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// How much of a server's stderr is kept (its last bytes).
const STDERR_TAIL: usize = 4096;

/// What is known about a stdio server process: its last stderr, how it ended.
#[derive(Default)]
pub(crate) struct Exit {
    stderr: Vec<u8>,
    ended: Option<String>,
}

impl Exit {
    fn stderr(&mut self, bytes: &[u8]) {
        self.stderr.extend_from_slice(bytes);
        if self.stderr.len() > STDERR_TAIL {
            let cut = self.stderr.len() - STDERR_TAIL;
            self.stderr.drain(..cut);
        }
    }

    /// How the process ended, with the end of its stderr; `None` while it runs.
    pub(crate) fn why(&self) -> Option<String> {
        let ended = self.ended.as_ref()?;
        let tail = String::from_utf8_lossy(&self.stderr);
        let tail = tail.trim();
        Some(if tail.is_empty() {
            ended.clone()
        } else {
            let last: Vec<&str> = tail.lines().rev().take(10).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            format!("{ended}; its last words on stderr: {}", last.join(" | "))
        })
    }
}

/// A running stdio server process: what rmcp talks over, and a way to stop it.
pub(crate) struct Pipe {
    /// The server's stdout, for rmcp to read.
    pub read: DuplexStream,
    /// The server's stdin, for rmcp to write.
    pub write: DuplexStream,
    /// Its stderr tail and end.
    pub exit: Arc<Mutex<Exit>>,
    /// Kills it.
    pub stop: Stopper,
}

/// Kills a stdio server process.
#[derive(Clone)]
pub(crate) enum Stopper {
    /// A process in the sandbox.
    Sandbox(Arc<cordon_sandbox::Process>),
    /// A process on the host (its whole process group).
    Host(Option<u32>),
}

impl Stopper {
    /// Kills the server (and what it started).
    pub(crate) async fn kill(&self) {
        match self {
            Stopper::Sandbox(p) => {
                let _ = p.kill().await;
            }
            Stopper::Host(Some(pid)) => {
                // Its own process group, so what it started goes too.
                if let Ok(pid) = i32::try_from(*pid) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            Stopper::Host(None) => {}
        }
    }
}

fn ended(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(s)) => format!("it was killed by signal {s}"),
        (Some(c), None) => format!("it exited with code {c}"),
        (None, None) => "it ended".into(),
    }
}

/// Starts `argv` in the sandbox and relays its stdin and stdout.
pub(crate) async fn in_sandbox(
    sandbox: Arc<dyn Sandbox>,
    argv: Vec<String>,
    cwd: String,
    env: Vec<(String, String)>,
) -> Result<Pipe, String> {
    let mut process = sandbox
        .spawn(&argv, &cwd, &env, None)
        .await
        .map_err(|e| format!("the sandbox could not start it: {e}"))?;
    let mut events = process.take_events();
    let process = Arc::new(process);
    let exit = Arc::new(Mutex::new(Exit::default()));
    let (mut to_client, read) = tokio::io::duplex(256 * 1024);
    let (write, mut from_client) = tokio::io::duplex(256 * 1024);
    let seen = exit.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                ProcessEvent::Output(Stream::Stdout, bytes) => {
                    if to_client.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                ProcessEvent::Output(_, bytes) => lock(&seen).stderr(&bytes),
                ProcessEvent::Started(_) => {}
                ProcessEvent::Exited { code, signal } => {
                    lock(&seen).ended = Some(ended(code, signal));
                    break;
                }
                ProcessEvent::Failed(why) => {
                    lock(&seen).ended = Some(format!("it could not run: {why}"));
                    break;
                }
            }
        }
        if lock(&seen).ended.is_none() {
            lock(&seen).ended = Some("the sandbox stopped".into());
        }
        // rmcp sees the end of its stream: the server is gone.
        let _ = to_client.shutdown().await;
    });
    let writer = process.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = writer.close_stdin().await;
                    break;
                }
                Ok(n) => {
                    if writer.write(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(Pipe {
        read,
        write,
        exit,
        stop: Stopper::Sandbox(process),
    })
}

/// The host variables a trusted server gets besides those it is given: enough to find
/// programs and a home, nothing of the caller's secrets.
const PASSED: [&str; 5] = ["PATH", "HOME", "LANG", "TMPDIR", "USER"];

/// Starts `argv` on the host, in its own process group, with only `env` and the few
/// variables in [`PASSED`].
pub(crate) fn on_host(
    argv: Vec<String>,
    cwd: Option<std::path::PathBuf>,
    env: Vec<(String, String)>,
) -> Result<Pipe, String> {
    let (program, args) = argv.split_first().ok_or("no command")?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(
            PASSED
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("'{program}' could not be started on the host: {e}"))?;
    let pid = child.id();
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("its pipes could not be opened".into());
    };
    let exit = Arc::new(Mutex::new(Exit::default()));
    let (mut to_client, read) = tokio::io::duplex(256 * 1024);
    let (write, mut from_client) = tokio::io::duplex(256 * 1024);
    let seen = exit.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            lock(&seen).stderr(&buf[..n]);
        }
    });
    let seen = exit.clone();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
        let status = child.wait().await;
        lock(&seen).ended = Some(match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                ended(s.code(), s.signal())
            }
            Err(e) => format!("it could not be waited for: {e}"),
        });
        let _ = to_client.shutdown().await;
    });
    tokio::spawn(async move {
        let mut stdin = stdin;
        let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
    });
    Ok(Pipe {
        read,
        write,
        exit,
        stop: Stopper::Host(pid),
    })
}

fn lock(m: &Mutex<Exit>) -> std::sync::MutexGuard<'_, Exit> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a server's process ended, if it did.
pub(crate) fn why_ended(exit: &Mutex<Exit>) -> Option<String> {
    lock(exit).why()
}
