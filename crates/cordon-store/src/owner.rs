//! Run owners: the process driving a run holds a lock on a small file beside the run's head,
//! for as long as it drives it.
//!
//! A run's log says `running` from its start (or resume) until its end is recorded. When the
//! process is killed (SIGKILL, a second Ctrl-C, a crash, a power cut) no end is ever recorded,
//! so the log alone cannot tell a run going on from one that died. The lock can: the kernel
//! releases it when its holder dies, whatever killed it. The file also names the holder's pid,
//! for people to read; the lock, not the pid, is what decides.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The lock a process holds while it drives a run; released when dropped (or when the
/// process dies).
#[derive(Debug)]
pub struct RunOwner {
    _lock: Flock<File>,
}

/// Why a run could not be claimed.
#[derive(Debug)]
pub(crate) enum ClaimError {
    /// Another process drives it; its pid as it wrote it.
    Busy(Option<u32>),
    /// The file could not be opened or locked.
    Io(PathBuf, io::Error),
}

/// The owner file of `run_id` in a store's heads directory, when the id can name a file.
fn path(dir: &Path, run_id: &str) -> Option<PathBuf> {
    crate::head::file_name(run_id).map(|name| dir.join(format!("{name}.owner")))
}

/// Takes the lock of `run_id` without waiting, and writes this process's pid into it.
pub(crate) fn claim(dir: &Path, run_id: &str) -> Result<Option<RunOwner>, ClaimError> {
    let Some(path) = path(dir, run_id) else {
        return Ok(None);
    };
    let io = |e| ClaimError::Io(path.clone(), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => return Err(ClaimError::Busy(pid(file))),
        Err((_, e)) => return Err(io(io::Error::from(e))),
    };
    lock.set_len(0).map_err(io)?;
    writeln!(&mut *lock, "{}", std::process::id()).map_err(io)?;
    Ok(Some(RunOwner { _lock: lock }))
}

/// Whether a live process holds the lock of `run_id`, and its pid if it wrote one. A file
/// that cannot be read counts as held: a run is never called interrupted on a guess.
pub(crate) fn holder(dir: &Path, run_id: &str) -> Option<Option<u32>> {
    let path = path(dir, run_id)?;
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(_) => return Some(None),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        // Nobody holds it; dropping the lock lets it go again.
        Ok(_) => None,
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => Some(pid(file)),
        Err(_) => Some(None),
    }
}

/// The pid written in an owner file (a few bytes at most).
fn pid(file: File) -> Option<u32> {
    let mut text = String::new();
    file.take(16).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_seen_by_others_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let id = "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee";
        assert_eq!(holder(dir.path(), id), None, "never claimed");
        let owner = claim(dir.path(), id).unwrap().unwrap();
        assert_eq!(holder(dir.path(), id), Some(Some(std::process::id())));
        assert!(matches!(
            claim(dir.path(), id),
            Err(ClaimError::Busy(Some(p))) if p == std::process::id()
        ));
        drop(owner);
        assert_eq!(holder(dir.path(), id), None, "released");
        assert!(claim(dir.path(), id).unwrap().is_some(), "claimable again");
        assert!(claim(dir.path(), "../x").unwrap().is_none());
    }
}
