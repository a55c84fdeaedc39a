//! `cordon bench evidence`: what signing heads and redacting secrets add to each event.

use cordon_core::{EventPayload, Redactor, RunId};
use cordon_store::signing::{HeadSigner, PublicKey, SigningError};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A signer that does no work, to measure the log without signing.
struct Unsigned(PublicKey);

impl HeadSigner for Unsigned {
    fn public_key(&self) -> PublicKey {
        self.0
    }
    fn sign(&self, _: &[u8]) -> Result<[u8; 64], SigningError> {
        Ok([0; 64])
    }
}

/// An event like a command's result, with `bytes` of output.
fn tool_result(bytes: usize) -> EventPayload {
    let line = "compiling cordon-core v0.1.0 (/work/main/crates/cordon-core) ok\n";
    EventPayload::ToolResult {
        call_id: "call_1".into(),
        tool: "exec_command".into(),
        output: line.repeat(bytes / line.len() + 1)[..bytes].to_string(),
        images: vec![],
        is_error: false,
        duration_ms: 12,
        not_run: false,
    }
}

/// Appends `n` events, one flush each (the harness flushes at least once a step), and
/// returns the time per event.
async fn append(store: &cordon_store::Store, n: u32, bytes: usize) -> anyhow::Result<Duration> {
    let mut log = store.create_run(&RunId::new()).await?;
    let event = tool_result(bytes);
    let started = Instant::now();
    for _ in 0..n {
        log.append(&event).await?;
    }
    Ok(started.elapsed() / n)
}

/// The time per call of `f`, over `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed() / n
}

/// `cordon bench evidence`.
pub async fn evidence(events: u32, json: bool) -> anyhow::Result<ExitCode> {
    let n = events.max(10);
    let dir = tempfile::Builder::new()
        .prefix("cordon-bench-evidence-")
        .tempdir()?;
    let signed = cordon_store::Store::open(&dir.path().join("signed.db")).await?;
    let mut unsigned = cordon_store::Store::open(&dir.path().join("unsigned.db")).await?;
    let key = signed.signer()?.public_key();
    unsigned.set_signer(Arc::new(Unsigned(key)));
    let mut rows = Vec::new();
    for bytes in [512usize, 16 * 1024] {
        // Alternated, three rounds, best of each: the machine's noise hits both alike.
        let (mut with, mut without) = (Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            without = without.min(append(&unsigned, n, bytes).await?);
            with = with.min(append(&signed, n, bytes).await?);
        }
        rows.push(("append + flush", bytes, without, with));
    }
    let mut known = Redactor::new();
    known.add("OpenAI API key", "sk-live-0123456789abcdefghijklmnop");
    known.add("env TOKEN", "tok-9f8e7d6c5b4a39281706");
    known.add(
        "credential github",
        "ghp_notarealtokennotarealtokennotarealtok",
    );
    let mut detecting = known.clone();
    detecting.add_detectors(&[]);
    let mut redaction = Vec::new();
    for bytes in [512usize, 16 * 1024, 256 * 1024] {
        let (_, value) = tool_result(bytes).to_parts();
        let time = |r: &Redactor| {
            per_call(n, || {
                let mut v = value.clone();
                std::hint::black_box(r.redact_value_counting(&mut v));
            })
        };
        let copy = per_call(n, || {
            std::hint::black_box(value.clone());
        });
        redaction.push((
            bytes,
            time(&known).saturating_sub(copy),
            time(&detecting).saturating_sub(copy),
        ));
    }
    let sign_one = {
        let signer = signed.signer()?;
        let msg = cordon_store::signing::head_message("run", 100, &"a".repeat(64));
        per_call(n, || {
            std::hint::black_box(signer.sign(msg.as_bytes()).ok());
        })
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "events": n,
                "sign_us": us(sign_one),
                "append": rows.iter().map(|(_, b, wo, w)| serde_json::json!({
                    "bytes": b, "unsigned_us": us(*wo), "signed_us": us(*w),
                    "added_us": us(w.saturating_sub(*wo)),
                })).collect::<Vec<_>>(),
                "redaction": redaction.iter().map(|(b, k, d)| serde_json::json!({
                    "bytes": b, "known_secrets_us": us(*k), "with_detectors_us": us(*d),
                })).collect::<Vec<_>>(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("one Ed25519 head signature: {:.1} µs", us(sign_one));
    println!("per event, {n} events each flushed alone (the worst case: the harness batches):");
    for (what, bytes, without, with) in &rows {
        println!(
            "  {what}, {bytes:>6} B payload: {:>7.1} µs unsigned, {:>7.1} µs signed (+{:.1} µs)",
            us(*without),
            us(*with),
            us(with.saturating_sub(*without))
        );
    }
    println!("redacting one event (3 known secrets; then with the built-in detectors too):");
    for (bytes, k, d) in &redaction {
        println!(
            "  {bytes:>7} B tool output: {:>8.1} µs known secrets, {:>8.1} µs with detectors",
            us(*k),
            us(*d)
        );
    }
    Ok(ExitCode::SUCCESS)
}
