//! What can go wrong talking to a model.

use std::time::Duration;

/// A failed model call. Messages never contain the API key.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider answered with an HTTP error.
    #[error("{provider} answered HTTP {status} at {url}: {body}")]
    Http {
        /// The provider's name.
        provider: String,
        /// The URL called.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
        /// The delay the provider asked for, if any.
        retry_after: Option<Duration>,
    },
    /// No connection could be made, or it broke before an answer.
    #[error("cannot reach {provider} at {url}: {message}")]
    Connect {
        /// The provider's name.
        provider: String,
        /// The URL called.
        url: String,
        /// What the network layer said.
        message: String,
    },
    /// The stream stopped before the response was complete.
    #[error("{provider}'s stream ended before the response was complete: {detail}")]
    StreamCut {
        /// The provider's name.
        provider: String,
        /// How it ended.
        detail: String,
    },
    /// The stream stayed silent too long, or the attempt took too long.
    #[error("{provider} timed out: {detail}")]
    Timeout {
        /// The provider's name.
        provider: String,
        /// Which limit was hit.
        detail: String,
    },
    /// The provider reported an error inside the stream.
    #[error("{provider} reported an error: {message}")]
    Provider {
        /// The provider's name.
        provider: String,
        /// The provider's message (and code, if any).
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// The provider asked for a longer wait before a retry than cordon is set to wait.
    #[error(
        "{provider} asked to wait {} before trying again, longer than the {}s cordon waits (max_retry_after_secs): {last}",
        wait_text(*wait),
        max.as_secs()
    )]
    WaitTooLong {
        /// The provider's name.
        provider: String,
        /// The wait it asked for (`Duration::MAX` for one too large to represent).
        wait: Duration,
        /// The most cordon waits.
        max: Duration,
        /// The answer that asked for it.
        last: Box<ModelError>,
    },
    /// The provider gave the same error twice running: retrying will not help.
    #[error("{last} (the same answer {attempts} times running: cordon stopped retrying)")]
    Repeated {
        /// How many attempts were made.
        attempts: u32,
        /// The answer.
        last: Box<ModelError>,
    },
    /// Retries ran out.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<ModelError>,
    },
}

/// A wait as people read it.
fn wait_text(d: Duration) -> String {
    if d == Duration::MAX {
        "longer than cordon can count".to_string()
    } else if d.as_secs() >= 120 {
        format!("{} s ({} min)", d.as_secs(), d.as_secs() / 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl ModelError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Http { status, .. } => matches!(status, 408 | 409 | 429) || *status >= 500,
            ModelError::Connect { .. }
            | ModelError::StreamCut { .. }
            | ModelError::Timeout { .. } => true,
            ModelError::Provider { retryable, .. } => *retryable,
            ModelError::RetriesExhausted { .. }
            | ModelError::WaitTooLong { .. }
            | ModelError::Repeated { .. } => false,
        }
    }

    /// [`ModelError::hint`], naming what this provider's configuration makes the answer
    /// depend on: the variable its API key came from, when the key was refused.
    pub fn hint_for(&self, provider: &crate::ProviderConfig) -> String {
        let name = &provider.name;
        match self {
            ModelError::RetriesExhausted { last, .. } => last.hint_for(provider),
            ModelError::Http {
                status: 401 | 403, ..
            } => match (&provider.api_key_env, &provider.api_key) {
                (Some(var), _) => format!(
                    "the provider '{name}' refused the API key cordon read from {var}: check that it is right and may use this model"
                ),
                (None, Some(_)) => format!("the provider '{name}' refused its API key: check it"),
                (None, None) => format!(
                    "the provider '{name}' wants an API key and cordon sent none: name the variable that holds it with api_key_env in [providers.{name}] of the config file"
                ),
            },
            _ => self.hint().to_string(),
        }
    }

    /// What the user can do about it, in one sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            ModelError::RetriesExhausted { last, .. } => last.hint(),
            ModelError::Repeated { .. } => {
                "the server rejects this request the same way every time: its answer is above (a setting it does not support, such as tool_choice, is a common cause)"
            }
            ModelError::WaitTooLong { .. } => {
                "wait as long as the provider asked, then `cordon resume` the run (or raise max_retry_after_secs in the config file)"
            }
            ModelError::Http {
                status: 401 | 403, ..
            } => {
                "check the provider's API key (for OpenAI, the OPENAI_API_KEY environment variable)"
            }
            ModelError::Http { status: 404, .. } => {
                "check the model name and the provider's base_url (it should end in /v1)"
            }
            ModelError::Http { status: 429, .. } => {
                "the provider is rate limiting: wait, or raise max_retries"
            }
            ModelError::Http {
                status: 400..=499, ..
            } => "the provider rejected the request: see its message above",
            ModelError::Http { .. } | ModelError::Provider { .. } => {
                "the provider failed: try again later"
            }
            ModelError::Connect { .. } => {
                "is the server running, and is the provider's base_url right (its entry in the config file, or OPENAI_BASE_URL or OLLAMA_BASE_URL for the built-in providers)?"
            }
            ModelError::StreamCut { .. } | ModelError::Timeout { .. } => {
                "the connection is unreliable or the server is overloaded: try again, or raise the timeouts in the config file"
            }
        }
    }

    /// What makes two failures "the same answer": the body of an HTTP 500 or 501 (a server
    /// that fails on this request), or a reported error's message. Overload and rate-limit
    /// answers (429, 502, 503, 504), connections and timeouts pass, so they never count.
    pub fn same_error_key(&self) -> Option<String> {
        match self {
            ModelError::Http {
                status: status @ (500 | 501),
                body,
                ..
            } => Some(format!("{status} {body}")),
            ModelError::Provider { message, .. } => Some(message.clone()),
            _ => None,
        }
    }

    /// The delay the provider asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
