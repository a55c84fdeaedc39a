//! Each sandbox's state directory (identity files, the Landlock tier's tmp), and sweeping
//! away those that killed cordon processes left behind.

use std::path::Path;

/// The start of a sandbox's state directory's name, followed by the owning process's id.
pub(super) const STATE_PREFIX: &str = "cordon-sandbox-";

/// Removes the state directories of sandboxes whose cordon process is gone; returns how many.
/// Directories named before the pid was part of the name go once a week old.
pub(super) fn sweep_state_dirs(tmp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(STATE_PREFIX) else {
            continue;
        };
        let owner: Option<i32> = rest.split_once('-').and_then(|(pid, _)| pid.parse().ok());
        let stale = match owner {
            Some(pid) if pid == std::process::id() as i32 => false,
            Some(pid) => {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    == Err(nix::errno::Errno::ESRCH)
            }
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(7 * 24 * 3600)),
        };
        if stale
            && e.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::debug!(
            removed,
            "removed state directories left behind by killed sandboxes"
        );
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_left_by_dead_processes_is_swept_and_live_state_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid that cannot be running (above the kernel's limit) and this process's own.
        let dead = tmp.path().join(format!("{STATE_PREFIX}99999999-abc"));
        let mine = tmp
            .path()
            .join(format!("{STATE_PREFIX}{}-def", std::process::id()));
        let legacy = tmp.path().join(format!("{STATE_PREFIX}Xy12Ab"));
        for d in [&dead, &mine, &legacy] {
            std::fs::create_dir_all(d.join("tmp")).unwrap();
            std::fs::write(d.join("passwd"), "x").unwrap();
        }
        assert_eq!(sweep_state_dirs(tmp.path()), 1);
        assert!(!dead.exists(), "a dead cordon's state goes");
        assert!(mine.exists(), "a live one's stays");
        assert!(
            legacy.exists(),
            "an unnamed one stays until it is a week old"
        );
    }
}
