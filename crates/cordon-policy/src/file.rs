//! Policy files: TOML that a platform team writes and reviews, read with every problem
//! pointed at by line and column. A file may extend another (a built-in pack or a file
//! beside it); the files are kept as read, in order, so a run can record them and a
//! resume can rebuild exactly the same policy.

use crate::Verdict;
use crate::rules::{CommandRule, NetworkRule, PathRule, Rate, ToolRule};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The largest policy file read.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// How many files one policy may be made of (a file and everything it extends).
const MAX_LAYERS: usize = 8;

/// The packs built into cordon, by name: a base and one per environment.
pub const PACKS: &[(&str, &str)] = &[
    ("base", include_str!("../packs/base.toml")),
    ("dev", include_str!("../packs/dev.toml")),
    ("stage", include_str!("../packs/stage.toml")),
    ("prod", include_str!("../packs/prod.toml")),
];

/// One file of a policy, as read: where it came from and its whole text.
pub use cordon_core::PolicySource as Source;

/// What is wrong with a policy: where, what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// `FILE:LINE:COL`, or the file alone.
    pub at: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for PolicyError {}

/// The decisions for risk classes (unset: the default, see [`crate::Policy`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classes {
    /// Commands and tools that only read.
    pub read_only: Option<Verdict>,
    /// What changes the workspace.
    pub workspace_write: Option<Verdict>,
    /// What reaches the network.
    pub network: Option<Verdict>,
    /// What uses credentials.
    pub credential_use: Option<Verdict>,
    /// What a checkpoint cannot undo.
    pub destructive: Option<Verdict>,
}

/// `[defaults]`: decisions for what no rule and no class covers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Commands that cannot be judged (command substitution, `eval`, text that does not
    /// parse).
    pub unknown: Option<Verdict>,
    /// Network requests to hosts no `[[network]]` rule names.
    pub network: Option<Verdict>,
    /// The isolation a sandbox must have for any request to go out: `namespaces` (where a
    /// program that ignores the proxy has no route at all, UDP included) or `any`.
    pub network_isolation: Option<NetworkIsolation>,
}

/// The isolation a policy asks of a sandbox whose requests go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkIsolation {
    /// Any tier with the egress proxy (the landlock tier cannot close UDP).
    Any,
    /// Only the namespaces tier: its own network namespace, the proxy its only route.
    Namespaces,
}

/// One policy file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The policy's name, as shown.
    #[serde(default)]
    pub name: Option<String>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The policy it builds on: a pack built into cordon (`base`, `dev`, `stage`,
    /// `prod`) or a file, relative to this one.
    #[serde(default)]
    pub extends: Option<Spanned<String>>,
    /// Decisions for what nothing else covers.
    #[serde(default)]
    pub defaults: Defaults,
    /// Decisions per risk class.
    #[serde(default)]
    pub classes: Classes,
    /// `[[tool]]` rules.
    #[serde(default, rename = "tool")]
    pub tools: Vec<Spanned<ToolRule>>,
    /// `[[command]]` rules.
    #[serde(default, rename = "command")]
    pub commands: Vec<Spanned<CommandRule>>,
    /// `[[path]]` rules.
    #[serde(default, rename = "path")]
    pub paths: Vec<Spanned<PathRule>>,
    /// `[[network]]` rules.
    #[serde(default, rename = "network")]
    pub network: Vec<Spanned<NetworkRule>>,
    /// `[[credential]]` declarations.
    #[serde(default, rename = "credential")]
    pub credentials: Vec<Spanned<crate::rules::CredentialRule>>,
}

/// `FILE:LINE:COL` of byte `offset` in `text`.
pub(crate) fn location(origin: &str, text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{origin}:{line}:{column}")
}

/// Parses one file, checking each rule's shape.
pub(crate) fn parse(source: &Source) -> Result<PolicyFile, PolicyError> {
    let file: PolicyFile = toml::from_str(&source.text).map_err(|e| {
        let at = e
            .span()
            .map(|s| location(&source.origin, &source.text, s.start))
            .unwrap_or_else(|| source.origin.clone());
        PolicyError {
            at,
            message: e.message().trim_end().to_string(),
            hint: "the README's Policies section says what a policy file holds".into(),
        }
    })?;
    let at = |offset: usize| location(&source.origin, &source.text, offset);
    for rule in &file.commands {
        if let Some(problem) = rule.get_ref().problem() {
            return Err(PolicyError {
                at: at(rule.span().start),
                message: problem,
                hint: "for example: program = \"git\", args = [\"push\"]".into(),
            });
        }
    }
    for rule in &file.tools {
        if rule.get_ref().name.values().iter().any(|n| n.is_empty()) {
            return Err(PolicyError {
                at: at(rule.span().start),
                message: "a [[tool]] rule names an empty tool".into(),
                hint: "name a tool, like name = \"apply_patch\"".into(),
            });
        }
    }
    for rule in &file.paths {
        let r = rule.get_ref();
        if let Err(e) = globset::Glob::new(&r.glob) {
            return Err(PolicyError {
                at: at(rule.span().start),
                message: format!("glob '{}' is not a pattern: {}", r.glob, e.kind()),
                hint: "globs look like secrets/** or **/*.pem".into(),
            });
        }
        if r.read.is_none() && r.write.is_none() {
            return Err(PolicyError {
                at: at(rule.span().start),
                message: format!(
                    "the [[path]] rule for '{}' sets neither read nor write",
                    r.glob
                ),
                hint: "add read = \"deny\" or write = \"ask\", for example".into(),
            });
        }
    }
    for rule in &file.network {
        let r = rule.get_ref();
        if let Some(rate) = &r.rate
            && let Err(message) = Rate::parse(rate)
        {
            return Err(PolicyError {
                at: at(rule.span().start),
                message,
                hint: "a rate looks like 60/min".into(),
            });
        }
        if r.host.values().iter().any(|h| h.is_empty()) || r.ports.contains(&0) {
            return Err(PolicyError {
                at: at(rule.span().start),
                message: "a [[network]] rule names an empty host or port 0".into(),
                hint: "name hosts like \"*.github.com\" and ports like 443".into(),
            });
        }
    }
    Ok(file)
}

/// Reads a policy file and everything it extends, base first, each with its parsed form.
pub(crate) fn read_chain(
    first: Source,
    dir: Option<&Path>,
) -> Result<Vec<(Source, PolicyFile)>, PolicyError> {
    let mut chain = vec![first];
    let mut files = Vec::new();
    let mut dir = dir.map(Path::to_path_buf);
    loop {
        let last = chain.last().expect("one source at least");
        let file = parse(last)?;
        let extends = file.extends.clone();
        files.push(file);
        let Some(extends) = extends else {
            break;
        };
        if chain.len() >= MAX_LAYERS {
            return Err(PolicyError {
                at: location(&last.origin, &last.text, extends.span().start),
                message: format!("a policy may be made of at most {MAX_LAYERS} files"),
                hint: "extend fewer files in a row".into(),
            });
        }
        let (next, next_dir) =
            resolve(extends.get_ref(), dir.as_deref()).map_err(|message| PolicyError {
                at: location(&last.origin, &last.text, extends.span().start),
                message,
                hint: format!(
                    "extend a pack built into cordon ({}) or a file beside this one (./NAME.toml)",
                    PACKS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            })?;
        if chain.iter().any(|s| s.origin == next.origin) {
            return Err(PolicyError {
                at: location(&last.origin, &last.text, extends.span().start),
                message: format!(
                    "{} is already part of this policy: the files extend each other in a circle",
                    next.origin
                ),
                hint: "one file extends the other, not both".into(),
            });
        }
        chain.push(next);
        dir = next_dir;
    }
    Ok(chain.into_iter().zip(files).rev().collect())
}

/// Whether `name` is written as a file (`./team`, `team.toml`, `policies/team`) rather than
/// a name: a bare name is a pack built into cordon, never a file that happens to be there.
pub fn is_path(name: &str) -> bool {
    name.contains('/') || name.ends_with(".toml")
}

/// Finds what `extends = NAME` names: a pack for a bare name, else a file beside the
/// extending one.
fn resolve(name: &str, dir: Option<&Path>) -> Result<(Source, Option<PathBuf>), String> {
    if !is_path(name) {
        return match PACKS.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Ok((
                Source {
                    origin: format!("builtin:{n}"),
                    text: text.to_string(),
                },
                None,
            )),
            None => Err(format!(
                "extends '{name}': no built-in pack is called that (a file is written as ./{name}.toml)"
            )),
        };
    }
    let path = match dir {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    };
    if !path.is_file() {
        return Err(format!(
            "extends '{name}': no such file ({})",
            path.display()
        ));
    }
    let source = read_file(&path).map_err(|e| e.message)?;
    let parent = std::fs::canonicalize(&path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    Ok((source, parent))
}

/// Reads one policy file, bounded in size.
pub(crate) fn read_file(path: &Path) -> Result<Source, PolicyError> {
    let shown = path.display().to_string();
    let cannot = |e: std::io::Error| PolicyError {
        at: shown.clone(),
        message: format!("cannot read the policy file: {e}"),
        hint: "check the path given to --policy".into(),
    };
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.len() > MAX_POLICY_BYTES {
        return Err(PolicyError {
            at: shown,
            message: format!(
                "the policy file is {} bytes; at most {MAX_POLICY_BYTES} are read",
                meta.len()
            ),
            hint: "split it with `extends`".into(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(cannot)?;
    // Recorded absolute, so a resume finds the same file wherever it is run from.
    let origin = std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or(shown);
    Ok(Source { origin, text })
}
