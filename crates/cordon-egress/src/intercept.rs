//! Tunnels opened to put credentials in: for a host a credential names, the proxy answers
//! `CONNECT` itself, speaks TLS to the client with a certificate the run's authority signs,
//! reads each request (so its method and path are judged and recorded), puts the
//! credentials in, and sends it on over its own verified TLS connection to the real host.
//! A client that names another host in its TLS server name or its `Host` header than the
//! one it asked the tunnel for is refused.

use crate::journal::Record;
use crate::judge::Judgement;
use crate::proxy::{Body, Shared, exchange, explained, refuse_record};
use cordon_policy::Request as Wanted;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use tokio::net::TcpStream;

/// Answers `CONNECT` to a host whose requests carry credentials, and serves the requests
/// that come through.
pub(crate) async fn tunnel(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    wanted: Wanted,
    base: Record,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response<Body> {
    // Recorded when it opens; each request inside is recorded when it is done.
    let mut opened = base.clone();
    opened.verdict = "allow".into();
    opened.summary = "tunnel opened to add credentials; each request in it is judged".into();
    opened.status = Some(200);
    shared.journal.push(opened);
    tokio::spawn(async move {
        let _open = permit;
        let mut stop = shared.stop.clone();
        tokio::select! {
            _ = stop.changed() => {}
            _ = serve(shared.clone(), req, wanted, base) => {}
        }
    });
    Response::new(crate::proxy::empty())
}

async fn serve(shared: Arc<Shared>, req: Request<Incoming>, wanted: Wanted, base: Record) {
    // The tunnel was answered 200 already: what fails now fails in its TLS.
    let failed = |summary: String| {
        shared
            .journal
            .push(base.clone().refused("network:tls", 200, summary));
    };
    let Some(ca) = shared.ca.as_ref() else {
        return;
    };
    let upgraded = match hyper::upgrade::on(req).await {
        Ok(u) => u,
        Err(_) => return,
    };
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(
        rustls::server::Acceptor::default(),
        TokioIo::new(upgraded),
    );
    let start = match acceptor.await {
        Ok(s) => s,
        Err(e) => return failed(format!("deny: the client's TLS could not be read ({e})")),
    };
    // The name the client's TLS asks for must be the host the tunnel was asked for.
    if let Some(sni) = start.client_hello().server_name()
        && !sni.trim_end_matches('.').eq_ignore_ascii_case(&wanted.host)
    {
        let sni: String = sni.chars().take(200).collect();
        return failed(format!(
            "deny: the TLS server name {sni} is not the host the tunnel was asked for ({})",
            wanted.host
        ));
    }
    let config = match ca.server_config(&wanted.host) {
        Ok(c) => c,
        Err(e) => return failed(format!("deny: no certificate for {}: {e}", wanted.host)),
    };
    let tls = match start.into_stream(config).await {
        Ok(s) => s,
        Err(e) => {
            return failed(format!(
                "deny: TLS with the client failed ({e}); does it trust the run's certificate authority (SSL_CERT_FILE)?"
            ));
        }
    };
    let service = {
        let shared = shared.clone();
        let base = base.clone();
        hyper::service::service_fn(move |req| {
            let (shared, wanted, base) = (shared.clone(), wanted.clone(), base.clone());
            async move { Ok::<_, std::convert::Infallible>(request(shared, wanted, base, req).await) }
        })
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout)
        .serve_connection(TokioIo::new(tls), service)
        .await;
    // What could not be read as a request inside the tunnel (HTTP/2, garbage) is recorded.
    if let Err(e) = served
        && (e.is_parse() || e.is_parse_too_large())
    {
        shared.journal.push(base.clone().refused(
            "network:malformed",
            400,
            format!("deny: not a request the proxy can read in the tunnel ({e})"),
        ));
    }
}

/// One request inside an opened tunnel.
async fn request(
    shared: Arc<Shared>,
    wanted: Wanted,
    base: Record,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let base = Record {
        method: method.clone(),
        path: Some(req.uri().path().chars().take(1024).collect()),
        ..base
    };
    // The host the request names must be the tunnel's.
    let named = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        // In the spelling requests are judged in; what cannot be read as host[:port] is
        // not the tunnel's host.
        .map(|h| match h.parse::<hyper::http::uri::Authority>() {
            Ok(a) => crate::proxy::host_of(&a),
            Err(_) => h.to_string(),
        });
    if let Some(named) = named.filter(|n| *n != wanted.host) {
        let shown: String = named.chars().take(200).collect();
        let judgement = Judgement {
            verdict: cordon_policy::Verdict::Deny,
            rules: vec!["network:host-mismatch".into()],
            summary: format!(
                "deny: the request names host {shown}, and its tunnel was opened to {}",
                wanted.host
            ),
            refusal: Some(421),
        };
        return refuse_record(&shared, &wanted, judgement, base);
    }
    let wanted = Wanted {
        method: Some(method.to_ascii_uppercase()),
        ..wanted
    };
    let mut judgement = shared.judge.judge(&wanted);
    if judgement.refusal.is_some() {
        return refuse_record(&shared, &wanted, judgement, base);
    }
    let origin = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.to_string());
    let mut uri: hyper::Uri = match origin.parse() {
        Ok(u) => u,
        Err(_) => {
            return explained(
                StatusCode::BAD_REQUEST,
                "",
                "the request's path cannot be read\n".into(),
            );
        }
    };
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
    let port = wanted.port;
    let host = match port {
        443 => wanted.host.clone(),
        p => format!("{}:{p}", wanted.host),
    };
    if let Ok(v) = host.parse() {
        req.headers_mut().insert(hyper::header::HOST, v);
    }
    exchange(shared, wanted, judgement, req, base, true).await
}

/// TLS to the real `host` over `tcp`, verified against this host's trust store.
pub(crate) async fn connect_tls(
    shared: &Shared,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let config = shared
        .upstream_tls
        .get_or_init(|| crate::tls::upstream_config(&shared.config.upstream_roots))
        .clone()?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS to {host} failed: {e}"))
}
