//! Credentials the proxy adds to requests, so that they never enter the sandbox.
//!
//! The sandbox sees a placeholder (`cordon-credential:NAME`); in a request to a host the
//! credential names, after the policy allowed that request, the proxy replaces the
//! placeholder with the real value wherever it appears in the headers or the query, and sets
//! the declared header when the request lacks it. A placeholder sent to any other host is
//! left as it is. Values are held here and nowhere else: never logged, never in an error.

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

    /// Puts the credentials for `host` into a request's headers and query: the names of
    /// those used, for the record. Placeholders of credentials for other hosts stay.
    pub fn inject(&self, host: &str, headers: &mut HeaderMap, uri: &mut hyper::Uri) -> Vec<String> {
        let mut used = Vec::new();
        for c in self.0.iter().filter(|c| c.rule.covers(host)) {
            let mark = placeholder(&c.rule.name);
            let mut put = false;
            for value in headers.values_mut() {
                let Ok(text) = value.to_str() else { continue };
                if text.contains(&mark)
                    && let Ok(v) = HeaderValue::from_str(&text.replace(&mark, &c.value))
                {
                    *value = v;
                    put = true;
                }
            }
            if let Some(pq) = uri.path_and_query()
                && pq.as_str().contains(&mark)
                && let Ok(new) = pq.as_str().replace(&mark, &c.value).parse()
            {
                *uri = new;
                put = true;
            }
            if let Some(name) = &c.rule.header
                && let Ok(name) = HeaderName::from_bytes(name.as_bytes())
                && !headers.contains_key(&name)
            {
                let text = c
                    .rule
                    .format
                    .as_deref()
                    .unwrap_or("{}")
                    .replace("{}", &c.value);
                if let Ok(mut v) = HeaderValue::from_str(&text) {
                    v.set_sensitive(true);
                    headers.insert(name, v);
                    put = true;
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
