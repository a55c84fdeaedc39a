//! One module per command.

mod agent_check;
mod approve;
mod bench;
mod evidence;
mod inspect;
mod policy;
mod run;
pub mod sandbox;
mod snapshot;
mod stats;
mod trace;

use crate::cli::{BenchCommand, Cli, Command, ManifestCommand, SandboxCommand};
use crate::exit::Failure;
use cordon_store::Store;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command the user asked for.
pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let protected = protected_paths(cli.store.as_deref(), cli.snapshots.as_deref());
    let paths = Paths {
        store: cli.store.as_deref(),
        config: cli.config.as_deref(),
        snapshots: cli.snapshots.as_deref(),
        signing_key: cli.signing_key.as_deref(),
    };
    match cli.command {
        Command::Run(args) => run::run(args, &paths).await,
        Command::Resume {
            run,
            max_turns,
            budgets,
            input,
            json,
            workspace,
            sandbox,
            command_timeout,
            policy,
        } => {
            let mut request = cordon_session::ResumeRequest::new(run);
            request.policy = policy
                .map(|p| policy::resolve(&p, paths.config))
                .transpose()?;
            request.max_turns = max_turns;
            request.budgets = budgets
                .iter()
                .map(|b| cordon_session::parse_budget(b))
                .collect::<Result<_, _>>()?;
            request.input = input;
            request.workspace = workspace;
            request.isolation = sandbox.map(|t| sandbox::tier_name(t).to_string());
            request.command_timeout_secs = command_timeout;
            run::resume(request, json, &paths).await
        }
        Command::Approve {
            run,
            host: Some(host),
            as_name,
            json,
            ..
        } => approve::grant_host(&paths, &run, &host, as_name, json).await,
        Command::Approve {
            run,
            call,
            always,
            as_name,
            json,
            host: None,
        } => approve::approve(&paths, &run, call.as_deref(), always, as_name, json).await,
        Command::Reject {
            run,
            call,
            message,
            as_name,
            json,
        } => approve::reject(&paths, &run, &call, message, as_name, json).await,
        Command::Approvals { json } => match open_store_read_only(cli.store.as_deref()).await? {
            Some(store) => approve::pending(&store, json).await,
            None => {
                if !json {
                    eprintln!("nothing waits for approval: there is no run store yet");
                }
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Pause { run, json } => approve::pause(&paths, &run, json).await,
        Command::Runs {
            status,
            limit,
            json,
        } => match open_store_read_only(cli.store.as_deref()).await? {
            Some(store) => inspect::runs(&store, status, limit, json).await,
            None => {
                if !json {
                    eprintln!(
                        "no runs yet: there is no run store at {}",
                        store_path(cli.store.as_deref())?.display()
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Show {
            run,
            call,
            full,
            json,
            raw,
        } => {
            let store = store_with_run(cli.store.as_deref(), &run).await?;
            let how = inspect::ShowOptions {
                call,
                full,
                json,
                raw,
            };
            inspect::show(&store, &run, &how).await
        }
        Command::Verify {
            bundle: Some(bundle),
            key,
            json,
            ..
        } => {
            let key = key.map(|k| trusted_key(&k)).transpose()?;
            evidence::verify_bundle(&bundle, key.as_ref(), json)
        }
        Command::Verify {
            run,
            all,
            key,
            json,
            bundle: None,
        } => {
            let shown = run.clone().unwrap_or_else(|| "--all".into());
            let store = store_with_run(cli.store.as_deref(), &shown).await?;
            let key = match key {
                Some(k) => Some(trusted_key(&k)?),
                None => paths.signing_key.map(public_key_of).transpose()?,
            };
            inspect::verify(&store, run.as_deref(), all, key.as_ref(), json).await
        }
        Command::Export { run, bundle, json } => {
            let store = store_with_run(cli.store.as_deref(), &run).await?;
            evidence::export(&store, &paths, &run, &bundle, json).await
        }
        Command::Artifacts { run, export, json } => {
            let store = store_with_run(cli.store.as_deref(), &run).await?;
            evidence::artifacts(&store, &paths, &run, export.as_deref(), json).await
        }
        Command::Key { json } => evidence::key(&paths, json),
        Command::Report { run, html } => {
            let store = store_with_run(cli.store.as_deref(), &run).await?;
            evidence::report(&store, &paths, &run, &html).await
        }
        Command::Stats { since, agent, json } => {
            let store = open_store_read_only(cli.store.as_deref()).await?;
            let config = cordon_session::Config::load(paths.config)?;
            let filter = stats::Filter { since, agent };
            stats::stats(store.as_ref(), &config, &filter, json).await
        }
        Command::Trace { run, json, otlp } => {
            let store = store_with_run(cli.store.as_deref(), &run).await?;
            match otlp {
                true => trace::send(&store, &run).await,
                false => trace::trace(&store, &run, json).await,
            }
        }
        Command::Bench(BenchCommand::Harness {
            turns,
            short,
            api,
            json,
        }) => bench::harness(turns, short, api, json).await,
        Command::Bench(BenchCommand::Snapshot { mib, json }) => snapshot::bench(mib, json),
        Command::Bench(BenchCommand::Manifest { files, mib, json }) => {
            bench::manifest(files, mib, json).await
        }
        Command::Bench(BenchCommand::Egress {
            requests,
            mib,
            json,
        }) => bench::egress(requests, mib, json).await,
        Command::Bench(BenchCommand::Evidence { events, json }) => {
            bench::evidence(events, json).await
        }
        Command::Bench(BenchCommand::Sandbox {
            iterations,
            sandbox,
            json,
        }) => bench::sandbox(iterations, sandbox, json).await,
        Command::Sandbox(SandboxCommand::Exec {
            sandbox,
            timeout,
            tty,
            command,
        }) => match tty {
            false => sandbox::exec(&sandbox, &protected, timeout, &command).await,
            true => sandbox::interactive(&sandbox, &protected, timeout, &command).await,
        },
        Command::Sandbox(SandboxCommand::Shell { sandbox }) => {
            let bash = ["/bin/bash".to_string(), "-l".to_string()];
            sandbox::interactive(&sandbox, &protected, u64::MAX / 4, &bash).await
        }
        Command::Doctor { json, agent } => sandbox::doctor(json, agent.as_deref()).await,
        Command::Completions { shell } => {
            let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "cordon", &mut script);
            print_bytes(&script)
        }
        Command::Manifest(ManifestCommand::Check { file, json }) => manifest_check(&file, json),
        Command::Policy(cmd) => policy::run(cmd, cli.config.as_deref()),
        Command::Snapshot(cmd) => {
            let runs = open_store_read_only(cli.store.as_deref()).await?;
            snapshot::run(cmd, cli.snapshots.as_deref(), runs.as_ref()).await
        }
        Command::ApplyPatch { root, patch } => apply_patch(&root, &patch),
    }
}

/// Where cordon keeps things, as given on the command line.
pub struct Paths<'a> {
    /// The run store.
    pub store: Option<&'a Path>,
    /// The config file.
    pub config: Option<&'a Path>,
    /// The snapshot store.
    pub snapshots: Option<&'a str>,
    /// The key that signs run heads, when not the one beside the store.
    pub signing_key: Option<&'a Path>,
}

/// The session the run commands work in: the store, the config's model providers (and the
/// scripted ones), the local sandbox provider, the snapshot store.
pub async fn session(paths: &Paths<'_>) -> anyhow::Result<cordon_session::Session> {
    let store = open_store(paths).await?;
    #[allow(unused_mut)]
    let mut models = cordon_session::Models::new(cordon_session::Config::load(paths.config)?);
    #[cfg(feature = "scripted")]
    cordon_session::scripted::register(&mut models);
    let provider = cordon_sandbox::LocalProvider::new(sandbox::supervisor()?);
    let session = cordon_session::Session::builder(store)
        .models(models)
        .sandboxes(std::sync::Arc::new(provider))
        .snapshots(cordon_session::Snapshots::open(paths.snapshots)?)
        .protect(protected_paths(paths.store, paths.snapshots))
        .workspaces(state_dir()?.join("workspaces"))
        .progress(crate::progress::Bars::for_stderr())
        .build()?;
    Ok(session)
}

/// cordon's state directory (beside the default store).
pub fn state_dir() -> anyhow::Result<std::path::PathBuf> {
    Ok(cordon_store::default_store_path()
        .map_err(store_failure)?
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf())
}

/// `cordon manifest check`: validate and print the tree (or, with `json`, one object).
fn manifest_check(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    if !json {
        let m = cordon_session::load_manifest(file)?;
        print!("{}", cordon_manifest::tree::render(&m));
        return Ok(ExitCode::SUCCESS);
    }
    let shown = file.display().to_string();
    match cordon_manifest::load(file) {
        Ok(m) => {
            let entries: Vec<serde_json::Value> = m
                .entries
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "path": e.path, "type": e.kind.name(),
                        "mode": e.mode.map(|m| format!("{m:04o}")),
                        "read_only": e.read_only, "ephemeral": e.ephemeral,
                        "description": e.description,
                    })
                })
                .collect();
            let env: Vec<serde_json::Value> = m
                .env
                .iter()
                .map(|(name, v)| match v {
                    cordon_manifest::schema::EnvValue::Literal(value) => {
                        serde_json::json!({ "name": name, "value": value })
                    }
                    cordon_manifest::schema::EnvValue::FromHost { from_host } => {
                        serde_json::json!({ "name": name, "from_host": from_host })
                    }
                })
                .collect();
            let grants: Vec<serde_json::Value> = m
                .grants
                .iter()
                .map(|g| serde_json::json!({ "path": g.path, "mode": g.mode }))
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "file": shown, "valid": true, "digest": m.digest, "root": m.root,
                    "entries": entries, "env": env, "grants": grants, "outputs": m.outputs,
                    "checkpoints": m.checkpoints,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let problems: Vec<serde_json::Value> = e
                .problems
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "line": p.line, "column": p.column, "message": p.message, "hint": p.hint,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({ "file": shown, "valid": false, "problems": problems })
            );
            Ok(ExitCode::from(crate::exit::BAD_INPUT))
        }
    }
}

/// `cordon apply-patch`: the patch engine on a host directory.
fn apply_patch(root: &Path, patch: &str) -> anyhow::Result<ExitCode> {
    use cordon_tools::patch::{PatchError, apply_to_dir};
    let text = if patch == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(patch).map_err(|e| {
            Failure::bad_input(
                format!("cannot read the patch {patch}: {e}"),
                "give a patch file, or - for standard input",
            )
        })?
    };
    match apply_to_dir(root, &text) {
        Ok(summary) => {
            for line in summary {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ PatchError::Parse(_)) => Err(Failure::bad_input(
            format!("{e}; nothing was changed"),
            "a patch starts with '*** Begin Patch' and ends with '*** End Patch' (see the README)",
        )),
        Err(e) => Err(anyhow::Error::new(crate::exit::Failure {
            code: crate::exit::RUN_FAILED,
            message: format!("{e}\nnothing was changed in {}", root.display()),
            hint: None,
        })),
    }
}

/// Host paths no sandbox may reach: the run store, its heads, the snapshot stores.
pub fn protected_paths(store: Option<&Path>, snapshots: Option<&str>) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(s) = store_path(store) {
        let mut heads = s.clone().into_os_string();
        heads.push(".heads");
        out.push(cordon_store::signing::default_key_path(&s));
        out.push(s);
        out.push(heads.into());
    }
    match snapshots {
        Some(d) if !d.contains("://") => out.push(d.into()),
        // A remote store's local cache.
        Some(_) => out.extend(
            cordon_store::default_snapshot_dir()
                .ok()
                .map(|d| d.with_file_name("snapshot-cache")),
        ),
        None => out.extend(cordon_store::default_snapshot_dir().ok()),
    }
    out
}

/// The store file named on the command line, or the default one.
fn store_path(path: Option<&Path>) -> anyhow::Result<std::path::PathBuf> {
    match path {
        Some(p) => Ok(p.to_path_buf()),
        None => cordon_store::default_store_path().map_err(store_failure),
    }
}

/// Opens the store named on the command line, or the default one, to write to it, signing
/// with the key given on the command line when there is one.
pub async fn open_store(paths: &Paths<'_>) -> anyhow::Result<Store> {
    let mut store = Store::open(&store_path(paths.store)?)
        .await
        .map_err(store_failure)?;
    if let Some(key) = paths.signing_key {
        store.use_key_file(key).map_err(|e| {
            Failure::bad_input(
                e.to_string(),
                "make one with `openssl genpkey -algorithm ed25519 -out KEY.pem`, or leave --signing-key out to use the store's own",
            )
        })?;
    }
    // The key is read (or made) before anything is recorded, so a key that cannot sign
    // stops the command here rather than after a run has begun.
    store.ready_to_sign().await.map_err(|e| {
        Failure::bad_input(
            format!("the store's signing key cannot be used: {e}"),
            format!(
                "{} must be an Ed25519 private key (PKCS#8 PEM) this user may read; give another with --signing-key",
                store.signing_key_path().display()
            ),
        )
    })?;
    Ok(store)
}

/// The public key a person says to trust: a file (public key PEM, private key, or
/// `ed25519:HEX` text) or `ed25519:HEX` itself.
pub fn trusted_key(text: &str) -> anyhow::Result<cordon_store::signing::PublicKey> {
    use cordon_store::signing::PublicKey;
    let path = Path::new(text);
    let looks_like_a_path = text.contains('/') || text.ends_with(".pem") || text.ends_with(".pub");
    let read = if text.starts_with("ed25519:") {
        PublicKey::parse(text)
    } else if path.exists() {
        PublicKey::from_file(path)
    } else if looks_like_a_path {
        Err(cordon_store::signing::SigningError(
            "there is no such file".into(),
        ))
    } else {
        PublicKey::parse(text)
    };
    read.map_err(|e| {
        Failure::bad_input(
            format!("--key {text}: {e}"),
            "give the store's public key: a .pub.pem file, the key file itself, or ed25519:HEX as `cordon verify --json` prints it",
        )
    })
}

/// The public half of the signing key file given with --signing-key.
fn public_key_of(path: &Path) -> anyhow::Result<cordon_store::signing::PublicKey> {
    cordon_store::signing::PublicKey::from_file(path).map_err(|e| {
        Failure::bad_input(
            e.to_string(),
            "--signing-key names the private key file (PKCS#8 PEM)",
        )
    })
}

/// Opens the store only to read it (`runs`, `show`, `verify`): nothing is written, so this
/// works on a full disk or a file cordon may not write. `None` when there is no store yet.
pub async fn open_store_read_only(path: Option<&Path>) -> anyhow::Result<Option<Store>> {
    let path = store_path(path)?;
    if !path.exists() {
        return Ok(None);
    }
    Store::open_read_only(&path)
        .await
        .map(Some)
        .map_err(store_failure)
}

/// The store to read a run from; with no store yet, the run is unknown.
async fn store_with_run(path: Option<&Path>, run: &str) -> anyhow::Result<Store> {
    match open_store_read_only(path).await? {
        Some(store) => Ok(store),
        None => Err(Failure::bad_input(
            format!(
                "no run matches '{run}': there is no run store at {} yet",
                store_path(path)?.display()
            ),
            "`cordon runs` lists the runs; --store (or CORDON_STORE) names another store",
        )),
    }
}

/// A store error as a failure with the exit code and hint its kind calls for.
pub fn store_failure(e: cordon_store::StoreError) -> anyhow::Error {
    crate::exit::store_failure(&e)
}

/// Finds a run by id or unique id prefix.
pub async fn find_run(store: &Store, id: &str) -> anyhow::Result<cordon_core::RunId> {
    store.resolve(id).await.map_err(store_failure)
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) ends cordon quietly.
fn print_bytes(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::from(crate::exit::BROKEN_PIPE))
        }
        Err(e) => Err(e.into()),
    }
}
