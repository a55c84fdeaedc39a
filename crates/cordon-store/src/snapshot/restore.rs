//! Restoring a snapshot into a directory, refusing anything unsafe: paths that are absolute
//! or escape, parents that are links, links that lead out, special mode bits, and content
//! that does not match its hash. (Devices cannot be in a snapshot at all.)

use super::{Kind, Snapshot, SnapshotError, SnapshotStore, io};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

impl SnapshotStore {
    /// Restores `snapshot` into `to`, which must be empty (it is created if missing).
    pub fn restore(&self, snapshot: &Snapshot, to: &Path) -> Result<(), SnapshotError> {
        std::fs::create_dir_all(to).map_err(|e| io(to.display(), e))?;
        if std::fs::read_dir(to)
            .map_err(|e| io(to.display(), e))?
            .next()
            .is_some()
        {
            return Err(SnapshotError::Unsafe(format!(
                "{} is not empty",
                to.display()
            )));
        }
        let root = std::fs::canonicalize(to).map_err(|e| io(to.display(), e))?;
        let mut dir_modes = Vec::new();
        for e in &snapshot.entries {
            let rel = safe_relative(&e.path)?;
            if e.mode & !0o777 != 0 {
                return Err(SnapshotError::Unsafe(format!(
                    "'{}' asks for mode {:o}: setuid, setgid and sticky bits are refused",
                    e.path, e.mode
                )));
            }
            let dest = root.join(&rel);
            let parent = dest.parent().unwrap_or(&root);
            let parent_meta = std::fs::symlink_metadata(parent).map_err(|err| io(&e.path, err))?;
            if !parent_meta.is_dir() {
                return Err(SnapshotError::Unsafe(format!(
                    "'{}' would be written through a link or a file",
                    e.path
                )));
            }
            if std::fs::symlink_metadata(&dest).is_ok() {
                return Err(SnapshotError::Unsafe(format!("'{}' appears twice", e.path)));
            }
            match e.kind {
                Kind::Dir => {
                    std::fs::create_dir(&dest).map_err(|err| io(&e.path, err))?;
                    dir_modes.push((dest, e.mode));
                }
                Kind::File => {
                    let hash = e
                        .hash
                        .as_deref()
                        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
                    let hash = hash.ok_or_else(|| {
                        SnapshotError::Unsafe(format!("'{}' has no valid content hash", e.path))
                    })?;
                    let packed = std::fs::read(self.object_path(hash))
                        .map_err(|err| io(format!("content of '{}'", e.path), err))?;
                    let bytes = zstd::decode_all(&packed[..])
                        .map_err(|err| io(format!("content of '{}'", e.path), err))?;
                    if blake3::hash(&bytes).to_hex().as_str() != hash {
                        return Err(SnapshotError::Corrupt(hash.to_string()));
                    }
                    std::fs::write(&dest, &bytes).map_err(|err| io(&e.path, err))?;
                    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(e.mode))
                        .map_err(|err| io(&e.path, err))?;
                }
                Kind::Symlink => {
                    let target = e.target.as_deref().unwrap_or_default();
                    if !link_stays_inside(&rel, target) {
                        return Err(SnapshotError::Unsafe(format!(
                            "link '{}' → '{target}' leads out of the workspace",
                            e.path
                        )));
                    }
                    std::os::unix::fs::symlink(target, &dest).map_err(|err| io(&e.path, err))?;
                }
            }
        }
        // Directory modes last, deepest first, so a read-only directory can still be filled.
        for (dir, mode) in dir_modes.into_iter().rev() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io(dir.display(), e))?;
        }
        Ok(())
    }
}

/// A snapshot path as a relative path with only normal components.
fn safe_relative(path: &str) -> Result<PathBuf, SnapshotError> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(SnapshotError::Unsafe(format!(
            "path '{path}' is absolute or leaves the workspace"
        )));
    }
    Ok(p.to_path_buf())
}

/// Whether a link at `rel` pointing to `target` stays inside the workspace: relative, and
/// never climbing above the root as its components are followed.
fn link_stays_inside(rel: &Path, target: &str) -> bool {
    let t = Path::new(target);
    if t.is_absolute() {
        return false;
    }
    let mut depth = rel.components().count() as i64 - 1;
    for c in t.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_must_stay_inside() {
        assert!(link_stays_inside(Path::new("a/link"), "b/c"));
        assert!(link_stays_inside(Path::new("a/link"), "../x"));
        assert!(!link_stays_inside(Path::new("a/link"), "../../x"));
        assert!(!link_stays_inside(Path::new("link"), "/etc/passwd"));
        assert!(!link_stays_inside(Path::new("link"), "x/../../y"));
    }
}
