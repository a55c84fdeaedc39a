//! A run's workspace and sandbox: a manifest (or a directory) turned into a recorded
//! [`SandboxSpec`], a sandbox made from it by the session's provider, and the manifest's
//! entries materialized into it.

use crate::SessionError;
use cordon_core::Progress;
use cordon_core::{EnvVar, GrantSpec, SandboxSpec};
use cordon_manifest::Manifest;
use cordon_sandbox::{Egress, Mount, Sandbox, SandboxProvider, SandboxRequest};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The longest a command may run unless the request says otherwise, in seconds.
pub const DEFAULT_COMMAND_TIMEOUT: u64 = 1800;

/// Where and how a run's commands run.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// A manifest that builds a fresh workspace.
    pub manifest: Option<Manifest>,
    /// The host directory to work in. With a manifest it must be new or empty (by default a
    /// fresh directory under the session's workspaces directory); without one it is
    /// required.
    pub workspace: Option<PathBuf>,
    /// An isolation kind by the provider's name for it, or `auto` for the strongest.
    pub isolation: String,
    /// Mount the workspace read-only (without a manifest; a manifest marks entries).
    pub read_only: bool,
    /// The longest any one command may run, in seconds.
    pub command_timeout_secs: u64,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            manifest: None,
            workspace: None,
            isolation: "auto".into(),
            read_only: false,
            command_timeout_secs: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

impl SandboxOptions {
    /// Commands work in `dir` as it is.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        SandboxOptions {
            workspace: Some(dir.into()),
            ..SandboxOptions::default()
        }
    }

    /// The workspace is built from `manifest`.
    pub fn from_manifest(manifest: Manifest) -> Self {
        SandboxOptions {
            manifest: Some(manifest),
            ..SandboxOptions::default()
        }
    }
}

/// A sandbox ready for work.
pub struct PreparedSandbox {
    /// The sandbox.
    pub sandbox: Arc<dyn Sandbox>,
    /// The workspace's directory on this host (absolute).
    pub workspace: PathBuf,
    /// What the sandbox is made of, as the run records it so a resume rebuilds it.
    pub spec: SandboxSpec,
    /// The manifest's digest, the receipts of what it put in the workspace, and its text.
    pub materialized: Option<(String, Vec<cordon_manifest::Receipt>, String)>,
    /// Secret values handed to the sandbox (`from_host` environment), by name: redacted from
    /// everything the run records or shows.
    pub secrets: Vec<(String, String)>,
    /// How long making the sandbox took (both sandboxes, when one steps aside for another
    /// that mounts entries read-only), in milliseconds.
    pub create_ms: u64,
    /// How long materializing the manifest took, in milliseconds.
    pub materialize_ms: Option<u64>,
}

/// Milliseconds since `began`.
pub(crate) fn millis_since(began: std::time::Instant) -> u64 {
    u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Loads a manifest, turning its problems into one bad-input error.
pub fn load_manifest(path: &Path) -> Result<Manifest, SessionError> {
    cordon_manifest::load(path).map_err(|e| {
        let unreadable = e.problems.iter().all(|p| p.message.starts_with("cannot read it"));
        if unreadable {
            SessionError::bad_input(
                format!("cannot read the manifest:\n{e}"),
                "give the path of a manifest file (TOML, or JSON or YAML by extension)",
            )
        } else {
            SessionError::bad_input(
                format!("the manifest is not valid:\n{e}"),
                "fix each problem above as its hint says; `cordon manifest check FILE` checks a manifest without running anything",
            )
        }
    })
}

/// The recorded spec of a sandbox built as `options` say.
fn spec_for(options: &SandboxOptions) -> SandboxSpec {
    let mut spec = SandboxSpec {
        tier: options.isolation.clone(),
        read_only: options.read_only && options.manifest.is_none(),
        root: cordon_sandbox::local::INNER_WORKSPACE.to_string(),
        command_timeout_secs: Some(options.command_timeout_secs),
        ..SandboxSpec::default()
    };
    let Some(m) = &options.manifest else {
        return spec;
    };
    spec.root = m.root.clone();
    spec.grants = m
        .grants
        .iter()
        .map(|g| GrantSpec {
            path: g.path.clone(),
            writable: g.mode == "rw",
        })
        .collect();
    spec.env = m
        .env
        .iter()
        .map(|(name, value)| match value {
            cordon_manifest::schema::EnvValue::Literal(v) => EnvVar {
                name: name.clone(),
                value: Some(v.clone()),
                from_host: None,
            },
            cordon_manifest::schema::EnvValue::FromHost { from_host } => EnvVar {
                name: name.clone(),
                value: None,
                from_host: Some(from_host.clone()),
            },
        })
        .collect();
    spec.checkpoints = m.checkpoints.clone();
    spec.outputs = m
        .outputs
        .iter()
        .map(|o| cordon_core::OutputSpec {
            path: o.path.clone(),
            required: o.required,
        })
        .collect();
    spec.ephemeral = m
        .entries
        .iter()
        .filter(|e| e.ephemeral)
        .map(|e| e.path.clone())
        .collect();
    spec
}

/// The directory a sandbox works in: the one given, or a fresh one for a manifest, named
/// `name` (a run's id, so a person can tell whose it is).
fn workspace_dir(
    options: &SandboxOptions,
    workspaces: &Path,
    name: &str,
) -> Result<PathBuf, SessionError> {
    if let Some(w) = &options.workspace
        && w.exists()
        && !w.is_dir()
    {
        return Err(SessionError::bad_input(
            format!("the workspace {} is not a directory", w.display()),
            "give a directory with --workspace (a new one, with a manifest)",
        ));
    }
    let dir = match (&options.workspace, &options.manifest) {
        (Some(w), None) => w.clone(),
        (None, None) => {
            return Err(SessionError::bad_input(
                "a sandbox needs a workspace: a directory, or a manifest to build one",
                "give --workspace DIR or --manifest FILE",
            ));
        }
        (Some(w), Some(_)) => {
            std::fs::create_dir_all(w)?;
            if std::fs::read_dir(w)?.next().is_some() {
                return Err(SessionError::bad_input(
                    format!(
                        "--workspace {} is not empty, and a manifest builds a fresh workspace",
                        w.display()
                    ),
                    "give an empty or new directory, or leave --workspace out",
                ));
            }
            w.clone()
        }
        (None, Some(_)) => {
            let dir = workspaces.join(name);
            std::fs::create_dir_all(&dir)?;
            dir
        }
    };
    std::fs::canonicalize(&dir).map_err(|e| {
        SessionError::bad_input(
            format!("the workspace {}: {e}", dir.display()),
            "give an existing directory with --workspace",
        )
    })
}

/// Makes the sandbox `options` describe with `provider`; with a manifest, in a fresh
/// workspace under `workspaces` that is then materialized. `protected` are host paths it must
/// never reach. ([`crate::Session::sandbox`] does this with the session's settings; this is
/// for front ends that run commands without a run store.)
pub async fn prepare(
    provider: &dyn SandboxProvider,
    options: &SandboxOptions,
    workspaces: &Path,
    protected: &[PathBuf],
    progress: &dyn Progress,
) -> Result<PreparedSandbox, SessionError> {
    let name = cordon_core::RunId::new().to_string();
    prepare_named(
        provider,
        options,
        workspaces,
        protected,
        &name,
        RunLimits::default(),
        progress,
    )
    .await
}

/// [`prepare`], naming a fresh workspace `name` (the run's id).
pub(crate) async fn prepare_named(
    provider: &dyn SandboxProvider,
    options: &SandboxOptions,
    workspaces: &Path,
    protected: &[PathBuf],
    name: &str,
    run: RunLimits<'_>,
    progress: &dyn Progress,
) -> Result<PreparedSandbox, SessionError> {
    let workspace = workspace_dir(options, workspaces, name)?;
    let mut spec = spec_for(options);
    let began = std::time::Instant::now();
    let (mut sandbox, secrets) = build(provider, &spec, &workspace, protected, run).await?;
    let mut create_ms = millis_since(began);
    let began = std::time::Instant::now();
    let materialized = match &options.manifest {
        None => None,
        Some(m) => match cordon_manifest::materialize(m, sandbox.as_ref(), progress).await {
            Ok(receipts) => Some((m.digest.clone(), receipts, m.text.clone())),
            Err(e) => {
                // A half-built workspace would only be in the way of the next try: the
                // directory was empty or new, so all of it is this attempt's.
                let _ = sandbox.stop().await;
                let (dir, made) = (workspace.clone(), options.workspace.is_none());
                let cleared = tokio::task::spawn_blocking(move || clear(&dir, made))
                    .await
                    .unwrap_or(false);
                let message = format!(
                    "cannot build the workspace: {e}{}",
                    if cleared {
                        " (what was built of it was removed)"
                    } else {
                        ""
                    }
                );
                return Err(if e.is_bad_input() {
                    SessionError::bad_input(
                        message,
                        "a local source must exist inside the manifest's directory or a grant",
                    )
                } else {
                    SessionError::new(crate::ErrorKind::Failed, message)
                }
                .caused_by(e));
            }
        },
    };
    let materialize_ms = materialized.as_ref().map(|_| millis_since(began));
    let read_only: Vec<String> = options
        .manifest
        .iter()
        .flat_map(|m| {
            m.entries
                .iter()
                .filter(|e| e.read_only)
                .map(|e| e.path.clone())
        })
        .collect();
    // Entries the policy's path rules deny exist only now too.
    let denied = match run.policy {
        Some(p) => denied_entries(p, &workspace)?,
        None => Default::default(),
    };
    if !read_only.is_empty() || !denied.0.is_empty() || !denied.1.is_empty() {
        // Read-only entries are mounted when a sandbox starts, and they exist only now: the
        // sandbox that built them steps aside for one that mounts them read-only.
        let _ = sandbox.stop().await;
        spec.read_only_paths = read_only;
        let began = std::time::Instant::now();
        sandbox = build(provider, &spec, &workspace, protected, run).await?.0;
        create_ms += millis_since(began);
    }
    Ok(PreparedSandbox {
        sandbox,
        workspace,
        spec,
        materialized,
        secrets,
        create_ms,
        materialize_ms,
    })
}

/// Removes what a failed build left in `dir`: the directory itself when cordon made it
/// (`made`), its contents when the user gave it (it was empty). Whether all of it went.
fn clear(dir: &Path, made: bool) -> bool {
    if made {
        return std::fs::remove_dir_all(dir).is_ok();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|e| {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path).is_ok(),
            _ => std::fs::remove_file(&path).is_ok(),
        }
    })
}

/// What a run adds to its sandbox beyond the spec: its one way out, and the policy whose
/// path rules the mounts enforce.
#[derive(Clone, Copy, Default)]
pub(crate) struct RunLimits<'a> {
    /// The run's egress proxy.
    pub egress: Option<&'a Egress>,
    /// The run's policy.
    pub policy: Option<&'a cordon_policy::Policy>,
}

/// The most workspace entries path rules may cover with mounts.
const MAX_DENIED_ENTRIES: usize = 1000;

/// The workspace entries a policy's path rules deny, as the sandbox's mounts enforce them:
/// those that may not be read (hidden), and those that may not be written (read-only). An
/// entry denied as a whole is not looked into. Only entries that exist now are covered.
pub(crate) fn denied_entries(
    policy: &cordon_policy::Policy,
    workspace: &Path,
) -> Result<(Vec<String>, Vec<String>), SessionError> {
    let (mut hidden, mut read_only) = (Vec::new(), Vec::new());
    let mut walk = walkdir::WalkDir::new(workspace)
        .min_depth(1)
        .follow_links(false)
        .into_iter();
    let mut seen = 0usize;
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        seen += 1;
        if seen > 200_000 {
            break;
        }
        let Ok(rel) = entry.path().strip_prefix(workspace) else {
            continue;
        };
        let rel = rel.display().to_string();
        // A directory every entry of which a rule denies (`secrets/**`) is denied whole,
        // so nothing new can be made in it either.
        let any_entry = format!("{rel}/cordon-any-entry");
        let is_dir = entry.file_type().is_dir();
        let denied = |write: bool| {
            policy.path_denied(&rel, write) || (is_dir && policy.path_denied(&any_entry, write))
        };
        let list = if denied(false) {
            &mut hidden
        } else if denied(true) {
            &mut read_only
        } else {
            continue;
        };
        list.push(rel);
        if entry.file_type().is_dir() {
            walk.skip_current_dir();
        }
        if hidden.len() + read_only.len() > MAX_DENIED_ENTRIES {
            return Err(SessionError::bad_input(
                format!(
                    "the policy's path rules deny more than {MAX_DENIED_ENTRIES} entries of the workspace {}, more than the sandbox mounts one by one",
                    workspace.display()
                ),
                "write path rules for directories (secrets/**) rather than for many files",
            ));
        }
    }
    Ok((hidden, read_only))
}

/// Starts a sandbox as `spec` describes, over `workspace`, with what the run adds (see
/// [`RunLimits`]). Variables taken from the host are read now (a resumed run reads them
/// again); their values come back as secrets.
pub(crate) async fn build(
    provider: &dyn SandboxProvider,
    spec: &SandboxSpec,
    workspace: &Path,
    protected: &[PathBuf],
    run: RunLimits<'_>,
) -> Result<(Arc<dyn Sandbox>, Vec<(String, String)>), SessionError> {
    let mut request = SandboxRequest::new(workspace, &spec.root);
    if let Some(e) = run.egress {
        request.network = cordon_sandbox::Network::Proxied;
        request.egress = Some(e.clone());
    }
    if let Some(policy) = run.policy {
        let (hidden, read_only) = denied_entries(policy, workspace)?;
        request.hidden_paths = hidden;
        request.read_only_paths = read_only;
    }
    request.read_only = spec.read_only;
    request.isolation = Some(spec.tier.clone()).filter(|t| t != "auto");
    request.mounts = spec
        .grants
        .iter()
        .map(|g| Mount {
            path: PathBuf::from(&g.path),
            writable: g.writable,
        })
        .collect();
    request
        .read_only_paths
        .extend(spec.read_only_paths.iter().cloned());
    request.protected = protected.to_vec();
    let mut secrets = Vec::new();
    for var in &spec.env {
        let value = match (&var.value, &var.from_host) {
            (Some(v), _) => v.clone(),
            (None, Some(host)) => {
                let v = std::env::var(host).map_err(|_| {
                    SessionError::bad_input(
                        format!(
                            "the sandbox's variable {} comes from the host variable {host}, which is not set",
                            var.name
                        ),
                        format!("export {host}=... before running cordon"),
                    )
                })?;
                secrets.push((format!("env {}", var.name), v.clone()));
                v
            }
            (None, None) => String::new(),
        };
        request.env.push((var.name.clone(), value));
    }
    let sandbox = provider.create(request).await?;
    Ok((sandbox, secrets))
}

/// What a run records about its sandbox: the provider's isolation report, the paths, and
/// the spec a resume rebuilds it from. (`tier`, `confinement` and `limits` repeat parts of
/// the report under the names runs recorded before providers existed.)
pub fn sandbox_record(
    sandbox: &dyn Sandbox,
    host_workspace: &Path,
    spec: &SandboxSpec,
) -> serde_json::Value {
    let isolation = sandbox.isolation();
    serde_json::json!({
        "provider": isolation.provider,
        "tier": isolation.kind,
        "isolation": isolation,
        "workspace": sandbox.workspace(),
        "host_workspace": host_workspace.display().to_string(),
        "confinement": isolation.details,
        "limits": isolation.gaps,
        "spec": spec,
    })
}
