//! Kernel limits on the whole sandbox through cgroups: the number of processes (`pids`) and
//! memory, where this host lets cordon create cgroups.
//!
//! `RLIMIT_NPROC` cannot stop a fork bomb when the sandbox's uid maps to host root (the
//! kernel exempts root's processes from it), so where the pids controller is writable it
//! does that job. Today this is cgroup v1 as root; a delegated cgroup v2 is the next step.

use std::path::{Path, PathBuf};

const V1_ROOT: &str = "/sys/fs/cgroup";

/// Cgroups created for one sandbox, removed when dropped.
#[derive(Debug)]
pub struct SandboxCgroups {
    dirs: Vec<PathBuf>,
}

impl SandboxCgroups {
    /// Creates the sandbox's cgroups with these limits, or `None` where the host does not
    /// let cordon (not root, or no v1 controllers mounted).
    pub fn create(name: &str, max_pids: u64, max_memory: u64) -> Option<SandboxCgroups> {
        // A cordon that was killed could not remove its cgroups: clear those once a process,
        // on a thread of its own (nobody needs to wait for it).
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            std::thread::spawn(|| sweep_stale(Path::new(V1_ROOT), STALE_AFTER));
        });
        let mut dirs = Vec::new();
        for (controller, file, value) in [
            ("pids", "pids.max", max_pids),
            ("memory", "memory.limit_in_bytes", max_memory),
        ] {
            let base = Path::new(V1_ROOT).join(controller);
            if !base.join("cgroup.procs").exists() {
                continue;
            }
            let dir = base.join("cordon").join(name);
            let made = std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(dir.join(file), value.to_string()));
            match made {
                Ok(()) => dirs.push(dir),
                Err(e) => {
                    tracing::debug!(controller, error = %e, "cannot use this cgroup controller");
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        let has_pids = dirs
            .iter()
            .any(|d| d.starts_with(Path::new(V1_ROOT).join("pids")));
        if has_pids {
            Some(SandboxCgroups { dirs })
        } else {
            drop(SandboxCgroups { dirs });
            None
        }
    }

    /// Moves process `pid`, with all its threads, into these cgroups.
    ///
    /// The kernel makes a move wait for an RCU grace period (several milliseconds) when no
    /// move happened just before, so a caller that can overlap this with other work should.
    pub fn admit(&self, pid: u32) -> std::io::Result<()> {
        for dir in &self.dirs {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// Which controllers are limiting, for the run log.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .dirs
            .iter()
            .filter_map(|d| {
                d.parent()?
                    .parent()?
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect();
        format!("cgroup v1: {}", names.join(", "))
    }
}

/// How old an empty cgroup must be before a sweep removes it: a younger one may belong to a
/// sandbox another cordon is starting right now, before its first process joins.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// Removes cordon's cgroups under `root` that no process uses and that are older than
/// `age`; returns how many went. The kernel refuses to remove a cgroup with processes in it,
/// so a live sandbox's cgroups are never touched.
fn sweep_stale(root: &Path, age: std::time::Duration) -> usize {
    let mut removed = 0;
    for controller in ["pids", "memory"] {
        let Ok(dirs) = std::fs::read_dir(root.join(controller).join("cordon")) else {
            continue;
        };
        for dir in dirs.flatten() {
            let path = dir.path();
            // A sandbox whose cordon died cannot be stopped by it: what is left in it goes.
            let orphaned = dir.file_name().to_str().and_then(owner).is_some_and(|pid| {
                pid != std::process::id() as i32
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                        == Err(nix::errno::Errno::ESRCH)
            });
            if orphaned {
                kill_members(&path);
                std::thread::sleep(std::time::Duration::from_millis(20));
                if std::fs::remove_dir(&path).is_ok() {
                    removed += 1;
                }
                continue;
            }
            let old = dir
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age);
            let empty = std::fs::read_to_string(path.join("cgroup.procs"))
                .is_ok_and(|procs| procs.trim().is_empty());
            if old && empty && std::fs::remove_dir(&path).is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::debug!(removed, "removed cgroups left behind by killed sandboxes");
    }
    removed
}

impl SandboxCgroups {
    /// Kills every process still in the sandbox (whatever session or group it moved to),
    /// then removes the cgroups, waiting up to half a second for the processes to be gone
    /// (the kernel refuses to remove a cgroup that still has some). Blocking: call it off
    /// the async runtime's threads.
    pub fn remove(mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        for dir in &dirs {
            kill_members(dir);
        }
        // Killed processes leave their cgroup a moment after they die: look again soon, then
        // less often (1, 2, 4 … 64 ms; about half a second in all).
        for dir in dirs {
            let mut wait = std::time::Duration::from_millis(1);
            let mut waited = std::time::Duration::ZERO;
            loop {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                if waited >= std::time::Duration::from_millis(500) {
                    break;
                }
                kill_members(&dir);
                std::thread::sleep(wait);
                waited += wait;
                wait = (wait * 2).min(std::time::Duration::from_millis(64));
            }
        }
    }
}

/// Sends SIGKILL to every process in the cgroup `dir`.
fn kill_members(dir: &Path) {
    let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The cordon process that made a cgroup, from its name (`cordon-sandbox-PID-...`).
fn owner(name: &str) -> Option<i32> {
    name.strip_prefix("cordon-sandbox-")?
        .split_once('-')?
        .0
        .parse()
        .ok()
}

impl Drop for SandboxCgroups {
    fn drop(&mut self) {
        // One try each, without waiting: what is left, a later cordon's sweep removes.
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_sandboxs_empty_cgroups_are_swept() {
        let base = Path::new(V1_ROOT).join("pids").join("cordon");
        let leaked = base.join(format!("leaked-by-test-{}", std::process::id()));
        if std::fs::create_dir_all(&leaked).is_err() {
            eprintln!("cgroup v1 pids is not writable here (not root?): nothing to sweep");
            return;
        }
        sweep_stale(Path::new(V1_ROOT), STALE_AFTER);
        assert!(leaked.exists(), "a fresh cgroup is left alone");
        // (No other test in this binary starts a sandbox whose fresh cgroup this could take.)
        sweep_stale(Path::new(V1_ROOT), std::time::Duration::ZERO);
        assert!(!leaked.exists(), "an old empty cgroup is removed");
    }

    #[test]
    fn what_a_dead_cordons_sandbox_left_running_is_killed_and_its_cgroup_removed() {
        let base = Path::new(V1_ROOT).join("pids").join("cordon");
        // Named for a cordon process that cannot be alive (above the kernel's pid limit).
        let orphan = base.join("cordon-sandbox-99999999-test");
        if std::fs::create_dir_all(&orphan).is_err() {
            eprintln!("cgroup v1 pids is not writable here (not root?): nothing to sweep");
            return;
        }
        let mut left = std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .unwrap();
        std::fs::write(orphan.join("cgroup.procs"), left.id().to_string()).unwrap();
        sweep_stale(Path::new(V1_ROOT), STALE_AFTER);
        let status = left.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "the process left behind is killed"
        );
        for _ in 0..50 {
            if !orphan.exists() {
                break;
            }
            sweep_stale(Path::new(V1_ROOT), STALE_AFTER);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!orphan.exists(), "and its cgroup removed");
    }
}
