//! File requests, served by the supervisor inside the sandbox: paths stay in the workspace.

use crate::protocol::{self, DirEntry, Reply};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// `path` inside `workspace`: no `..` anywhere, absolute only under the workspace, its
/// parent directory resolved through symlinks and still inside, and the last component not
/// a symlink (so a link cannot send a read or write elsewhere).
pub fn resolve(workspace: &Path, path: &str) -> Result<PathBuf, String> {
    resolve_existing(workspace, path)?
        .ok_or_else(|| format!("'{path}': its directory does not exist"))
}

/// Like [`resolve`], but `None` when a directory on the way does not exist (so neither
/// does the file).
pub fn resolve_existing(workspace: &Path, path: &str) -> Result<Option<PathBuf>, String> {
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "'{path}' has a '..' component; give a path inside the workspace"
        ));
    }
    let rel = if p.is_absolute() {
        p.strip_prefix(workspace)
            .map_err(|_| format!("'{path}' is outside the workspace {}", workspace.display()))?
    } else {
        p
    };
    let root = std::fs::canonicalize(workspace).map_err(|e| format!("workspace: {e}"))?;
    let full = root.join(rel);
    let name = match full.file_name() {
        Some(n) if full != root => n.to_owned(),
        _ => return Ok(Some(root)),
    };
    let parent = full.parent().unwrap_or(&root);
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("'{path}': its directory: {e}")),
    };
    if !parent.starts_with(&root) {
        return Err(format!(
            "'{path}' leads outside the workspace through a symlink"
        ));
    }
    let resolved = parent.join(name);
    if std::fs::symlink_metadata(&resolved).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "'{path}' is a symlink; cordon does not follow links for file requests"
        ));
    }
    Ok(Some(resolved))
}

/// Serves one file request.
pub fn serve(workspace: &Path, request: FileRequest) -> Reply {
    let id = request.id();
    let result = match request {
        FileRequest::Read { path, .. } => {
            resolve_existing(workspace, &path).and_then(|p| match p.map(std::fs::read) {
                Some(Ok(data)) => Ok(Reply::File {
                    id,
                    data: Some(protocol::encode(&data)),
                }),
                None => Ok(Reply::File { id, data: None }),
                Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Reply::File { id, data: None })
                }
                Some(Err(e)) => Err(format!("read '{path}': {e}")),
            })
        }
        FileRequest::Write {
            path, data, mode, ..
        } => write(workspace, &path, &data, mode).map(|()| Reply::Done { id }),
        FileRequest::MakeDir { path, mode, .. } => {
            make_dir(workspace, &path, mode).map(|()| Reply::Done { id })
        }
        FileRequest::Symlink { path, target, .. } => {
            symlink(workspace, &path, &target).map(|()| Reply::Done { id })
        }
        FileRequest::Commit { changes, .. } => changes
            .into_iter()
            .map(|c| {
                let data = c
                    .data
                    .map(|d| protocol::decode(&d).map_err(|e| e.to_string()))
                    .transpose()?;
                Ok(Change {
                    path: c.path,
                    data,
                    mode: c.mode,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .and_then(|changes| commit(workspace, &changes))
            .map(|()| Reply::Done { id }),
        FileRequest::List { path, .. } => resolve(workspace, &path)
            .and_then(|p| list(&p).map(|entries| Reply::Entries { id, entries })),
        FileRequest::Remove {
            path, recursive, ..
        } => resolve(workspace, &path).and_then(|p| {
            if p == std::fs::canonicalize(workspace).unwrap_or_default() {
                return Err("refusing to remove the workspace itself".into());
            }
            let meta =
                std::fs::symlink_metadata(&p).map_err(|e| format!("remove '{path}': {e}"))?;
            let done = if meta.is_dir() && recursive {
                std::fs::remove_dir_all(&p)
            } else if meta.is_dir() {
                std::fs::remove_dir(&p)
            } else {
                std::fs::remove_file(&p)
            };
            done.map(|_| Reply::Done { id })
                .map_err(|e| format!("remove '{path}': {e}"))
        }),
    };
    result.unwrap_or_else(|message| Reply::Error {
        id: Some(id),
        message,
    })
}

fn write(workspace: &Path, path: &str, data: &str, mode: Option<u32>) -> Result<(), String> {
    let bytes = protocol::decode(data).map_err(|e| e.to_string())?;
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    std::fs::write(&p, bytes).map_err(|e| format!("write '{path}': {e}"))?;
    if let Some(m) = mode {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o777))
            .map_err(|e| format!("chmod '{path}': {e}"))?;
    }
    Ok(())
}

/// Makes a link at `path` (its directories made first) pointing at `target` as given.
fn symlink(workspace: &Path, path: &str, target: &str) -> Result<(), String> {
    if target.is_empty() || target.contains('\0') {
        return Err(format!("link '{path}': its target is empty or not text"));
    }
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    std::os::unix::fs::symlink(target, &p).map_err(|e| format!("link '{path}': {e}"))
}

fn make_dir(workspace: &Path, path: &str, mode: Option<u32>) -> Result<(), String> {
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    if !p.is_dir() {
        std::fs::create_dir(&p).map_err(|e| format!("make directory '{path}': {e}"))?;
    }
    if let Some(m) = mode {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o777))
            .map_err(|e| format!("chmod '{path}': {e}"))?;
    }
    Ok(())
}

/// Creates the directories above `path` one at a time, each resolved (so no symlink can
/// send them elsewhere) before it is made.
pub fn make_parents(workspace: &Path, path: &str) -> Result<(), String> {
    make_parents_with(workspace, path, &mut |dir| {
        std::fs::create_dir(dir).map_err(|e| e.to_string())
    })
    .map_err(|e| format!("write '{path}': {e}"))
}

/// [`make_parents`], making each missing directory with `make`.
fn make_parents_with(
    workspace: &Path,
    path: &str,
    make: &mut dyn FnMut(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        p.strip_prefix(workspace).unwrap_or(p)
    } else {
        p
    };
    let mut prefix = PathBuf::new();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        prefix.push(c);
        let dir = resolve(workspace, &prefix.to_string_lossy())?;
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a directory",
                    prefix.display()
                ));
            }
            Err(_) => make(&dir).map_err(|e| format!("make {}: {e}", prefix.display()))?,
        }
    }
    Ok(())
}

/// One change of a [`commit`]: write a file (whole), or remove one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// Workspace-relative path.
    pub path: String,
    /// The file's new content; `None` removes it.
    pub data: Option<Vec<u8>>,
    /// Permission bits for a new file (an existing file keeps its own).
    #[serde(default)]
    pub mode: Option<u32>,
}

/// A step of a [`commit`], for fault-injection tests: the hook given to [`commit_with`] is
/// called before each, and an error it returns fails the commit right there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Making a missing directory (its index among the directories made).
    MakeDir(usize),
    /// Writing the staged content of the change with this index.
    Stage(usize),
    /// Moving the existing file of the change with this index aside.
    Backup(usize),
    /// Putting the staged content of the change with this index in place.
    Install(usize),
}

/// Applies `changes` to `workspace` all or nothing: each new content is written to a
/// temporary file beside its target first, then every target is moved aside and replaced
/// by rename; if any step fails, everything done is undone and the workspace is as it was.
pub fn commit(workspace: &Path, changes: &[Change]) -> Result<(), String> {
    commit_with(workspace, changes, &mut |_| Ok(()))
}

/// [`commit`], calling `hook` before every step (to inject failures in tests).
pub fn commit_with(
    workspace: &Path,
    changes: &[Change],
    hook: &mut dyn FnMut(Step) -> std::io::Result<()>,
) -> Result<(), String> {
    let mut done = Undo::default();
    let result = commit_steps(workspace, changes, hook, &mut done);
    match result {
        Ok(()) => {
            done.finish();
            Ok(())
        }
        Err(e) => {
            let left = done.undo();
            if left.is_empty() {
                Err(e)
            } else {
                Err(format!(
                    "{e}; undoing it also failed, so these may have changed: {}",
                    left.join(", ")
                ))
            }
        }
    }
}

/// What a commit has done so far, to undo on failure or tidy up on success.
#[derive(Default)]
struct Undo {
    /// Directories made, in order.
    dirs: Vec<PathBuf>,
    /// Staged contents not yet installed.
    staged: Vec<PathBuf>,
    /// (target, where its old file went): moved aside.
    backups: Vec<(PathBuf, PathBuf)>,
    /// Targets whose new content is in place.
    installed: Vec<PathBuf>,
}

impl Undo {
    /// Puts everything back; returns what could not be.
    fn undo(self) -> Vec<String> {
        let mut left = Vec::new();
        for target in self.installed.iter().rev() {
            if let Err(e) = std::fs::remove_file(target) {
                left.push(format!("{} ({e})", target.display()));
            }
        }
        for (target, backup) in self.backups.iter().rev() {
            if let Err(e) = std::fs::rename(backup, target) {
                left.push(format!("{} ({e})", target.display()));
            }
        }
        for tmp in &self.staged {
            let _ = std::fs::remove_file(tmp);
        }
        for dir in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        left
    }

    /// Removes the old files moved aside (best effort: the commit itself succeeded).
    fn finish(self) {
        for (_, backup) in &self.backups {
            let _ = std::fs::remove_file(backup);
        }
    }
}

/// A temporary name beside `target`.
fn beside(target: &Path, what: &str, n: usize) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.cordon-{what}-{}-{n}", std::process::id()))
}

fn commit_steps(
    workspace: &Path,
    changes: &[Change],
    hook: &mut dyn FnMut(Step) -> std::io::Result<()>,
    done: &mut Undo,
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for c in changes {
        if !seen.insert(c.path.as_str()) {
            return Err(format!("'{}' is changed twice in one commit", c.path));
        }
    }
    // Stage: make missing directories, write every new content beside its target.
    let mut targets = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if c.data.is_some() {
            make_parents_with(workspace, &c.path, &mut |dir| {
                hook(Step::MakeDir(done.dirs.len())).map_err(|e| e.to_string())?;
                std::fs::create_dir(dir).map_err(|e| e.to_string())?;
                done.dirs.push(dir.to_path_buf());
                Ok(())
            })?;
        }
        let target = resolve(workspace, &c.path)?;
        let existing = std::fs::symlink_metadata(&target).ok();
        if existing.as_ref().is_some_and(|m| !m.is_file()) {
            return Err(format!("'{}' exists and is not a regular file", c.path));
        }
        if c.data.is_none() && existing.is_none() {
            return Err(format!("cannot remove '{}': no such file", c.path));
        }
        if let Some(data) = &c.data {
            hook(Step::Stage(i)).map_err(|e| format!("write '{}': {e}", c.path))?;
            let tmp = beside(&target, "stage", i);
            done.staged.push(tmp.clone());
            std::fs::write(&tmp, data).map_err(|e| format!("write '{}': {e}", c.path))?;
            let mode = existing
                .as_ref()
                .map(|m| m.permissions().mode() & 0o7777)
                .or(c.mode.map(|m| m & 0o777));
            if let Some(m) = mode {
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(m))
                    .map_err(|e| format!("chmod '{}': {e}", c.path))?;
            }
        }
        targets.push((target, existing.is_some()));
    }
    // Install: move each old file aside, then put the new content in its place.
    for (i, (c, (target, exists))) in changes.iter().zip(&targets).enumerate() {
        if *exists {
            hook(Step::Backup(i)).map_err(|e| format!("replace '{}': {e}", c.path))?;
            let backup = beside(target, "undo", i);
            std::fs::rename(target, &backup).map_err(|e| format!("replace '{}': {e}", c.path))?;
            done.backups.push((target.clone(), backup));
        }
        if c.data.is_some() {
            hook(Step::Install(i)).map_err(|e| format!("write '{}': {e}", c.path))?;
            let tmp = beside(target, "stage", i);
            std::fs::rename(&tmp, target).map_err(|e| format!("write '{}': {e}", c.path))?;
            done.staged.retain(|t| *t != tmp);
            done.installed.push(target.clone());
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<DirEntry>, String> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("list '{}': {e}", dir.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let meta = e.path().symlink_metadata().map_err(|e| e.to_string())?;
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        entries.push(DirEntry {
            name: e.file_name().to_string_lossy().into_owned(),
            kind: kind.into(),
            size: meta.size(),
            mode: meta.mode() & 0o7777,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The file requests, taken out of [`crate::protocol::Request`].
pub enum FileRequest {
    /// Read.
    Read {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
    },
    /// Write.
    Write {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
        /// Base64 content.
        data: String,
        /// Mode.
        mode: Option<u32>,
    },
    /// Make a directory.
    MakeDir {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
        /// Mode.
        mode: Option<u32>,
    },
    /// List.
    List {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
    },
    /// Make a symbolic link.
    Symlink {
        /// Request id.
        id: u64,
        /// Path of the link.
        path: String,
        /// Its target, verbatim.
        target: String,
    },
    /// Apply changes all or nothing.
    Commit {
        /// Request id.
        id: u64,
        /// The changes, their content in base64.
        changes: Vec<protocol::FileChange>,
    },
    /// Remove.
    Remove {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
        /// Recursively.
        recursive: bool,
    },
}

impl FileRequest {
    fn id(&self) -> u64 {
        match self {
            FileRequest::Read { id, .. }
            | FileRequest::Write { id, .. }
            | FileRequest::MakeDir { id, .. }
            | FileRequest::List { id, .. }
            | FileRequest::Commit { id, .. }
            | FileRequest::Symlink { id, .. }
            | FileRequest::Remove { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(ws.path()).unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("pw")).unwrap();
        assert_eq!(resolve(&root, "d/x").unwrap(), root.join("d/x"));
        assert_eq!(
            resolve(&root, &root.join("d").display().to_string()).unwrap(),
            root.join("d")
        );
        for bad in ["../x", "d/../../x", "/etc/passwd", "etc/passwd", "pw"] {
            assert!(resolve(&root, bad).is_err(), "{bad} was accepted");
        }
    }
}
