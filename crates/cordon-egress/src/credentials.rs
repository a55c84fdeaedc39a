//! Credentials the proxy adds to requests, so that they never enter the sandbox.
//!
//! The sandbox sees a placeholder (`cordon-credential:NAME`); in an HTTPS request to a host
//! the credential names, after the policy allowed that request, the proxy puts the real value
//! where the credential is declared to go (its header, or its query parameter) and nowhere
//! else. A placeholder sent to any other host, or over plain HTTP, is left as it is. Values
//! are held here and nowhere else: never logged, never in an error.

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

/// The placeholder a sandbox sees for credential `name`.
pub fn placeholder(name: &str) -> String {
    format!("cordon-credential:{name}")
}

/// A credential with its value.
#[derive(Clone)]
pub struct Credential {
    /// Its declaration (name, hosts, header), as the policy gives it.
    pub rule: cordon_policy::rules::CredentialRule,
    value: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.rule.name)
            .field("value", &"<hidden>")
            .finish()
    }
}

impl Credential {
    /// `rule`'s credential with `value`.
    pub fn new(rule: cordon_policy::rules::CredentialRule, value: String) -> Self {
        Credential { rule, value }
    }
}

/// The credentials of a run.
#[derive(Debug, Clone, Default)]
pub struct Credentials(Vec<Credential>);

impl Credentials {
    /// These credentials.
    pub fn new(all: Vec<Credential>) -> Self {
        Credentials(all)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether requests to `host` may carry any of them (so its tunnels are opened, to put
    /// them in).
    pub fn any_for(&self, host: &str) -> bool {
        self.0.iter().any(|c| c.rule.covers(host))
    }

    /// Puts the credentials for `host` into a request, where each is declared to go: its
    /// header (the placeholder in it replaced, or the header set when the request lacks
    /// it) and its query parameter (the placeholder in its value replaced). Nowhere else: a
    /// placeholder in another header, the path or the body stays a placeholder, so an
    /// upstream that reflects what it is sent cannot be made to hand the value back. The
    /// names of those used, for the record.
    pub fn inject(&self, host: &str, headers: &mut HeaderMap, uri: &mut hyper::Uri) -> Vec<String> {
        let mut used = Vec::new();
        for c in self.0.iter().filter(|c| c.rule.covers(host)) {
            let mark = placeholder(&c.rule.name);
            let mut put = false;
            if let Some(name) = &c.rule.header
                && let Ok(name) = HeaderName::from_bytes(name.as_bytes())
            {
                let text = c
                    .rule
                    .format
                    .as_deref()
                    .unwrap_or("{}")
                    .replace("{}", &c.value);
                let new = match headers.get(&name).map(|v| v.to_str()) {
                    None => Some(text),
                    Some(Ok(sent)) if sent.contains(&mark) => Some(sent.replace(&mark, &c.value)),
                    // The request's own value, without the placeholder, is left alone.
                    Some(_) => None,
                };
                if let Some(Ok(mut v)) = new.map(|t| HeaderValue::from_str(&t)) {
                    v.set_sensitive(true);
                    headers.insert(name, v);
                    put = true;
                }
            }
            if let Some(param) = &c.rule.query
                && let Some(pq) = uri.path_and_query()
                && let Some(query) = pq.query()
            {
                let replaced: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((k, v)) if k == param && v.contains(&mark) => {
                            put = true;
                            format!("{k}={}", v.replace(&mark, &c.value))
                        }
                        _ => pair.to_string(),
                    })
                    .collect();
                if let Ok(new) = format!("{}?{}", pq.path(), replaced.join("&")).parse() {
                    *uri = new;
                }
            }
            if put {
                used.push(c.rule.name.clone());
            }
        }
        used
    }

    /// The values, for the run's redactor (nothing else may see them).
    pub fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|c| (c.rule.name.as_str(), c.value.as_str()))
    }
}
