//! Applying file changes all or nothing: staged beside their targets, installed by rename,
//! undone on any failure.

use super::{FileError, make_parents_with, resolve};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
pub fn commit(workspace: &Path, changes: &[Change]) -> Result<(), FileError> {
    commit_with(workspace, changes, &mut |_| Ok(()))
}

/// [`commit`], calling `hook` before every step (to inject failures in tests).
pub fn commit_with(
    workspace: &Path,
    changes: &[Change],
    hook: &mut dyn FnMut(Step) -> std::io::Result<()>,
) -> Result<(), FileError> {
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
                Err(FileError::UndoFailed {
                    cause: Box::new(e),
                    left,
                })
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
) -> Result<(), FileError> {
    let mut seen = std::collections::HashSet::new();
    for c in changes {
        if !seen.insert(c.path.as_str()) {
            return Err(FileError::Malformed(format!(
                "'{}' is changed twice in one commit",
                c.path
            )));
        }
    }
    // Stage: make missing directories, write every new content beside its target.
    let mut targets = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if c.data.is_some() {
            make_parents_with(workspace, &c.path, &mut |dir, shown| {
                let make = FileError::io("make the directory", shown);
                hook(Step::MakeDir(done.dirs.len())).map_err(make)?;
                std::fs::create_dir(dir).map_err(FileError::io("make the directory", shown))?;
                done.dirs.push(dir.to_path_buf());
                Ok(())
            })?;
        }
        let target = resolve(workspace, &c.path)?;
        let existing = std::fs::symlink_metadata(&target).ok();
        if existing.as_ref().is_some_and(|m| !m.is_file()) {
            return Err(FileError::refused(
                &c.path,
                "exists and is not a regular file",
            ));
        }
        if c.data.is_none() && existing.is_none() {
            return Err(FileError::refused(
                &c.path,
                "cannot be removed: there is no such file",
            ));
        }
        if let Some(data) = &c.data {
            hook(Step::Stage(i)).map_err(FileError::io("write", &c.path))?;
            let tmp = beside(&target, "stage", i);
            done.staged.push(tmp.clone());
            std::fs::write(&tmp, data).map_err(FileError::io("write", &c.path))?;
            let mode = existing
                .as_ref()
                .map(|m| m.permissions().mode() & 0o7777)
                .or(c.mode.map(|m| m & 0o777));
            if let Some(m) = mode {
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(m))
                    .map_err(FileError::io("chmod", &c.path))?;
            }
        }
        targets.push((target, existing.is_some()));
    }
    // Install: move each old file aside, then put the new content in its place.
    for (i, (c, (target, exists))) in changes.iter().zip(&targets).enumerate() {
        if *exists {
            hook(Step::Backup(i)).map_err(FileError::io("replace", &c.path))?;
            let backup = beside(target, "undo", i);
            std::fs::rename(target, &backup).map_err(FileError::io("replace", &c.path))?;
            done.backups.push((target.clone(), backup));
        }
        if c.data.is_some() {
            hook(Step::Install(i)).map_err(FileError::io("write", &c.path))?;
            let tmp = beside(target, "stage", i);
            std::fs::rename(&tmp, target).map_err(FileError::io("write", &c.path))?;
            done.staged.retain(|t| *t != tmp);
            done.installed.push(target.clone());
        }
    }
    Ok(())
}
