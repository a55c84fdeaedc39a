//! One module per command.

mod approve;
mod bench;
mod inspect;
mod resume;
mod run;
pub mod sandbox;
mod snapshot;

use crate::cli::{BenchCommand, Cli, Command, ManifestCommand, SandboxCommand};
use crate::exit::Failure;
use cordon_store::Store;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command the user asked for.
pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let protected = protected_paths(cli.store.as_deref(), cli.snapshots.as_deref());
    match cli.command {
        Command::Run(args) => {
            run::run(
                args,
                cli.store.as_deref(),
                cli.config.as_deref(),
                cli.snapshots.as_deref(),
            )
            .await
        }
        Command::Resume {
            run,
            max_turns,
            budgets,
            input,
            json,
            workspace,
            sandbox,
            command_timeout,
        } => {
            let paths = resume::Paths {
                store: cli.store.as_deref(),
                config: cli.config.as_deref(),
                snapshots: cli.snapshots.as_deref(),
            };
            let changes = resume::Changes {
                max_turns,
                budgets,
                input,
                workspace,
                tier: sandbox,
                command_timeout,
            };
            resume::resume(&run, changes, json, paths).await
        }
        Command::Approve {
            run,
            call,
            always,
            as_name,
        } => {
            approve::approve(
                &open_store(cli.store.as_deref()).await?,
                &run,
                call.as_deref(),
                always,
                as_name,
            )
            .await
        }
        Command::Reject {
            run,
            call,
            message,
            as_name,
        } => {
            approve::reject(
                &open_store(cli.store.as_deref()).await?,
                &run,
                &call,
                message,
                as_name,
            )
            .await
        }
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
        Command::Show { run, json, raw } => {
            let store = store_with_run(cli.store.as_deref(), &run).await?;
            inspect::show(&store, &run, json, raw).await
        }
        Command::Verify { run, all, json } => {
            let shown = run.clone().unwrap_or_else(|| "--all".into());
            let store = store_with_run(cli.store.as_deref(), &shown).await?;
            inspect::verify(&store, run.as_deref(), all, json).await
        }
        Command::Bench(BenchCommand::Harness { turns, api, json }) => {
            bench::harness(turns, api, json).await
        }
        Command::Bench(BenchCommand::Snapshot { mib, json }) => snapshot::bench(mib, json),
        Command::Bench(BenchCommand::Manifest { files, mib, json }) => {
            bench::manifest(files, mib, json).await
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
        Command::Doctor { json } => sandbox::doctor(json).await,
        Command::Manifest(ManifestCommand::Check { file }) => manifest_check(&file),
        Command::Snapshot(cmd) => snapshot::run(cmd, cli.snapshots.as_deref()).await,
        Command::ApplyPatch { root, patch } => apply_patch(&root, &patch),
    }
}

/// `cordon manifest check`: validate and print the tree.
fn manifest_check(file: &Path) -> anyhow::Result<ExitCode> {
    let m = sandbox::load_manifest(file)?;
    print!("{}", cordon_manifest::tree::render(&m));
    Ok(ExitCode::SUCCESS)
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

/// The secrets a run knows: the provider's key and the values passed into its sandbox.
pub fn redactor(
    provider: &cordon_model::ProviderConfig,
    sandbox_secrets: &[(String, String)],
) -> cordon_core::Redactor {
    let mut r = cordon_core::Redactor::new();
    if let Some(key) = &provider.api_key {
        r.add(&format!("{} API key", provider.name), key.expose());
    }
    for (name, value) in sandbox_secrets {
        if !r.add(name, value) {
            tracing::warn!(%name, "a secret shorter than 4 characters cannot be redacted");
        }
    }
    r
}

/// The store file named on the command line, or the default one.
fn store_path(path: Option<&Path>) -> anyhow::Result<std::path::PathBuf> {
    match path {
        Some(p) => Ok(p.to_path_buf()),
        None => cordon_store::default_store_path().map_err(store_failure),
    }
}

/// Opens the store named on the command line, or the default one, to write to it.
pub async fn open_store(path: Option<&Path>) -> anyhow::Result<Store> {
    Store::open(&store_path(path)?).await.map_err(store_failure)
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

/// Refuses to go on with a run whose record does not verify: appending after a tampered
/// event would bless it.
pub async fn require_intact(store: &Store, run_id: &cordon_core::RunId) -> anyhow::Result<()> {
    let verdict = cordon_store::verify::verify_run(store, run_id)
        .await
        .map_err(store_failure)?;
    match verdict.problems.first() {
        None => Ok(()),
        Some(p) => Err(anyhow::Error::new(Failure {
            code: crate::exit::TAMPERED,
            message: format!(
                "run {run_id} does not verify, so cordon will not add to it: {}",
                inspect::describe(p)
            ),
            hint: Some(format!(
                "`cordon verify {run_id}` shows what is wrong; restore the store from a backup"
            )),
        })),
    }
}
