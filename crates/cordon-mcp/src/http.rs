//! The streamable HTTP client rmcp's transport drives, on the reqwest cordon already uses
//! (so no second HTTP and TLS stack): POST each message, read a JSON answer or an SSE
//! stream, GET the server's own stream, DELETE the session at the end. Answers are bounded:
//! a JSON body within [`MAX_JSON`], one SSE event within [`MAX_EVENT`].

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::{Sse, SseStream};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The largest JSON answer read.
pub const MAX_JSON: usize = 32 << 20;
/// The largest SSE event read.
pub const MAX_EVENT: usize = 32 << 20;

const SESSION: &str = "Mcp-Session-Id";
const LAST_EVENT: &str = "Last-Event-Id";
const SSE: &str = "text/event-stream";
const JSON: &str = "application/json";

/// An HTTP client for one server.
#[derive(Clone)]
pub(crate) struct HttpClient(pub reqwest::Client);

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        HttpError(without_url(&e))
    }
}

/// reqwest's message without the URL (it may be secret).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut why = String::new();
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    if why.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {why}")
    }
}

type Failure = StreamableHttpError<HttpError>;

fn client_error(e: reqwest::Error) -> Failure {
    StreamableHttpError::Client(e.into())
}

fn content_type(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

fn with_headers(
    mut request: reqwest::RequestBuilder,
    session: Option<&str>,
    auth: Option<String>,
    custom: HashMap<HeaderName, HeaderValue>,
) -> reqwest::RequestBuilder {
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    if let Some(id) = session {
        request = request.header(SESSION, id);
    }
    for (name, value) in custom {
        request = request.header(name.as_str(), value.as_bytes());
    }
    request
}

/// An SSE stream of the body, each event within [`MAX_EVENT`].
fn events(response: reqwest::Response) -> BoxStream<'static, Result<Sse, SseError>> {
    let mut pending = 0usize;
    let bytes = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(|e| std::io::Error::other(without_url(&e)))?;
        // Bytes since the last blank line (an event's end, `\n\n` or `\r\n\r\n`): an
        // event that never ends is refused.
        let end = chunk
            .windows(2)
            .rposition(|w| w == b"\n\n")
            .max(chunk.windows(4).rposition(|w| w == b"\r\n\r\n"));
        match end {
            Some(at) => pending = chunk.len() - at,
            None => pending += chunk.len(),
        }
        if pending > MAX_EVENT {
            return Err(std::io::Error::other(format!(
                "an event of the server's stream is over {} MiB",
                MAX_EVENT >> 20
            )));
        }
        Ok::<Bytes, std::io::Error>(chunk)
    });
    SseStream::from_bytes_stream(bytes).boxed()
}

/// The body, within [`MAX_JSON`].
async fn bounded_body(response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.try_next().await.map_err(client_error)? {
        if body.len() + chunk.len() > MAX_JSON {
            return Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                format!("an answer over {} MiB", MAX_JSON >> 20),
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

impl StreamableHttpClient for HttpClient {
    type Error = HttpError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let request = self
            .0
            .post(uri.as_ref())
            .header(reqwest::header::ACCEPT, format!("{JSON}, {SSE}"));
        let request = with_headers(request, session_id.as_deref(), auth_header, custom_headers);
        let response = request.json(&message).send().await.map_err(client_error)?;
        let status = response.status();
        if matches!(
            status,
            reqwest::StatusCode::ACCEPTED | reqwest::StatusCode::NO_CONTENT
        ) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == reqwest::StatusCode::NOT_FOUND && session_id.is_some() {
            return Err(StreamableHttpError::SessionExpired);
        }
        let session = response
            .headers()
            .get(SESSION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let kind = content_type(&response);
        let expects_answer = matches!(message, ClientJsonRpcMessage::Request(_));
        if !status.is_success() {
            let body = bounded_body(response).await?;
            // A JSON-RPC error in a failed answer is still the server's answer, when it
            // names the request it answers (one without an id, as a server that lost the
            // session sends, answers nothing: it would leave the call waiting).
            if kind.as_deref() == Some(JSON)
                && serde_json::from_slice::<serde_json::Value>(&body)
                    .is_ok_and(|v| !v["id"].is_null())
                && let Ok(m @ ServerJsonRpcMessage::Error(_)) = serde_json::from_slice(&body)
            {
                return Ok(StreamableHttpPostResponse::Json(m, session));
            }
            if status == reqwest::StatusCode::BAD_REQUEST && session_id.is_some() {
                // The server no longer knows the session (it restarted): start a new one.
                return Err(StreamableHttpError::SessionExpired);
            }
            return Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                format!("HTTP {status}: {}", preview(&body)),
            )));
        }
        match kind.as_deref() {
            Some(SSE) => Ok(StreamableHttpPostResponse::Sse(events(response), session)),
            Some(JSON) => {
                let body = bounded_body(response).await?;
                match serde_json::from_slice(&body) {
                    Ok(m) => Ok(StreamableHttpPostResponse::Json(m, session)),
                    Err(_) if !expects_answer => Ok(StreamableHttpPostResponse::Accepted),
                    Err(e) => Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                        format!("not JSON-RPC ({e}): {}", preview(&body)),
                    ))),
                }
            }
            _ if !expects_answer => Ok(StreamableHttpPostResponse::Accepted),
            other => Err(StreamableHttpError::UnexpectedContentType(
                other.map(str::to_string),
            )),
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let request = with_headers(
            self.0.delete(uri.as_ref()),
            Some(&session_id),
            auth_header,
            custom_headers,
        );
        let response = request.send().await.map_err(client_error)?;
        // A server that keeps no sessions says 405: nothing to end.
        if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Ok(());
        }
        response.error_for_status().map_err(client_error)?;
        Ok(())
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        let mut request = self
            .0
            .get(uri.as_ref())
            .header(reqwest::header::ACCEPT, SSE);
        if let Some(id) = last_event_id {
            request = request.header(LAST_EVENT, id);
        }
        let request = with_headers(request, session_id.as_deref(), auth_header, custom_headers);
        let response = request.send().await.map_err(client_error)?;
        if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        let response = response.error_for_status().map_err(client_error)?;
        match content_type(&response).as_deref() {
            Some(SSE) => Ok(events(response)),
            other => Err(StreamableHttpError::UnexpectedContentType(
                other.map(str::to_string),
            )),
        }
    }
}
