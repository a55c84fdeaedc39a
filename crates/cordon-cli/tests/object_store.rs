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
    assert!(
        !stdout.contains("secret-key-of-the-harness") && !stdout.contains("AKIDTEST"),
        "credentials stay out: {stdout}"
    );
    assert!(!stdout.contains("not this one"));
}
