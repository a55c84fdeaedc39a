//! Where a model lives and how to talk to it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// OpenAI Responses API: `POST {base}/responses`.
    Responses,
    /// Chat Completions: `POST {base}/chat/completions`.
    Chat,
}

impl Api {
    /// The protocol's name as written in configuration.
    pub fn as_str(&self) -> &'static str {
        match self {
            Api::Responses => "responses",
            Api::Chat => "chat",
        }
    }
}

/// A secret (an API key) that never shows in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Everything a client needs to reach one provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The provider's name, used in messages (`openai`, `ollama`, ...).
    pub name: String,
    /// The protocol.
    pub api: Api,
    /// The base URL, up to and including `/v1`.
    pub base_url: String,
    /// The API key, if the provider needs one.
    pub api_key: Option<Secret>,
    /// The environment variable the key was read from, to name in messages about it.
    pub api_key_env: Option<String>,
    /// How many times to retry a failed call.
    pub max_retries: u32,
    /// The first retry's delay; each later one doubles, up to 8 s.
    pub retry_initial: Duration,
    /// The most one attempt may take, from sending to the stream's end.
    pub attempt_timeout: Duration,
    /// The most the stream may stay silent.
    pub idle_timeout: Duration,
    /// Whether to ask for a streamed answer (some servers stream badly with tools).
    pub stream: bool,
    /// Keep what the server sent with every response (`record_raw`), not only when decoding
    /// met something unexpected.
    pub record_raw: bool,
    /// The longest a provider may ask cordon to wait before a retry (`Retry-After`): a
    /// longer wait ends the call with an error that names it, instead of hanging the run.
    pub max_retry_wait: Duration,
    /// Chat Completions only: the field that carries the output token limit
    /// (`max_completion_tokens` for OpenAI, `max_tokens` for most local servers).
    pub max_tokens_field: String,
    /// Chat Completions only: how structured output is asked for.
    pub json_output: crate::JsonOutput,
}

impl ProviderConfig {
    /// A provider with default retry and timeout settings.
    pub fn new(name: &str, api: Api, base_url: &str, api_key: Option<Secret>) -> Self {
        ProviderConfig {
            name: name.to_string(),
            api,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            api_key_env: None,
            max_retries: 3,
            retry_initial: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            stream: true,
            max_retry_wait: Duration::from_secs(60),
            record_raw: false,
            max_tokens_field: "max_completion_tokens".to_string(),
            json_output: crate::JsonOutput::default(),
        }
    }

    /// The full URL of the protocol's endpoint.
    pub fn endpoint(&self) -> String {
        match self.api {
            Api::Responses => format!("{}/responses", self.base_url),
            Api::Chat => format!("{}/chat/completions", self.base_url),
        }
    }

    /// Removes the API key from text that may have echoed it.
    pub fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(k) => k.redact(text),
            None => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let p = ProviderConfig::new(
            "x",
            Api::Chat,
            "http://h/v1/",
            Some(Secret::new("sk-verysecret")),
        );
        let shown = format!("{p:?}");
        assert!(!shown.contains("sk-verysecret"), "{shown}");
        assert_eq!(p.redact("key sk-verysecret leaked"), "key *** leaked");
        assert_eq!(p.endpoint(), "http://h/v1/chat/completions");
    }
}
