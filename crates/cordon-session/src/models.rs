//! Model providers: turning `PROVIDER:MODEL` into a model client's settings, from the
//! built-in providers, the config file, and resolvers a program registers.
//!
//! ```toml
//! default_model = "openai:gpt-5-mini"
//!
//! [providers.vllm]                       # a new provider, used as vllm:MODEL
//! api = "chat"                           # or "responses"
//! base_url = "http://127.0.0.1:8000/v1"
//! api_key_env = "VLLM_API_KEY"           # optional: the variable holding the key
//! max_retries = 3                        # also: retry_initial_ms, attempt_timeout_secs,
//!                                        # idle_timeout_secs, stream, max_tokens_field,
//!                                        # max_retry_after_secs, record_raw, json_output
//!
//! [prices."gpt-5-mini"]                  # for cost budgets
//! input_per_mtok = 0.25
//! output_per_mtok = 2.0
//!
//! [redaction]                            # tokens replaced before anything is stored
//! disable = ["jwt"]                      # built-in detectors to turn off (or detectors = false)
//! patterns = [{ name = "ticket", regex = "TCK-[0-9]{8}" }]
//! ```

use crate::SessionError;
use cordon_model::{Api, ProviderConfig, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The config file's `[redaction]`: the detectors for token formats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// Whether the built-in detectors are on (they are by default).
    #[serde(default = "yes")]
    pub detectors: bool,
    /// Built-in detectors to turn off, by id (`cordon_core::redact::DETECTORS`).
    #[serde(default)]
    pub disable: Vec<String>,
    /// Detectors of one's own.
    #[serde(default)]
    pub patterns: Vec<RedactionPattern>,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction {
            detectors: true,
            disable: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// A detector of one's own: what its placeholder calls it, and a regular expression.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionPattern {
    /// Shown as `[redacted: NAME]`.
    pub name: String,
    /// What to find (Rust `regex` syntax).
    pub regex: String,
}

impl Redaction {
    /// Adds these detectors to `redactor`; what is wrong with them, when something is.
    pub fn apply(&self, redactor: &mut cordon_core::Redactor) -> Result<(), String> {
        let ids: Vec<&str> = cordon_core::redact::DETECTORS
            .iter()
            .map(|(id, ..)| *id)
            .collect();
        if let Some(bad) = self.disable.iter().find(|d| !ids.contains(&d.as_str())) {
            return Err(format!(
                "[redaction] disable names '{bad}', which is not a detector (they are: {})",
                ids.join(", ")
            ));
        }
        if self.detectors {
            redactor.add_detectors(&self.disable);
        }
        for p in &self.patterns {
            if p.name.trim().is_empty() {
                return Err("[redaction] a pattern has an empty name".into());
            }
            redactor.add_pattern(&p.name, &p.regex).map_err(|e| {
                format!(
                    "[redaction] pattern '{}' is not a valid regular expression: {e}",
                    p.name
                )
            })?;
        }
        Ok(())
    }
}

/// The model used when neither the run request, the agent nor the config names one.
pub const FALLBACK_MODEL: &str = "openai:gpt-5-mini";

/// The config file's contents.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `PROVIDER:MODEL` used when nothing else names a model.
    pub default_model: Option<String>,
    /// Providers, by name; a name of a built-in one overrides it.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderEntry>,
    /// Prices by model name (as the provider names it), for cost budgets.
    #[serde(default)]
    pub prices: BTreeMap<String, cordon_harness::Price>,
    /// Which token formats are replaced in everything a run records, beside the secrets
    /// cordon knows.
    #[serde(default)]
    pub redaction: Redaction,
    /// Context windows by model name (as the provider names it), in tokens, for
    /// compaction: beside (and before) those cordon knows.
    #[serde(default)]
    pub context_windows: BTreeMap<String, u64>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

/// One provider in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    api: Api,
    base_url: String,
    api_key_env: Option<String>,
    max_retries: Option<u32>,
    retry_initial_ms: Option<u64>,
    attempt_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    stream: Option<bool>,
    max_tokens_field: Option<String>,
    max_retry_after_secs: Option<u64>,
    record_raw: Option<bool>,
    json_output: Option<cordon_model::JsonOutput>,
}

impl Config {
    /// Loads `explicit`, or the default file (`$XDG_CONFIG_HOME/cordon/config.toml`, else
    /// `~/.config/cordon/config.toml`) if it exists.
    pub fn load(explicit: Option<&Path>) -> Result<Config, SessionError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match default_path() {
                Some(p) if p.exists() => p,
                _ => return Ok(Config::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SessionError::bad_input(
                format!("cannot read the config file {}: {e}", path.display()),
                "pass an existing file with --config, or unset CORDON_CONFIG",
            )
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            SessionError::bad_input(
                format!(
                    "the config file {} is not valid: {}",
                    path.display(),
                    e.to_string().trim_end()
                ),
                "see the config section of the README for the fields a config file takes",
            )
        })?;
        config
            .redaction
            .apply(&mut cordon_core::Redactor::new())
            .map_err(|e| {
                SessionError::bad_input(
                    format!("the config file {}: {e}", path.display()),
                    "see the config section of the README for the fields a config file takes",
                )
            })?;
        config.path = Some(path);
        Ok(config)
    }
}

/// A model ready to call: the provider's settings, the model's name there, and whatever
/// must live as long as the run does (a server started for it).
pub struct ResolvedModel {
    /// The client's settings.
    pub provider: ProviderConfig,
    /// The model's name at the provider.
    pub model_name: String,
    /// Kept alive while the run goes.
    pub keep_alive: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// The future a resolver returns.
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ResolvedModel, SessionError>> + Send + 'a>>;

/// A provider a program adds by name (the CLI adds `scripted:` this way).
pub trait ModelResolver: Send + Sync {
    /// Resolves `MODEL` of `PROVIDER:MODEL` (`provider` is the name it was registered as).
    fn resolve<'a>(&'a self, provider: &'a str, model: &'a str) -> ResolveFuture<'a>;

    /// `MODEL` as a run should record it so that a resume in another directory or process
    /// resolves the same thing (for example a file path made absolute).
    fn recorded(&self, model: &str) -> String {
        model.to_string()
    }
}

/// Every provider a session can use: the built-in ones (`openai`, `openai-chat`, `ollama`),
/// the config file's, and registered resolvers.
#[derive(Clone, Default)]
pub struct Models {
    config: Config,
    resolvers: BTreeMap<String, Arc<dyn ModelResolver>>,
}

impl Models {
    /// The providers of `config` and the built-in ones.
    pub fn new(config: Config) -> Self {
        Models {
            config,
            resolvers: BTreeMap::new(),
        }
    }

    /// Adds a provider by name, resolved by `resolver`.
    pub fn register(&mut self, name: &str, resolver: Arc<dyn ModelResolver>) -> &mut Self {
        self.resolvers.insert(name.to_string(), resolver);
        self
    }

    /// The config these providers come from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The price of a model (as its provider names it), if the config sets one.
    pub fn price(&self, model_name: &str) -> Option<cordon_harness::Price> {
        self.config.prices.get(model_name).copied()
    }

    /// The context window of a model: the config's, else the one cordon knows.
    pub fn context_window(&self, model_name: &str) -> Option<u64> {
        self.config
            .context_windows
            .get(model_name)
            .copied()
            .or_else(|| cordon_harness::compaction::known_window(model_name))
    }

    /// The model a run uses: the one asked for, else the agent's, else the config's default.
    pub fn choose(&self, asked: Option<&str>, agent: Option<&str>) -> String {
        asked
            .or(agent)
            .or(self.config.default_model.as_deref())
            .unwrap_or(FALLBACK_MODEL)
            .to_string()
    }

    /// `spec` as a run records it (see [`ModelResolver::recorded`]).
    pub fn recorded(&self, spec: &str) -> String {
        match spec.split_once(':') {
            Some((p, m))
                if self.resolvers.contains_key(p) && !self.config.providers.contains_key(p) =>
            {
                format!("{p}:{}", self.resolvers[p].recorded(m))
            }
            _ => spec.to_string(),
        }
    }

    /// Resolves `PROVIDER:MODEL`.
    pub async fn resolve(&self, spec: &str) -> Result<ResolvedModel, SessionError> {
        let Some((provider, model)) = spec
            .split_once(':')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        else {
            return Err(SessionError::bad_input(
                format!("the model '{spec}' does not name its provider"),
                format!("write PROVIDER:MODEL, for example openai:{spec} or ollama:{spec}"),
            ));
        };
        let resolved = |provider| ResolvedModel {
            provider,
            model_name: model.to_string(),
            keep_alive: None,
        };
        if let Some(entry) = self.config.providers.get(provider) {
            return Ok(resolved(provider_from_entry(provider, entry)?));
        }
        if let Some(r) = self.resolvers.get(provider) {
            return r.resolve(provider, model).await;
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let openai_base =
            env("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into());
        match provider {
            "openai" | "openai-chat" => {
                let key = env("OPENAI_API_KEY").ok_or_else(|| {
                    SessionError::bad_input(
                        format!("the model '{spec}' needs an OpenAI API key, and OPENAI_API_KEY is not set"),
                        "export OPENAI_API_KEY=sk-... (and OPENAI_BASE_URL for a compatible server)",
                    )
                })?;
                let api = if provider == "openai" {
                    Api::Responses
                } else {
                    Api::Chat
                };
                let mut p =
                    ProviderConfig::new(provider, api, &openai_base, Some(Secret::new(key)));
                p.api_key_env = Some("OPENAI_API_KEY".into());
                Ok(resolved(p))
            }
            "ollama" => {
                let base =
                    env("OLLAMA_BASE_URL").unwrap_or_else(|| "http://127.0.0.1:11434/v1".into());
                let mut p = ProviderConfig::new("ollama", Api::Chat, &base, None);
                p.max_tokens_field = "max_tokens".into();
                Ok(resolved(p))
            }
            other => {
                let mut known = vec!["openai", "openai-chat", "ollama"];
                known.extend(self.resolvers.keys().map(String::as_str));
                known.extend(self.config.providers.keys().map(String::as_str));
                let where_ = match &self.config.path {
                    Some(p) => format!("add [providers.{other}] to {}", p.display()),
                    None => format!("or add [providers.{other}] to a config file (--config)"),
                };
                Err(SessionError::bad_input(
                    format!("unknown provider '{other}' in the model '{spec}'"),
                    format!("known providers: {}; {where_}", known.join(", ")),
                ))
            }
        }
    }
}

/// A configured provider's client settings.
fn provider_from_entry(name: &str, e: &ProviderEntry) -> Result<ProviderConfig, SessionError> {
    let key = match &e.api_key_env {
        None => None,
        Some(var) => Some(Secret::new(
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    SessionError::bad_input(
                        format!("provider '{name}' takes its API key from {var}, which is not set"),
                        format!("export {var}=..., or remove api_key_env from [providers.{name}]"),
                    )
                })?,
        )),
    };
    let mut p = ProviderConfig::new(name, e.api, &e.base_url, key);
    p.api_key_env = e.api_key_env.clone();
    if let Some(n) = e.max_retries {
        p.max_retries = n;
    }
    if let Some(ms) = e.retry_initial_ms {
        p.retry_initial = Duration::from_millis(ms);
    }
    if let Some(s) = e.attempt_timeout_secs {
        p.attempt_timeout = Duration::from_secs(s);
    }
    if let Some(s) = e.idle_timeout_secs {
        p.idle_timeout = Duration::from_secs(s);
    }
    if let Some(s) = e.stream {
        p.stream = s;
    }
    if let Some(f) = &e.max_tokens_field {
        p.max_tokens_field = f.clone();
    }
    if let Some(s) = e.max_retry_after_secs {
        p.max_retry_wait = Duration::from_secs(s);
    }
    if let Some(r) = e.record_raw {
        p.record_raw = r;
    }
    if let Some(j) = e.json_output {
        p.json_output = j;
    }
    Ok(p)
}

/// `$XDG_CONFIG_HOME/cordon/config.toml`, or `~/.config/cordon/config.toml`.
pub(crate) fn default_path() -> Option<PathBuf> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base =
        non_empty("XDG_CONFIG_HOME").or_else(|| non_empty("HOME").map(|h| h.join(".config")))?;
    Some(base.join("cordon").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl ModelResolver for Fixed {
        fn resolve<'a>(&'a self, provider: &'a str, model: &'a str) -> ResolveFuture<'a> {
            Box::pin(async move {
                Ok(ResolvedModel {
                    provider: ProviderConfig::new(
                        provider,
                        Api::Chat,
                        "http://127.0.0.1:1/v1",
                        None,
                    ),
                    model_name: model.to_uppercase(),
                    keep_alive: None,
                })
            })
        }

        fn recorded(&self, model: &str) -> String {
            format!("/abs/{model}")
        }
    }

    #[tokio::test]
    async fn registered_resolvers_are_asked_and_unknown_providers_named() {
        let mut models = Models::new(Config::default());
        models.register("fixed", Arc::new(Fixed));
        let r = models.resolve("fixed:small").await.unwrap();
        assert_eq!(r.model_name, "SMALL");
        assert_eq!(models.recorded("fixed:a.json"), "fixed:/abs/a.json");
        assert_eq!(models.recorded("ollama:qwen"), "ollama:qwen");
        let e = models.resolve("nope:x").await.err().unwrap();
        assert_eq!(e.kind(), crate::ErrorKind::BadInput);
        assert!(
            e.hint_text().unwrap().contains("fixed"),
            "{:?}",
            e.hint_text()
        );
        let e = models.resolve("gpt").await.err().unwrap();
        assert!(e.to_string().contains("does not name its provider"));
        assert_eq!(models.choose(None, Some("ollama:a")), "ollama:a");
        assert_eq!(models.choose(None, None), FALLBACK_MODEL);
    }
}
