//! The scripted model server: an axum app serving `POST /v1/responses` and
//! `POST /v1/chat/completions` from a [`Script`], recording every request it receives.

use crate::frame::Frame;
use crate::script::{Fault, Script, TurnFrom};
use crate::{chat, responses};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request the server received, as tests see it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RecordedRequest {
    /// Position among all requests, from 0.
    pub index: usize,
    /// The request path (`/v1/responses` or `/v1/chat/completions`).
    pub path: String,
    /// The JSON body.
    pub body: Value,
    /// The `Authorization` header as sent, if any.
    pub authorization: Option<String>,
    /// What the server answered: `turn N`, `fault ...` or `exhausted`.
    pub served: String,
}

/// What the server does with one request.
#[derive(Debug, Clone)]
enum Action {
    Fault(Fault),
    Serve { turn: usize, malformed: bool },
    Exhausted,
}

#[derive(Default)]
struct Cursor {
    turn: usize,
    fault: usize,
}

struct Shared {
    script: Script,
    cursor: Mutex<Cursor>,
    requests: Mutex<Vec<RecordedRequest>>,
    log: Option<Mutex<std::fs::File>>,
}

impl Shared {
    fn next_action(&self, body: &Value) -> Action {
        let mut c = self.cursor.lock().expect("cursor lock");
        if self.script.turn_from == TurnFrom::Conversation {
            let turn = answers_in(body);
            if turn != c.turn {
                *c = Cursor { turn, fault: 0 };
            }
        }
        let Some(turn) = self.script.turns.get(c.turn) else {
            return Action::Exhausted;
        };
        let faults: Vec<&Fault> = turn
            .faults
            .iter()
            .filter(|f| **f != Fault::Malformed)
            .collect();
        if let Some(f) = faults.get(c.fault) {
            c.fault += 1;
            return Action::Fault((*f).clone());
        }
        let action = Action::Serve {
            turn: c.turn,
            malformed: turn.faults.contains(&Fault::Malformed),
        };
        if self.script.turn_from == TurnFrom::Requests {
            c.turn += 1;
            c.fault = 0;
        }
        action
    }

    /// Records a request and returns its index.
    fn record(&self, path: &str, body: Value, headers: &HeaderMap, served: String) -> usize {
        let mut reqs = self.requests.lock().expect("requests lock");
        let index = reqs.len();
        let r = RecordedRequest {
            index,
            path: path.to_string(),
            body,
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            served,
        };
        if let Some(log) = &self.log {
            let mut f = log.lock().expect("log lock");
            let _ = writeln!(f, "{}", serde_json::to_string(&r).unwrap_or_default());
        }
        reqs.push(r);
        index
    }
}

/// How many model answers a request's conversation holds: assistant messages for Chat
/// Completions; for Responses, runs of consecutive model output items (messages, reasoning,
/// tool calls), since one answer can hold several.
fn answers_in(body: &Value) -> usize {
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        return messages.iter().filter(|m| m["role"] == "assistant").count();
    }
    let Some(items) = body.get("input").and_then(Value::as_array) else {
        return 0;
    };
    let from_model = |i: &Value| {
        i["role"] == "assistant"
            || matches!(
                i["type"].as_str(),
                Some("function_call" | "custom_tool_call" | "reasoning")
            )
    };
    let mut answers = 0;
    let mut inside = false;
    for item in items {
        let model = from_model(item);
        if model && !inside {
            answers += 1;
        }
        inside = model;
    }
    answers
}

/// A running scripted server. Dropping it stops the server.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ScriptedServer {
    /// Starts serving `script` on a free port of 127.0.0.1.
    pub async fn start(script: Script) -> std::io::Result<Self> {
        Self::bind(script, "127.0.0.1:0".parse().expect("valid address"), None).await
    }

    /// Starts serving `script` on `addr`, appending each request as a JSON line to
    /// `requests_log` when given.
    pub async fn bind(
        script: Script,
        addr: SocketAddr,
        requests_log: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let log = match requests_log {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        let shared = Arc::new(Shared {
            script,
            cursor: Mutex::new(Cursor::default()),
            requests: Mutex::new(Vec::new()),
            log,
        });
        let app = Router::new()
            .route("/v1/responses", post(handle_responses))
            .route("/v1/chat/completions", post(handle_chat))
            .route("/_testkit/requests", get(handle_requests))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(ScriptedServer {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a client: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn handle_requests(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.requests.lock().expect("requests lock").clone()).into_response()
}

async fn handle_responses(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, headers, body, Protocol::Responses).await
}

async fn handle_chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, headers, body, Protocol::Chat).await
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Responses,
    Chat,
}

async fn handle(
    shared: Arc<Shared>,
    headers: HeaderMap,
    raw: Bytes,
    protocol: Protocol,
) -> Response {
    let path = match protocol {
        Protocol::Responses => "/v1/responses",
        Protocol::Chat => "/v1/chat/completions",
    };
    let body: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => {
            shared.record(path, Value::Null, &headers, "rejected".into());
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("body is not JSON: {e}"),
                None,
            );
        }
    };
    let required = match protocol {
        Protocol::Responses => ["model", "input"],
        Protocol::Chat => ["model", "messages"],
    };
    if let Some(missing) = required.iter().find(|k| body.get(**k).is_none()) {
        shared.record(path, body, &headers, "rejected".into());
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("Missing required parameter: '{missing}'."),
            None,
        );
    }
    let action = shared.next_action(&body);
    let served = match &action {
        Action::Fault(f) => format!("fault {f:?}"),
        Action::Serve { turn, .. } => format!("turn {turn}"),
        Action::Exhausted => "exhausted".into(),
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let request = shared.record(path, body, &headers, served);

    let (turn_index, malformed, fault) = match action {
        Action::Exhausted => {
            let n = shared.script.turns.len();
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("scripted server: the script has no turn left (it has {n})"),
                None,
            );
        }
        Action::Fault(Fault::Status {
            status,
            retry_after,
            retry_after_ms,
            message,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if status == 429 {
                "rate_limit_error"
            } else {
                "server_error"
            };
            let message = message.unwrap_or_else(|| format!("scripted fault: HTTP {status}"));
            let mut resp = api_error(code, kind, &message, None);
            for (name, value) in [
                ("retry-after", retry_after),
                ("retry-after-ms", retry_after_ms),
            ] {
                if let Some(v) = value.and_then(|v| v.text().parse().ok()) {
                    resp.headers_mut().insert(name, v);
                }
            }
            return resp;
        }
        Action::Fault(f) => (
            shared.cursor.lock().expect("cursor lock").turn,
            false,
            Some(f),
        ),
        Action::Serve { turn, malformed } => (turn, malformed, None),
    };
    let Some(turn) = shared.script.turns.get(turn_index) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "scripted server: no turn",
            None,
        );
    };
    let model = shared.script.model_name();
    let n = turn_index as u64 + 1;
    let (mut frames, whole) = match protocol {
        Protocol::Responses => responses::render(turn, model, n, request, raw.len()),
        Protocol::Chat => chat::render(
            turn,
            model,
            n,
            request,
            raw.len(),
            include_usage,
            shared.script.chat_quirks,
        ),
    };
    if turn.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(turn.delay_ms)).await;
    }
    if !stream && fault.is_none() {
        return axum::Json(whole).into_response();
    }
    if malformed {
        let at = frames.len() / 2;
        let event = frames[at].event.clone();
        frames.insert(
            at,
            Frame {
                event,
                data: "{\"type\": \"garbled".into(),
            },
        );
    }
    let mut steps = Vec::new();
    match fault {
        Some(Fault::Disconnect { after_events }) => {
            frames.truncate(after_events);
            steps.extend(frames.iter().map(|f| Step::Send(f.to_wire())));
            // Let what was sent reach the client before the drop, as on a real network.
            steps.push(Step::Sleep(50));
            steps.push(Step::Fail);
        }
        Some(Fault::Stall { ms }) => {
            frames.truncate(1);
            steps.extend(frames.iter().map(|f| Step::Send(f.to_wire())));
            steps.push(Step::Sleep(ms));
            steps.push(Step::Fail);
        }
        _ => {
            for f in &frames {
                if turn.chunk_delay_ms > 0 {
                    steps.push(Step::Sleep(turn.chunk_delay_ms));
                }
                steps.push(Step::Send(f.to_wire()));
            }
        }
    }
    sse_response(steps)
}

enum Step {
    Send(String),
    Sleep(u64),
    Fail,
}

fn sse_response(steps: Vec<Step>) -> Response {
    let stream = futures::stream::unfold(steps.into_iter(), |mut it| async move {
        loop {
            match it.next()? {
                Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Step::Send(s) => return Some((Ok(Bytes::from(s)), it)),
                Step::Fail => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "scripted disconnect",
                    );
                    return Some((Err(e), it));
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

fn api_error(status: StatusCode, kind: &str, message: &str, retry_after: Option<u64>) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": null } });
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits are a valid header"),
        );
    }
    resp
}
