//! Upstreams for egress tests: servers on this host's loopback that answer every request
//! and keep the head of each one (request line and headers), so a test can check what
//! reached them through cordon's egress proxy.
//!
//! - [`Upstream::http`]: plain HTTP, answering `hello from PATH`.
//! - [`Upstream::https`]: TLS for `127.0.0.1`, under an authority made for the test (its
//!   certificate in [`Upstream::ca_pem`]), answering `ok`.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A running upstream. It serves until the test's runtime ends.
pub struct Upstream {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The authority its certificate comes from (PEM), for HTTPS.
    pub ca_pem: Option<String>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    /// Plain HTTP, answering `hello from PATH\n`.
    pub async fn http() -> std::io::Result<Upstream> {
        Self::serve(None, None).await
    }

    /// HTTPS for 127.0.0.1, answering `ok\n`.
    pub async fn https() -> Result<Upstream, Box<dyn std::error::Error>> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&key, &ca)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Ok(Self::serve(Some(acceptor), Some(ca.pem())).await?)
    }

    async fn serve(
        tls: Option<tokio_rustls::TlsAcceptor>,
        ca_pem: Option<String>,
    ) -> std::io::Result<Upstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tls, seen) = (tls.clone(), seen.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer(tcp, &seen, false).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                answer(stream, &seen, true).await
                            }
                        }
                    }
                });
            }
        });
        Ok(Upstream {
            port,
            ca_pem,
            heads,
        })
    }

    /// The heads of the requests that reached it so far, in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The paths of the requests that reached it so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.heads()
            .iter()
            .map(|h| h.split_whitespace().nth(1).unwrap_or("").to_string())
            .collect()
    }
}

/// Reads one request's head and answers it, then closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, seen: &Mutex<Vec<String>>, tls: bool) {
    let head = read_head(&mut s).await;
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(head);
    let body = match tls {
        true => "ok\n".to_string(),
        false => format!("hello from {path}\n"),
    };
    let _ = s
        .write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    let _ = s.shutdown().await;
}

/// Reads up to the end of an HTTP head (at most 64 KiB), byte by byte.
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut b).await {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}
