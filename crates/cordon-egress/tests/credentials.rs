//! Credentials through the proxy, against real TLS on both sides: the client trusts only the
//! run's authority, the upstream is verified against its own.

use cordon_core::PolicySource;
use cordon_egress::{Credential, Credentials, EgressConfig, EgressProxy, Judge, Record};
use cordon_policy::Policy;
use cordon_testkit::Upstream;
use cordon_testkit::upstream::read_head;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "s3cr3t-real-value-7f1c";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn read_all<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn credential_rule(text: &str) -> cordon_policy::rules::CredentialRule {
    let policy = Policy::from_sources(vec![PolicySource {
        origin: "/c.toml".into(),
        text: text.into(),
    }])
    .unwrap();
    policy.credentials().next().unwrap().0.clone()
}

async fn proxy(upstream: &Upstream) -> EgressProxy {
    let policy = Policy::from_sources(vec![PolicySource {
        origin: "/p.toml".into(),
        text: "[[network]]\nhost = [\"127.0.0.1\", \"localhost\"]\ndecision = \"allow\"\n".into(),
    }])
    .unwrap();
    let rule = credential_rule(
        "[[credential]]\nname = \"github\"\nhost = \"127.0.0.1\"\nheader = \"Authorization\"\nformat = \"Bearer {}\"\nquery = \"token\"\nfrom_env = \"X\"\n",
    );
    let mut config = EgressConfig::new("run-cred");
    config.tcp = true;
    config.credentials = Credentials::new(vec![Credential::new(rule, SECRET.into())]);
    config.upstream_roots =
        vec![cordon_egress::tls::first_certificate(upstream.ca_pem.as_deref().unwrap()).unwrap()];
    EgressProxy::start(config, Judge::new(Arc::new(policy), Default::default()))
        .await
        .unwrap()
}

/// Opens a tunnel to 127.0.0.1:`port` and speaks TLS in it as `name`, trusting only the
/// run's authority.
async fn tunnel_tls(
    p: &EgressProxy,
    port: u16,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut s = TcpStream::connect(p.tcp().unwrap()).await?;
    s.write_all(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes())
        .await?;
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut roots = rustls::RootCertStore::empty();
    let pem = p.ca_certificate().expect("an authority for the run");
    roots
        .add(cordon_egress::tls::first_certificate(pem).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(name.to_string()).unwrap(), s)
        .await
}

async fn records(p: &EgressProxy, n: usize) -> Vec<Record> {
    let mut all = Vec::new();
    for _ in 0..300 {
        all.extend(p.journal().take());
        if all.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    all
}

#[tokio::test]
async fn the_real_value_reaches_only_its_host_and_only_in_place_of_the_placeholder() {
    let up = Upstream::https().await.unwrap();
    let plain = Upstream::http().await.unwrap();
    let (port, plain_port) = (up.port, plain.port);
    let p = proxy(&up).await;

    let mut tls = tunnel_tls(&p, port, "127.0.0.1")
        .await
        .expect("TLS through the tunnel");
    tls.write_all(
        format!(
            "GET /repos?token=cordon-credential:github HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Key: key cordon-credential:github\r\nX-Other: cordon-credential:gitlab\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_all(&mut tls).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "{answer}"
    );
    let head = up.heads().remove(0).to_ascii_lowercase();
    assert!(
        head.starts_with(&format!("get /repos?token={SECRET}")),
        "{head}"
    );
    assert!(
        head.contains(&format!("authorization: bearer {SECRET}")),
        "{head}"
    );
    // Only where it is declared to go: elsewhere the placeholder stays, so an upstream
    // that reflects a header cannot hand the value back.
    assert!(
        head.contains("x-key: key cordon-credential:github"),
        "{head}"
    );
    assert!(head.contains("x-other: cordon-credential:gitlab"), "{head}");

    // Plain HTTP never carries it, to another host or to its own.
    for host in ["localhost", "127.0.0.1"] {
        let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
        s.write_all(
            format!(
                "GET http://{host}:{plain_port}/?token=cordon-credential:github HTTP/1.1\r\nAuthorization: Bearer cordon-credential:github\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let answer = read_all(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let sent = plain.heads().remove(0);
        assert!(!sent.contains(SECRET), "{host}: {sent}");
        assert!(
            sent.contains("authorization: Bearer cordon-credential:github"),
            "{host}: {sent}"
        );
    }

    let all = records(&p, 3).await;
    let inside = all
        .iter()
        .find(|r| r.method == "GET" && r.port == port)
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(inside.path.as_deref(), Some("/repos"));
    assert!(
        inside.summary.contains("credentials added: github"),
        "{}",
        inside.summary
    );
    assert!(!format!("{all:?}").contains(SECRET), "{all:?}");
}

#[tokio::test]
async fn a_tls_name_or_host_other_than_the_tunnels_is_refused() {
    let up = Upstream::https().await.unwrap();
    let port = up.port;
    let p = proxy(&up).await;
    // The TLS server name says one host, the tunnel another.
    let refused = tunnel_tls(&p, port, "evil.example").await;
    assert!(refused.is_err(), "the handshake must fail");
    // The right name, and a request for another host inside.
    let mut tls = tunnel_tls(&p, port, "127.0.0.1").await.unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(up.heads().is_empty(), "nothing reached the upstream");
    let all = records(&p, 2).await;
    let rules: Vec<&str> = all
        .iter()
        .flat_map(|r| r.rules.iter().map(String::as_str))
        .collect();
    assert!(rules.contains(&"network:tls"), "{all:?}");
    assert!(rules.contains(&"network:host-mismatch"), "{all:?}");
}
