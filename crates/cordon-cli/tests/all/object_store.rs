//! Object storage against real servers (S3 via moto from PyPI, Azure Blob via Azurite from
//! npm): manifest object_store entries, and snapshot stores. The servers are started here;
//! scripts/test installs them and sets CORDON_REQUIRE_PEERS=1, which makes a missing server a
//! failure instead of a skip.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(port: u16, method: &str, path: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The two tests here pick their server's port by binding port 0 and letting it go; run at
/// the same time, both can be handed the same port, and one server then answers for the other
/// (or, once it is stopped, nobody does). One at a time, they cannot.
static ONE_SERVER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits until `port` accepts connections, as long as `server` is still running (a server that
/// could not bind its port exits, and something else may be listening there).
fn ready(server: &mut Server, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if server.0.try_wait().ok().flatten().is_some() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server.0.try_wait().ok().flatten().is_none();
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A started peer, or `None` after saying why it is missing; a failure under
/// CORDON_REQUIRE_PEERS (set by scripts/test, which installs `what`).
fn peer(started: Option<(Server, u16)>, name: &str, what: &str) -> Option<(Server, u16)> {
    if started.is_none() {
        let msg = format!("{name} did not start: run scripts/test, which installs {what}");
        assert!(std::env::var_os("CORDON_REQUIRE_PEERS").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    started
}

fn start_moto() -> Option<(Server, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut server = Server(child);
    ready(&mut server, port).then_some((server, port))
}

/// Builds a sandbox's workspace from a manifest with one object_store entry, `remote`, copying
/// the `data` prefix of the bucket `inputs` (`location` gives the provider's fields), with
/// `env` as cordon's own environment. Checks what every provider must give (the two objects
/// under the prefix and nothing else, read-only, no credential in the sandbox's environment)
/// and returns what the sandbox printed.
fn copy_in(home: &std::path::Path, location: &str, env: &[(&str, &str)]) -> String {
    let manifest = home.join("m.toml");
    std::fs::write(&manifest, format!("[entries.remote]\ntype = \"object_store\"\nbucket = \"inputs\"\nprefix = \"data\"\n{location}\n")).unwrap();
    let mut cmd = common::cordon(home);
    cmd.envs(env.iter().copied());
    let out = cmd
        .args(["sandbox", "exec", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(home.join("ws"))
        .args([
            "--",
            "sh",
            "-c",
            "find remote -type f | sort; cat remote/a.txt remote/sub/b.txt; (echo x > remote/a.txt) 2>/dev/null || echo READ-ONLY; env",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("remote/a.txt\nremote/sub/b.txt\nalphabetaREAD-ONLY\n"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("not this one"),
        "only the prefix: {stdout}"
    );
    for (_, secret) in env
        .iter()
        .filter(|(k, _)| k.contains("SECRET") || k.contains("KEY"))
    {
        assert!(!stdout.contains(secret), "credentials stay out: {stdout}");
    }
    stdout
}

#[test]
fn an_s3_prefix_is_copied_in_with_the_harness_credentials_kept_out() {
    let _one = ONE_SERVER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let Some((_server, port)) = peer(start_moto(), "moto_server", "moto[server]") else {
        return;
    };
    assert!(
        http(port, "PUT", "/inputs", b"").starts_with("HTTP/1.1 200"),
        "bucket created"
    );
    for (key, body) in [
        ("data/a.txt", "alpha"),
        ("data/sub/b.txt", "beta"),
        ("other/c.txt", "not this one"),
    ] {
        assert!(
            http(port, "PUT", &format!("/inputs/{key}"), body.as_bytes())
                .starts_with("HTTP/1.1 200")
        );
    }
    let home = tempfile::tempdir().unwrap();
    copy_in(
        home.path(),
        &format!(
            "provider = \"s3\"\nendpoint = \"http://127.0.0.1:{port}\"\nregion = \"us-east-1\""
        ),
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
            ("AWS_SECRET_ACCESS_KEY", "secret-key-of-the-harness"),
        ],
    );
}

/// Azurite's well-known development account.
const AZ_ACCOUNT: &str = "devstoreaccount1";
const AZ_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// One SharedKey-signed request to Azurite (path-style: /account/container/blob).
fn azure(
    port: u16,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    extra: &[(&str, &str)],
    body: &[u8],
) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = httpdate();
    let mut headers: Vec<(String, String)> = vec![
        ("x-ms-date".into(), date),
        ("x-ms-version".into(), "2021-08-06".into()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    headers.sort();
    let canon_headers: String = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-ms-"))
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    let mut canon_resource = format!("/{AZ_ACCOUNT}{path}");
    let mut q: Vec<_> = query.to_vec();
    q.sort();
    for (k, v) in &q {
        canon_resource.push_str(&format!("\n{k}:{v}"));
    }
    let length = if body.is_empty() {
        String::new()
    } else {
        body.len().to_string()
    };
    let to_sign =
        format!("{method}\n\n\n{length}\n\n\n\n\n\n\n\n\n{canon_headers}{canon_resource}");
    let sig = b64.encode(hmac_sha256(
        &b64.decode(AZ_KEY).unwrap(),
        to_sign.as_bytes(),
    ));
    let qs: String = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let target = if qs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{qs}")
    };
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nAuthorization: SharedKey {AZ_ACCOUNT}:{sig}\r\nConnection: close\r\n", body.len()).unwrap();
    for (k, v) in &headers {
        write!(s, "{k}: {v}\r\n").unwrap();
    }
    write!(s, "\r\n").unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The current time as an HTTP date (RFC 7231).
fn httpdate() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn start_azurite(data: &std::path::Path) -> Option<(Server, u16)> {
    let bin = std::env::var_os("CORDON_AZURITE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/peers/node_modules/.bin/azurite-blob")
        });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new(bin)
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--location",
        ])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut server = Server(child);
    ready(&mut server, port).then_some((server, port))
}

/// Azurite with one empty container (see [`peer`] for `None`).
fn azurite_with(data: &std::path::Path, container: &str) -> Option<(Server, u16)> {
    let (server, port) = peer(start_azurite(data), "azurite", "it into target/peers")?;
    let made = azure(
        port,
        "PUT",
        &format!("/{AZ_ACCOUNT}/{container}"),
        &[("restype", "container")],
        &[],
        b"",
    );
    assert!(made.starts_with("HTTP/1.1 201"), "container: {made}");
    Some((server, port))
}

#[test]
fn an_azure_blob_prefix_is_copied_in() {
    let _one = ONE_SERVER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let Some((_server, port)) = azurite_with(&home.path().join("azurite"), "inputs") else {
        return;
    };
    for (key, body) in [
        ("data/a.txt", "alpha"),
        ("data/sub/b.txt", "beta"),
        ("other/c.txt", "not this one"),
    ] {
        let put = azure(
            port,
            "PUT",
            &format!("/{AZ_ACCOUNT}/inputs/{key}"),
            &[],
            &[("x-ms-blob-type", "BlockBlob")],
            body.as_bytes(),
        );
        assert!(put.starts_with("HTTP/1.1 201"), "{key}: {put}");
    }
    copy_in(
        home.path(),
        &format!("provider = \"azure\"\nendpoint = \"http://127.0.0.1:{port}/{AZ_ACCOUNT}\""),
        &[
            ("AZURE_STORAGE_ACCOUNT_NAME", AZ_ACCOUNT),
            ("AZURE_STORAGE_ACCOUNT_KEY", AZ_KEY),
        ],
    );
}

/// Snapshot stores on object storage, used from two "machines" (two homes with their own
/// snapshot caches) that share the run store and the bucket: a run on the first stops at a
/// budget with its checkpoints pushed; the second lists them, restores one, resumes the run
/// from the bucket alone, and collects garbage.
fn snapshots_shared_through(url: &str, env: &[(&str, &str)]) {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let script = first.path().join("script.toml");
    std::fs::write(
        &script,
        r#"
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "mkdir -p sub && echo made-on-the-first > sub/f.txt && ln -s sub/f.txt link" } }]
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo second >> sub/f.txt" } }]
[[turns]]
text = "done"
"#,
    )
    .unwrap();
    let runs_db = first.path().join("runs.db");
    let on = |home: &std::path::Path| {
        let mut c = common::cordon(home);
        c.env("CORDON_SNAPSHOTS", url)
            .env("CORDON_STORE", &runs_db)
            .envs(env.iter().copied());
        c
    };
    let ws = first.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let out = on(first.path())
        .args(["run", "--json", "--max-turns", "1", "--workspace"])
        .arg(&ws)
        .arg("--model")
        .arg(format!("scripted:{}", script.display()))
        .arg("work")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "stopped by max_turns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = common::json_lines(&out.stdout);
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    let checkpoints: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "checkpoint")
        .map(|e| e["payload"]["snapshot_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(checkpoints.len(), 2, "the start, and after turn 1");

    // The second machine has no cache: everything comes from the bucket.
    let listed = on(second.path())
        .args(["snapshot", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let ids: Vec<String> = common::json_lines(&listed.stdout)
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    for c in &checkpoints {
        assert!(ids.contains(c), "{c} is in the bucket: {ids:?}");
    }
    let to = second.path().join("restored");
    let restored = on(second.path())
        .args(["snapshot", "restore", &checkpoints[1][..12], "--to"])
        .arg(&to)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(to.join("sub/f.txt")).unwrap(),
        "made-on-the-first\n"
    );
    assert_eq!(
        std::fs::read_link(to.join("link")).unwrap(),
        std::path::Path::new("sub/f.txt")
    );

    let resumed_ws = second.path().join("resumed");
    let resumed = on(second.path())
        .args(["resume", &run_id, "--max-turns", "5", "--workspace"])
        .arg(&resumed_ws)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(resumed_ws.join("sub/f.txt")).unwrap(),
        "made-on-the-first\nsecond\n",
        "the second machine went on from the first one's checkpoint"
    );

    let gc = on(second.path()).args(["snapshot", "gc"]).output().unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let said = String::from_utf8_lossy(&gc.stdout);
    assert!(
        said.contains(&format!(
            "removed 0 contents no snapshot refers to (0 bytes) from {url}"
        )),
        "{said}"
    );
}

#[test]
fn snapshots_on_s3_carry_a_run_to_another_machine() {
    let _one = ONE_SERVER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let Some((_server, port)) = peer(start_moto(), "moto_server", "moto[server]") else {
        return;
    };
    assert!(http(port, "PUT", "/snaps", b"").starts_with("HTTP/1.1 200"));
    snapshots_shared_through(
        &format!("s3://snaps/team/a?endpoint=http://127.0.0.1:{port}&region=us-east-1"),
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
            ("AWS_SECRET_ACCESS_KEY", "secret-key-of-the-harness"),
        ],
    );
}

#[test]
fn snapshots_on_azure_blob_carry_a_run_to_another_machine() {
    let _one = ONE_SERVER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let data = tempfile::tempdir().unwrap();
    let Some((_server, port)) = azurite_with(data.path(), "snaps") else {
        return;
    };
    snapshots_shared_through(
        &format!("az://snaps/team?endpoint=http://127.0.0.1:{port}/{AZ_ACCOUNT}"),
        &[
            ("AZURE_STORAGE_ACCOUNT_NAME", AZ_ACCOUNT),
            ("AZURE_STORAGE_ACCOUNT_KEY", AZ_KEY),
        ],
    );
}
