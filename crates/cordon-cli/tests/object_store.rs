//! object_store manifest entries against a real S3-compatible server (moto, from PyPI),
//! started here. scripts/test installs it and sets CORDON_REQUIRE_PEERS=1, which makes a
//! missing server a failure instead of a skip.

use assert_cmd::Command;
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
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((server, port))
}

#[test]
fn an_s3_prefix_is_copied_in_with_the_harness_credentials_kept_out() {
    let Some((_server, port)) = start_moto() else {
        let msg = "moto_server did not start: run scripts/test, which installs moto[server]";
        assert!(std::env::var_os("CORDON_REQUIRE_PEERS").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
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
    let manifest = home.path().join("m.toml");
    std::fs::write(
        &manifest,
        format!("[entries.remote]\ntype = \"object_store\"\nprovider = \"s3\"\nbucket = \"inputs\"\nprefix = \"data\"\nendpoint = \"http://127.0.0.1:{port}\"\nregion = \"us-east-1\"\n"),
    )
    .unwrap();
    let out = Command::cargo_bin("cordon")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret-key-of-the-harness")
        .args(["sandbox", "exec", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(home.path().join("ws"))
        .args([
            "--",
            "sh",
            "-c",
            "find remote -type f | sort; cat remote/a.txt remote/sub/b.txt; (echo x > remote/a.txt) 2>/dev/null || echo READ-ONLY; env",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
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
        !stdout.contains("secret-key-of-the-harness") && !stdout.contains("AKIDTEST"),
        "credentials stay out: {stdout}"
    );
    assert!(!stdout.contains("not this one"));
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
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((server, port))
}

#[test]
fn an_azure_blob_prefix_is_copied_in() {
    let home = tempfile::tempdir().unwrap();
    let Some((_server, port)) = start_azurite(&home.path().join("azurite")) else {
        let msg = "azurite did not start: run scripts/test, which installs it into target/peers";
        assert!(std::env::var_os("CORDON_REQUIRE_PEERS").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let made = azure(
        port,
        "PUT",
        &format!("/{AZ_ACCOUNT}/inputs"),
        &[("restype", "container")],
        &[],
        b"",
    );
    assert!(made.starts_with("HTTP/1.1 201"), "container: {made}");
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
    let manifest = home.path().join("m.toml");
    std::fs::write(
        &manifest,
        format!("[entries.remote]\ntype = \"object_store\"\nprovider = \"azure\"\nbucket = \"inputs\"\nprefix = \"data\"\nendpoint = \"http://127.0.0.1:{port}/{AZ_ACCOUNT}\"\n"),
    )
    .unwrap();
    let out = Command::cargo_bin("cordon")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AZURE_STORAGE_ACCOUNT_NAME", AZ_ACCOUNT)
        .env("AZURE_STORAGE_ACCOUNT_KEY", AZ_KEY)
        .args(["sandbox", "exec", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(home.path().join("ws"))
        .args([
            "--",
            "sh",
            "-c",
            "find remote -type f | sort; cat remote/a.txt remote/sub/b.txt; env",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("remote/a.txt\nremote/sub/b.txt\nalphabeta"),
        "{stdout}"
    );
    assert!(!stdout.contains(AZ_KEY), "credentials stay out");
}
