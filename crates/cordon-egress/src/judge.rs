//! Whether a request may go out: the run's policy, the hosts a person allowed, the rules'
//! rate limits, and (once a name is resolved) the addresses it leads to.

use cordon_policy::{Decision, Policy, Reason, Request, Verdict};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the judge decided about a request.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// The decision as the log records it (with a person's grant or a rate limit folded in).
    pub verdict: Verdict,
    /// The rules that decided.
    pub rules: Vec<String>,
    /// One line: the decision and why.
    pub summary: String,
    /// The status a refused request is answered with (403, or 429 over a rate limit);
    /// `None` when the request may go out.
    pub refusal: Option<u16>,
}

impl Judgement {
    fn from_decision(decision: &Decision) -> Self {
        Judgement {
            verdict: decision.verdict,
            rules: decision.deciding_keys(),
            summary: decision.summary(),
            refusal: (decision.verdict != Verdict::Allow).then_some(403),
        }
    }
}

/// Judges requests for one run.
#[derive(Debug)]
pub struct Judge {
    policy: std::sync::Arc<Policy>,
    granted: BTreeSet<String>,
    /// Recent requests per (rule, host), for the rules' rate limits.
    recent: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
}

/// The key a person's grant of `host` is recorded under.
pub fn grant_key(host: &str) -> String {
    format!("host:{host}")
}

impl Judge {
    /// A judge for `policy`, with the hosts a person allowed for the rest of the run.
    pub fn new(policy: std::sync::Arc<Policy>, granted: BTreeSet<String>) -> Self {
        Judge {
            policy,
            granted,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// The policy judged by.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Judges `request` (counting it against the rate limits when it is allowed).
    pub fn judge(&self, request: &Request) -> Judgement {
        let decision = self.policy.decide_request(request);
        let mut judgement = Judgement::from_decision(&decision);
        if decision.verdict != Verdict::Allow && self.person_allows(&request.host, &decision) {
            judgement.verdict = Verdict::Allow;
            judgement.refusal = None;
            judgement.rules.push(grant_key(&request.host));
            judgement.summary = format!(
                "allow: a person allowed {} for the rest of the run (the policy said: {})",
                request.host, judgement.summary
            );
        }
        if judgement.refusal.is_none()
            && let Some(over) = self.over_rate(request)
        {
            return over;
        }
        judgement
    }

    /// Whether a person's grant covers what decided: a grant allows what the policy leaves
    /// to a person (`ask`) or to its default for unnamed hosts, never what a rule denies
    /// nor a private address no rule names.
    fn person_allows(&self, host: &str, decision: &Decision) -> bool {
        self.granted.contains(host)
            && decision
                .deciding()
                .all(|r: &Reason| r.verdict == Verdict::Ask || r.rule == "network:default")
    }

    /// The refusal for a request over one of its rules' rate limits, or `None` (then the
    /// request is counted).
    fn over_rate(&self, request: &Request) -> Option<Judgement> {
        let rates = self.policy.rates(request);
        if rates.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        for (rule, rate) in &rates {
            let window = Duration::from_secs(u64::from(rate.per_secs));
            let seen = recent
                .entry((rule.clone(), request.host.clone()))
                .or_default();
            while seen
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                seen.pop_front();
            }
            if seen.len() >= rate.count as usize {
                return Some(Judgement {
                    verdict: Verdict::Deny,
                    rules: vec![rule.clone()],
                    summary: format!(
                        "deny: rule {rule} allows {} requests to {} every {} s, and that many were made; wait and try again",
                        rate.count, request.host, rate.per_secs
                    ),
                    refusal: Some(429),
                });
            }
        }
        for (rule, _) in rates {
            recent
                .entry((rule, request.host.clone()))
                .or_default()
                .push_back(now);
        }
        None
    }

    /// Whether `host`, resolved to `address`, may be reached on `port`: `Err` with the rule
    /// that refuses it. A rule that denies the address refuses it whatever name led there;
    /// a private or loopback address, or one of this host's own, is reached only when a rule
    /// that does not deny names the host or the address, for that port.
    pub fn may_reach(&self, host: &str, port: u16, address: IpAddr) -> Result<(), String> {
        if let Some(rule) = self.policy.denies_address(address, port) {
            return Err(rule);
        }
        let local = cordon_policy::is_private_address(address) || is_this_host(address);
        if local
            && !self.policy.names_host(host, port)
            && !self.policy.names_host(&address.to_string(), port)
        {
            return Err("network:private-address".into());
        }
        Ok(())
    }
}

/// Whether `address` is one of this host's own (any interface's): only a local address can
/// be bound to.
fn is_this_host(address: IpAddr) -> bool {
    std::net::UdpSocket::bind((address, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_core::PolicySource;
    use std::sync::Arc;

    fn policy(text: &str) -> Arc<Policy> {
        Arc::new(
            Policy::from_sources(vec![PolicySource {
                origin: "/p.toml".into(),
                text: text.into(),
            }])
            .unwrap(),
        )
    }

    fn req(host: &str) -> Request {
        Request {
            host: host.into(),
            port: 443,
            method: None,
        }
    }

    #[test]
    fn a_grant_allows_what_the_policy_leaves_to_a_person_and_nothing_it_denies() {
        let p = policy(
            r#"
[defaults]
network = "deny"
[[network]]
host = "ask.example"
decision = "ask"
[[network]]
host = "no.example"
decision = "deny"
"#,
        );
        let hosts = ["ask.example", "no.example", "other.example", "127.0.0.1"];
        let judge = Judge::new(p.clone(), hosts.iter().map(|h| h.to_string()).collect());
        let plain = Judge::new(p, BTreeSet::new());
        for host in hosts {
            assert_eq!(plain.judge(&req(host)).refusal, Some(403), "{host}");
        }
        let allowed = |h: &str| judge.judge(&req(h)).refusal.is_none();
        assert!(allowed("ask.example"));
        assert!(
            allowed("other.example"),
            "the default gives way to a person"
        );
        assert!(!allowed("no.example"), "a rule's deny stands");
        assert!(!allowed("127.0.0.1"), "a private address must be named");
        let j = judge.judge(&req("ask.example"));
        assert!(j.rules.contains(&"host:ask.example".to_string()), "{j:?}");
        assert!(j.summary.contains("a person allowed"), "{}", j.summary);
    }

    #[test]
    fn a_rate_limit_refuses_the_request_over_it_per_host() {
        let p = policy(
            r#"
[[network]]
host = "*.example"
decision = "allow"
rate = "3/min"
"#,
        );
        let judge = Judge::new(p, BTreeSet::new());
        for _ in 0..3 {
            assert_eq!(judge.judge(&req("a.example")).refusal, None);
        }
        let over = judge.judge(&req("a.example"));
        assert_eq!(over.refusal, Some(429));
        assert!(over.summary.contains("3 requests"), "{}", over.summary);
        assert_eq!(judge.judge(&req("b.example")).refusal, None, "per host");
    }

    #[test]
    fn a_private_address_is_reached_only_when_named() {
        let named = Judge::new(
            policy("[[network]]\nhost = \"git.corp\"\ndecision = \"allow\"\n"),
            BTreeSet::new(),
        );
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        assert!(
            named.may_reach("git.corp", 443, loopback).is_ok(),
            "the rule names the host"
        );
        assert!(named.may_reach("evil.example", 443, loopback).is_err());
        assert!(named.may_reach("evil.example", 443, public).is_ok());
        let by_address = Judge::new(
            policy("[[network]]\nhost = \"127.0.0.1\"\nports = [80]\ndecision = \"allow\"\n"),
            BTreeSet::new(),
        );
        assert!(by_address.may_reach("localhost", 80, loopback).is_ok());
        assert!(
            by_address.may_reach("localhost", 81, loopback).is_err(),
            "only the ports the rule names"
        );
        // This host's own addresses, whatever range they are in.
        let own = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| {
                s.connect("192.0.2.1:9")?;
                s.local_addr()
            })
            .map(|a| a.ip());
        if let Ok(own) = own
            && !own.is_unspecified()
        {
            assert_eq!(
                named.may_reach("evil.example", 80, own),
                Err("network:private-address".to_string()),
                "{own}"
            );
        }
        let denied = Judge::new(
            policy(
                "[defaults]\nnetwork = \"allow\"\n[[network]]\nhost = \"93.184.216.34\"\ndecision = \"deny\"\n",
            ),
            BTreeSet::new(),
        );
        assert_eq!(
            denied.may_reach("example.com", 443, public),
            Err("network:93.184.216.34".to_string()),
            "a name that resolves to a denied address"
        );
    }
}
