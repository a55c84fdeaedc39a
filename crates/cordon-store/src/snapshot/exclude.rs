//! What a snapshot leaves out of a workspace: exact paths (ephemeral entries, mounts),
//! gitignore-style patterns, and, when asked, what the workspace's own `.gitignore` files
//! ignore.

use super::SnapshotError;
use cordon_core::CheckpointRules;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The largest `.gitignore` file read; a bigger one is not read at all (and says so).
const MAX_GITIGNORE_BYTES: u64 = 1024 * 1024;

/// What a snapshot leaves out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exclusions {
    /// Workspace-relative paths left out with all they hold.
    pub paths: Vec<String>,
    /// Patterns, and whether `.gitignore` files count.
    pub rules: CheckpointRules,
}

impl Exclusions {
    /// Leaves out exactly these workspace-relative paths.
    pub fn paths(paths: &[String]) -> Exclusions {
        Exclusions {
            paths: paths.to_vec(),
            rules: CheckpointRules::default(),
        }
    }
}

/// Why a path is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// It is one of the exact paths given (ephemeral entries, mounts): declared, so not
    /// reported.
    Declared,
    /// A pattern or a `.gitignore` file matched it: reported.
    ByRule,
}

/// Decides, path by path, what a walk of `root` leaves out.
pub(crate) struct Matcher<'a> {
    root: &'a Path,
    paths: &'a [String],
    patterns: Option<Gitignore>,
    gitignore: bool,
    /// Each directory's own `.gitignore`, read once (`None`: it has none).
    by_dir: HashMap<PathBuf, Option<Gitignore>>,
    /// What could not be used, for the caller to report.
    pub(crate) notes: Vec<String>,
}

impl<'a> Matcher<'a> {
    pub(crate) fn new(root: &'a Path, ex: &'a Exclusions) -> Result<Matcher<'a>, SnapshotError> {
        let patterns = if ex.rules.exclude.is_empty() {
            None
        } else {
            let mut b = GitignoreBuilder::new(root);
            for p in &ex.rules.exclude {
                b.add_line(None, p).map_err(|e| {
                    SnapshotError::Io(format!("checkpoint exclusion '{p}' is not a pattern: {e}"))
                })?;
            }
            Some(b.build().map_err(|e| {
                SnapshotError::Io(format!("checkpoint exclusions do not build: {e}"))
            })?)
        };
        Ok(Matcher {
            root,
            paths: &ex.paths,
            patterns,
            gitignore: ex.rules.gitignore,
            by_dir: HashMap::new(),
            notes: Vec::new(),
        })
    }

    /// Whether to leave out `path` (under the root; `rel` is its workspace-relative bytes),
    /// and why. A directory left out is not walked into.
    pub(crate) fn excluded(&mut self, path: &Path, rel: &[u8], is_dir: bool) -> Option<Left> {
        let declared = self.paths.iter().any(|x| {
            let x = x.as_bytes();
            rel == x || (rel.starts_with(x) && rel.get(x.len()) == Some(&b'/'))
        });
        if declared {
            return Some(Left::Declared);
        }
        if let Some(p) = &self.patterns
            && p.matched(path, is_dir).is_ignore()
        {
            return Some(Left::ByRule);
        }
        if !self.gitignore {
            return None;
        }
        // The nearest `.gitignore` that has a say decides, as in git.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if !d.starts_with(self.root) {
                break;
            }
            if let Some(gi) = self.gitignore_of(d) {
                let m = gi.matched(path, is_dir);
                if m.is_ignore() {
                    return Some(Left::ByRule);
                }
                if m.is_whitelist() {
                    return None;
                }
            }
            dir = d.parent();
        }
        None
    }

    /// The `.gitignore` of `dir`, read once: a regular file (never followed through a link),
    /// at most [`MAX_GITIGNORE_BYTES`].
    fn gitignore_of(&mut self, dir: &Path) -> Option<&Gitignore> {
        if !self.by_dir.contains_key(dir) {
            let loaded = self.load(dir);
            self.by_dir.insert(dir.to_path_buf(), loaded);
        }
        self.by_dir.get(dir).and_then(Option::as_ref)
    }

    fn load(&mut self, dir: &Path) -> Option<Gitignore> {
        let file = dir.join(".gitignore");
        let meta = std::fs::symlink_metadata(&file).ok()?;
        let shown = file.strip_prefix(self.root).unwrap_or(&file).display();
        if !meta.is_file() {
            return None;
        }
        if meta.len() > MAX_GITIGNORE_BYTES {
            self.notes.push(format!(
                "{shown} is over {MAX_GITIGNORE_BYTES} bytes and was not used"
            ));
            return None;
        }
        let text = std::fs::read(&file).ok()?;
        let mut b = GitignoreBuilder::new(dir);
        for line in String::from_utf8_lossy(&text).lines() {
            if let Err(e) = b.add_line(Some(file.clone()), line) {
                self.notes
                    .push(format!("{shown}: a line was not used: {e}"));
            }
        }
        b.build().ok()
    }
}
