//! The config file, and turning `PROVIDER:MODEL` into a model client's settings.
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
//! ```

use crate::exit::Failure;
use cordon_model::{Api, ProviderConfig, Secret};
use cordon_testkit::{Script, ScriptedServer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The model used when neither the command line, the agent file nor the config names one.
pub const FALLBACK_MODEL: &str = "openai:gpt-5-mini";

/// The config file's contents.
#[derive(Debug, Default, Deserialize)]
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

/// A model ready to call: the provider's settings, the model's name there, and the
/// scripted server behind it when there is one (kept alive as long as this is).
pub struct ResolvedModel {
    pub provider: ProviderConfig,
    pub model_name: String,
    pub _server: Option<ScriptedServer>,
}

impl Config {
    /// Loads `explicit`, or the default file if it exists.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match default_path() {
                Some(p) if p.exists() => p,
                _ => return Ok(Config::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::bad_input(
                format!("cannot read the config file {}: {e}", path.display()),
                "pass an existing file with --config, or unset CORDON_CONFIG",
            )
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            Failure::bad_input(
                format!(
                    "the config file {} is not valid: {}",
                    path.display(),
                    e.to_string().trim_end()
                ),
                "see the config section of the README for the fields a config file takes",
            )
        })?;
        config.path = Some(path);
        Ok(config)
    }

    /// Resolves `PROVIDER:MODEL` to a provider and model name, starting the scripted server
    /// for `scripted:` and `scripted-chat:`.
    pub async fn resolve(&self, spec: &str) -> anyhow::Result<ResolvedModel> {
        let Some((provider, model)) = spec
            .split_once(':')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        else {
            return Err(Failure::bad_input(
                format!("the model '{spec}' does not name its provider"),
                format!("write PROVIDER:MODEL, for example openai:{spec} or ollama:{spec}"),
            ));
        };
        if let Some(entry) = self.providers.get(provider) {
            return Ok(ResolvedModel {
                provider: provider_from_entry(provider, entry)?,
                model_name: model.to_string(),
                _server: None,
            });
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let openai_base =
            env("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into());
        let provider = match provider {
            "openai" | "openai-chat" => {
                let key = env("OPENAI_API_KEY").ok_or_else(|| {
                    Failure::bad_input(
                        format!("the model '{spec}' needs an OpenAI API key, and OPENAI_API_KEY is not set"),
                        "export OPENAI_API_KEY=sk-... (and OPENAI_BASE_URL for a compatible server)",
                    )
                })?;
                let api = if provider == "openai" {
                    Api::Responses
                } else {
                    Api::Chat
                };
                ProviderConfig::new(provider, api, &openai_base, Some(Secret::new(key)))
            }
            "ollama" => {
                let base =
                    env("OLLAMA_BASE_URL").unwrap_or_else(|| "http://127.0.0.1:11434/v1".into());
                let mut p = ProviderConfig::new("ollama", Api::Chat, &base, None);
                p.max_tokens_field = "max_tokens".into();
                p
            }
            "scripted" | "scripted-chat" => return scripted(provider, model).await,
            other => {
                let mut known = vec![
                    "openai",
                    "openai-chat",
                    "ollama",
                    "scripted",
                    "scripted-chat",
                ];
                known.extend(self.providers.keys().map(String::as_str));
                let where_ = match &self.path {
                    Some(p) => format!("add [providers.{other}] to {}", p.display()),
                    None => format!("or add [providers.{other}] to a config file (--config)"),
                };
                return Err(Failure::bad_input(
                    format!("unknown provider '{other}' in the model '{spec}'"),
                    format!("known providers: {}; {where_}", known.join(", ")),
                ));
            }
        };
        Ok(ResolvedModel {
            provider,
            model_name: model.to_string(),
            _server: None,
        })
    }
}

/// A configured provider's client settings.
fn provider_from_entry(name: &str, e: &ProviderEntry) -> anyhow::Result<ProviderConfig> {
    let key = match &e.api_key_env {
        None => None,
        Some(var) => Some(Secret::new(
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Failure::bad_input(
                        format!("provider '{name}' takes its API key from {var}, which is not set"),
                        format!("export {var}=..., or remove api_key_env from [providers.{name}]"),
                    )
                })?,
        )),
    };
    let mut p = ProviderConfig::new(name, e.api, &e.base_url, key);
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

/// `spec` as it should be recorded: a scripted model's script path made absolute, so that
/// a resume from another directory finds the same script.
pub fn recorded_spec(spec: &str) -> String {
    match spec.split_once(':') {
        Some((p @ ("scripted" | "scripted-chat"), file)) if !Path::new(file).is_absolute() => {
            match std::path::absolute(file) {
                Ok(abs) => format!("{p}:{}", abs.display()),
                Err(_) => spec.to_string(),
            }
        }
        _ => spec.to_string(),
    }
}

/// `scripted:FILE`: the scripted server, in this process, on a free loopback port.
async fn scripted(provider: &str, file: &str) -> anyhow::Result<ResolvedModel> {
    let script = Script::load(Path::new(file)).map_err(|e| {
        Failure::bad_input(
            e.to_string(),
            "scripted:FILE takes a script file; see examples/ for one",
        )
    })?;
    let model_name = script.model_name().to_string();
    let server = ScriptedServer::start(script).await?;
    let api = if provider == "scripted" {
        Api::Responses
    } else {
        Api::Chat
    };
    let mut p = ProviderConfig::new(provider, api, &server.base_url(), None);
    p.retry_initial = Duration::from_millis(100);
    Ok(ResolvedModel {
        provider: p,
        model_name,
        _server: Some(server),
    })
}

/// `$XDG_CONFIG_HOME/cordon/config.toml`, or `~/.config/cordon/config.toml`.
fn default_path() -> Option<PathBuf> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base =
        non_empty("XDG_CONFIG_HOME").or_else(|| non_empty("HOME").map(|h| h.join(".config")))?;
    Some(base.join("cordon").join("config.toml"))
}
