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
    Ok(if req.method() == Method::CONNECT {
        tunnel(shared, req).await
    } else {
        forward(shared, req).await
    })
}

/// A host as requests are judged: lowercase, without brackets or a final dot.
fn host_of(authority: &hyper::http::uri::Authority) -> String {
    authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `CONNECT host:port`: judged by host and port (what goes through the tunnel is not seen),
/// then tunnelled untouched.
async fn tunnel(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return plain(StatusCode::BAD_REQUEST, "CONNECT needs host:port\n");
    };
    let Some(port) = authority.port_u16() else {
        return plain(StatusCode::BAD_REQUEST, "CONNECT needs host:port\n");
    };
    let wanted = Wanted {
        host: host_of(&authority),
        port,
        method: None,
    };
    let base = Record {
        host: wanted.host.clone(),
        port,
        method: "CONNECT".into(),
        path: None,
        verdict: String::new(),
        rules: Vec::new(),
        summary: String::new(),
        status: None,
        sent: 0,
        received: 0,
        count: 1,
    };
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
            None => judgement.summary,
            Some(why) => format!("{} (the tunnel ended: {why})", judgement.summary),
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
        return plain(
            StatusCode::BAD_REQUEST,
            "cordon's egress proxy takes CONNECT host:port, or plain HTTP with an absolute http:// URL\n",
        );
    };
    let port = authority.port_u16().unwrap_or(80);
    let wanted = Wanted {
        host: host_of(&authority),
        port,
        method: Some(req.method().as_str().to_ascii_uppercase()),
    };
    let base = Record {
        host: wanted.host.clone(),
        port,
        method: req.method().as_str().to_string(),
        path: Some(uri.path().chars().take(1024).collect()),
        verdict: String::new(),
        rules: Vec::new(),
        summary: String::new(),
        status: None,
        sent: 0,
        received: 0,
        count: 1,
    };
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
    if let Ok(host) = authority.as_str().parse() {
        req.headers_mut().insert(hyper::header::HOST, host);
    }
    let mut judgement = judgement;
    let mut uri = req.uri().clone();
    let used = shared
        .credentials
        .inject(&wanted.host, req.headers_mut(), &mut uri);
    *req.uri_mut() = uri;
    if !used.is_empty() {
        judgement.summary = format!(
            "{}; credentials added: {}",
            judgement.summary,
            used.join(", ")
        );
    }
    exchange(shared, wanted, judgement, req, base, false).await
}

/// Sends an allowed request (origin form, its `Host` set) to the upstream, over TLS when
/// `tls`, and answers with the upstream's response; recorded once its body is done with.
pub(crate) async fn exchange(
    shared: Arc<Shared>,
    wanted: Wanted,
    judgement: Judgement,
    mut req: Request<Incoming>,
    base: Record,
    tls: bool,
) -> Response<Body> {
    for name in HOP_BY_HOP {
        req.headers_mut().remove(*name);
    }
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
    for name in HOP_BY_HOP {
        response.headers_mut().remove(*name);
    }
    response
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
    received: AtomicU64,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.sent = self.sent.load(Ordering::Relaxed);
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
    let (reachable, private): (Vec<_>, Vec<_>) = addresses
        .into_iter()
        .partition(|a| shared.judge.may_reach(&wanted.host, a.ip()));
    if reachable.is_empty() {
        let shown: Vec<String> = private.iter().map(|a| a.ip().to_string()).collect();
        return Err(Failure {
            status: StatusCode::FORBIDDEN,
            rule: Some("network:private-address".into()),
            message: format!(
                "{} resolves only to private or loopback addresses ({}), which are reached only when a rule names the host or the address",
                wanted.host,
                shown.join(", ")
            ),
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
    if judgement.verdict == Verdict::Ask {
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
    explained(failure.status, &rule, body)
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
