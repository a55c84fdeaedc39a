//! `cordon bench`: measurements of cordon itself.

mod egress;
mod evidence;
#[cfg(feature = "scripted")]
mod harness;

use std::process::ExitCode;
use std::time::{Duration, Instant};

pub use egress::egress;
pub use evidence::evidence;
#[cfg(feature = "scripted")]
pub use harness::harness;

/// `cordon bench harness` without the scripted server: there is nothing to measure against.
#[cfg(not(feature = "scripted"))]
pub async fn harness(
    _turns: u32,
    _short: u32,
    _api: crate::cli::ApiArg,
    _json: bool,
) -> anyhow::Result<ExitCode> {
    Err(crate::exit::Failure::bad_input(
        "`cordon bench harness` needs the scripted model server, which this build leaves out",
        "build cordon with its default features (the `scripted` feature)",
    ))
}

/// `cordon bench manifest`: a local_dir of `files` files, `mib` MiB in all, materialized
/// into a fresh sandbox.
pub async fn manifest(files: u32, mib: u32, json: bool) -> anyhow::Result<ExitCode> {
    let files = files.max(1) as usize;
    let total = mib as usize * 1024 * 1024;
    let per_file = (total / files).max(1);
    let scratch = tempfile::Builder::new()
        .prefix("cordon-bench-manifest-")
        .tempdir()?;
    let source = scratch.path().join("project/data");
    if !json {
        eprintln!(
            "writing {files} files of {per_file} bytes under {} …",
            source.display()
        );
    }
    // Spread over 100 directories, with content that does not compress to nothing.
    let mut block = vec![0u8; per_file];
    for (i, b) in block.iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    for i in 0..files {
        let dir = source.join(format!("d{:03}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&dir)?;
        }
        block[0] = (i % 256) as u8;
        std::fs::write(dir.join(format!("f{i:05}.bin")), &block)?;
    }
    let manifest_path = scratch.path().join("project/cordon.toml");
    std::fs::write(
        &manifest_path,
        "[entries.data]\ntype = \"local_dir\"\nsource = \"data\"\n",
    )?;
    let args = crate::cli::SandboxArgs {
        workspace: Some(scratch.path().join("ws")),
        read_only: false,
        sandbox: crate::cli::TierArg::Auto,
        manifest: Some(manifest_path),
    };
    let started = Instant::now();
    let prepared = super::sandbox::create(&args, &[]).await?;
    let elapsed = started.elapsed();
    let (_, receipts, _) = prepared.materialized.clone().expect("a manifest was given");
    let bytes: u64 = receipts.iter().map(|r| r.bytes).sum();
    let written: u64 = receipts.iter().map(|r| r.files).sum();
    anyhow::ensure!(
        written as usize == files,
        "only {written} of {files} files were materialized"
    );
    let mib_s = bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64();
    let files_s = written as f64 / elapsed.as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "manifest", "files": written, "bytes": bytes,
                "seconds": elapsed.as_secs_f64(), "mib_per_sec": mib_s, "files_per_sec": files_s,
                "tier": prepared.sandbox.isolation().kind,
            })
        );
    } else {
        println!(
            "manifest bench: {written} files, {:.1} MiB, into a fresh {} sandbox",
            bytes as f64 / 1048576.0,
            prepared.sandbox.isolation().kind
        );
        println!(
            "  sandbox create + materialize   {:.2} s",
            elapsed.as_secs_f64()
        );
        println!("  throughput                     {mib_s:.1} MiB/s, {files_s:.0} files/s");
    }
    Ok(ExitCode::SUCCESS)
}

/// `cordon bench sandbox`.
pub async fn sandbox(
    iterations: u32,
    tier: crate::cli::TierArg,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let iterations = iterations.max(5) as usize;
    let workspace = tempfile::tempdir()?;
    let args = crate::cli::SandboxArgs {
        workspace: Some(workspace.path().to_path_buf()),
        read_only: false,
        sandbox: tier,
        manifest: None,
    };
    let truth = vec!["/bin/true".to_string()];
    let mut create = Vec::new();
    let mut tier_name = String::new();
    // As a user sees it: `cordon sandbox exec` started as a process, to its first output,
    // beside plain bubblewrap measured the same way in the same run, turn about.
    let bwrap = cordon_sandbox::tier::find_bwrap();
    let mut user_seen = Vec::new();
    let mut plain_bwrap = Vec::new();
    let this = std::env::current_exe()?;
    let progress = crate::progress::Bars::for_stderr();
    progress.begin("sandbox starts", Some(iterations as u64));
    for _ in 0..iterations {
        progress.advance(1);
        let started = Instant::now();
        let sb = super::sandbox::create(&args, &[]).await?.sandbox;
        let out = sb.run(&truth, ".", Duration::from_secs(10)).await?;
        create.push(started.elapsed());
        anyhow::ensure!(out.code == Some(0), "true failed in the sandbox");
        tier_name = sb.isolation().kind.clone();
        let _ = sb.stop().await;
        let mut exec = tokio::process::Command::new(&this);
        exec.args([
            "sandbox",
            "exec",
            "--sandbox",
            crate::commands::sandbox::tier_name(tier),
        ])
        .arg("--workspace")
        .arg(workspace.path())
        .args(["--", "/bin/echo", "x"]);
        user_seen.push(first_output(&mut exec).await?);
        if let Some(bwrap) = &bwrap {
            let mut plain = tokio::process::Command::new(bwrap);
            plain.args(["--unshare-all", "--ro-bind", "/", "/", "/bin/echo", "x"]);
            plain_bwrap.push(first_output(&mut plain).await?);
        }
    }
    progress.end();
    let sb = super::sandbox::create(&args, &[]).await?.sandbox;
    let mut sandboxed = Vec::new();
    for _ in 0..iterations * 4 {
        let started = Instant::now();
        sb.run(&truth, ".", Duration::from_secs(10)).await?;
        sandboxed.push(started.elapsed());
    }
    // PTY round trip: a key written to the terminal until its echo comes back.
    let mut pty = Vec::new();
    let mut cat = sb
        .spawn(&["/bin/cat".to_string()], ".", &[], Some((24, 80)))
        .await?;
    for i in 0..iterations * 4 {
        let key = [b'a' + (i % 26) as u8];
        let started = Instant::now();
        cat.write(&key).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), cat.next_event()).await? {
                Some(cordon_sandbox::ProcessEvent::Output(_, data)) if data.contains(&key[0]) => {
                    break;
                }
                Some(cordon_sandbox::ProcessEvent::Output(..))
                | Some(cordon_sandbox::ProcessEvent::Started(_)) => {}
                other => anyhow::bail!("the PTY session ended: {other:?}"),
            }
        }
        pty.push(started.elapsed());
    }
    cat.kill().await?;
    let mut direct = Vec::new();
    for _ in 0..iterations * 4 {
        let started = Instant::now();
        tokio::process::Command::new("/bin/true").status().await?;
        direct.push(started.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (c50, c95) = (percentile(&create, 50), percentile(&create, 95));
    let (s50, s95) = (percentile(&sandboxed, 50), percentile(&sandboxed, 95));
    let (d50, d95) = (percentile(&direct, 50), percentile(&direct, 95));
    let overhead = s50.saturating_sub(d50);
    let (p50, p95) = (percentile(&pty, 50), percentile(&pty, 95));
    let (u50, u95) = (percentile(&user_seen, 50), percentile(&user_seen, 95));
    let (b50, b95) = (percentile(&plain_bwrap, 50), percentile(&plain_bwrap, 95));
    let ratio = (!plain_bwrap.is_empty()).then(|| ms(u50) / ms(b50));
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "sandbox", "tier": tier_name, "iterations": iterations,
                "create_to_true_ms": { "median": ms(c50), "p95": ms(c95) },
                "exec_true_ms": { "median": ms(s50), "p95": ms(s95) },
                "direct_true_ms": { "median": ms(d50), "p95": ms(d95) },
                "exec_overhead_ms": ms(overhead),
                "pty_round_trip_ms": { "median": ms(p50), "p95": ms(p95) },
                "sandbox_exec_first_output_ms": { "median": ms(u50), "p95": ms(u95) },
                "plain_bwrap_first_output_ms": (!plain_bwrap.is_empty())
                    .then(|| serde_json::json!({ "median": ms(b50), "p95": ms(b95) })),
                "sandbox_exec_over_plain_bwrap": ratio,
            })
        );
    } else {
        println!(
            "sandbox bench ({tier_name} tier, {iterations} sandboxes, {} execs)",
            iterations * 4
        );
        println!(
            "  create → `true` finished     median {:>7.3} ms   p95 {:>7.3} ms",
            ms(c50),
            ms(c95)
        );
        println!(
            "  exec `true` in the sandbox   median {:>7.3} ms   p95 {:>7.3} ms",
            ms(s50),
            ms(s95)
        );
        println!(
            "  spawn /bin/true directly     median {:>7.3} ms   p95 {:>7.3} ms",
            ms(d50),
            ms(d95)
        );
        println!("  exec overhead (median)       {:>7.3} ms", ms(overhead));
        println!(
            "  PTY write → echo             median {:>7.3} ms   p95 {:>7.3} ms",
            ms(p50),
            ms(p95)
        );
        println!(
            "  sandbox exec → first output  median {:>7.3} ms   p95 {:>7.3} ms",
            ms(u50),
            ms(u95)
        );
        match ratio {
            Some(r) => {
                println!(
                    "  plain bwrap → first output   median {:>7.3} ms   p95 {:>7.3} ms",
                    ms(b50),
                    ms(b95)
                );
                println!("  sandbox exec / plain bwrap    {r:>7.2}×");
            }
            None => println!("  plain bubblewrap: not installed, no ratio"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a command takes from its start to its first byte of output (it must print
/// something); it is then run to its end.
async fn first_output(command: &mut tokio::process::Command) -> anyhow::Result<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut byte = [0u8; 1];
    let read = stdout.read(&mut byte).await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(read == 1, "{command:?} printed nothing");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).await?;
    child.wait().await?;
    Ok(elapsed)
}

/// The `p`th percentile (nearest rank) of some durations.
pub(crate) fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * v.len()).div_ceil(100).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 95), Duration::from_millis(95));
        assert_eq!(percentile(&v[..1], 95), Duration::from_millis(1));
    }
}
