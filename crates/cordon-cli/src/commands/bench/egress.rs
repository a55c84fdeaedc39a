//! `cordon bench egress`: what the egress proxy adds to a request, against the same request
//! made directly, to an upstream on this host's loopback (so the network adds nothing).
//!
//! - Plain HTTP: connect, one GET, the whole answer, close; through the proxy it is
//!   forwarded.
//! - A tunnel: `CONNECT`, then one request and answer through it; HTTPS goes this way, and
//!   its TLS costs the same with or without the proxy, so it is left out.
//! - Throughput: one large download through a tunnel.

use super::percentile;
use cordon_egress::{EgressConfig, EgressProxy, Judge};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upstream answering `GET /N` with N bytes.
async fn upstream() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let Ok(head) = read_head(&mut s).await else {
                    return;
                };
                let size: u64 = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.trim_start_matches('/').parse().ok())
                    .unwrap_or(0);
                let header = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
                );
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
            });
        }
    });
    Ok(addr)
}

/// Reads an HTTP head, byte by byte (heads are small; the body is read in blocks).
async fn read_head(s: &mut TcpStream) -> std::io::Result<String> {
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
async fn read_response(s: &mut TcpStream) -> anyhow::Result<u64> {
    let head = read_head(s).await?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "answered {head}");
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// How a request is made.
#[derive(Clone, Copy)]
enum Route {
    Direct,
    Forwarded(SocketAddr),
    Tunnelled(SocketAddr),
}

/// One request for `size` bytes to `upstream` by `route`, to the end of its answer.
async fn request(route: Route, upstream: SocketAddr, size: u64) -> anyhow::Result<u64> {
    let target = match route {
        Route::Direct => upstream,
        Route::Forwarded(p) | Route::Tunnelled(p) => p,
    };
    let mut s = TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    match route {
        Route::Direct => {
            s.write_all(format!("GET /{size} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n").as_bytes())
                .await?
        }
        Route::Forwarded(_) => {
            s.write_all(
                format!("GET http://{upstream}/{size} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?
        }
        Route::Tunnelled(_) => {
            s.write_all(format!("CONNECT {upstream} HTTP/1.1\r\nHost: {upstream}\r\n\r\n").as_bytes())
                .await?;
            let head = read_head(&mut s).await?;
            anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "CONNECT answered {head}");
            s.write_all(format!("GET /{size} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n").as_bytes())
                .await?;
        }
    }
    read_response(&mut s).await
}

/// Times `n` requests by `route`, one after another.
async fn times(route: Route, upstream: SocketAddr, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let got = request(route, upstream, 1024).await?;
        anyhow::ensure!(got == 1024, "a 1 KiB answer came back as {got} bytes");
        all.push(started.elapsed());
    }
    Ok(all)
}

/// `cordon bench egress`.
pub async fn egress(requests: u32, mib: u32, json: bool) -> anyhow::Result<ExitCode> {
    let n = requests.max(10) as usize;
    let upstream = upstream().await?;
    let policy = cordon_policy::Policy::from_sources(vec![cordon_core::PolicySource {
        origin: "bench".into(),
        text: "[[network]]\nhost = \"127.0.0.1\"\ndecision = \"allow\"\n".into(),
    }])?;
    let mut config = EgressConfig::new("bench");
    config.tcp = true;
    let proxy =
        EgressProxy::start(config, Judge::new(Arc::new(policy), Default::default())).await?;
    let via = proxy
        .tcp()
        .ok_or_else(|| anyhow::anyhow!("the proxy has no TCP address"))?;
    // Warm up every path, then take turns so that the machine's noise falls on all alike.
    for route in [Route::Direct, Route::Forwarded(via), Route::Tunnelled(via)] {
        times(route, upstream, 20).await?;
    }
    let (mut direct, mut forwarded, mut tunnelled) = (Vec::new(), Vec::new(), Vec::new());
    let rounds = 10;
    for _ in 0..rounds {
        direct.extend(times(Route::Direct, upstream, n / rounds).await?);
        forwarded.extend(times(Route::Forwarded(via), upstream, n / rounds).await?);
        tunnelled.extend(times(Route::Tunnelled(via), upstream, n / rounds).await?);
        let _ = proxy.journal().take();
    }
    let size = u64::from(mib.max(1)) * 1024 * 1024;
    let mut rates = Vec::new();
    for route in [Route::Direct, Route::Tunnelled(via)] {
        let started = Instant::now();
        let got = request(route, upstream, size).await?;
        anyhow::ensure!(
            got == size,
            "the download came back as {got} of {size} bytes"
        );
        rates.push(size as f64 / 1048576.0 / started.elapsed().as_secs_f64());
    }
    // The tunnel is recorded once both its ends have closed, just after the client is done.
    let mut recorded = false;
    for _ in 0..200 {
        recorded |= proxy.journal().take().iter().any(|r| r.received >= size);
        if recorded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::ensure!(recorded, "the proxy did not record the download");
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let row = |v: &[Duration]| (us(percentile(v, 50)), us(percentile(v, 99)));
    let (d, f, t) = (row(&direct), row(&forwarded), row(&tunnelled));
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "egress", "requests": direct.len(),
                "direct_us": {"p50": d.0, "p99": d.1},
                "http_forwarded_us": {"p50": f.0, "p99": f.1},
                "connect_tunnel_us": {"p50": t.0, "p99": t.1},
                "added_http_us": {"p50": f.0 - d.0, "p99": f.1 - d.1},
                "added_tunnel_us": {"p50": t.0 - d.0, "p99": t.1 - d.1},
                "download_mib": mib, "direct_mib_per_sec": rates[0], "tunnel_mib_per_sec": rates[1],
            })
        );
    } else {
        println!(
            "egress bench: {} requests each way (connect, GET 1 KiB, close) to an upstream on loopback",
            direct.len()
        );
        println!("                        median      p99     added (median / p99)");
        println!("  direct            {:>9.0} µs {:>8.0} µs", d.0, d.1);
        println!(
            "  HTTP forwarded    {:>9.0} µs {:>8.0} µs  {:>6.0} / {:.0} µs",
            f.0,
            f.1,
            f.0 - d.0,
            f.1 - d.1
        );
        println!(
            "  CONNECT tunnel    {:>9.0} µs {:>8.0} µs  {:>6.0} / {:.0} µs",
            t.0,
            t.1,
            t.0 - d.0,
            t.1 - d.1
        );
        println!(
            "  {mib} MiB download   direct {:.0} MiB/s, through a tunnel {:.0} MiB/s",
            rates[0], rates[1]
        );
    }
    Ok(ExitCode::SUCCESS)
}
