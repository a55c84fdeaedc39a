//! The sandbox's one way out, when its run allows some network: cordon's egress proxy (see
//! the `cordon-egress` crate), which runs on the host and judges every request.
//!
//! - **Namespaces tier.** The sandbox has a network namespace of its own with loopback only.
//!   The proxy's Unix socket is bind-mounted in at [`INNER_SOCKET`], and the supervisor
//!   listens on the sandbox's loopback at [`INNER_PORT`], passing each connection to the
//!   socket. Programs find the proxy through the usual variables ([`proxy_env`]); one that
//!   ignores them has no route anywhere.
//! - **Landlock tier.** There is no namespace: the proxy listens on the host's loopback and
//!   Landlock lets TCP connect to that port only (by number: Landlock's rules name ports,
//!   not addresses). UDP cannot be closed there.

use std::path::PathBuf;

/// Where the proxy's Unix socket appears inside a namespaces-tier sandbox.
pub const INNER_SOCKET: &str = "/.cordon/egress.sock";

/// The port on a namespaces-tier sandbox's loopback that leads to the proxy.
pub const INNER_PORT: u16 = 3128;

/// Where the certificates a namespaces-tier sandbox trusts appear inside when the proxy adds
/// credentials (the system's and the run's authority).
pub const INNER_CA_BUNDLE: &str = "/.cordon/ca-bundle.pem";

/// How a sandbox reaches a run's egress proxy on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// The proxy's Unix socket on the host (for the namespaces tier).
    pub socket: PathBuf,
    /// The proxy's address on the host's loopback (for the landlock and unconfined tiers).
    pub tcp: std::net::SocketAddr,
    /// A certificate bundle on the host for programs in the sandbox to trust instead of the
    /// system's (the system's authorities and the run's, whose tunnels add credentials).
    pub ca_bundle: Option<PathBuf>,
    /// Variables the proxy's setup adds (credential placeholders).
    pub env: Vec<(String, String)>,
    /// The proxy's password, put in the proxy variables' URL (`http://cordon:TOKEN@…`):
    /// the proxy serves only requests that carry it.
    pub token: Option<String>,
}

/// The variables that make common programs trust the bundle at `path`.
pub fn ca_env(path: &str) -> Vec<(String, String)> {
    [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "NODE_EXTRA_CA_CERTS",
        "PIP_CERT",
        "CARGO_HTTP_CAINFO",
    ]
    .iter()
    .map(|n| (n.to_string(), path.to_string()))
    .collect()
}

/// The variables that point programs at the proxy at `url`: the common ones in both
/// cases, and those of tools that read their own (pip, npm, cargo, Node's fetch). The
/// sandbox's own loopback is left out, so servers inside stay reachable directly.
pub fn proxy_env(url: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        env.push((name.to_string(), url.to_string()));
        env.push((name.to_ascii_lowercase(), url.to_string()));
    }
    let local = "localhost,127.0.0.1,::1";
    env.push(("NO_PROXY".into(), local.into()));
    env.push(("no_proxy".into(), local.into()));
    for name in [
        "PIP_PROXY",
        "npm_config_proxy",
        "npm_config_https_proxy",
        "CARGO_HTTP_PROXY",
    ] {
        env.push((name.to_string(), url.to_string()));
    }
    env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    env
}

/// Listens on the sandbox's loopback at `port` (before anything else runs there, so no
/// command can take the port first).
pub fn listen(port: u16) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Passes every connection on `listener` to the proxy's Unix socket at `socket`, until the
/// supervisor ends. A connection the proxy does not take is closed.
pub async fn forward(listener: std::net::TcpListener, socket: PathBuf) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Ok(mut proxy) = tokio::net::UnixStream::connect(&socket).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut proxy).await;
            }
        });
    }
}
