//! The model client: one call, with retries.

use crate::error::ModelError;
use crate::provider::{Api, ProviderConfig};
use crate::request::ModelRequest;
use crate::stream::StreamEvent;
use crate::{chat, responses};
use cordon_core::ModelResponse;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How much of an error body is kept in messages.
const BODY_EXCERPT: usize = 500;

/// A client for one provider.
pub struct ModelClient {
    provider: ProviderConfig,
    http: reqwest::Client,
    /// Set once the server sent an empty body to a streamed request (a known llama.cpp
    /// quirk with tools); later calls then ask for whole answers.
    stream_broken: AtomicBool,
    /// The conversation's items as last encoded (Responses API).
    encoded: std::sync::Mutex<crate::encoded::InputCache>,
    /// The conversation's messages as last encoded (Chat Completions).
    messages: std::sync::Mutex<chat::MessageCache>,
}

impl ModelClient {
    /// A client for `provider`.
    pub fn new(provider: ProviderConfig) -> Result<Self, ModelError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cordon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ModelError::Connect {
                provider: provider.name.clone(),
                url: provider.base_url.clone(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(ModelClient {
            provider,
            http,
            stream_broken: AtomicBool::new(false),
            encoded: Default::default(),
            messages: Default::default(),
        })
    }

    /// The provider this client talks to.
    pub fn provider(&self) -> &ProviderConfig {
        &self.provider
    }

    /// Sends `req` and returns the whole response, retrying what can be retried. Display
    /// events go to `events` as they happen (a closed receiver is fine).
    pub async fn respond(
        &self,
        req: &ModelRequest,
        events: &UnboundedSender<StreamEvent>,
    ) -> Result<ModelResponse, ModelError> {
        let mut r = self.retrying(events, || self.attempt(req, events)).await?;
        if r.usage == cordon_core::Usage::default() {
            // No usage reported: count, so token and cost budgets still hold.
            r.usage = crate::tokens::estimate(req, &r);
        }
        Ok(r)
    }

    /// Asks the provider to compact `req`'s conversation itself (the Responses API's
    /// `responses/compact`): the items that replace it (the user's messages and an encrypted
    /// compaction item) and what it cost. Retried like [`ModelClient::respond`].
    pub async fn compact(
        &self,
        req: &ModelRequest,
        events: &UnboundedSender<StreamEvent>,
    ) -> Result<(Vec<cordon_core::Item>, cordon_core::Usage), ModelError> {
        if self.provider.api != Api::Responses {
            return Err(self.provider_error(
                "server-side compaction needs a Responses API provider; use compaction by summary (the default) with Chat Completions".into(),
                false,
            ));
        }
        self.retrying(events, || self.compact_attempt(req)).await
    }

    async fn compact_attempt(
        &self,
        req: &ModelRequest,
    ) -> Result<(Vec<cordon_core::Item>, cordon_core::Usage), ModelError> {
        let p = &self.provider;
        let url = format!("{}/compact", p.endpoint());
        let mut http = self.http.post(&url).json(&responses::compact_body(req));
        if let Some(key) = &p.api_key {
            http = http.bearer_auth(key.expose());
        }
        let resp = self.send(http, &url).await?;
        let cut = |detail: String| ModelError::StreamCut {
            provider: p.name.clone(),
            detail: p.redact(&detail),
        };
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| cut(format!("the compaction's answer is not JSON: {e}")))?;
        responses::parse_compacted(&v).map_err(|m| self.provider_error(m, false))
    }

    /// Sends a request; an answer that is not a success is an error with the start of its
    /// body (the key redacted) and any `Retry-After`.
    async fn send(
        &self,
        http: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ModelError> {
        let p = &self.provider;
        let resp = http.send().await.map_err(|e| ModelError::Connect {
            provider: p.name.clone(),
            url: url.to_string(),
            message: p.redact(&error_chain(&e)),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = retry_after(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        Err(ModelError::Http {
            provider: p.name.clone(),
            url: url.to_string(),
            status: status.as_u16(),
            body: p.redact(&excerpt(&text)),
            retry_after,
        })
    }

    /// Runs `attempt` until it succeeds or the error is not worth another try: the same
    /// answer twice, retries spent, or a wait longer than cordon waits.
    async fn retrying<T, F, Fut>(
        &self,
        events: &UnboundedSender<StreamEvent>,
        mut attempt_once: F,
    ) -> Result<T, ModelError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ModelError>>,
    {
        let mut attempt = 1;
        let mut previous: Option<String> = None;
        loop {
            let result = tokio::time::timeout(self.provider.attempt_timeout, attempt_once())
                .await
                .unwrap_or_else(|_| {
                    Err(ModelError::Timeout {
                        provider: self.provider.name.clone(),
                        detail: format!(
                            "the attempt took longer than {}s",
                            self.provider.attempt_timeout.as_secs()
                        ),
                    })
                });
            let err = match result {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            if !err.is_retryable() {
                return Err(err);
            }
            // The same answer again (an HTTP error with the same body, the same reported
            // error) is no passing trouble: stop, and show it.
            let this = err.same_error_key();
            if this.is_some() && this == previous {
                return Err(ModelError::Repeated {
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            previous = this;
            if attempt > self.provider.max_retries {
                return Err(ModelError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            if let Some(wait) = err.retry_after()
                && wait > self.provider.max_retry_wait
            {
                return Err(ModelError::WaitTooLong {
                    provider: self.provider.name.clone(),
                    wait,
                    max: self.provider.max_retry_wait,
                    last: Box::new(err),
                });
            }
            let delay = self.delay(attempt, err.retry_after());
            // The caller shows `Retrying`; the log says it only when asked (-v).
            tracing::info!(attempt, ?delay, error = %err, "model call failed; retrying");
            let _ = events.send(StreamEvent::Retrying {
                attempt,
                error: err.to_string(),
                delay,
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Exponential backoff with jitter (75 to 100 % of the step), or the provider's
    /// `Retry-After` when it gave a reasonable one.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after.filter(|d| *d <= self.provider.max_retry_wait) {
            return d;
        }
        let step = self
            .provider
            .retry_initial
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(MAX_BACKOFF);
        step.mul_f64(0.75 + fastrand::f64() * 0.25)
    }

    async fn attempt(
        &self,
        req: &ModelRequest,
        events: &UnboundedSender<StreamEvent>,
    ) -> Result<ModelResponse, ModelError> {
        let p = &self.provider;
        let stream = p.stream && !self.stream_broken.load(Ordering::Relaxed);
        let url = p.endpoint();
        let body = match p.api {
            Api::Responses => {
                let mut cache = self.encoded.lock().unwrap_or_else(|e| e.into_inner());
                responses::request_text(req, stream, &mut cache)
            }
            Api::Chat => {
                let mut cache = self.messages.lock().unwrap_or_else(|e| e.into_inner());
                let dialect = chat::ChatDialect {
                    max_tokens_field: p.max_tokens_field.clone(),
                    json_output: p.json_output,
                };
                chat::request_text(req, stream, &dialect, &mut cache)
            }
        };
        let mut http = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &p.api_key {
            http = http.bearer_auth(key.expose());
        }
        let resp = self.send(http, &url).await?;
        let emit = |e: StreamEvent| {
            let _ = events.send(e);
        };
        let cut = |detail: String| ModelError::StreamCut {
            provider: p.name.clone(),
            detail: p.redact(&detail),
        };
        if !stream {
            let v: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| cut(format!("the answer is not JSON: {e}")))?;
            return match p.api {
                Api::Responses => {
                    let mut r = responses::parse_whole(&v);
                    if p.record_raw || !r.unknown_events.is_empty() {
                        r.wire = Some(serde_json::json!({ "body": v }));
                    }
                    Ok(r)
                }
                Api::Chat => {
                    let mut d = chat::Decoder::new(req);
                    d.on_whole(&v, &emit)
                        .map_err(|m| self.provider_error(m.0, false))?;
                    d.finish(p.record_raw)
                        .ok_or_else(|| cut("no choices in the answer".into()))
                }
            };
        }

        let mut sse = resp.bytes_stream().eventsource();
        let mut responses_decoder = responses::Decoder::default();
        let mut chat_decoder = chat::Decoder::new(req);
        let mut seen = 0usize;
        loop {
            let next = tokio::time::timeout(p.idle_timeout, sse.next())
                .await
                .map_err(|_| ModelError::Timeout {
                    provider: p.name.clone(),
                    detail: format!("the stream sent nothing for {}s", p.idle_timeout.as_secs()),
                })?;
            let ev = match next {
                None => break,
                Some(Ok(ev)) => ev,
                Some(Err(e)) => return Err(cut(format!("after {seen} events: {e}"))),
            };
            seen += 1;
            match p.api {
                Api::Responses => {
                    if let responses::Step::Failed { message, retryable } =
                        responses_decoder.on_event(&ev.event, &ev.data, &emit)
                    {
                        return Err(self.provider_error(message, retryable));
                    }
                }
                Api::Chat => {
                    chat_decoder
                        .on_data(&ev.data, &emit)
                        .map_err(|m| self.provider_error(m.0, false))?;
                }
            }
        }
        if seen == 0 {
            // Some servers (llama.cpp with tools) answer a streamed request with an empty
            // body; ask for whole answers from now on and try again.
            tracing::warn!(provider = %p.name, "empty streamed answer; falling back to non-streamed requests");
            self.stream_broken.store(true, Ordering::Relaxed);
            return Err(cut(
                "the server sent an empty stream; retrying without streaming".into(),
            ));
        }
        let done = match p.api {
            Api::Responses => responses_decoder.finish(p.record_raw),
            Api::Chat => chat_decoder.finish(p.record_raw),
        };
        done.ok_or_else(|| {
            cut(format!(
                "the connection closed after {seen} events without a final event"
            ))
        })
    }

    fn provider_error(&self, message: String, retryable: bool) -> ModelError {
        ModelError::Provider {
            provider: self.provider.name.clone(),
            message: self.provider.redact(&message),
            retryable,
        }
    }
}

/// The provider's requested delay: `retry-after-ms`, or `Retry-After` in seconds or as an
/// HTTP date. A value that is not a finite, non-negative number (or a date) is ignored, so
/// backoff applies; one too large to represent is `Duration::MAX`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| amount(v, 1000.0)) {
        return Some(ms);
    }
    let value = get("retry-after")?;
    amount(value, 1.0).or_else(|| http_date(value))
}

/// A number of `per_second` units as a duration, checked: finite and not negative.
fn amount(text: &str, per_second: f64) -> Option<Duration> {
    let v: f64 = text.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(v / per_second).unwrap_or(Duration::MAX))
}

/// An HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`) as the wait from now (zero if past).
fn http_date(text: &str) -> Option<Duration> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

fn excerpt(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(BODY_EXCERPT) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// An error with its causes, which reqwest keeps apart.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(name: &str, value: &str) -> Option<Duration> {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        retry_after(&h)
    }

    #[test]
    fn hostile_retry_after_values_never_panic() {
        assert_eq!(wait("retry-after", "2"), Some(Duration::from_secs(2)));
        assert_eq!(
            wait("retry-after-ms", "250"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(wait("retry-after", "1e30"), Some(Duration::MAX));
        assert_eq!(wait("retry-after-ms", "1e300"), Some(Duration::MAX));
        for ignored in ["inf", "-inf", "NaN", "-5", "soon", ""] {
            assert_eq!(wait("retry-after", ignored), None, "{ignored}");
        }
        let later = wait("retry-after", "Wed, 21 Oct 2099 07:28:00 GMT").unwrap();
        assert!(later > Duration::from_secs(3600 * 24 * 365));
        assert_eq!(
            wait("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }
}
