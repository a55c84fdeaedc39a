//! Loading and checking a manifest: every problem with its file, line, column and a hint.
//! Nothing is materialized from a manifest that has one.

use crate::schema::{EntryType, EnvValue, Grant, ModeValue, RawEntry, RawManifest, RawOutput};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The default workspace root inside the sandbox.
pub const DEFAULT_ROOT: &str = "/workspace";

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// 1-based line in the manifest file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

/// A manifest that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ManifestError {
    /// The manifest file.
    pub file: String,
    /// Everything wrong with it.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}\n  hint: {}",
                self.file, p.line, p.column, p.message, p.hint
            )?;
        }
        Ok(())
    }
}

/// What an entry puts in the workspace.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// These bytes.
    File(Vec<u8>),
    /// An empty directory (children are entries of their own).
    Dir,
    /// A copy of a host file.
    LocalFile {
        /// The host path.
        source: PathBuf,
    },
    /// A copy of a host directory.
    LocalDir {
        /// The host path.
        source: PathBuf,
        /// Globs of paths to leave out.
        ignore: Vec<String>,
    },
    /// A clone of a git repository.
    GitRepo {
        /// Where to clone from.
        url: String,
        /// Branch or tag.
        git_ref: Option<String>,
        /// Commit.
        commit: Option<String>,
        /// Only this directory.
        subpath: Option<String>,
        /// Clone depth.
        depth: Option<u32>,
    },
    /// A copy of an object store prefix.
    ObjectStore {
        /// `s3`, `gcs`, `azure` or `r2`.
        provider: String,
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
        /// A custom endpoint.
        endpoint: Option<String>,
        /// The region.
        region: Option<String>,
    },
}

impl EntryKind {
    /// The entry type as a manifest writes it (`file`, `local_dir`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::File(_) => "file",
            EntryKind::Dir => "dir",
            EntryKind::LocalFile { .. } => "local_file",
            EntryKind::LocalDir { .. } => "local_dir",
            EntryKind::GitRepo { .. } => "git_repo",
            EntryKind::ObjectStore { .. } => "object_store",
        }
    }
}

/// One checked entry, at its full workspace path.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Workspace-relative path.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits, if given.
    pub mode: Option<u32>,
    /// Read-only inside the sandbox.
    pub read_only: bool,
    /// Never captured in snapshots.
    pub ephemeral: bool,
    /// What it is for.
    pub description: Option<String>,
}

/// A checked manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The workspace's path inside the sandbox.
    pub root: String,
    /// The manifest file's directory: sources are relative to it.
    pub base_dir: PathBuf,
    /// Entries, parents before children.
    pub entries: Vec<Entry>,
    /// Environment for commands.
    pub env: BTreeMap<String, EnvValue>,
    /// Host paths mounted in.
    pub grants: Vec<Grant>,
    /// The run's outputs, whose files are collected as artifacts at its end.
    pub outputs: Vec<Output>,
    /// What checkpoints leave out besides ephemeral entries.
    pub checkpoints: cordon_core::CheckpointRules,
    /// SHA-256 of the manifest file, for the run log.
    pub digest: String,
    /// The manifest file's text, kept in the run log.
    pub text: String,
}

/// One of the run's outputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Output {
    /// Workspace-relative path.
    pub path: String,
    /// The run fails when it ends without it.
    pub required: bool,
    /// An empty directory is made for it when the workspace is built (the short form,
    /// `outputs = ["out"]`).
    pub made: bool,
}

/// The most a manifest file may hold: it is kept in each run's log.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Loads and checks the manifest at `path` (TOML; `.json` and `.yaml`/`.yml` by extension).
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let file = path.display().to_string();
    let cannot = |message: String, hint: &str| ManifestError {
        file: file.clone(),
        problems: vec![Problem {
            line: 1,
            column: 1,
            message,
            hint: hint.into(),
        }],
    };
    let mut text = String::new();
    {
        use std::io::Read;
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_MANIFEST_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| cannot(format!("cannot read it: {e}"), "check the path"))?;
    }
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(cannot(
            format!(
                "it is larger than {} MiB",
                MAX_MANIFEST_BYTES / (1024 * 1024)
            ),
            "a manifest describes a workspace; put large content in files it names as local sources",
        ));
    }
    // Relative sources are relative to the manifest's directory: `m.toml` is in `.`.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base_dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
    parse_located(&text, &file, &base_dir, true)
}

/// Parses and checks manifest `text`; `file` names it in messages (its extension picks the
/// format) and `base_dir` anchors relative sources. Nothing on the host is looked at:
/// [`load`] also checks that local sources exist and may be read.
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Manifest, ManifestError> {
    parse_located(text, file, base_dir, false)
}

/// Whether a resolved host path lies under the manifest's directory or one of its grants: the
/// only places a local source may come from.
pub(crate) fn source_allowed(m: &Manifest, real: &Path) -> bool {
    allowed_under(&m.base_dir, &m.grants, real)
}

fn allowed_under(base_dir: &Path, grants: &[Grant], real: &Path) -> bool {
    std::iter::once(base_dir.to_path_buf())
        .chain(grants.iter().map(|g| PathBuf::from(&g.path)))
        .any(|r| std::fs::canonicalize(r).is_ok_and(|r| real.starts_with(r)))
}

/// What is wrong with the manifest's local sources on this host: missing, of the wrong kind,
/// or outside the manifest's directory and every grant. Found before anything is built, at
/// the line of each entry's `source`.
fn host_problems(
    entries: &[Entry],
    base_dir: &Path,
    grants: &[Grant],
    text: &str,
    located: &BTreeMap<String, usize>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for e in entries {
        let (source, want_dir) = match &e.kind {
            EntryKind::LocalFile { source } => (source, false),
            EntryKind::LocalDir { source, .. } => (source, true),
            _ => continue,
        };
        // As the manifest wrote it (relative sources were joined to its directory).
        let written = source.strip_prefix(base_dir).unwrap_or(source);
        let from = located.get(&e.path).copied().unwrap_or(0);
        let (line, column) = line_col(text, locate(text, "source", from));
        let mut problem = |message: String, hint: String| {
            problems.push(Problem {
                line,
                column,
                message: format!("entry '{}': source {}{message}", e.path, written.display()),
                hint,
            })
        };
        let base = base_dir.display();
        let real = match std::fs::canonicalize(source) {
            Ok(r) => r,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                problem(
                    " does not exist".into(),
                    format!("a relative source is read from the manifest's directory, {base}"),
                );
                continue;
            }
            Err(err) => {
                problem(
                    format!(" cannot be read: {err}"),
                    "check its permissions".into(),
                );
                continue;
            }
        };
        if !allowed_under(base_dir, grants, &real) {
            problem(
                format!(
                    " resolves to {}, outside the manifest's directory {base} and every grant",
                    real.display()
                ),
                "move it under the manifest's directory, or grant a directory that holds it (README: Workspace manifests)".into(),
            );
        } else if want_dir && !real.is_dir() {
            problem(
                " is not a directory".into(),
                "use type = \"local_file\" for a single file".into(),
            );
        } else if !want_dir && real.is_dir() {
            problem(
                " is a directory".into(),
                "use type = \"local_dir\" for a directory".into(),
            );
        }
    }
    problems.sort_by_key(|p| (p.line, p.column));
    problems
}

/// [`parse`]; with `host`, also checking each local source on this host (as [`load`] does),
/// among the other problems.
fn parse_located(
    text: &str,
    file: &str,
    base_dir: &Path,
    host: bool,
) -> Result<Manifest, ManifestError> {
    let fail = |line: usize, column: usize, message: String| ManifestError {
        file: file.to_string(),
        problems: vec![Problem {
            line,
            column,
            message,
            hint: "see the manifest section of the README for the fields each entry type takes"
                .into(),
        }],
    };
    let raw: RawManifest = if file.ends_with(".json") {
        serde_json::from_str(text).map_err(|e| fail(e.line(), e.column(), e.to_string()))?
    } else if file.ends_with(".yaml") || file.ends_with(".yml") {
        serde_yaml_ng::from_str(text).map_err(|e| {
            let (l, c) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            fail(l, c, e.to_string())
        })?
    } else {
        toml::from_str(text).map_err(|e| {
            let (l, c) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            fail(l, c, e.message().to_string())
        })?
    };
    let mut checker = Checker {
        text,
        problems: Vec::new(),
        entries: Vec::new(),
        located: BTreeMap::new(),
        base_dir,
    };
    let root = raw.root.clone().unwrap_or_else(|| DEFAULT_ROOT.to_string());
    if !root.starts_with('/') {
        checker.problem(
            "root",
            0,
            format!("root '{root}' is not an absolute path"),
            "write it like /workspace",
        );
    }
    checker.entries_of(&raw.entries, "", 0);
    checker.overlaps();
    for (name, value) in &raw.env {
        if !valid_env_name(name) {
            checker.problem(
                name,
                0,
                format!("'{name}' is not a valid environment variable name"),
                "use letters, digits and _, not starting with a digit",
            );
        }
        if let EnvValue::FromHost { from_host } = value
            && !valid_env_name(from_host)
        {
            checker.problem(
                from_host,
                0,
                format!("'{from_host}' is not a valid environment variable name"),
                "name the host variable to pass",
            );
        }
    }
    for grant in &raw.grants {
        if !grant.path.starts_with('/') {
            checker.problem(
                &grant.path,
                0,
                format!("grant '{}' is not an absolute host path", grant.path),
                "grants name host paths like /opt/data",
            );
        }
        if grant.path.starts_with('/')
            && let Some(why) =
                cordon_sandbox::local::grant_refusal(std::path::Path::new(&grant.path))
        {
            checker.problem(
                &grant.path,
                0,
                format!("grant '{}' {why}", grant.path),
                "a grant names a host directory the sandbox may see (README: Workspace manifests)",
            );
        }
        if grant.mode != "ro" && grant.mode != "rw" {
            checker.problem(
                &grant.path,
                0,
                format!("grant mode '{}' is neither ro nor rw", grant.mode),
                "use mode = \"ro\" or \"rw\"",
            );
        }
    }
    for pattern in &raw.checkpoints.exclude {
        if let Err(why) = cordon_core::CheckpointRules::check_pattern(pattern) {
            let from = text.find("checkpoints").unwrap_or(0);
            checker.problem(
                pattern,
                from,
                format!("checkpoints.exclude '{pattern}' {why}"),
                "exclusions are gitignore-style patterns, like target/ or *.log",
            );
        }
    }
    let mut outputs: Vec<Output> = Vec::new();
    for raw_out in &raw.outputs {
        // `out/` names the directory `out`.
        let tidy = |p: &str| match p.trim_end_matches('/') {
            "" => p.to_string(),
            t => t.to_string(),
        };
        let output = match raw_out {
            RawOutput::Dir(path) => Output {
                path: tidy(path),
                required: false,
                made: true,
            },
            RawOutput::Path(t) => Output {
                path: tidy(&t.path),
                required: t.required,
                made: false,
            },
        };
        let out = &output.path;
        if outputs.iter().any(|o| o.path == *out) {
            checker.problem(
                out,
                0,
                format!("output '{out}' is listed twice"),
                "list each output once",
            );
        }
        outputs.push(output.clone());
        if let Err(why) = check_path(out) {
            checker.problem(
                out,
                0,
                format!("output '{out}' {why}"),
                "outputs are workspace-relative paths: \"out\" (a directory made empty) or { path = \"summary.md\", required = true }",
            );
        } else if let Some(e) = checker.entries.iter().find(|e| e.path == *out)
            && e.kind != EntryKind::Dir
            && output.made
        {
            checker.problem(
                out,
                0,
                format!("output '{out}' is declared as an entry that is not a dir"),
                "make it a dir entry, or leave it out of entries",
            );
        }
    }
    if host {
        let found = host_problems(
            &checker.entries,
            base_dir,
            &raw.grants,
            text,
            &checker.located,
        );
        checker.problems.extend(found);
    }
    if !checker.problems.is_empty() {
        // In the order a person reads the file.
        checker.problems.sort_by_key(|p| (p.line, p.column));
        return Err(ManifestError {
            file: file.to_string(),
            problems: checker.problems,
        });
    }
    let mut entries = checker.entries;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        root,
        base_dir: base_dir.to_path_buf(),
        entries,
        env: raw.env,
        grants: raw.grants,
        outputs,
        checkpoints: raw.checkpoints,
        digest: hex::encode(Sha256::digest(text.as_bytes())),
        text: text.to_string(),
    };
    Ok(manifest)
}

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
    entries: Vec<Entry>,
    /// Where each entry is declared: byte offsets by full path.
    located: BTreeMap<String, usize>,
    base_dir: &'a Path,
}

impl Checker<'_> {
    /// Records a problem at the first place `key` is written at or after byte `from`.
    fn problem(&mut self, key: &str, from: usize, message: String, hint: &str) {
        let at = locate(self.text, key, from);
        self.problem_at(at, message, hint);
    }

    /// Records a problem at byte `at`.
    fn problem_at(&mut self, at: usize, message: String, hint: &str) {
        let (line, column) = line_col(self.text, at);
        self.problems.push(Problem {
            line,
            column,
            message,
            hint: hint.to_string(),
        });
    }

    fn entries_of(&mut self, entries: &BTreeMap<String, RawEntry>, parent: &str, from: usize) {
        for (key, raw) in entries {
            let at = locate(self.text, key, from);
            let path = if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}/{key}")
            };
            if let Err(why) = check_path(key) {
                self.problem(
                    key,
                    from,
                    format!("entry '{key}' {why}"),
                    "entry keys are workspace-relative paths, like src/main.py",
                );
                continue;
            }
            let allowed = raw.kind.fields();
            for f in raw.set_fields() {
                if !allowed.contains(&f) {
                    self.problem(
                        f,
                        at,
                        format!(
                            "entry '{path}': field '{f}' does not apply to type '{}'",
                            raw.kind.as_str()
                        ),
                        &format!(
                            "a {} entry takes: {}",
                            raw.kind.as_str(),
                            allowed.join(", ")
                        ),
                    );
                }
            }
            let mode = match &raw.mode {
                None => None,
                Some(m) => match parse_mode(m) {
                    Ok(m) => Some(m),
                    Err(why) => {
                        self.problem(
                            "mode",
                            at,
                            format!("entry '{path}': {why}"),
                            "write a mode like \"0644\" or \"0755\"",
                        );
                        None
                    }
                },
            };
            self.located.entry(path.clone()).or_insert(at);
            let kind = match self.kind(raw, &path, at) {
                Some(k) => k,
                None => continue,
            };
            self.entries.push(Entry {
                path: path.clone(),
                kind,
                mode,
                read_only: raw.read_only.unwrap_or(raw.kind == EntryType::ObjectStore),
                ephemeral: raw.ephemeral,
                description: raw.description.clone(),
            });
            if let Some(children) = &raw.children {
                self.entries_of(children, &path, at);
            }
        }
    }

    fn kind(&mut self, raw: &RawEntry, path: &str, at: usize) -> Option<EntryKind> {
        let missing = |this: &mut Self, field: &str, hint: &str| {
            this.problem(
                path.rsplit('/').next().unwrap_or(path),
                at.saturating_sub(1),
                format!(
                    "entry '{path}': a {} entry needs '{field}'",
                    raw.kind.as_str()
                ),
                hint,
            );
            None
        };
        match raw.kind {
            EntryType::File => match (&raw.content, &raw.base64) {
                (Some(text), None) => Some(EntryKind::File(text.clone().into_bytes())),
                (None, Some(b64)) => {
                    match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
                        Ok(bytes) => Some(EntryKind::File(bytes)),
                        Err(e) => {
                            self.problem(
                                "base64",
                                at,
                                format!("entry '{path}': base64 does not decode: {e}"),
                                "give standard base64",
                            );
                            None
                        }
                    }
                }
                (None, None) => missing(
                    self,
                    "content",
                    "give content = \"...\" (text) or base64 = \"...\" (bytes)",
                ),
                (Some(_), Some(_)) => {
                    self.problem(
                        "base64",
                        at,
                        format!("entry '{path}': give content or base64, not both"),
                        "keep one of them",
                    );
                    None
                }
            },
            EntryType::Dir => Some(EntryKind::Dir),
            EntryType::LocalFile | EntryType::LocalDir => {
                let Some(source) = &raw.source else {
                    return missing(
                        self,
                        "source",
                        "source is a host path relative to the manifest's directory",
                    );
                };
                let source = self.base_dir.join(source);
                Some(match raw.kind {
                    EntryType::LocalFile => EntryKind::LocalFile { source },
                    _ => {
                        let ignore = raw.ignore.clone().unwrap_or_default();
                        for g in &ignore {
                            if let Err(e) = globset::Glob::new(g) {
                                self.problem(
                                    g,
                                    at,
                                    format!("entry '{path}': ignore glob '{g}' is invalid: {e}"),
                                    "globs look like *.log or build/**",
                                );
                            }
                        }
                        EntryKind::LocalDir { source, ignore }
                    }
                })
            }
            EntryType::GitRepo => {
                let Some(url) = &raw.url else {
                    return missing(self, "url", "url is the repository to clone");
                };
                if raw.git_ref.is_some() && raw.commit.is_some() {
                    self.problem(
                        "commit",
                        at,
                        format!("entry '{path}': give ref or commit, not both"),
                        "a commit already names one state",
                    );
                    return None;
                }
                if let Some(sub) = &raw.subpath
                    && let Err(why) = check_path(sub)
                {
                    self.problem(
                        "subpath",
                        at,
                        format!("entry '{path}': subpath '{sub}' {why}"),
                        "subpath is a directory inside the repository",
                    );
                    return None;
                }
                Some(EntryKind::GitRepo {
                    url: url.clone(),
                    git_ref: raw.git_ref.clone(),
                    commit: raw.commit.clone(),
                    subpath: raw.subpath.clone(),
                    depth: raw.depth,
                })
            }
            EntryType::ObjectStore => {
                let (Some(provider), Some(bucket)) = (&raw.provider, &raw.bucket) else {
                    return missing(
                        self,
                        "provider' and 'bucket",
                        "an object_store entry names its provider (s3, gcs, azure, r2) and bucket",
                    );
                };
                if !["s3", "gcs", "azure", "r2"].contains(&provider.as_str()) {
                    self.problem(
                        "provider",
                        at,
                        format!(
                            "entry '{path}': provider '{provider}' is not one of s3, gcs, azure, r2"
                        ),
                        "pick one of s3, gcs, azure, r2",
                    );
                    return None;
                }
                Some(EntryKind::ObjectStore {
                    provider: provider.clone(),
                    bucket: bucket.clone(),
                    prefix: raw.prefix.clone().unwrap_or_default(),
                    endpoint: raw.endpoint.clone(),
                    region: raw.region.clone(),
                })
            }
        }
    }

    /// Two entries overlap when one lies inside the other, unless the inner one was
    /// declared as a child of the outer dir.
    fn overlaps(&mut self) {
        let paths: Vec<(String, bool)> = self
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.kind == EntryKind::Dir))
            .collect();
        for (a, a_is_dir) in &paths {
            for (b, _) in &paths {
                if b.starts_with(&format!("{a}/")) && !a_is_dir {
                    let at = self.located.get(b).copied().unwrap_or(0);
                    self.problem_at(
                        at,
                        format!("entry '{b}' lies inside entry '{a}', which is not a dir"),
                        "declare it as a child of a dir entry, or move one of them",
                    );
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (p, _) in &paths {
            if !seen.insert(p.clone()) {
                self.problem(
                    p,
                    0,
                    format!("entry '{p}' is declared twice"),
                    "keep one declaration",
                );
            }
        }
    }
}

/// Why a workspace path is refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub(crate) enum PathProblem {
    #[error("is empty")]
    Empty,
    #[error("is absolute")]
    Absolute,
    #[error("contains a NUL byte")]
    Nul,
    #[error("has an empty path segment")]
    EmptySegment,
    #[error("has a '.' segment")]
    Dot,
    #[error("has a '..' segment (even one that stays inside is refused)")]
    DotDot,
}

/// Workspace-relative: not empty, not absolute, no `..`, `.` or empty segments.
fn check_path(p: &str) -> Result<(), PathProblem> {
    if p.is_empty() {
        return Err(PathProblem::Empty);
    }
    if p.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if p.contains('\0') {
        return Err(PathProblem::Nul);
    }
    for seg in p.split('/') {
        match seg {
            "" => return Err(PathProblem::EmptySegment),
            "." => return Err(PathProblem::Dot),
            ".." => return Err(PathProblem::DotDot),
            _ => {}
        }
    }
    Ok(())
}

/// Why a file mode is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ModeProblem {
    #[error("mode '{0}' is not octal")]
    NotOctal(String),
    #[error("mode {0:o} has bits beyond 0777 (setuid, setgid and sticky are not allowed)")]
    ExtraBits(u32),
}

fn parse_mode(m: &ModeValue) -> Result<u32, ModeProblem> {
    let value = match m {
        ModeValue::Number(n) => *n,
        ModeValue::Text(t) => {
            let digits = t.trim_start_matches("0o");
            u32::from_str_radix(digits, 8).map_err(|_| ModeProblem::NotOctal(t.clone()))?
        }
    };
    if value > 0o777 {
        return Err(ModeProblem::ExtraBits(value));
    }
    Ok(value)
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where `key` is first written at or after byte `from`: quoted, or bare before `=` or `:`.
fn locate(text: &str, key: &str, from: usize) -> usize {
    let from = from.min(text.len());
    let hay = &text[from..];
    let quoted = [format!("\"{key}\""), format!("'{key}'")];
    for q in &quoted {
        if let Some(i) = hay.find(q.as_str()) {
            return from + i;
        }
    }
    let mut search = 0;
    while let Some(i) = hay[search..].find(key) {
        let at = search + i;
        let before = hay[..at].chars().last();
        let after = hay[at + key.len()..].trim_start().chars().next();
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_')
            && matches!(after, Some('=' | ':' | ']' | '.'))
        {
            return from + at;
        }
        search = at + key.len();
    }
    from
}

/// 1-based line and column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
