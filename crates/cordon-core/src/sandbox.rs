//! What a run's sandbox is made of, as recorded when the run starts, so that a resumed run
//! gets the same sandbox: the same root, environment, grants, read-only paths and tier.
//! Secret values are never recorded: a variable taken from the host is recorded by the
//! host variable's name and read again when the run resumes.

use serde::{Deserialize, Serialize};

/// A sandbox's configuration, independent of where it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// The isolation tier asked for: `auto`, `namespaces`, `landlock` or `unconfined`.
    pub tier: String,
    /// Whether the whole workspace is read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Where the workspace appears inside the sandbox.
    pub root: String,
    /// The environment added to the sandbox's fixed one.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Host paths visible inside, at the same path.
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
    /// Workspace-relative paths mounted read-only.
    #[serde(default)]
    pub read_only_paths: Vec<String>,
    /// Workspace-relative paths left out of checkpoints.
    #[serde(default)]
    pub ephemeral: Vec<String>,
    /// The longest any one command may run, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_timeout_secs: Option<u64>,
    /// What else checkpoints leave out (the agent file's and the manifest's `[checkpoints]`).
    #[serde(default, skip_serializing_if = "CheckpointRules::is_empty")]
    pub checkpoints: CheckpointRules,
    /// The workspace paths whose files are the run's artifacts, collected at its end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputSpec>,
}

/// A workspace path whose files are a run's artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Workspace-relative: a file, or a directory whose files are all artifacts.
    pub path: String,
    /// The run fails when it ends without having made this path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// What checkpoints of a workspace leave out besides ephemeral entries: build output, caches,
/// anything that can be made again. Left-out paths are not restored on resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRules {
    /// Gitignore-style patterns, relative to the workspace root: `target/`, `*.log`,
    /// `/build` (anchored), `!keep.log` (an exception).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Also leave out what the workspace's own `.gitignore` files ignore.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gitignore: bool,
}

impl CheckpointRules {
    /// Whether the rules leave nothing out.
    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty() && !self.gitignore
    }

    /// Checks one exclusion pattern as a manifest or agent file gives it: what is wrong with
    /// it, if anything.
    pub fn check_pattern(pattern: &str) -> Result<(), String> {
        if pattern.trim().is_empty() {
            return Err("is empty".into());
        }
        ignore::gitignore::GitignoreBuilder::new("/")
            .add_line(None, pattern)
            .map(|_| ())
            .map_err(|e| format!("is not a pattern: {e}"))
    }

    /// Both sets of rules at once.
    pub fn merge(&mut self, other: &CheckpointRules) {
        for p in &other.exclude {
            if !self.exclude.contains(p) {
                self.exclude.push(p.clone());
            }
        }
        self.gitignore |= other.gitignore;
    }
}

/// One environment variable of a sandbox: a literal value, or the name of a host variable
/// whose value is passed without being recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvVar {
    /// The variable's name inside the sandbox.
    pub name: String,
    /// Its value, when given literally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The host variable it is read from (a secret: never recorded by value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_host: Option<String>,
}

/// A host path granted to the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantSpec {
    /// The host path (visible at the same path inside).
    pub path: String,
    /// Whether the sandbox may write there.
    #[serde(default)]
    pub writable: bool,
}
