//! The proxy itself: listeners, and the HTTP service that tunnels (`CONNECT`) or forwards
//! (plain HTTP) each request the judge allows, and refuses the rest with a status and a body
//! that say which rule refused it.

use crate::count::Counted;
use crate::journal::{Journal, Record};
use crate::judge::{Judge, Judgement};
use bytes::Bytes;
use cordon_policy::{Request as Wanted, Verdict};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;

pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

/// How a run's proxy is set up.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// The run, named in refusals so a person knows what to approve.
    pub run: String,
    /// Listen on this Unix socket (for the namespaces tier, which reaches it through a
    /// bind mount).
    pub socket: Option<PathBuf>,
    /// Also listen on TCP, on the host's loopback at a port the system picks (for tiers
    /// without a network namespace).
    pub tcp: bool,
    /// How long resolving a name may take.
    pub resolve_timeout: Duration,
    /// How long connecting to an upstream may take.
    pub connect_timeout: Duration,
    /// How long a client may take to send a request's head.
    pub header_timeout: Duration,
    /// Connections served at once, and tunnels open at once (each); beyond, a new one is
    /// answered 503 and closed, so a flood cannot exhaust the harness's files.
    pub max_connections: usize,
    /// Credentials to put into requests to the hosts they name (their tunnels are opened
    /// with a certificate authority made for the run).
    pub credentials: crate::Credentials,
    /// Authorities trusted for upstreams besides the host's own (`SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, the system's store).
    pub upstream_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// A secret every request must carry as its proxy password (`Proxy-Authorization:
    /// Basic`, any user name), so that only the run's sandbox, whose proxy variables hold
    /// it, can use the proxy; `None`: anyone who can connect may.
    pub token: Option<String>,
}

impl EgressConfig {
    /// A proxy for run `run`, listening on nothing yet, with default timeouts.
    pub fn new(run: &str) -> Self {
        EgressConfig {
            run: run.to_string(),
            socket: None,
            tcp: false,
            resolve_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            max_connections: 256,
            credentials: crate::Credentials::default(),
            upstream_roots: Vec::new(),
            token: None,
        }
    }
}

/// A running egress proxy. Dropping it stops it, and every tunnel through it.
#[derive(Debug)]
pub struct EgressProxy {
    socket: Option<PathBuf>,
    tcp: Option<std::net::SocketAddr>,
    journal: Arc<Journal>,
    stop: watch::Sender<bool>,
    /// Held by every listener, connection and tunnel too: when this is the last, all have
    /// ended.
    shared: Arc<Shared>,
    ca_pem: Option<String>,
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) judge: Judge,
    pub(crate) journal: Arc<Journal>,
    pub(crate) config: EgressConfig,
    pub(crate) stop: watch::Receiver<bool>,
    slots: Arc<tokio::sync::Semaphore>,
    /// Open tunnels, bounded like connections.
    pub(crate) tunnels: Arc<tokio::sync::Semaphore>,
    /// The credentials (also in `config`), and the authority that opens their tunnels.
    pub(crate) credentials: crate::Credentials,
    pub(crate) ca: Option<crate::tls::RunCa>,
    /// TLS to upstreams, made when first needed.
    pub(crate) upstream_tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    /// The proxy's own TCP address: never a destination.
    own: std::sync::OnceLock<std::net::SocketAddr>,
}

impl EgressProxy {
    /// Starts a proxy judging by `judge`, listening as `config` says.
    pub async fn start(config: EgressConfig, judge: Judge) -> std::io::Result<EgressProxy> {
        let (stop, stopped) = watch::channel(false);
        let journal = Arc::new(Journal::default());
        let ca = match config.credentials.is_empty() {
            true => None,
            false => Some(crate::tls::RunCa::new(&config.run).map_err(|e| {
                std::io::Error::other(format!("cannot make the run's certificate authority: {e}"))
            })?),
        };
        let ca_pem = ca.as_ref().map(|c| c.certificate_pem());
        let shared = Arc::new(Shared {
            judge,
            journal: journal.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1))),
            tunnels: Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1))),
            credentials: config.credentials.clone(),
            config: config.clone(),
            stop: stopped,
            ca,
            upstream_tls: std::sync::OnceLock::new(),
            own: std::sync::OnceLock::new(),
        });
        if let Some(path) = &config.socket {
            let listener = bind_unix(path)?;
            let shared = shared.clone();
            tokio::spawn(async move {
                accept_loop(shared, || async { listener.accept().await.map(|(s, _)| s) }).await
            });
        }
        let mut tcp = None;
        if config.tcp {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            tcp = Some(listener.local_addr()?);
            let _ = shared.own.set(listener.local_addr()?);
            let shared = shared.clone();
            tokio::spawn(async move {
                accept_loop(shared, || async { listener.accept().await.map(|(s, _)| s) }).await
            });
        }
        Ok(EgressProxy {
            socket: config.socket,
            tcp,
            journal,
            stop,
            shared,
            ca_pem,
        })
    }

    /// The certificate of the authority that opens tunnels to add credentials (PEM), for
    /// the sandbox's trust store; `None` without credentials.
    pub fn ca_certificate(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Stops the proxy and waits (up to 2 s) for every connection and tunnel to end, so
    /// that what they carried is in the journal.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&self.shared) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The Unix socket it listens on, if any.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The TCP address it listens on, if any.
    pub fn tcp(&self) -> Option<std::net::SocketAddr> {
        self.tcp
    }

    /// What it saw, for the run to record.
    pub fn journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a Unix socket only its owner may use.
fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections until the proxy stops, serving each on a task of its own.
async fn accept_loop<S, F, Fut>(shared: Arc<Shared>, accept: F)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<S>>,
{
    let mut stop = shared.stop.clone();
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => return,
            s = accept() => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%e, "the egress proxy could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(_slot) = shared.slots.clone().try_acquire_owned() else {
                too_busy(stream, "connections").await;
                return;
            };
            let mut stop = shared.stop.clone();
            let service = {
                let shared = shared.clone();
                hyper::service::service_fn(move |req| handle(shared.clone(), req))
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(shared.config.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = stop.changed() => {}
                r = conn => if let Err(e) = r {
                    tracing::debug!(%e, "an egress connection ended with an error");
                    // What could not even be read as a request is recorded too.
                    if e.is_parse() || e.is_parse_too_large() {
                        shared.journal.push(Record::request("", 0, "?", None).refused(
                            "network:malformed",
                            400,
                            format!("deny: not a request the proxy can read ({e})"),
                        ));
                    }
                }
            }
        });
    }
}

/// Answers a connection beyond the limit with 503, and closes it.
async fn too_busy<S: AsyncWrite + Unpin>(mut stream: S, what: &str) {
    use tokio::io::AsyncWriteExt;
    tracing::warn!("the egress proxy refused a connection: too many open {what}");
    let body = format!("cordon's egress proxy has too many open {what}; try again later\n");
    let _ = stream
        .write_all(
            format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
}

/// Serves one request.
async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    if let Some(token) = &shared.config.token
        && !authorized(&req, token)
    {
        return Ok(unauthorized(&shared, &req));
    }
    Ok(if req.method() == Method::CONNECT {
        tunnel(shared, req).await
    } else {
        forward(shared, req).await
    })
}

/// Whether a request carries the proxy's token as its proxy password.
fn authorized<B>(req: &Request<B>, token: &str) -> bool {
    use base64::Engine;
    let Some(given) = req
        .headers()
        .get(hyper::header::PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
    else {
        return false;
    };
    let password = given
        .iter()
        .position(|b| *b == b':')
        .map_or(&given[..0], |i| &given[i + 1..]);
    // Compared in full whatever differs first.
    password.len() == token.len()
        && password
            .iter()
            .zip(token.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Answers (and records) a request without the proxy's token.
fn unauthorized<B>(shared: &Shared, req: &Request<B>) -> Response<Body> {
    shared.journal.push(seen(req).refused(
        "network:proxy-auth",
        407,
        "deny: the request does not carry the run's proxy password; only the run's sandbox may use its proxy".into(),
    ));
    let mut response = plain(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "cordon's egress proxy serves only its run's sandbox: use the proxy variables it was given\n",
    );
    response.headers_mut().insert(
        hyper::header::PROXY_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Basic realm=\"cordon egress\""),
    );
    response
}

/// Answers (and records) a request the proxy cannot read as one it takes.
fn malformed<B>(shared: &Shared, req: &Request<B>, why: &str) -> Response<Body> {
    shared.journal.push(seen(req).refused(
        "network:malformed",
        400,
        format!("deny: {}", why.trim_end()),
    ));
    plain(StatusCode::BAD_REQUEST, why)
}

/// What a request names, as far as it can be read.
fn seen<B>(req: &Request<B>) -> Record {
    let port = req.uri().port_u16().or(match req.uri().scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    });
    Record::request(
        &req.uri().authority().map(host_of).unwrap_or_default(),
        port.unwrap_or(0),
        req.method().as_str(),
        None,
    )
}

/// A host as requests are judged: in one spelling (see [`cordon_policy::canonical_host`]).
pub(crate) fn host_of(authority: &hyper::http::uri::Authority) -> String {
    cordon_policy::canonical_host(authority.host())
}

/// `CONNECT host:port`: judged by host and port (what goes through the tunnel is not seen),
/// then tunnelled untouched.
async fn tunnel(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return malformed(&shared, &req, "CONNECT needs host:port\n");
    };
    let Some(port) = authority.port_u16() else {
        return malformed(&shared, &req, "CONNECT needs host:port\n");
    };
    let wanted = Wanted {
        host: host_of(&authority),
        port,
        method: None,
    };
    let base = Record::request(&wanted.host, port, "CONNECT", None);
    let judgement = shared.judge.judge(&wanted);
    if judgement.refusal.is_some() {
        return refuse_record(&shared, &wanted, judgement, base);
    }
    let Ok(permit) = shared.tunnels.clone().try_acquire_owned() else {
        let judgement = Judgement {
            verdict: Verdict::Allow,
            rules: judgement.rules,
            summary: format!("{}; refused: too many open tunnels", judgement.summary),
            refusal: None,
        };
        return fail(
            &shared,
            &wanted,
            judgement,
            Failure {
                status: StatusCode::SERVICE_UNAVAILABLE,
                rule: None,
                message: "too many open tunnels".into(),
            },
            base,
        );
    };
    // A host whose requests carry credentials: the proxy opens the tunnel to put them in,
    // and judges and records each request inside.
    if shared.credentials.any_for(&wanted.host) {
        return crate::intercept::tunnel(shared, req, wanted, base, permit).await;
    }
    let upstream = match dial(&shared, &wanted).await {
        Ok(s) => s,
        Err(failure) => return fail(&shared, &wanted, judgement, failure, base),
    };
    // Recorded when it opens, so that it is in the log before anything that follows (and
    // again when it closes, with its bytes).
    shared.journal.push(Record {
        verdict: judgement.verdict.to_string(),
        rules: judgement.rules.clone(),
        summary: format!("{}; tunnel opened", judgement.summary),
        status: Some(200),
        ..base.clone()
    });
    let journal = shared.journal.clone();
    let mut stop = shared.stop.clone();
    tokio::spawn(async move {
        let _alive = (shared, permit);
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let mut upstream = Counted::new(upstream, received.clone(), sent.clone());
        let mut ended = None;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                tokio::select! {
                    _ = stop.changed() => ended = Some("the proxy stopped".to_string()),
                    r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                        if let Err(e) = r {
                            ended = Some(e.to_string());
                        }
                    }
                }
            }
            Err(e) => ended = Some(format!("the client never used the tunnel: {e}")),
        }
        let summary = match ended {
            None => format!("{}; tunnel closed", judgement.summary),
            Some(why) => format!("{}; tunnel closed: {why}", judgement.summary),
        };
        journal.push(Record {
            verdict: judgement.verdict.to_string(),
            rules: judgement.rules,
            summary,
            status: Some(200),
            sent: sent.load(Ordering::Relaxed),
            received: received.load(Ordering::Relaxed),
            ..base
        });
    });
    Response::new(empty())
}

/// Plain HTTP in absolute form (`GET http://host/path`): judged by host, port and method,
/// then forwarded with the host the URL names (never another `Host`), hop-by-hop headers
/// removed.
async fn forward(shared: Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    let uri = req.uri().clone();
    let (Some(authority), Some("http")) = (uri.authority().cloned(), uri.scheme_str()) else {
        return malformed(
            &shared,
            &req,
            "cordon's egress proxy takes CONNECT host:port, or plain HTTP with an absolute http:// URL\n",
        );
    };
    let port = authority.port_u16().unwrap_or(80);
    let wanted = Wanted {
        host: host_of(&authority),
        port,
        method: Some(req.method().as_str().to_ascii_uppercase()),
    };
    let base = Record::request(
        &wanted.host,
        port,
        req.method().as_str(),
        Some(uri.path().chars().take(1024).collect()),
    );
    let judgement = shared.judge.judge(&wanted);
    if judgement.refusal.is_some() {
        return refuse_record(&shared, &wanted, judgement, base);
    }
    // The request as the upstream expects it: origin form, the URL's own host, nothing
    // meant for the proxy.
    let origin = uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.to_string());
    *req.uri_mut() = match origin.parse() {
        Ok(u) => u,
        Err(_) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "the request's path cannot be read\n",
            );
        }
    };
    // The host and port alone: never userinfo.
    let host_header = match authority.port_u16() {
        Some(p) => format!("{}:{p}", authority.host()),
        None => authority.host().to_string(),
    };
    if let Ok(host) = host_header.parse() {
        req.headers_mut().insert(hyper::header::HOST, host);
    }
    // Credentials go only over TLS: a placeholder in plain HTTP stays a placeholder.
    exchange(shared, wanted, judgement, req, base, false).await
}

/// Sends an allowed request (origin form, its `Host` set) to the upstream, over TLS when
/// `tls`, and answers with the upstream's response; recorded once its body is done with.
pub(crate) async fn exchange(
    shared: Arc<Shared>,
    wanted: Wanted,
    judgement: Judgement,
    mut req: Request<Incoming>,
    mut base: Record,
    tls: bool,
) -> Response<Body> {
    strip_hop_by_hop(req.headers_mut());
    // What leaves counts its head too (a long query or header carries data as a body does).
    base.sent = head_size(&req);
    let upstream = match dial(&shared, &wanted).await {
        Ok(s) => s,
        Err(failure) => return fail(&shared, &wanted, judgement, failure, base),
    };
    let io: Box<dyn Upstream> = if tls {
        match crate::intercept::connect_tls(&shared, &wanted.host, upstream).await {
            Ok(s) => Box::new(s),
            Err(e) => {
                return fail(&shared, &wanted, judgement, Failure::bad_gateway(e), base);
            }
        }
    } else {
        Box::new(upstream)
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(io)).await {
            Ok(pair) => pair,
            Err(e) => {
                return fail(
                    &shared,
                    &wanted,
                    judgement,
                    Failure::bad_gateway(e.to_string()),
                    base,
                );
            }
        };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let sent = Arc::new(AtomicU64::new(0));
    let counted = {
        let sent = sent.clone();
        req.map(move |b| {
            b.map_frame(move |f| {
                if let Some(d) = f.data_ref() {
                    sent.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
                f
            })
            .boxed()
        })
    };
    let response = match sender.send_request(counted).await {
        Ok(r) => r,
        Err(e) => {
            return fail(
                &shared,
                &wanted,
                judgement,
                Failure::bad_gateway(e.to_string()),
                base,
            );
        }
    };
    let status = response.status().as_u16();
    let base_sent = base.sent;
    // Recorded when the response's body has gone to the client (or was dropped).
    let done = Finished {
        journal: shared.journal.clone(),
        record: Some(Record {
            verdict: judgement.verdict.to_string(),
            rules: judgement.rules,
            summary: judgement.summary,
            status: Some(status),
            ..base
        }),
        sent,
        head: base_sent,
        received: AtomicU64::new(0),
    };
    let mut response = response.map(move |b| {
        b.map_frame(move |f| {
            if let Some(d) = f.data_ref() {
                done.received.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
            f
        })
        .boxed()
    });
    strip_hop_by_hop(response.headers_mut());
    response
}

/// Removes the headers that concern one connection: the standard ones and those the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    let named: Vec<String> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// The size of a request's head as sent: its line and headers.
fn head_size<B>(req: &Request<B>) -> u64 {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    let headers: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (line + headers + 2) as u64
}

/// A connection to an upstream: plain TCP or TLS over it.
pub(crate) trait Upstream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Upstream for T {}

/// Headers that concern one connection, not the request: never passed on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Records a forwarded request when its response is done with.
struct Finished {
    journal: Arc<Journal>,
    record: Option<Record>,
    sent: Arc<AtomicU64>,
    /// The request head's size.
    head: u64,
    received: AtomicU64,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.sent = self.head + self.sent.load(Ordering::Relaxed);
            record.received = self.received.load(Ordering::Relaxed);
            self.journal.push(record);
        }
    }
}

/// Why an allowed request could not go out.
struct Failure {
    status: StatusCode,
    /// Set when the refusal is the policy's (a name that leads only to private addresses).
    rule: Option<String>,
    message: String,
}

impl Failure {
    fn bad_gateway(message: String) -> Self {
        Failure {
            status: StatusCode::BAD_GATEWAY,
            rule: None,
            message,
        }
    }
}

/// Resolves the host (the sandbox has no resolver of its own), drops the addresses it may
/// not reach, and connects to the first that answers.
async fn dial(shared: &Shared, wanted: &Wanted) -> Result<TcpStream, Failure> {
    let config = &shared.config;
    let resolved = tokio::time::timeout(
        config.resolve_timeout,
        tokio::net::lookup_host((wanted.host.as_str(), wanted.port)),
    )
    .await;
    let addresses: Vec<std::net::SocketAddr> = match resolved {
        Err(_) => {
            return Err(Failure::bad_gateway(format!(
                "cannot resolve {}: no answer within {:?}",
                wanted.host, config.resolve_timeout
            )));
        }
        Ok(Err(e)) => {
            return Err(Failure::bad_gateway(format!(
                "cannot resolve {}: {e}",
                wanted.host
            )));
        }
        Ok(Ok(a)) => a.collect(),
    };
    let mut reachable = Vec::new();
    let mut refused: Vec<(std::net::SocketAddr, String)> = Vec::new();
    for a in addresses {
        if shared.own.get() == Some(&a) {
            refused.push((a, "network:proxy-itself".into()));
            continue;
        }
        match shared.judge.may_reach(&wanted.host, wanted.port, a.ip()) {
            Ok(()) => reachable.push(a),
            Err(rule) => refused.push((a, rule)),
        }
    }
    if reachable.is_empty() {
        let shown: Vec<String> = refused.iter().map(|(a, _)| a.ip().to_string()).collect();
        let rule = refused
            .iter()
            .map(|(_, r)| r.clone())
            .find(|r| r != "network:private-address")
            .unwrap_or_else(|| "network:private-address".into());
        let message = match rule.as_str() {
            "network:proxy-itself" => format!("{} is the egress proxy itself", wanted.host),
            "network:private-address" => format!(
                "{} leads only to private, loopback or this host's own addresses ({}), which are reached only when a rule names the host or the address for this port",
                wanted.host,
                shown.join(", ")
            ),
            other => format!(
                "{} leads to {}, which rule {other} denies",
                wanted.host,
                shown.join(", ")
            ),
        };
        return Err(Failure {
            status: StatusCode::FORBIDDEN,
            rule: Some(rule),
            message,
        });
    }
    let mut last = String::new();
    for address in reachable {
        match tokio::time::timeout(config.connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = format!("{address}: {e}"),
            Err(_) => last = format!("{address}: no answer within {:?}", config.connect_timeout),
        }
    }
    Err(Failure::bad_gateway(format!(
        "cannot connect to {}:{} ({last})",
        wanted.host, wanted.port
    )))
}

/// Answers a request the judge refused, and records it.
pub(crate) fn refuse_record(
    shared: &Shared,
    wanted: &Wanted,
    judgement: Judgement,
    base: Record,
) -> Response<Body> {
    let status =
        StatusCode::from_u16(judgement.refusal.unwrap_or(403)).unwrap_or(StatusCode::FORBIDDEN);
    let mut body = format!(
        "cordon's egress proxy refused {} {}:{}\n{}\n",
        base.method, wanted.host, wanted.port, judgement.summary
    );
    // What a person's grant can change: the policy's asks and its default for unnamed hosts.
    let grantable = judgement.verdict == Verdict::Ask
        || (judgement.verdict == Verdict::Deny
            && !judgement.rules.is_empty()
            && judgement.rules.iter().all(|r| r == "network:default"));
    if grantable {
        body.push_str(&format!(
            "A person can allow this host for the rest of the run: cordon approve {} --host {}\n",
            shared.config.run, wanted.host
        ));
    }
    let rule = judgement.rules.first().cloned().unwrap_or_default();
    shared.journal.push(Record {
        verdict: judgement.verdict.to_string(),
        rules: judgement.rules,
        summary: judgement.summary,
        status: Some(status.as_u16()),
        ..base
    });
    explained(status, &rule, body)
}

/// Answers an allowed request that could not go out, and records it.
fn fail(
    shared: &Shared,
    wanted: &Wanted,
    judgement: Judgement,
    failure: Failure,
    base: Record,
) -> Response<Body> {
    let (verdict, rules, summary) = match &failure.rule {
        Some(rule) => (
            Verdict::Deny,
            vec![rule.clone()],
            format!("deny: {}", failure.message),
        ),
        None => (
            judgement.verdict,
            judgement.rules,
            format!("{}; failed: {}", judgement.summary, failure.message),
        ),
    };
    let body = format!(
        "cordon's egress proxy could not complete {} {}:{}\n{summary}\n",
        base.method, wanted.host, wanted.port
    );
    let rule = rules.first().cloned().unwrap_or_default();
    shared.journal.push(Record {
        verdict: verdict.to_string(),
        rules,
        summary,
        status: Some(failure.status.as_u16()),
        ..base
    });
    match failure.rule {
        // The policy's own refusal (an address a name led to).
        Some(_) => explained(failure.status, &rule, body),
        // Allowed, and the upstream could not be reached: not the policy's doing.
        None => {
            let mut response = plain(failure.status, &body);
            let reason = format!(
                "{} (allowed; cordon could not complete it)",
                failure.status.canonical_reason().unwrap_or("Failed")
            );
            if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes()) {
                response.extensions_mut().insert(phrase);
            }
            response
        }
    }
}

/// A response whose status line names the rule (clients that show only the status line,
/// as most do for a refused tunnel, still show why) and whose body explains.
pub(crate) fn explained(status: StatusCode, rule: &str, body: String) -> Response<Body> {
    let mut response = plain(status, &body);
    let reason = format!(
        "{} by cordon policy {}",
        status.canonical_reason().unwrap_or("Refused"),
        rule.chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(200)
            .collect::<String>()
    );
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes()) {
        response.extensions_mut().insert(phrase);
    }
    if let Ok(value) = hyper::header::HeaderValue::from_str(rule) {
        response.headers_mut().insert("x-cordon-rule", value);
    }
    response
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(full(text.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn full(text: String) -> Body {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn empty() -> Body {
    full(String::new())
}
