//! Restoring a snapshot into a directory, all or nothing.
//!
//! The snapshot is restored into a fresh directory beside the target, which is renamed into
//! place only once every entry is there: a failure or a crash at any point leaves no partly
//! filled target (a leftover staging directory is removed by the next restore).
//!
//! A snapshot's listing is untrusted. Paths must be relative with only normal components;
//! nothing is ever written through a link: before each entry, every directory above it is
//! checked on the real tree (not by reading the listing) to be a directory, not a link, and
//! files are created new, never opened. Links themselves are data and are restored verbatim,
//! wherever they point (a Python venv's `bin/python -> /usr/bin/python3`). Contents must
//! match their hash. Set-id and sticky bits are dropped, and the report says where.

use super::{Kind, Snapshot, SnapshotError, SnapshotStore, io};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// What a restore noticed without failing.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RestoreReport {
    /// Paths whose set-id or sticky bits were dropped: (path, mode asked for).
    pub dropped_mode_bits: Vec<(String, u32)>,
}

impl RestoreReport {
    /// What was noticed, one line each, for people and for the run log.
    pub fn notes(&self) -> Vec<String> {
        self.dropped_mode_bits
            .iter()
            .map(|(p, m)| {
                format!("'{p}' asked for mode {m:o}: its set-id and sticky bits were dropped")
            })
            .collect()
    }
}

impl SnapshotStore {
    /// Restores `snapshot` into `to`, which must not exist or be empty. All or nothing: on
    /// any error `to` is left as it was.
    pub fn restore(&self, snapshot: &Snapshot, to: &Path) -> Result<RestoreReport, SnapshotError> {
        self.restore_with(snapshot, to, &mut |_| Ok(()))
    }

    /// [`SnapshotStore::restore`], telling `progress` of each path.
    pub fn restore_reporting(
        &self,
        snapshot: &Snapshot,
        to: &Path,
        progress: &dyn cordon_core::Progress,
    ) -> Result<RestoreReport, SnapshotError> {
        progress.begin("restoring", Some(snapshot.entries.len() as u64));
        let restored = self.restore_with(snapshot, to, &mut |_| {
            progress.advance(1);
            Ok(())
        });
        progress.end();
        restored
    }

    /// [`SnapshotStore::restore`], calling `hook` with each entry's index before it is
    /// restored (tests inject failures with it).
    pub fn restore_with(
        &self,
        snapshot: &Snapshot,
        to: &Path,
        hook: &mut dyn FnMut(usize) -> std::io::Result<()>,
    ) -> Result<RestoreReport, SnapshotError> {
        match std::fs::read_dir(to) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(SnapshotError::Unsafe(format!(
                        "{} is not empty: restore into a new or empty directory",
                        to.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(to.display(), e)),
        }
        let name = to
            .file_name()
            .ok_or_else(|| SnapshotError::Io(format!("{} has no name", to.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = match to.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| io(parent.display(), e))?;
        sweep_stale_staging(&parent, &name);
        let staging = parent.join(format!(".{name}.restoring-{}", super::unique_suffix()));
        std::fs::create_dir(&staging).map_err(|e| io(staging.display(), e))?;
        let result = self.fill(snapshot, &staging, hook).and_then(|report| {
            std::fs::rename(&staging, to)
                .map_err(|e| io(format!("move the restored tree into {}", to.display()), e))?;
            Ok(report)
        });
        if result.is_err() {
            remove_tree(&staging);
        }
        result
    }

    /// Restores every entry into `root`, a new empty directory.
    fn fill(
        &self,
        snapshot: &Snapshot,
        root: &Path,
        hook: &mut dyn FnMut(usize) -> std::io::Result<()>,
    ) -> Result<RestoreReport, SnapshotError> {
        let mut report = RestoreReport::default();
        let mut dir_modes = Vec::new();
        for (i, e) in snapshot.entries.iter().enumerate() {
            hook(i).map_err(|err| io(&e.path, err))?;
            let rel = safe_relative(&e.path_bytes()?, &e.path)?;
            if e.mode & !0o777 != 0 {
                report.dropped_mode_bits.push((e.path.clone(), e.mode));
            }
            let mode = e.mode & 0o777;
            check_real_parents(root, &rel, &e.path)?;
            let dest = root.join(&rel);
            if std::fs::symlink_metadata(&dest).is_ok() {
                return Err(SnapshotError::Unsafe(format!("'{}' appears twice", e.path)));
            }
            match e.kind {
                Kind::Dir => {
                    std::fs::create_dir(&dest).map_err(|err| io(&e.path, err))?;
                    dir_modes.push((dest, mode));
                }
                Kind::File => {
                    let bytes = self.content(e.hash.as_deref(), &e.path)?;
                    // Created new: an existing name (a link included) is never opened.
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&dest)
                        .map_err(|err| io(&e.path, err))?;
                    f.write_all(&bytes).map_err(|err| io(&e.path, err))?;
                    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                        .map_err(|err| io(&e.path, err))?;
                }
                Kind::Symlink => {
                    let target = e.target_bytes()?.unwrap_or_default();
                    if target.is_empty() || target.contains(&0) {
                        return Err(SnapshotError::Unsafe(format!(
                            "link '{}' has no usable target",
                            e.path
                        )));
                    }
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &dest)
                        .map_err(|err| io(&e.path, err))?;
                }
            }
        }
        // Directory modes last, deepest first, so a read-only directory can still be filled.
        for (dir, mode) in dir_modes.into_iter().rev() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io(dir.display(), e))?;
        }
        Ok(report)
    }

    /// The content whose BLAKE3 hash is `hash`, checked against it.
    pub fn read_content(&self, hash: &str) -> Result<Vec<u8>, SnapshotError> {
        self.content(Some(hash), hash)
    }

    /// A content by hash, checked against it.
    fn content(&self, hash: Option<&str>, path: &str) -> Result<Vec<u8>, SnapshotError> {
        let hash = hash
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| SnapshotError::Unsafe(format!("'{path}' has no valid content hash")))?;
        let packed = std::fs::read(self.object_path(hash))
            .map_err(|err| io(format!("content of '{path}'"), err))?;
        let bytes =
            zstd::decode_all(&packed[..]).map_err(|err| io(format!("content of '{path}'"), err))?;
        if blake3::hash(&bytes).to_hex().as_str() != hash {
            return Err(SnapshotError::Corrupt(hash.to_string()));
        }
        Ok(bytes)
    }
}

/// Every directory above `rel` must exist in the real tree as a directory, not a link: so
/// nothing is written through a link the listing created earlier.
fn check_real_parents(root: &Path, rel: &Path, shown: &str) -> Result<(), SnapshotError> {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for c in &parents[..parents.len().saturating_sub(1)] {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(SnapshotError::Unsafe(format!(
                    "'{shown}' would be written through the link '{}'",
                    at.strip_prefix(root).unwrap_or(&at).display()
                )));
            }
            Ok(_) => {
                return Err(SnapshotError::Unsafe(format!(
                    "'{shown}' would be written inside a file"
                )));
            }
            Err(_) => {
                return Err(SnapshotError::Unsafe(format!(
                    "'{shown}' comes before its directory '{}'",
                    at.strip_prefix(root).unwrap_or(&at).display()
                )));
            }
        }
    }
    Ok(())
}

/// A snapshot path (its exact bytes; `shown` for messages) as a relative path with only
/// normal components.
fn safe_relative(bytes: &[u8], shown: &str) -> Result<PathBuf, SnapshotError> {
    let p = Path::new(std::ffi::OsStr::from_bytes(bytes));
    if bytes.is_empty()
        || bytes.contains(&0)
        || !p.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(SnapshotError::Unsafe(format!(
            "path '{shown}' is absolute or leaves the workspace"
        )));
    }
    Ok(p.to_path_buf())
}

/// Removes a tree this process made, making its directories writable first (a restored
/// directory may be read-only).
fn remove_tree(dir: &Path) {
    fn writable(dir: &Path) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    writable(&e.path());
                }
            }
        }
    }
    writable(dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Removes staging directories of restores into `name` whose process is gone (a restore
/// killed part way).
fn sweep_stale_staging(parent: &Path, name: &str) {
    let prefix = format!(".{name}.restoring-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| {
            p == std::process::id() as i32
                || nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok()
        });
        if !alive {
            remove_tree(&e.path());
        }
    }
}
