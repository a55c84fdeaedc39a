//! Where a patch is applied: a directory on the host, or a sandbox's workspace. Either way
//! the whole plan is computed first, and only then written.

use super::{ApplyError, Op, ParseError, Plan, parse, plan};
use cordon_sandbox::Sandbox;
use std::collections::BTreeMap;
use std::path::Path;

/// A patch that was not applied (and changed nothing).
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch text is not in the format.
    #[error("the patch is malformed: {0}")]
    Parse(#[from] ParseError),
    /// The patch does not fit the files.
    #[error("the patch does not apply: {0}")]
    Apply(#[from] ApplyError),
    /// A file is not text.
    #[error("'{0}' is not UTF-8 text; apply_patch edits text files")]
    NotText(String),
    /// A path names something other than a regular file.
    #[error("'{0}' is not a regular file")]
    NotAFile(String),
    /// The root directory cannot be used.
    #[error("{path}: {source}")]
    Root {
        /// The directory.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Reading or writing on the host failed.
    #[error(transparent)]
    File(#[from] cordon_sandbox::files::FileError),
    /// The sandbox refused or failed a request.
    #[error(transparent)]
    Sandbox(#[from] cordon_sandbox::SandboxError),
}

/// Every path a patch reads or writes.
fn paths(ops: &[Op]) -> Vec<String> {
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Add { path, .. } | Op::Delete { path } => out.push(path.clone()),
            Op::Update { path, move_to, .. } => {
                out.push(path.clone());
                out.extend(move_to.clone());
            }
        }
    }
    out
}

/// Plans `ops` against the files read beforehand into `files`.
fn plan_from(ops: &[Op], files: &BTreeMap<String, Option<String>>) -> Result<Plan, PatchError> {
    Ok(plan(ops, &|p| files.get(p).cloned().flatten())?)
}

fn text(path: &str, bytes: Vec<u8>) -> Result<String, PatchError> {
    String::from_utf8(bytes).map_err(|_| PatchError::NotText(path.to_string()))
}

/// Reads every file `ops` touches under `root` (`None`: no such file).
fn read_all(root: &Path, ops: &[Op]) -> Result<BTreeMap<String, Option<String>>, PatchError> {
    let mut files = BTreeMap::new();
    for path in paths(ops) {
        // A path whose directory does not exist yet is a file that does not exist yet;
        // refusals (links leading out, '..') stop the patch.
        let content = match cordon_sandbox::files::resolve_existing(root, &path) {
            Ok(Some(p)) if p.is_file() => Some(text(
                &path,
                std::fs::read(&p).map_err(|source| cordon_sandbox::files::FileError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                })?,
            )?),
            Ok(Some(p)) if p.exists() => {
                return Err(PatchError::NotAFile(path));
            }
            Ok(_) => None,
            Err(e) => return Err(e.into()),
        };
        files.insert(path, content);
    }
    Ok(files)
}

/// Applies patch `text` to the directory `root`; returns the summary (`A path`, `M path`,
/// `D path`). Paths may not leave `root`, through `..` or through symlinks.
pub fn apply_to_dir(root: &Path, text_in: &str) -> Result<Vec<String>, PatchError> {
    let ops = parse(text_in)?;
    let root = std::fs::canonicalize(root).map_err(|source| PatchError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let files = read_all(&root, &ops)?;
    let plan = plan_from(&ops, &files)?;
    cordon_sandbox::files::commit(&root, &changes(&plan))?;
    Ok(plan.summary)
}

/// [`apply_to_dir`], calling `hook` before every file-system step: for tests that inject a
/// failure at each step and check that nothing changed.
pub fn apply_to_dir_with(
    root: &Path,
    text_in: &str,
    hook: &mut dyn FnMut(cordon_sandbox::files::Step) -> std::io::Result<()>,
) -> Result<Vec<String>, PatchError> {
    let ops = parse(text_in)?;
    let root = std::fs::canonicalize(root).map_err(|source| PatchError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let files = read_all(&root, &ops)?;
    let plan = plan_from(&ops, &files)?;
    cordon_sandbox::files::commit_with(&root, &changes(&plan), hook)?;
    Ok(plan.summary)
}

/// A plan's outcome as file changes: writes in path order, then removals.
fn changes(plan: &Plan) -> Vec<cordon_sandbox::files::Change> {
    plan.files
        .iter()
        .map(|(path, content)| cordon_sandbox::files::Change {
            path: path.clone(),
            data: content.as_ref().map(|c| c.clone().into_bytes()),
            mode: None,
        })
        .collect()
}

/// Applies patch `text` in a sandbox's workspace; returns the summary.
pub async fn apply_in_sandbox(
    sandbox: &dyn Sandbox,
    text_in: &str,
) -> Result<Vec<String>, PatchError> {
    let ops = parse(text_in)?;
    let mut files = BTreeMap::new();
    for path in paths(&ops) {
        let bytes = sandbox.read_file(&path).await?;
        let content = match bytes {
            Some(b) => Some(text(&path, b)?),
            None => None,
        };
        files.insert(path, content);
    }
    let plan = plan_from(&ops, &files)?;
    sandbox.commit(&changes(&plan)).await?;
    Ok(plan.summary)
}
