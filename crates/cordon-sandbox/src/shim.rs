//! The shim: a small process the supervisor puts between itself and each command, so that
//! ending a command ends every process it started, even those that left its process group
//! or session (`setsid`, a daemon's double fork).
//!
//! The shim enters a Landlock domain of its own that scopes signals, then starts the
//! command, which inherits the domain; so does everything the command starts, wherever it
//! moves. A process may signal only its own domain and domains nested in it: the shim's
//! `kill(-1, SIGKILL)` therefore reaches exactly the command's processes, never the
//! supervisor, other commands or anything on the host. The shim is also a subreaper, so the
//! command's orphans become its children and are reaped.
//!
//! The shim exits with the command's status when the command's main process ends (its
//! background processes then live on until the sandbox stops, as they would without a
//! shim). Until then, `SIGUSR2` from the supervisor makes it end them all. Every other
//! signal a command's group receives is ignored by the shim, which keeps them blocked.
//!
//! Where the kernel cannot scope signals (Landlock ABI < 6), the shim falls back to killing
//! the command's process group, and says so on stderr.

use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The argument that makes the supervisor binary the shim.
pub const SHIM_ARG: &str = "__shim";

/// The signal the supervisor sends a shim to end its command and everything it started.
pub const SWEEP: Signal = Signal::SIGUSR2;

/// Signals the shim keeps blocked: it waits for them, and ignores all but `SIGCHLD` and
/// [`SWEEP`] (a command's group receives `SIGINT`, `SIGHUP`, terminal stops...; the shim
/// must outlive the command).
const BLOCKED: [Signal; 14] = [
    Signal::SIGCHLD,
    Signal::SIGUSR2,
    Signal::SIGUSR1,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGPIPE,
    Signal::SIGALRM,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
    Signal::SIGURG,
];

/// Runs `argv` (after a leading `--`) as the shim described above; returns the command's
/// exit status as its own.
pub fn main(args: &[String]) -> ExitCode {
    let argv = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    let Some(program) = argv.first() else {
        eprintln!("cordon shim: no command");
        return ExitCode::from(127);
    };
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let scoped = enter_own_domain();
    let mut blocked = SigSet::empty();
    for s in BLOCKED {
        blocked.add(s);
    }
    if let Err(e) = blocked.thread_block() {
        eprintln!("cordon shim: cannot block signals: {e}");
        return ExitCode::from(126);
    }
    // The command starts with an empty signal mask (std resets it) and the shim's stdio.
    let child = match std::process::Command::new(program).args(&argv[1..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cordon: cannot start '{program}': {e}");
            return ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let child = Pid::from_raw(child.id() as i32);
    // The command's output ends when the command's processes close it, not the shim.
    detach_stdio();
    loop {
        match blocked.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(status) = reap(child) {
                    return exit_like(status, &blocked);
                }
            }
            Ok(s) if s == SWEEP => {
                let status = sweep(scoped, child);
                return exit_like(status, &blocked);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("cordon shim: waiting for signals: {e}");
                return ExitCode::from(126);
            }
        }
    }
}

/// Enters a new Landlock domain that scopes signals; whether it is enforced.
fn enter_own_domain() -> bool {
    use landlock::{CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetStatus, Scope};
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .scope(Scope::Signal)
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self());
    match status {
        Ok(s) if s.ruleset == RulesetStatus::FullyEnforced => true,
        Ok(_) | Err(_) => {
            eprintln!(
                "cordon shim: this kernel cannot scope signals (Landlock ABI 6): a timeout ends the command's process group only"
            );
            false
        }
    }
}

/// Points the shim's own stdin, stdout and stderr at /dev/null.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// Reaps every exited child (the command's orphans come here); the command's status once it
/// has ended.
fn reap(command: Pid) -> Option<WaitStatus> {
    let mut ended = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(status) => {
                if status.pid() == Some(command) {
                    ended = Some(status);
                }
            }
        }
    }
}

/// Kills every process of the command and reaps them; returns the command's status. With
/// scoped signals, `kill(-1)` reaches exactly the command's domain (its return value says
/// nothing: the kernel counts processes it may not signal too). The shim is the subreaper of
/// everything the command started, so once it has no child left, nothing is left.
fn sweep(scoped: bool, command: Pid) -> WaitStatus {
    let started = Instant::now();
    let mut status = None;
    loop {
        if scoped {
            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        } else {
            let _ = killpg(nix::unistd::getpgrp(), Signal::SIGKILL);
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(s) => {
                    if s.pid() == Some(command) {
                        status = Some(s);
                    }
                }
                // No child left: the command and everything it started are gone.
                Err(_) => {
                    return status.unwrap_or(WaitStatus::Signaled(command, Signal::SIGKILL, false));
                }
            }
        }
        if started.elapsed() > Duration::from_secs(5) {
            return status.unwrap_or(WaitStatus::Signaled(command, Signal::SIGKILL, false));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Ends the shim the way the command ended: its exit code, or death by its signal.
fn exit_like(status: WaitStatus, blocked: &SigSet) -> ExitCode {
    match status {
        WaitStatus::Exited(_, code) => ExitCode::from(code.clamp(0, 255) as u8),
        WaitStatus::Signaled(_, signal, _) => {
            let _ = blocked.thread_unblock();
            let _ = nix::sys::signal::raise(signal);
            // Signals whose default is to be ignored do not end the shim.
            ExitCode::from((128 + signal as i32).clamp(0, 255) as u8)
        }
        _ => ExitCode::from(1),
    }
}
