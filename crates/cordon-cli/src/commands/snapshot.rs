//! `cordon snapshot` and `cordon bench snapshot`.

use crate::cli::SnapshotCommand;
use crate::exit::Failure;
use crate::render::call::bytes;
use crate::render::{left_out, plural, safe};
use cordon_core::CheckpointRules;
use cordon_session::{Retention, SnapshotUse, Snapshots};
use cordon_store::Store;
use cordon_store::snapshot::{Exclusions, Kind, SnapshotError, SnapshotStore};
use std::process::ExitCode;
use std::time::Instant;

fn not_found(e: SnapshotError) -> anyhow::Error {
    match e {
        SnapshotError::NotFound(m) => Failure::bad_input(
            m,
            "`cordon snapshot list` shows the snapshots in this store",
        ),
        other => other.into(),
    }
}

/// Runs a `cordon snapshot` subcommand on the store `at` names (see [`Snapshots::open`]);
/// `runs` is the run store, when there is one, which says whose checkpoint each snapshot is.
pub async fn run(
    cmd: SnapshotCommand,
    at: Option<&str>,
    runs: Option<&Store>,
) -> anyhow::Result<ExitCode> {
    let snapshots = Snapshots::open(at)?;
    let store = &snapshots.local;
    match cmd {
        SnapshotCommand::Take {
            dir,
            exclude,
            exclude_pattern,
            gitignore,
            json,
        } => {
            let rules = CheckpointRules {
                exclude: exclude_pattern,
                gitignore,
            };
            for p in &rules.exclude {
                if let Err(why) = CheckpointRules::check_pattern(p) {
                    return Err(Failure::bad_input(
                        format!("--exclude-pattern '{p}' {why}"),
                        "patterns are gitignore-style, like target/ or *.log",
                    ));
                }
            }
            let exclusions = Exclusions {
                paths: exclude,
                rules,
            };
            let previous = store.newest()?;
            let started = Instant::now();
            let (snap, stats) = store.take_excluding(
                &dir,
                &exclusions,
                previous.as_ref(),
                crate::progress::Bars::for_stderr().as_ref(),
            )?;
            snapshots.push(&snap).await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "id": snap.id, "files": snap.files(), "bytes": snap.bytes(), "stats": stats, "ms": ms })
                );
            } else {
                println!(
                    "{}  {}, {}  (read {} / {}, stored {}, {ms:.1} ms)",
                    snap.id,
                    plural(snap.files() as u64, "file", "files"),
                    plural(snap.bytes(), "byte", "bytes"),
                    plural(stats.files_read, "file", "files"),
                    plural(stats.bytes_read, "byte", "bytes"),
                    plural(stats.objects_written, "new content", "new contents")
                );
                if stats.skipped_count > 0 {
                    println!(
                        "left out {}: {}",
                        plural(stats.skipped_count, "path", "paths"),
                        left_out(&stats.skipped, stats.skipped_count)
                    );
                }
            }
            for note in &stats.notes {
                eprintln!("note: {}", safe(note));
            }
        }
        SnapshotCommand::List { json } => {
            let uses = snapshots.uses(runs).await?;
            if json {
                for u in &uses {
                    println!("{}", serde_json::to_string(u)?);
                }
                return Ok(ExitCode::SUCCESS);
            }
            if uses.is_empty() {
                eprintln!("no snapshots in {}", snapshots.shown());
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<16}  {:<19}  {:>7}  {:>10}  RUN",
                "SNAPSHOT", "TAKEN", "FILES", "BYTES"
            );
            for u in &uses {
                println!(
                    "{:<16}  {:<19}  {:>7}  {:>10}  {}",
                    &u.id[..16.min(u.id.len())],
                    u.created
                        .chars()
                        .take(19)
                        .collect::<String>()
                        .replace('T', " "),
                    u.files,
                    bytes(u.bytes),
                    run_column(u)
                );
            }
        }
        SnapshotCommand::Delete { ids, force, json } => {
            let uses = snapshots.uses(runs).await?;
            let mut chosen = Vec::new();
            for id in &ids {
                let found: Vec<&SnapshotUse> = uses
                    .iter()
                    .filter(|u| !id.is_empty() && u.id.starts_with(id.as_str()))
                    .collect();
                let snap = match found.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(Failure::bad_input(
                            format!("no snapshot matches '{}'; nothing was deleted", safe(id)),
                            "`cordon snapshot list` shows the snapshots in this store",
                        ));
                    }
                    many => {
                        return Err(Failure::bad_input(
                            format!(
                                "'{}' matches {} snapshots; nothing was deleted",
                                safe(id),
                                many.len()
                            ),
                            "give more of the id",
                        ));
                    }
                };
                let needed = &snap.needed_by;
                if !needed.is_empty() && !force {
                    return Err(Failure::bad_input(
                        format!(
                            "snapshot {} is the last checkpoint of run {}, which can still be resumed; nothing was deleted",
                            &snap.id[..16],
                            needed
                                .iter()
                                .map(|r| r.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        "without it the run cannot go on; --force deletes it anyway",
                    ));
                }
                chosen.push(snap.id.clone());
            }
            chosen.sort();
            chosen.dedup();
            snapshots.delete(&chosen).await?;
            let freed = free_contents(&snapshots).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "deleted": chosen, "freed": freed })
                );
            } else {
                for id in &chosen {
                    println!("deleted snapshot {}", &id[..16]);
                }
                print_freed(&freed);
            }
        }
        SnapshotCommand::Show { id, json } => {
            let snap = snapshots.load(&id).await.map_err(not_found)?;
            if json {
                println!("{}", serde_json::to_string(&snap)?);
            } else {
                println!("snapshot {} taken {}", snap.id, snap.created);
                for e in &snap.entries {
                    match e.kind {
                        Kind::Dir => println!("  {:04o}  {}/", e.mode, e.path),
                        Kind::File => println!("  {:04o}  {}  ({} bytes)", e.mode, e.path, e.size),
                        Kind::Symlink => println!(
                            "        {} -> {}",
                            e.path,
                            e.target.as_deref().unwrap_or("")
                        ),
                    }
                }
            }
        }
        SnapshotCommand::Restore { id, to, json } => {
            // A target in the way is the user's to fix: said before anything is read.
            if let Some(blocker) = to
                .ancestors()
                .skip(1)
                .find(|a| !a.as_os_str().is_empty() && a.exists())
                .filter(|a| !a.is_dir())
            {
                return Err(Failure::bad_input(
                    format!(
                        "--to {}: {} is not a directory",
                        to.display(),
                        blocker.display()
                    ),
                    "give a new or empty directory to restore into",
                ));
            }
            if to.exists() {
                let shown = to.display();
                if !to.is_dir() {
                    return Err(Failure::bad_input(
                        format!("--to {shown} is not a directory"),
                        "give a new or empty directory to restore into",
                    ));
                }
                if std::fs::read_dir(&to).is_ok_and(|mut d| d.next().is_some()) {
                    return Err(Failure::bad_input(
                        format!("--to {shown} is not empty"),
                        "give a new or empty directory: a restore never writes over files",
                    ));
                }
            }
            let snap = snapshots.load(&id).await.map_err(not_found)?;
            let progress = crate::progress::Bars::for_stderr();
            let report = store.restore_reporting(&snap, &to, progress.as_ref()).map_err(|e| match e {
                SnapshotError::Unsafe(m) => anyhow::Error::new(Failure {
                    code: crate::exit::RUN_FAILED,
                    message: format!("refusing to restore: {m}"),
                    hint: Some("restore into an empty directory; a snapshot asking for unsafe paths was not made by cordon".into()),
                }),
                other => other.into(),
            })?;
            for note in report.notes() {
                eprintln!("note: {}", safe(&note));
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": snap.id, "to": to.display().to_string(), "files": snap.files(),
                        "bytes": snap.bytes(), "notes": report.notes(),
                    })
                );
            } else {
                println!(
                    "restored {} into {}",
                    plural(snap.files() as u64, "file", "files"),
                    to.display()
                );
            }
        }
        SnapshotCommand::Gc {
            keep_last,
            older_than,
            dry_run,
            json,
        } => {
            let rule = Retention {
                keep_last: keep_last.map(|n| n as usize),
                older_than,
            };
            let verdicts = snapshots.retention(runs, rule).await?;
            let doomed: Vec<String> = verdicts
                .iter()
                .filter(|v| v.delete == Some(true))
                .map(|v| v.id.clone())
                .collect();
            let kept_for_resume = verdicts.iter().filter(|v| !v.needed_by.is_empty()).count();
            if !dry_run {
                snapshots.delete(&doomed).await?;
            }
            let freed = if dry_run {
                Vec::new()
            } else {
                free_contents(&snapshots).await?
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "dry_run": dry_run,
                        "snapshots": verdicts,
                        "deleted": if dry_run { Vec::new() } else { doomed.clone() },
                        "would_delete": if dry_run { doomed.clone() } else { Vec::new() },
                        "freed": freed,
                    })
                );
                return Ok(ExitCode::SUCCESS);
            }
            let verb = if dry_run { "would delete" } else { "deleted" };
            for v in verdicts.iter().filter(|v| v.delete == Some(true)) {
                println!(
                    "{verb} snapshot {}  {}  {}  ({})",
                    &v.id[..16],
                    v.created
                        .chars()
                        .take(19)
                        .collect::<String>()
                        .replace('T', " "),
                    run_column(v),
                    v.why
                );
            }
            if rule.keep_last.is_some() || rule.older_than.is_some() {
                println!(
                    "{verb} {} of {}; kept {} that unfinished runs need to resume",
                    plural(doomed.len() as u64, "snapshot", "snapshots"),
                    verdicts.len(),
                    kept_for_resume
                );
            }
            print_freed(&freed);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a content gc removed in one place.
#[derive(serde::Serialize)]
struct Freed {
    /// `local`, or the remote store's URL.
    store: String,
    contents_removed: usize,
    bytes_removed: u64,
}

/// Removes contents no snapshot refers to, locally and on the remote.
async fn free_contents(snapshots: &Snapshots) -> anyhow::Result<Vec<Freed>> {
    let (n, b) = snapshots.local.gc()?;
    let mut out = vec![Freed {
        store: "local".into(),
        contents_removed: n,
        bytes_removed: b,
    }];
    if let Some(remote) = &snapshots.remote {
        let (n, b) = remote.gc().await?;
        out.push(Freed {
            store: remote.shown().to_string(),
            contents_removed: n,
            bytes_removed: b,
        });
    }
    Ok(out)
}

/// Says what a content gc removed, a line per place.
fn print_freed(freed: &[Freed]) {
    for f in freed {
        println!(
            "removed {} no snapshot refers to ({}){}",
            plural(f.contents_removed as u64, "content", "contents"),
            bytes(f.bytes_removed),
            if f.store == "local" {
                String::new()
            } else {
                format!(" from {}", safe(&f.store))
            }
        );
    }
}

/// The runs whose checkpoint a snapshot is, as a listing shows them.
fn run_column(u: &SnapshotUse) -> String {
    let mut text = match u.runs.as_slice() {
        [] => "-".to_string(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
    };
    if !u.needed_by.is_empty() {
        text.push_str(" (its resume needs it)");
    }
    text
}

/// `cordon bench snapshot`: `mib` MiB of mixed files; full snapshot, checkpoint after a 1 MiB
/// change, restore.
pub fn bench(mib: u32, json: bool) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::Builder::new()
        .prefix("cordon-bench-snapshot-")
        .tempdir()?;
    let ws = scratch.path().join("ws");
    let total = mib as usize * 1024 * 1024;
    if !json {
        eprintln!("writing a {mib} MiB workspace under {} …", ws.display());
    }
    // Half the bytes in 32 MiB files, half in 24 KiB files; half the content random (as
    // binaries and archives are), half text-like (compresses well).
    let mut seed = 0x9E3779B97F4A7C15u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let text: Vec<u8> = b"fn example(x: u32) -> u32 { x * 2 } // cordon bench\n"
        .iter()
        .cycle()
        .take(24 * 1024)
        .copied()
        .collect();
    let (big, small) = (32 << 20, 24 << 10);
    let mut written = 0usize;
    let mut i = 0usize;
    while written < total / 2 {
        let dir = ws.join("large");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("blob{i:03}.bin")),
            noise(big.min(total / 2 - written).max(1)),
        )?;
        written += big;
        i += 1;
    }
    let mut j = 0usize;
    while written < total {
        let dir = ws.join(format!("src/m{:03}", j / 200));
        if j.is_multiple_of(200) {
            std::fs::create_dir_all(&dir)?;
        }
        let content = if j.is_multiple_of(2) {
            text.clone()
        } else {
            noise(small)
        };
        std::fs::write(dir.join(format!("f{j:05}.rs")), content)?;
        written += small;
        j += 1;
    }
    let store = SnapshotStore::open(&scratch.path().join("store"))?;
    let progress = crate::progress::Bars::for_stderr();
    let nothing_left_out = Exclusions::default();
    let t = Instant::now();
    let (full, _) = store.take_excluding(&ws, &nothing_left_out, None, progress.as_ref())?;
    let full_s = t.elapsed().as_secs_f64();
    // Change 1 MiB: rewrite one large file's first MiB as a new file, and touch a few small ones.
    std::fs::write(ws.join("changed.bin"), noise(1 << 20))?;
    let t = Instant::now();
    let (_, stats) = store.take(&ws, &[], Some(&full))?;
    let checkpoint_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    store.restore_reporting(&full, &scratch.path().join("restored"), progress.as_ref())?;
    let restore_s = t.elapsed().as_secs_f64();
    let mib_f = full.bytes() as f64 / 1048576.0;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "snapshot", "mib": mib_f, "files": full.files(),
                "full_seconds": full_s, "full_mib_per_sec": mib_f / full_s,
                "checkpoint_after_1mib_ms": checkpoint_ms, "checkpoint_files_read": stats.files_read,
                "restore_seconds": restore_s, "restore_mib_per_sec": mib_f / restore_s,
            })
        );
    } else {
        println!("snapshot bench: {mib_f:.0} MiB in {} files", full.files());
        println!(
            "  full snapshot                {full_s:>7.2} s   ({:.0} MiB/s)",
            mib_f / full_s
        );
        println!(
            "  checkpoint after 1 MiB       {checkpoint_ms:>7.1} ms  ({} file read)",
            stats.files_read
        );
        println!(
            "  restore                      {restore_s:>7.2} s   ({:.0} MiB/s)",
            mib_f / restore_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
