//! Evidence: `cordon export --bundle`, `cordon verify --bundle`, `cordon artifacts` and
//! `cordon key`.

use super::{Paths, find_run, print_bytes, store_failure, store_path};
use crate::exit::{self, Failure};
use crate::render::call::bytes as show_bytes;
use crate::render::{plural, safe};
use cordon_evidence::bundle;
use cordon_store::Store;
use cordon_store::signing::PublicKey;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// The largest bundle `verify --bundle` reads.
const MAX_BUNDLE: u64 = 256 << 20;

/// `cordon export RUN --bundle FILE`.
pub async fn export(
    store: &Store,
    paths: &Paths<'_>,
    run: &str,
    to: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let run_id = find_run(store, run).await?;
    let events = store.events(&run_id).await.map_err(store_failure)?;
    let snapshots = cordon_session::Snapshots::open(paths.snapshots)?;
    let config = cordon_session::Config::load(paths.config)?;
    let (redactor, unknown) = cordon_session::redactor_after_the_fact(&events, &config);
    let mut listings = std::collections::BTreeMap::new();
    let mut withheld = 0u64;
    for id in bundle::checkpoint_snapshots(&events) {
        // Without the values the run's secrets came from, no file name can be cleared.
        if !unknown.is_empty() {
            withheld += 1;
            continue;
        }
        if let Ok(s) = snapshots.load(&id).await {
            // A listing whose file names hold a secret is left out whole: its id covers
            // the names, so they cannot be replaced.
            let secret = s.entries.iter().any(|e| {
                redactor.redact(&e.path) != e.path
                    || e.target.as_ref().is_some_and(|t| redactor.redact(t) != *t)
            });
            if secret {
                withheld += 1;
                continue;
            }
            listings.insert(id, s);
        }
    }
    let bytes = bundle::export(store, &run_id, &listings)
        .await
        .map_err(|e| match e {
            bundle::ExportError::Store(s) => store_failure(s),
            bundle::ExportError::Tampered { .. } => anyhow::Error::new(Failure {
                code: exit::TAMPERED,
                message: e.to_string(),
                hint: Some(format!("`cordon verify {run_id}` shows what is wrong")),
            }),
            other => Failure::bad_input(
                other.to_string(),
                "only a run whose every event is covered by a signed head can be exported",
            ),
        })?;
    let report = bundle::verify(&bytes, None);
    if to == Path::new("-") {
        return print_bytes(&bytes);
    }
    write_new(to, &bytes)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "run_id": run_id, "bundle": to, "bytes": bytes.len(), "events": report.events,
                "snapshots": report.snapshots, "missing_snapshots": report.missing_snapshots,
                "signed_by": report.signed_by,
            })
        );
    } else {
        println!(
            "wrote {} ({}): run {run_id}, {}, {}, signed by {}",
            to.display(),
            show_bytes(bytes.len() as u64),
            plural(report.events, "event", "events"),
            plural(report.snapshots, "snapshot listing", "snapshot listings"),
            report.signed_by.as_deref().unwrap_or("-")
        );
        let gone = report.missing_snapshots.len() as u64 - withheld;
        if gone > 0 {
            println!(
                "  note: {} the run's checkpoints took no longer in {}: the bundle names them without their listings",
                plural(gone, "snapshot", "snapshots"),
                snapshots.shown(),
            );
        }
        if withheld > 0 && !unknown.is_empty() {
            println!(
                "  note: {} left out: the run's secrets came from {}, which {} not set here, so their file names could not be checked for them",
                plural(withheld, "snapshot listing", "snapshot listings"),
                unknown.join(", "),
                if unknown.len() == 1 { "is" } else { "are" },
            );
        } else if withheld > 0 {
            println!(
                "  note: {} left out: a file name in them holds a secret",
                plural(withheld, "snapshot listing", "snapshot listings"),
            );
        }
        println!(
            "  check it anywhere: `cordon key > store.pub.pem` here, then `cordon verify --bundle {} --key store.pub.pem` there",
            safe(&to.display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a file that must not exist yet, all or nothing.
fn write_new(to: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let cannot = |e: std::io::Error| {
        Failure::bad_input(
            format!("cannot write {}: {e}", to.display()),
            "give a path in a directory you may write, to a file that does not exist yet",
        )
    };
    if to.exists() {
        return Err(Failure::bad_input(
            format!("{} exists", to.display()),
            "give a new file name, or remove the old file first",
        ));
    }
    let dir = to
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cannot)?;
    tmp.write_all(bytes).map_err(cannot)?;
    tmp.as_file().sync_all().map_err(cannot)?;
    tmp.persist_noclobber(to).map_err(|e| cannot(e.error))?;
    Ok(())
}

/// `cordon verify --bundle FILE [--key KEY]`.
pub fn verify_bundle(from: &Path, key: Option<&PublicKey>, json: bool) -> anyhow::Result<ExitCode> {
    let mut bytes = Vec::new();
    let too_big = |what: String| {
        Failure::bad_input(
            format!("{what} is larger than 256 MiB: not a bundle cordon reads"),
            "give the file `cordon export RUN --bundle FILE` wrote",
        )
    };
    if from != Path::new("-")
        && let Ok(m) = std::fs::metadata(from)
    {
        if m.is_dir() {
            return Err(Failure::bad_input(
                format!("{} is a directory", from.display()),
                "give the file `cordon export RUN --bundle FILE` wrote",
            ));
        }
        if m.len() > MAX_BUNDLE {
            return Err(too_big(from.display().to_string()));
        }
    }
    let read = if from == Path::new("-") {
        std::io::stdin()
            .take(MAX_BUNDLE + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(from).and_then(|f| f.take(MAX_BUNDLE + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| {
        Failure::bad_input(
            format!("cannot read {}: {e}", from.display()),
            "give the file `cordon export RUN --bundle FILE` wrote",
        )
    })?;
    if bytes.len() as u64 > MAX_BUNDLE {
        return Err(too_big(from.display().to_string()));
    }
    let report = bundle::verify(&bytes, key);
    if json {
        let first = report.problems.first();
        println!(
            "{}",
            serde_json::json!({
                "bundle": from, "ok": report.ok(), "run_id": report.run_id,
                "events": report.events, "snapshots": report.snapshots,
                "missing_snapshots": report.missing_snapshots, "signed_by": report.signed_by,
                "key_trusted": report.key_trusted,
                "bad_line": first.and_then(|p| p.line), "bad_seq": first.and_then(|p| p.seq),
                "bad_kind": first.and_then(|p| p.kind.clone()),
                "reason": first.map(|p| p.reason.clone()),
            })
        );
    } else if let Some(p) = report.problems.first() {
        eprintln!(
            "DOES NOT VERIFY: bundle {}: {}",
            safe(&from.display().to_string()),
            safe(&p.to_string())
        );
        if p.reason.contains("not by the key you trust") {
            eprintln!(
                "  hint: the bundle is whole but another key signed it: check that --key is the public key of the store it came from (`cordon key` there)"
            );
        } else {
            eprintln!(
                "  hint: the file is not what cordon exported (changed, cut short, or not a bundle); ask for it again from the store it came from"
            );
        }
    } else {
        let run = report.run_id.as_deref().unwrap_or("-");
        let signed = report.signed_by.as_deref().unwrap_or("-");
        println!(
            "ok: bundle {}: run {run}, {}, hash chain intact, {}, head signed by {signed}{}",
            from.display(),
            plural(report.events, "event", "events"),
            plural(report.snapshots, "snapshot listing", "snapshot listings"),
            if report.key_trusted {
                ", the key you trust"
            } else {
                " (the key the bundle names: pass --key with the store's public key to know who signed it)"
            }
        );
        if !report.missing_snapshots.is_empty() {
            println!(
                "  note: {} the run's checkpoints took {} not in it",
                plural(
                    report.missing_snapshots.len() as u64,
                    "snapshot",
                    "snapshots"
                ),
                if report.missing_snapshots.len() == 1 {
                    "is"
                } else {
                    "are"
                },
            );
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::TAMPERED)
    })
}

/// `cordon artifacts RUN [--export DIR]`.
pub async fn artifacts(
    store: &Store,
    paths: &Paths<'_>,
    run: &str,
    export: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let run_id = find_run(store, run).await?;
    let events = store.events(&run_id).await.map_err(store_failure)?;
    // The digests come from the log: a log that does not hold vouches for nothing.
    let verdict = cordon_store::verify::verify_run(store, &run_id)
        .await
        .map_err(store_failure)?;
    if let Some(p) = verdict.problems.first() {
        return Err(anyhow::Error::new(Failure {
            code: exit::TAMPERED,
            message: format!(
                "run {run_id} does not verify, so its artifacts' digests cannot be trusted: {p}"
            ),
            hint: Some(format!("`cordon verify {run_id}` shows what is wrong")),
        }));
    }
    if let Some(dir) = export {
        let snapshots = cordon_session::Snapshots::open(paths.snapshots)?;
        let report = cordon_session::artifacts::export(&events, &snapshots, dir).await?;
        let written = &report.written;
        for w in written {
            if json {
                println!("{}", serde_json::to_string(w)?);
            } else {
                let from = match &w.source {
                    cordon_session::artifacts::Source::Workspace => "the workspace".to_string(),
                    cordon_session::artifacts::Source::Snapshot(id) => {
                        format!(
                            "checkpoint {}",
                            safe(&id.chars().take(12).collect::<String>())
                        )
                    }
                };
                println!("{}  (from {from}, digest checked)", w.artifact.path);
            }
        }
        for (path, why) in &report.not_written {
            if json {
                println!("{}", serde_json::json!({"path": path, "not_written": why}));
            } else {
                eprintln!("not written: {}: {}", safe(path), safe(why));
            }
        }
        if !json {
            println!(
                "{} written to {}",
                plural(written.len() as u64, "artifact", "artifacts"),
                dir.display()
            );
        }
        return Ok(if report.not_written.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(exit::RUN_FAILED)
        });
    }
    let Some(list) = cordon_session::artifacts::recorded(&events) else {
        if !json {
            eprintln!(
                "run {run_id} collected no artifacts (a run collects its manifest's outputs when it completes)"
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    if json {
        for a in &list {
            println!("{}", serde_json::to_string(a)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let width = list
        .iter()
        .map(|a| a.path.chars().count())
        .max()
        .unwrap_or(4);
    for a in &list {
        println!(
            "{:<width$}  {:>9}  {:<24}  {}",
            safe(&a.path),
            show_bytes(a.bytes),
            a.media_type,
            a.sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `cordon key`.
pub fn key(paths: &Paths<'_>, json: bool) -> anyhow::Result<ExitCode> {
    let path = match paths.signing_key {
        Some(p) => p.to_path_buf(),
        None => cordon_store::signing::default_key_path(&store_path(paths.store)?),
    };
    let public = cordon_store::signing::public_path(&path);
    let read = if public.exists() && paths.signing_key.is_none() {
        PublicKey::from_file(&public)
    } else if path.exists() {
        PublicKey::from_file(&path)
    } else {
        return Err(Failure::bad_input(
            format!("there is no signing key at {} yet", path.display()),
            "a store makes its key when it records its first run",
        ));
    };
    let key = read.map_err(|e| Failure::bad_input(e.to_string(), "the key file is damaged"))?;
    if json {
        println!(
            "{}",
            serde_json::json!({"key": key.to_text(), "file": path, "public_file": public})
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_bytes(key.to_pem().as_bytes())
}

/// `cordon report RUN --html FILE`.
pub async fn report(
    store: &Store,
    paths: &Paths<'_>,
    run: &str,
    to: &Path,
) -> anyhow::Result<ExitCode> {
    use cordon_evidence::report;
    let run_id = find_run(store, run).await?;
    let events = store.events(&run_id).await.map_err(store_failure)?;
    let verdict = cordon_store::verify::verify_run(store, &run_id)
        .await
        .map_err(store_failure)?;
    let verification = match verdict.problems.first() {
        None => report::Verification {
            ok: true,
            detail: format!(
                "{} events, hash chain intact, head record matches{}",
                verdict.events,
                verdict
                    .signed_by
                    .as_deref()
                    .map_or(String::new(), |k| format!(", signed by {k}"))
            ),
        },
        Some(p) => report::Verification {
            ok: false,
            detail: p.to_string(),
        },
    };
    let snapshots = cordon_session::Snapshots::open(paths.snapshots)?;
    let mut listings = Vec::new();
    for id in bundle::checkpoint_snapshots(&events) {
        if let Ok(s) = snapshots.load(&id).await {
            listings.push(s);
        }
    }
    let read = |hash: &str| snapshots.local.read_content(hash).ok();
    let config = cordon_session::Config::load(paths.config)?;
    // File names and contents come from the snapshots, not the redacted log.
    let (redactor, unknown) = cordon_session::redactor_after_the_fact(&events, &config);
    let mut steps = report::steps(&listings, &read);
    let mut changes_withheld = None;
    if !unknown.is_empty() {
        steps.clear();
        changes_withheld = Some(format!(
            "The workspace's changes are not shown: the run's secrets came from {}, which {} not set where this page was made, so file names and contents could not be checked for them.",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" }
        ));
    }
    for step in &mut steps {
        for change in &mut step.changes {
            change.path = redactor.redact(&change.path);
            change.diff = change.diff.as_deref().map(|d| redactor.redact(d));
        }
    }
    let state = cordon_core::RunState::fold(&events).ok();
    let cost = state.as_ref().and_then(|s| {
        let model = s.agent.as_ref()?.model.clone();
        let name = model.split_once(':').map_or(model.as_str(), |(_, m)| m);
        config.prices.get(name).map(|p| p.cost(&s.usage))
    });
    let page = report::html(&report::Input {
        events: &events,
        verification,
        steps,
        changes_withheld,
        cost_usd: cost,
    });
    write_new(to, page.as_bytes())?;
    println!(
        "wrote {} ({}): run {run_id}; open it in a browser (it loads nothing from the network)",
        to.display(),
        show_bytes(page.len() as u64)
    );
    Ok(ExitCode::SUCCESS)
}
