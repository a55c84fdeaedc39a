//! The manifest as people write it (TOML, or JSON / YAML by extension).

use serde::Deserialize;
use std::collections::BTreeMap;

/// A workspace manifest.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    /// Where the workspace appears inside the sandbox (default `/workspace`).
    #[serde(default)]
    pub root: Option<String>,
    /// Entries by workspace-relative path.
    #[serde(default)]
    pub entries: BTreeMap<String, RawEntry>,
    /// Environment variables for commands.
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    /// Host paths mounted into the sandbox.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The run's artifacts: directories made empty for them (`"out"`), or paths the run
    /// makes itself (`{ path = "summary.md", required = true }`).
    #[serde(default)]
    pub outputs: Vec<RawOutput>,
    /// What checkpoints leave out besides ephemeral entries.
    #[serde(default)]
    pub checkpoints: cordon_core::CheckpointRules,
}

/// One of `outputs`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawOutput {
    /// A directory, made empty when the workspace is built.
    Dir(String),
    /// A path the run makes: a file or a directory.
    Path(OutputTable),
}

/// An output written as a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputTable {
    /// Workspace-relative path of a file or directory.
    pub path: String,
    /// The run fails when it ends without having made it.
    #[serde(default)]
    pub required: bool,
}

/// The kinds of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    /// Inline content.
    File,
    /// A directory, with children or empty.
    Dir,
    /// A file copied from the host.
    LocalFile,
    /// A directory copied from the host.
    LocalDir,
    /// A git repository, cloned.
    GitRepo,
    /// A prefix of an object store bucket, copied in.
    ObjectStore,
}

impl EntryType {
    /// The type's name as written.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::LocalFile => "local_file",
            EntryType::LocalDir => "local_dir",
            EntryType::GitRepo => "git_repo",
            EntryType::ObjectStore => "object_store",
        }
    }

    /// The fields an entry of this type may have, besides the common ones.
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            EntryType::File => &["content", "base64"],
            EntryType::Dir => &["children"],
            EntryType::LocalFile => &["source"],
            EntryType::LocalDir => &["source", "ignore"],
            EntryType::GitRepo => &["url", "ref", "commit", "subpath", "depth"],
            EntryType::ObjectStore => &["provider", "bucket", "prefix", "endpoint", "region"],
        }
    }
}

/// A permission mode: `"0644"`, `"644"`, `"0o644"`, or a number.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ModeValue {
    /// Octal digits.
    Text(String),
    /// The mode as a number.
    Number(u32),
}

/// One entry, as written; which fields apply depends on `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntry {
    /// The kind of entry.
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// `file`: inline text.
    pub content: Option<String>,
    /// `file`: inline bytes, base64.
    pub base64: Option<String>,
    /// `dir`: entries inside it, by name or relative path.
    pub children: Option<BTreeMap<String, RawEntry>>,
    /// `local_file`, `local_dir`: the host path, relative to the manifest's directory.
    pub source: Option<String>,
    /// `local_dir`: globs of paths to leave out.
    pub ignore: Option<Vec<String>>,
    /// `git_repo`: the repository's URL.
    pub url: Option<String>,
    /// `git_repo`: a branch or tag.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// `git_repo`: a commit.
    pub commit: Option<String>,
    /// `git_repo`: only this directory of the repository.
    pub subpath: Option<String>,
    /// `git_repo`: clone depth.
    pub depth: Option<u32>,
    /// `object_store`: `s3`, `gcs`, `azure` or `r2`.
    pub provider: Option<String>,
    /// `object_store`: the bucket (or container).
    pub bucket: Option<String>,
    /// `object_store`: the prefix to copy.
    pub prefix: Option<String>,
    /// `object_store`: a custom endpoint.
    pub endpoint: Option<String>,
    /// `object_store`: the region.
    pub region: Option<String>,
    /// Permission bits of the entry.
    pub mode: Option<ModeValue>,
    /// Read-only inside the sandbox (default: true for object_store entries, else false).
    pub read_only: Option<bool>,
    /// Never captured in snapshots.
    #[serde(default)]
    pub ephemeral: bool,
    /// What the entry is, for people and the model.
    pub description: Option<String>,
}

impl RawEntry {
    /// The type-specific fields this entry sets.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |name: &'static str, set: bool| {
            if set {
                out.push(name);
            }
        };
        add("content", self.content.is_some());
        add("base64", self.base64.is_some());
        add("children", self.children.is_some());
        add("source", self.source.is_some());
        add("ignore", self.ignore.is_some());
        add("url", self.url.is_some());
        add("ref", self.git_ref.is_some());
        add("commit", self.commit.is_some());
        add("subpath", self.subpath.is_some());
        add("depth", self.depth.is_some());
        add("provider", self.provider.is_some());
        add("bucket", self.bucket.is_some());
        add("prefix", self.prefix.is_some());
        add("endpoint", self.endpoint.is_some());
        add("region", self.region.is_some());
        out
    }
}

/// An environment variable's value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// This exact value.
    Literal(String),
    /// The harness's variable of this name, passed by reference (never recorded by value).
    FromHost {
        /// The host variable's name.
        from_host: String,
    },
}

/// A host path mounted into the sandbox.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The absolute host path.
    pub path: String,
    /// `ro` (default) or `rw`.
    #[serde(default = "default_grant_mode")]
    pub mode: String,
}

fn default_grant_mode() -> String {
    "ro".into()
}
