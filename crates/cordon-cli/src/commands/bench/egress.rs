//! `cordon bench egress`: what the egress proxy adds to a request, against the same request
//! made directly, to upstreams on this host's loopback (so the network adds nothing).
//!
//! - Plain HTTP: connect, one GET, the whole answer, close; through the proxy it is
//!   forwarded.
//! - HTTPS tunnelled: `CONNECT`, then TLS with the upstream and one request through it, beside
//!   TLS with the upstream directly.
//! - HTTPS intercepted (a host whose requests get credentials): `CONNECT`, TLS with the proxy
//!   under the run's authority, and the proxy's own TLS to the upstream.
//! - Throughput: one large download through a tunnel.

use super::percentile;
use cordon_egress::tls::RunCa;
use cordon_egress::{Credential, Credentials, EgressConfig, EgressProxy, Judge};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any stream a request goes over.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Answers `GET /N` with N bytes, then closes.
async fn answer(mut s: Box<dyn Stream>) {
    let Ok(head) = read_head(&mut s).await else {
        return;
    };
    let size: u64 = head
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.trim_start_matches('/').parse().ok())
        .unwrap_or(0);
    let header = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n");
    if s.write_all(header.as_bytes()).await.is_err() {
        return;
    }
    let block = vec![b'x'; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        if s.write_all(&block[..n]).await.is_err() {
            return;
        }
        left -= n as u64;
    }
    let _ = s.shutdown().await;
}

/// An upstream answering `GET /N` with N bytes, over TLS when `tls` is given.
async fn upstream(tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => answer(Box::new(s)).await,
                    Some(acceptor) => {
                        if let Ok(t) = acceptor.accept(s).await {
                            answer(Box::new(t)).await
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Reads an HTTP head, byte by byte (heads are small; the body is read in blocks).
async fn read_head<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
        if head.len() > 16 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Reads a response to its end; the number of body bytes.
async fn read_response<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> anyhow::Result<u64> {
    let head = read_head(s).await?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "answered {head}");
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        // A TLS peer that closes without close_notify ends the body too.
        let n = match s.read(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// How a request is made.
#[derive(Clone)]
enum Route {
    /// Straight to the upstream, in plain HTTP or over TLS.
    Direct,
    /// Plain HTTP in absolute form to the proxy, which forwards it.
    Forwarded(SocketAddr),
    /// `CONNECT` to the proxy, then the request (over TLS when the upstream speaks it).
    Tunnelled(SocketAddr),
}

/// TLS to the upstream (`config` trusting its authority), if it speaks TLS.
type Tls = Option<Arc<rustls::ClientConfig>>;

/// One request for `size` bytes to `upstream` by `route`, to the end of its answer.
async fn request(route: &Route, upstream: SocketAddr, tls: &Tls, size: u64) -> anyhow::Result<u64> {
    let target = match route {
        Route::Direct => upstream,
        Route::Forwarded(p) | Route::Tunnelled(p) => *p,
    };
    let mut s = TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    let get = format!("GET /{size} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n");
    if let Route::Forwarded(_) = route {
        s.write_all(
            format!(
                "GET http://{upstream}/{size} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
        return read_response(&mut s).await;
    }
    if let Route::Tunnelled(_) = route {
        s.write_all(format!("CONNECT {upstream} HTTP/1.1\r\nHost: {upstream}\r\n\r\n").as_bytes())
            .await?;
        let head = read_head(&mut s).await?;
        anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "CONNECT answered {head}");
    }
    let mut stream: Box<dyn Stream> = match tls {
        None => Box::new(s),
        Some(config) => {
            let name = rustls::pki_types::ServerName::IpAddress(upstream.ip().into());
            Box::new(
                tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, s)
                    .await?,
            )
        }
    };
    stream.write_all(get.as_bytes()).await?;
    read_response(&mut stream).await
}

/// Times `n` requests by `route`, one after another.
async fn times(
    route: &Route,
    upstream: SocketAddr,
    tls: &Tls,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let got = request(route, upstream, tls, 1024).await?;
        anyhow::ensure!(got == 1024, "a 1 KiB answer came back as {got} bytes");
        all.push(started.elapsed());
    }
    Ok(all)
}

/// A client TLS configuration trusting only the authority in `pem`.
fn trusting(pem: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(
        cordon_egress::tls::first_certificate(pem)
            .ok_or_else(|| anyhow::anyhow!("no certificate in the authority's PEM"))?,
    )?;
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    ))
}

/// A proxy allowing 127.0.0.1, with a credential for it when `credential`.
async fn proxy(upstream_ca: &str, credential: bool) -> anyhow::Result<EgressProxy> {
    let mut text = "[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n".to_string();
    text.push_str(
        "[[credential]]\nname = \"bench\"\nhost = \"127.0.0.1\"\nheader = \"Authorization\"\nfrom_env = \"UNUSED\"\n",
    );
    let policy = cordon_policy::Policy::from_sources(vec![cordon_core::PolicySource {
        origin: "bench".into(),
        text,
    }])?;
    let mut config = EgressConfig::new("bench");
    config.tcp = true;
    if credential {
        let rule = policy
            .credentials()
            .next()
            .map(|(r, _)| r.clone())
            .ok_or_else(|| anyhow::anyhow!("the bench policy declares a credential"))?;
        config.credentials =
            Credentials::new(vec![Credential::new(rule, "bench-credential".into())]);
    }
    config.upstream_roots = cordon_egress::tls::first_certificate(upstream_ca)
        .into_iter()
        .collect();
    let proxy =
        EgressProxy::start(config, Judge::new(Arc::new(policy), Default::default())).await?;
    Ok(proxy)
}

/// One measured way of making requests.
struct Case {
    name: &'static str,
    route: Route,
    upstream: SocketAddr,
    tls: Tls,
    times: Vec<Duration>,
}

/// `cordon bench egress`.
pub async fn egress(requests: u32, mib: u32, json: bool) -> anyhow::Result<ExitCode> {
    let n = requests.max(10) as usize;
    // The HTTPS upstream's certificate comes from an authority of its own.
    let upstream_ca = RunCa::new("bench upstream").map_err(anyhow::Error::msg)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(
        upstream_ca
            .server_config("127.0.0.1")
            .map_err(anyhow::Error::msg)?,
    );
    let plain = upstream(None).await?;
    let https = upstream(Some(acceptor)).await?;
    let tunnels = proxy(&upstream_ca.certificate_pem(), false).await?;
    let intercepts = proxy(&upstream_ca.certificate_pem(), true).await?;
    let (via, via_intercept) = (
        tunnels
            .tcp()
            .ok_or_else(|| anyhow::anyhow!("no proxy address"))?,
        intercepts
            .tcp()
            .ok_or_else(|| anyhow::anyhow!("no proxy address"))?,
    );
    let to_upstream = Some(trusting(&upstream_ca.certificate_pem())?);
    let to_proxy = Some(trusting(intercepts.ca_certificate().ok_or_else(|| {
        anyhow::anyhow!("the intercepting proxy has no authority")
    })?)?);
    let case = |name, route, upstream, tls: &Tls| Case {
        name,
        route,
        upstream,
        tls: tls.clone(),
        times: Vec::new(),
    };
    let mut cases = vec![
        case("HTTP direct", Route::Direct, plain, &None),
        case("HTTP forwarded", Route::Forwarded(via), plain, &None),
        case("tunnel, no TLS", Route::Tunnelled(via), plain, &None),
        case("HTTPS direct", Route::Direct, https, &to_upstream),
        case(
            "HTTPS tunnelled",
            Route::Tunnelled(via),
            https,
            &to_upstream,
        ),
        case(
            "HTTPS intercepted",
            Route::Tunnelled(via_intercept),
            https,
            &to_proxy,
        ),
    ];
    // Warm up every path, then take turns so that the machine's noise falls on all alike.
    for c in &cases {
        times(&c.route, c.upstream, &c.tls, 20).await?;
    }
    let rounds = 10;
    for _ in 0..rounds {
        for c in cases.iter_mut() {
            let more = times(&c.route, c.upstream, &c.tls, n / rounds).await?;
            c.times.extend(more);
        }
        let _ = tunnels.journal().take();
        let _ = intercepts.journal().take();
    }
    let size = u64::from(mib.max(1)) * 1024 * 1024;
    let mut rates = Vec::new();
    for route in [Route::Direct, Route::Tunnelled(via)] {
        let started = Instant::now();
        let got = request(&route, plain, &None, size).await?;
        anyhow::ensure!(
            got == size,
            "the download came back as {got} of {size} bytes"
        );
        rates.push(size as f64 / 1048576.0 / started.elapsed().as_secs_f64());
    }
    // The tunnel is recorded once both its ends have closed, just after the client is done.
    let mut recorded = false;
    for _ in 0..200 {
        recorded |= tunnels.journal().take().iter().any(|r| r.received >= size);
        if recorded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::ensure!(recorded, "the proxy did not record the download");
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let row = |c: &Case| (us(percentile(&c.times, 50)), us(percentile(&c.times, 99)));
    // Each way through the proxy is compared with the direct request of its kind.
    let baseline = |c: &Case| match c.tls {
        None => row(&cases[0]),
        Some(_) => row(&cases[3]),
    };
    if json {
        let measured: Vec<serde_json::Value> = cases
            .iter()
            .map(|c| {
                let (p50, p99) = row(c);
                let (b50, b99) = baseline(c);
                serde_json::json!({
                    "case": c.name, "p50_us": p50, "p99_us": p99,
                    "added_p50_us": p50 - b50, "added_p99_us": p99 - b99,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "bench": "egress", "requests": n, "cases": measured,
                "download_mib": mib, "direct_mib_per_sec": rates[0], "tunnel_mib_per_sec": rates[1],
            })
        );
    } else {
        println!(
            "egress bench: {} requests each way (connect, GET 1 KiB, close) to upstreams on loopback",
            cases[0].times.len()
        );
        println!("                          median       p99    added (median / p99)");
        for c in &cases {
            let (p50, p99) = row(c);
            let (b50, b99) = baseline(c);
            let added = match c.route {
                Route::Direct => String::new(),
                _ => format!("{:>6.0} / {:.0} µs", p50 - b50, p99 - b99),
            };
            println!("  {:<20}{p50:>8.0} µs {p99:>8.0} µs  {added}", c.name);
        }
        println!(
            "  {mib} MiB download: direct {:.0} MiB/s, through a tunnel {:.0} MiB/s",
            rates[0], rates[1]
        );
    }
    Ok(ExitCode::SUCCESS)
}
