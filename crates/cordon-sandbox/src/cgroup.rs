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

    /// The `cgroup.procs` files a process writes its pid into to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
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

impl Drop for SandboxCgroups {
    fn drop(&mut self) {
        for dir in &self.dirs {
            // A cgroup can only be removed once empty; its processes may take a moment to go.
            for _ in 0..20 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
        }
    }
}
