//! The proxy against real sockets: a client speaking HTTP/1.1 by hand (so every byte it
//! sends is the test's), upstreams on this host's loopback.

use cordon_core::PolicySource;
use cordon_egress::{EgressConfig, EgressProxy, Judge, Record};
use cordon_policy::Policy;
use cordon_testkit::upstream::read_head;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

fn policy(text: &str) -> Arc<Policy> {
    Arc::new(
        Policy::from_sources(vec![PolicySource {
            origin: "/test/policy.toml".into(),
            text: text.into(),
        }])
        .expect("policy"),
    )
}

/// A proxy on a Unix socket and on TCP, judging by `text`.
async fn proxy(text: &str) -> (EgressProxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EgressConfig::new("run-test");
    config.socket = Some(dir.path().join("egress.sock"));
    config.tcp = true;
    let p = EgressProxy::start(config, Judge::new(policy(text), Default::default()))
        .await
        .expect("proxy starts");
    (p, dir)
}

/// An upstream that echoes every byte back.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// An HTTP upstream answering with the request line's path and the Host it was sent.
async fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let host = head
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").or(l.strip_prefix("Host: ")))
                    .unwrap_or("")
                    .to_string();
                let body = format!("path={path} host={host}");
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    port
}

/// Reads a whole response whose length the head gives.
async fn read_response<S: AsyncReadExt + Unpin>(s: &mut S) -> (String, String) {
    let head = read_head(s).await;
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8_lossy(&body).into_owned())
}

async fn records(p: &EgressProxy, n: usize) -> Vec<Record> {
    let mut all = Vec::new();
    for _ in 0..200 {
        all.extend(p.journal().take());
        if all.len() >= n {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("expected {n} records, got {all:?}");
}

#[tokio::test]
async fn a_tunnel_to_an_allowed_host_carries_bytes_both_ways_and_is_recorded() {
    let port = echo_server().await;
    let (p, _dir) = proxy("[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n").await;
    let mut s = UnixStream::connect(p.socket().unwrap()).await.unwrap();
    s.write_all(
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.write_all(b"ping!").await.unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping!");
    drop(s);
    // Recorded when it opens, and again with its bytes when it closes.
    let both = records(&p, 2).await;
    assert!(both[0].summary.ends_with("tunnel opened"), "{both:?}");
    let r = both[1].clone();
    assert!(r.summary.ends_with("tunnel closed"), "{r:?}");
    assert_eq!(
        (
            r.host.as_str(),
            r.port,
            r.method.as_str(),
            r.verdict.as_str(),
            r.sent,
            r.received
        ),
        ("127.0.0.1", port, "CONNECT", "allow", 5, 5),
        "{r:?}"
    );
    assert_eq!(r.rules, ["network:127.0.0.1"]);
}

#[tokio::test]
async fn a_refused_host_gets_403_naming_the_rule_and_nothing_is_connected() {
    let (p, _dir) = proxy("[defaults]\nnetwork = \"deny\"\n").await;
    let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_response(&mut s).await;
    assert!(
        head.starts_with("HTTP/1.1 403 Forbidden by cordon policy network:default"),
        "{head}"
    );
    assert!(head.contains("x-cordon-rule: network:default"), "{head}");
    assert!(body.contains("refused CONNECT example.com:443"), "{body}");
    assert!(
        body.contains("no [[network]] rule names this host"),
        "{body}"
    );
    let r = records(&p, 1).await.remove(0);
    assert_eq!((r.verdict.as_str(), r.status), ("deny", Some(403)));
}

#[tokio::test]
async fn a_host_left_to_a_person_says_how_to_allow_it() {
    let (p, _dir) = proxy("[[network]]\nhost = \"pypi.org\"\ndecision = \"ask\"\n").await;
    let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
    s.write_all(b"CONNECT pypi.org:443 HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = read_response(&mut s).await;
    assert!(
        body.contains("cordon approve run-test --host pypi.org"),
        "{body}"
    );
}

#[tokio::test]
async fn plain_http_is_forwarded_to_the_urls_host_whatever_host_header_is_sent() {
    let port = http_server().await;
    let (p, _dir) =
        proxy("[[network]]\nhost = \"127.0.0.1\"\nmethods = [\"GET\"]\ndecision = \"allow\"\n")
            .await;
    let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
    s.write_all(
        format!(
            "GET http://127.0.0.1:{port}/a/b?token=s3cret HTTP/1.1\r\nHost: evil.example\r\nProxy-Authorization: Basic eA==\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        body,
        format!("path=/a/b?token=s3cret host=127.0.0.1:{port}")
    );
    // A method the rule does not allow falls to the default.
    s.write_all(format!("DELETE http://127.0.0.1:{port}/a HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (head, _) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    drop(s);
    let all = records(&p, 2).await;
    let get = all
        .iter()
        .find(|r| r.method == "GET")
        .expect("GET recorded");
    assert_eq!(
        get.path.as_deref(),
        Some("/a/b"),
        "the query is not recorded"
    );
    assert_eq!((get.status, get.received), (Some(200), body.len() as u64));
    assert!(!format!("{all:?}").contains("s3cret"));
    let delete = all
        .iter()
        .find(|r| r.method == "DELETE")
        .expect("DELETE recorded");
    assert_eq!(delete.verdict, "deny");
}

#[tokio::test]
async fn loopback_and_the_proxy_itself_are_refused_unless_named() {
    let port = echo_server().await;
    let (p, _dir) = proxy("[defaults]\nnetwork = \"allow\"\n").await;
    let own = p.tcp().unwrap();
    for target in [
        format!("127.0.0.1:{port}"),
        format!("{own}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "169.254.169.254:80".to_string(),
    ] {
        let mut s = TcpStream::connect(own).await.unwrap();
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let (head, _) = read_response(&mut s).await;
        assert!(
            head.starts_with("HTTP/1.1 403 Forbidden by cordon policy network:private-address"),
            "{target}: {head}"
        );
    }
}

#[tokio::test]
async fn an_allowed_name_that_resolves_to_a_private_address_is_refused() {
    // This machine's own name resolves to a loopback or private address (from /etc/hosts),
    // yet is no address the policy can see as private.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_ascii_lowercase();
    let resolved: Vec<_> = tokio::net::lookup_host((name.as_str(), 80))
        .await
        .map(|a| a.collect())
        .unwrap_or_default();
    assert!(
        !resolved.is_empty()
            && resolved
                .iter()
                .all(|a: &std::net::SocketAddr| cordon_policy::is_private_address(a.ip())),
        "this test needs the machine's name ({name}) to resolve to private addresses only; it resolves to {resolved:?}"
    );
    let (p, _dir) = proxy("[defaults]\nnetwork = \"allow\"\n").await;
    let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
    s.write_all(format!("CONNECT {name}:80 HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(
        body.contains("leads only to private, loopback or this host's own addresses"),
        "{body}"
    );
    let r = records(&p, 1).await.remove(0);
    assert_eq!(
        (r.verdict.as_str(), r.rules.as_slice()),
        ("deny", &["network:private-address".to_string()][..])
    );
}

#[tokio::test]
async fn a_flood_over_the_rate_limit_gets_429() {
    let port = echo_server().await;
    let (p, _dir) =
        proxy("[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\nrate = \"5/min\"\n").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
        s.write_all(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut s).await;
        statuses.push(head.split_whitespace().nth(1).unwrap_or("").to_string());
    }
    assert_eq!(
        statuses,
        ["200", "200", "200", "200", "200", "429", "429", "429"]
    );
}

#[tokio::test]
async fn open_tunnels_and_connections_are_bounded() {
    let port = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = EgressConfig::new("run-test");
    config.tcp = true;
    config.socket = Some(dir.path().join("s.sock"));
    config.max_connections = 2;
    let p = EgressProxy::start(
        config,
        Judge::new(
            policy("[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n"),
            Default::default(),
        ),
    )
    .await
    .unwrap();
    let mut open = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
        s.write_all(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut s).await;
        statuses.push(head.split_whitespace().nth(1).unwrap_or("").to_string());
        open.push(s);
    }
    assert_eq!(statuses, ["200", "200", "503"]);
    // Two idle connections hold both connection slots: a third is turned away at once.
    let idle: Vec<TcpStream> = vec![
        TcpStream::connect(p.tcp().unwrap()).await.unwrap(),
        TcpStream::connect(p.tcp().unwrap()).await.unwrap(),
    ];
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
    let head = read_head(&mut third).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    drop((open, idle));
}

#[tokio::test]
async fn only_requests_with_the_runs_token_are_served_and_every_refusal_is_recorded() {
    use base64::Engine;
    let port = echo_server().await;
    let mut config = EgressConfig::new("run-test");
    config.tcp = true;
    config.token = Some("t0ken-of-the-run".into());
    let p = EgressProxy::start(
        config,
        Judge::new(
            policy("[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n"),
            Default::default(),
        ),
    )
    .await
    .unwrap();
    let connect = |auth: Option<&str>| {
        let header = auth.map_or(String::new(), |a| {
            format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(a)
            )
        });
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n{header}\r\n")
    };
    let mut statuses = Vec::new();
    for auth in [
        None,
        Some("cordon:wrong"),
        Some("cordon:t0ken-of-the-run"),
        Some("x:t0ken-of-the-run"),
    ] {
        let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
        s.write_all(connect(auth).as_bytes()).await.unwrap();
        let head = read_head(&mut s).await;
        statuses.push(head.split_whitespace().nth(1).unwrap_or("").to_string());
    }
    assert_eq!(statuses, ["407", "407", "200", "200"]);
    // Text that is no request at all, and a request the proxy does not take.
    for junk in [
        "\u{1}\u{2}garbage\r\n\r\n".to_string(),
        "GET /origin-form HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: Basic Y29yZG9uOnQwa2VuLW9mLXRoZS1ydW4=\r\n\r\n".to_string(),
    ] {
        let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
        s.write_all(junk.as_bytes()).await.unwrap();
        let head = read_head(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    }
    let all = records(&p, 6).await;
    let rules: Vec<&str> = all.iter().map(|r| r.rules[0].as_str()).collect();
    assert_eq!(
        rules.iter().filter(|r| **r == "network:proxy-auth").count(),
        2,
        "{all:?}"
    );
    assert_eq!(
        rules.iter().filter(|r| **r == "network:malformed").count(),
        2,
        "{all:?}"
    );
}

#[tokio::test]
async fn this_hosts_own_addresses_are_refused_whatever_range_they_are_in() {
    // The address this host would send from: one of its own interfaces.
    let own = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .expect("this host has an address to send from");
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (p, _dir) = proxy("[defaults]\nnetwork = \"allow\"\n").await;
    let mut s = TcpStream::connect(p.tcp().unwrap()).await.unwrap();
    s.write_all(format!("CONNECT {own}:{port} HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{own}: {head}{body}");
    assert!(
        head.contains("x-cordon-rule: network:private-address"),
        "{own}: {head}{body}"
    );
}

#[tokio::test]
async fn the_proxy_is_never_its_own_destination_even_where_loopback_is_named() {
    let (p, _dir) = proxy("[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n").await;
    let own = p.tcp().unwrap();
    for target in [own.to_string(), format!("2130706433:{}", own.port())] {
        let mut s = TcpStream::connect(own).await.unwrap();
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let (head, body) = read_response(&mut s).await;
        assert!(
            head.contains("x-cordon-rule: network:proxy-itself"),
            "{target}: {head}{body}"
        );
    }
}
