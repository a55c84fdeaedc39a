//! The sandbox's one way out: real clients (curl, git, Python's urllib, pip) inside real
//! sandboxes reach hosts the policy allows through the egress proxy, and nothing else.
//! Every refusal here is an attempt that would work without the proxy's rules. `scripts/test`
//! runs these as root and again as an unprivileged user.

use crate::escape::{Lab, lab};
use cordon_core::PolicySource;
use cordon_egress::{EgressConfig, EgressProxy, Judge, Record};
use cordon_policy::Policy;
use cordon_sandbox::{Egress, Tier};
use std::sync::Arc;

/// A sandbox whose way out is a proxy judging by `policy`.
struct Net {
    lab: Lab,
    proxy: EgressProxy,
    _dir: tempfile::TempDir,
}

async fn net(tier: Tier, policy: &str) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EgressConfig::new("run-egress-test");
    config.socket = Some(dir.path().join("proxy.sock"));
    config.tcp = true;
    let policy = Policy::from_sources(vec![PolicySource {
        origin: "/test/policy.toml".into(),
        text: policy.into(),
    }])
    .expect("policy");
    let proxy = EgressProxy::start(config, Judge::new(Arc::new(policy), Default::default()))
        .await
        .expect("proxy");
    // The sandbox's user reaches the socket (for the unprivileged run, it is that user's).
    let egress = Egress {
        socket: dir.path().join("proxy.sock"),
        tcp: proxy.tcp().unwrap(),
        ca_bundle: None,
        env: Vec::new(),
        token: None,
    };
    let lab = lab(tier, |c| c.egress = Some(egress)).await;
    Net {
        lab,
        proxy,
        _dir: dir,
    }
}

impl Net {
    fn records(&self) -> Vec<Record> {
        self.proxy.journal().take()
    }
}

/// One test per tier.
macro_rules! both_tiers {
    ($name:ident, |$tier:ident| $body:block) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn namespaces() {
                let $tier = Tier::Namespaces;
                $body
            }
            #[tokio::test]
            async fn landlock() {
                let $tier = Tier::Landlock;
                $body
            }
        }
    };
}

both_tiers!(
    curl_reaches_an_allowed_host_only_through_the_proxy,
    |tier| {
        let up = cordon_testkit::Upstream::http().await.unwrap();
        let port = up.port;
        let n = net(
        tier,
        "[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n[defaults]\nnetwork = \"deny\"\n",
    )
    .await;
        // The host's loopback is named by the policy; the sandbox's own loopback is excluded
        // from the proxy by default, so the test clears NO_PROXY.
        let out = n
            .lab
            .sh(&format!(
                "NO_PROXY= no_proxy= curl -sS --max-time 20 http://127.0.0.1:{port}/hello"
            ))
            .await;
        assert_eq!(
            out.stdout_text(),
            "hello from /hello\n",
            "{tier:?}: {}",
            out.stderr_text()
        );
        // A host no rule allows: plain HTTP gets the explanation as its body…
        let out = n
            .lab
            .sh("curl -sS --max-time 20 -w '\\n%{http_code}' http://example.com/x")
            .await;
        let text = out.stdout_text();
        assert!(
            text.contains("cordon's egress proxy refused GET example.com:80")
                && text.contains("network:default")
                && text.ends_with("\n403"),
            "{tier:?}: {text}"
        );
        // …and a tunnel is refused with the rule in the status line.
        let out = n
            .lab
            .sh("curl -sS --max-time 20 https://example.com/ 2>&1; echo rc=$?")
            .await;
        let text = out.stdout_text();
        assert!(
            text.contains("403") && !text.contains("rc=0"),
            "{tier:?}: {text}"
        );
        // A program that ignores the proxy variables reaches nothing: not the host's loopback
        // (the namespaces tier has its own; the landlock tier lets TCP reach only the proxy's
        // port), not an address outside.
        for target in [
            format!("http://127.0.0.1:{port}/direct"),
            "http://1.1.1.1/".to_string(),
        ] {
            let out = n
                .lab
                .sh(&format!(
                    "curl -sS --noproxy '*' --max-time 5 {target} 2>&1; echo rc=$?"
                ))
                .await;
            let text = out.stdout_text();
            assert!(!text.contains("rc=0"), "{tier:?}: {target}: {text}");
        }
        assert_eq!(
            up.paths().as_slice(),
            ["/hello"],
            "{tier:?}: only the request through the proxy arrived"
        );
        let records = n.records();
        let hello = records
            .iter()
            .find(|r| r.path.as_deref() == Some("/hello"))
            .unwrap_or_else(|| panic!("{tier:?}: {records:?}"));
        assert_eq!((hello.verdict.as_str(), hello.status), ("allow", Some(200)));
        assert!(
            records
                .iter()
                .any(|r| r.host == "example.com" && r.port == 443 && r.verdict == "deny"),
            "{tier:?}: {records:?}"
        );
    }
);

#[tokio::test]
async fn names_do_not_resolve_inside_the_namespaces_tier() {
    let n = net(Tier::Namespaces, "[defaults]\nnetwork = \"allow\"\n").await;
    let out = n
        .lab
        .sh("getent hosts example.com; echo rc=$?; python3 -c \"import socket; socket.getaddrinfo('example.com', 443)\" 2>&1 | tail -1")
        .await;
    let text = out.stdout_text();
    assert!(!text.contains("rc=0"), "{text}");
    assert!(text.contains("gaierror"), "{text}");
}

/// A self-signed certificate for 127.0.0.1 (the HTTPS upstream's), made with openssl.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed (scripts/test installs it)");
    assert!(status.success());
    (cert, key)
}

/// The HTTPS upstream (`fixtures/https_upstream.py`): a package index, a text file and a
/// git repository served over TLS on the host's loopback. Killed on drop.
struct Https {
    child: std::process::Child,
    port: u16,
    _root: tempfile::TempDir,
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn https_upstream(cert: &std::path::Path, key: &std::path::Path) -> Https {
    use std::io::BufRead;
    let root = tempfile::tempdir().unwrap();
    // A repository served the "dumb" way: plain files git reads over HTTPS.
    let repo = root.path().join("src");
    let git = |args: &[&str], dir: &std::path::Path| {
        let ok = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    std::fs::create_dir(&repo).unwrap();
    git(&["init", "-q"], &repo);
    std::fs::write(repo.join("README"), "cloned through cordon\n").unwrap();
    git(&["add", "README"], &repo);
    git(&["commit", "-qm", "first"], &repo);
    git(&["clone", "-q", "--bare", "src", "repo.git"], root.path());
    git(&["update-server-info"], &root.path().join("repo.git"));
    // Written out, not read from the source tree: the unprivileged run may not reach it.
    let script = root.path().join("https_upstream.py");
    std::fs::write(&script, include_str!("fixtures/https_upstream.py")).unwrap();
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .arg(root.path())
        .arg(cert)
        .arg(key)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the upstream prints its port");
    Https {
        child,
        port,
        _root: root,
    }
}

#[tokio::test]
async fn git_python_and_pip_work_over_https_through_the_proxy() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let up = https_upstream(&cert, &key);
    let port = up.port;
    let n = net(
        Tier::Namespaces,
        "[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n[defaults]\nnetwork = \"deny\"\n",
    )
    .await;
    std::fs::copy(&cert, n.lab.ws().join("ca.pem")).unwrap();
    // The clients verify the upstream's certificate themselves: the tunnel is untouched.
    let script = format!(
        r#"export NO_PROXY= no_proxy=
set -e
GIT_SSL_CAINFO=$PWD/ca.pem git clone -q https://127.0.0.1:{port}/repo.git cloned
cat cloned/README
python3 -c "import ssl, urllib.request; print(urllib.request.urlopen('https://127.0.0.1:{port}/hello.txt', context=ssl.create_default_context(cafile='ca.pem')).read().decode().strip())"
python3 -m pip install -q --no-cache-dir --disable-pip-version-check --index-url https://127.0.0.1:{port}/simple/ --cert ca.pem --target lib cordon-probe 2>&1
python3 -c "import sys; sys.path.insert(0, 'lib'); import cordon_probe; print(cordon_probe.VALUE)"
"#
    );
    let out = n.lab.sh(&script).await;
    let text = out.stdout_text();
    assert_eq!(
        text,
        "cloned through cordon\nhello over https\ninstalled through cordon\n",
        "{}",
        out.stderr_text()
    );
    // A denied host, from Python: the refusal names the rule.
    let out = n
        .lab
        .sh("python3 -c \"import urllib.request; urllib.request.urlopen('https://pypi.org/simple/')\" 2>&1 | tail -1")
        .await;
    assert!(
        out.stdout_text()
            .contains("403 Forbidden by cordon policy network:default"),
        "{}",
        out.stdout_text()
    );
    let records = n.records();
    // Each tunnel is recorded when it opens and, with its bytes, when it closes.
    let closed: Vec<&Record> = records
        .iter()
        .filter(|r| r.method == "CONNECT" && r.port == port && r.summary.ends_with("tunnel closed"))
        .collect();
    let opened = records
        .iter()
        .filter(|r| r.port == port && r.summary.ends_with("tunnel opened"))
        .count();
    assert!(closed.len() >= 3 && opened == closed.len(), "{records:?}");
    assert!(
        closed
            .iter()
            .all(|r| r.verdict == "allow" && r.received > 0),
        "{records:?}"
    );
}
