//! Which policy a run is under: one named on the command line or in the agent file (a
//! file, or a pack built into cordon), or the one a run recorded when it started.

use crate::SessionError;
use cordon_core::PolicyRecord;
use cordon_policy::Policy;
use std::path::Path;

/// The policy `name` names: a pack built into cordon (`base`, `dev`, `stage`, `prod`) or
/// `NAME.toml` in `policies` (the user's directory of policies) for a bare name; a file
/// (relative to `base`, the agent file's directory, when given) for a path (`./team`,
/// `team.toml`). Its rules' own examples must hold.
pub fn resolve(
    name: &str,
    base: Option<&Path>,
    policies: Option<&Path>,
) -> Result<Policy, SessionError> {
    let policy = match read(name, base, policies) {
        Some(read) => read.map_err(bad_policy)?,
        None => return Err(not_found(name, policies)),
    };
    if let Some(failure) = policy.check_examples().into_iter().next() {
        return Err(bad_policy(failure));
    }
    Ok(policy)
}

/// The error for a policy name that names no file and no pack.
pub fn not_found(name: &str, policies: Option<&Path>) -> SessionError {
    SessionError::bad_input(
        format!("there is no policy '{name}': no pack built into cordon is called that"),
        format!(
            "a file is written as a path (./{name}.toml); the packs are: {}{}",
            cordon_policy::PACKS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            policies
                .map(|d| format!(" (or put {name}.toml in {})", d.display()))
                .unwrap_or_default()
        ),
    )
}

/// Reads the policy `name` names (as [`resolve`] finds it), with its problems as they are;
/// `None` when it names nothing.
pub fn read(
    name: &str,
    base: Option<&Path>,
    policies: Option<&Path>,
) -> Option<Result<Policy, cordon_policy::PolicyError>> {
    // A bare name is a pack, or a policy in the user's directory: never a file that happens
    // to be in the current directory (a workspace the agent can write).
    if !cordon_policy::is_path(name) {
        if let Some(policy) = Policy::builtin(name) {
            return Some(policy);
        }
        let file = policies?.join(format!("{name}.toml"));
        return file.is_file().then(|| Policy::load(&file));
    }
    let path = match base {
        Some(dir) => dir.join(name),
        None => Path::new(name).to_path_buf(),
    };
    Some(Policy::load(&path))
}

/// The user's directory of named policies: `policies/` beside the config file (`config`,
/// or the default one).
pub fn policies_dir(config: Option<&Path>) -> Option<std::path::PathBuf> {
    let config = match config {
        Some(c) => c.to_path_buf(),
        None => crate::models::default_path()?,
    };
    Some(config.parent()?.join("policies"))
}

/// The policy a run recorded. A file it was read from that has changed since is an error:
/// the run would otherwise go on under rules nobody chose for it.
pub fn recorded(record: &PolicyRecord, run: &str) -> Result<Policy, SessionError> {
    for file in &record.files {
        if file.origin.starts_with("builtin:") {
            continue;
        }
        if let Ok(now) = std::fs::read_to_string(&file.origin)
            && now != file.text
        {
            return Err(SessionError::bad_input(
                format!(
                    "the policy file {} has changed since run {run} started under it",
                    file.origin
                ),
                format!(
                    "resume with --policy {} to go on under the new rules (the change is recorded), or put the file back as it was",
                    file.origin
                ),
            ));
        }
    }
    Policy::from_record(record).map_err(|e| {
        SessionError::new(
            crate::ErrorKind::Damaged,
            format!("run {run}'s recorded policy cannot be read: {e}"),
        )
    })
}

/// A policy file's problem as bad input, pointed at by line and column.
pub fn bad_policy(e: cordon_policy::PolicyError) -> SessionError {
    let hint = e.hint.clone();
    SessionError::bad_input(e.to_string(), hint)
}
