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
            sandbox,
            command_timeout,
        } => {
            let paths = (
                cli.store.as_deref(),
                cli.config.as_deref(),
                cli.snapshots.as_deref(),
            );
            let changes = resume::Changes {
                max_turns,
                budgets,
                input,
            };
            resume::resume(&run, changes, json, &sandbox, command_timeout, paths).await
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
        } => {
            inspect::runs(
                &open_store(cli.store.as_deref()).await?,
                status,
                limit,
                json,
            )
            .await
        }
        Command::Show { run, json } => {
            inspect::show(&open_store(cli.store.as_deref()).await?, &run, json).await
        }
        Command::Verify { run, json } => {
            inspect::verify(&open_store(cli.store.as_deref()).await?, &run, json).await
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
            false => sandbox::exec(&sandbox, timeout, &command).await,
            true => sandbox::interactive(&sandbox, timeout, &command).await,
        },
        Command::Sandbox(SandboxCommand::Shell { sandbox }) => {
            let bash = ["/bin/bash".to_string(), "-l".to_string()];
            sandbox::interactive(&sandbox, u64::MAX / 4, &bash).await
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

/// Opens the store named on the command line, or the default one.
pub async fn open_store(path: Option<&Path>) -> anyhow::Result<Store> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => cordon_store::default_store_path()?,
    };
    Store::open(&path).await.map_err(|e| {
        Failure::bad_input(
            e.to_string(),
            "pass a writable file with --store, or set CORDON_STORE",
        )
    })
}

/// Finds a run by id or unique id prefix.
pub async fn find_run(store: &Store, id: &str) -> anyhow::Result<cordon_core::RunId> {
    store.resolve(id).await.map_err(|e| {
        Failure::bad_input(e.to_string(), "`cordon runs` lists the runs in this store")
    })
}
