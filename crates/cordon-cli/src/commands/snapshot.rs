//! `cordon snapshot` and `cordon bench snapshot`.

use crate::cli::SnapshotCommand;
use crate::exit::Failure;
use cordon_session::Snapshots;
use cordon_store::snapshot::{Kind, SnapshotError, SnapshotStore};
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

/// Runs a `cordon snapshot` subcommand on the store `at` names (see [`Snapshots::open`]).
pub async fn run(cmd: SnapshotCommand, at: Option<&str>) -> anyhow::Result<ExitCode> {
    let snapshots = Snapshots::open(at)?;
    let store = &snapshots.local;
    match cmd {
        SnapshotCommand::Take { dir, exclude, json } => {
            let previous = store.newest()?;
            let started = Instant::now();
            let (snap, stats) = store.take(&dir, &exclude, previous.as_ref())?;
            snapshots.push(&snap).await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "id": snap.id, "files": snap.files(), "bytes": snap.bytes(), "stats": stats, "ms": ms })
                );
            } else {
                println!(
                    "{}  {} files, {} bytes  (read {} files / {} bytes, stored {} new contents, {ms:.1} ms)",
                    snap.id,
                    snap.files(),
                    snap.bytes(),
                    stats.files_read,
                    stats.bytes_read,
                    stats.objects_written
                );
            }
        }
        SnapshotCommand::List { json } => {
            let listed = match &snapshots.remote {
                Some(remote) => remote.list().await?,
                None => store.list()?,
            };
            for s in listed {
                if json {
                    println!("{}", serde_json::to_string(&s)?);
                } else {
                    println!(
                        "{}  {}  {:>7} files  {:>12} bytes",
                        &s.id[..16],
                        s.created,
                        s.files,
                        s.bytes
                    );
                }
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
        SnapshotCommand::Restore { id, to } => {
            let snap = snapshots.load(&id).await.map_err(not_found)?;
            let report = store.restore(&snap, &to).map_err(|e| match e {
                SnapshotError::Unsafe(m) => anyhow::Error::new(Failure {
                    code: crate::exit::RUN_FAILED,
                    message: format!("refusing to restore: {m}"),
                    hint: Some("restore into an empty directory; a snapshot asking for unsafe paths was not made by cordon".into()),
                }),
                other => other.into(),
            })?;
            for note in report.notes() {
                eprintln!("note: {note}");
            }
            println!("restored {} files into {}", snap.files(), to.display());
        }
        SnapshotCommand::Gc => {
            let (n, bytes) = store.gc()?;
            println!("removed {n} unreferenced contents ({bytes} bytes)");
            if let Some(remote) = &snapshots.remote {
                let (n, bytes) = remote.gc().await?;
                println!(
                    "removed {n} unreferenced contents ({bytes} bytes) from {}",
                    remote.shown()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
    let t = Instant::now();
    let (full, _) = store.take(&ws, &[], None)?;
    let full_s = t.elapsed().as_secs_f64();
    // Change 1 MiB: rewrite one large file's first MiB as a new file, and touch a few small ones.
    std::fs::write(ws.join("changed.bin"), noise(1 << 20))?;
    let t = Instant::now();
    let (_, stats) = store.take(&ws, &[], Some(&full))?;
    let checkpoint_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    store.restore(&full, &scratch.path().join("restored"))?;
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
