//! What the proxy saw, kept until the run records it: one [`Record`] per request, and a
//! bounded amount of them, so that a flood of requests cannot fill the harness's memory.

use cordon_core::EventPayload;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One request through the proxy, as the run log records it (see
/// [`EventPayload::NetworkRequest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The host the request named.
    pub host: String,
    /// The port.
    pub port: u16,
    /// `CONNECT` for a tunnel, else the HTTP method.
    pub method: String,
    /// The path of a plain HTTP request, without its query.
    pub path: Option<String>,
    /// `allow`, `ask` or `deny`.
    pub verdict: String,
    /// The rules that decided.
    pub rules: Vec<String>,
    /// The decision, or why an allowed request failed, as one line.
    pub summary: String,
    /// The status the sandbox was answered with, if any.
    pub status: Option<u16>,
    /// Bytes from the sandbox to the upstream.
    pub sent: u64,
    /// Bytes from the upstream to the sandbox.
    pub received: u64,
    /// How many requests the record stands for.
    pub count: u64,
}

impl Record {
    /// A request to `host`:`port` by `method` (and `path`, for plain HTTP), not yet decided.
    pub fn request(host: &str, port: u16, method: &str, path: Option<String>) -> Self {
        Record {
            host: host.to_string(),
            port,
            method: method.chars().take(16).collect(),
            path,
            verdict: String::new(),
            rules: Vec::new(),
            summary: String::new(),
            status: None,
            sent: 0,
            received: 0,
            count: 1,
        }
    }

    /// This request, refused by `rule` with `status`, for the reason `summary`.
    pub fn refused(self, rule: &str, status: u16, summary: String) -> Self {
        Record {
            verdict: "deny".into(),
            rules: vec![rule.to_string()],
            summary,
            status: Some(status),
            ..self
        }
    }

    /// The record as a run-log event.
    pub fn into_event(self) -> EventPayload {
        EventPayload::NetworkRequest {
            host: self.host,
            port: self.port,
            method: self.method,
            path: self.path,
            verdict: self.verdict,
            rules: self.rules,
            summary: self.summary,
            status: self.status,
            sent: self.sent,
            received: self.received,
            count: self.count,
        }
    }
}

/// Records kept one by one before the rest are summed up.
pub const KEPT_RECORDS: usize = 4096;

/// Records waiting for the run to take them. Beyond [`KEPT_RECORDS`], requests are summed up
/// per host, port, method and verdict (one record with a count and the bytes of all), so that
/// nothing goes unrecorded and memory stays bounded.
#[derive(Debug, Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: Vec<Record>,
    summed: BTreeMap<(String, u16, String, String), Record>,
}

impl Journal {
    /// Keeps a record.
    pub fn push(&self, record: Record) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.records.len() < KEPT_RECORDS {
            inner.records.push(record);
            return;
        }
        let key = (
            record.host.clone(),
            record.port,
            record.method.clone(),
            record.verdict.clone(),
        );
        match inner.summed.get_mut(&key) {
            Some(sum) => {
                sum.count += record.count;
                sum.sent += record.sent;
                sum.received += record.received;
            }
            None => {
                let summary = format!(
                    "more requests than are recorded one by one ({KEPT_RECORDS}), summed up; the first said: {}",
                    record.summary
                );
                inner.summed.insert(
                    key,
                    Record {
                        path: None,
                        summary,
                        ..record
                    },
                );
            }
        }
    }

    /// Takes every record kept so far, in the order the requests ended, sums last.
    pub fn take(&self) -> Vec<Record> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = std::mem::take(&mut inner.records);
        all.extend(std::mem::take(&mut inner.summed).into_values());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(host: &str, sent: u64) -> Record {
        Record {
            host: host.into(),
            port: 443,
            method: "CONNECT".into(),
            path: None,
            verdict: "allow".into(),
            rules: vec!["network:x".into()],
            summary: "allow".into(),
            status: Some(200),
            sent,
            received: 1,
            count: 1,
        }
    }

    #[test]
    fn a_flood_is_summed_up_and_nothing_is_lost() {
        let j = Journal::default();
        for i in 0..KEPT_RECORDS + 10 {
            j.push(record(if i % 2 == 0 { "a" } else { "b" }, 2));
        }
        let all = j.take();
        assert_eq!(all.len(), KEPT_RECORDS + 2);
        let total: u64 = all.iter().map(|r| r.count).sum();
        let sent: u64 = all.iter().map(|r| r.sent).sum();
        assert_eq!(total, KEPT_RECORDS as u64 + 10);
        assert_eq!(sent, 2 * (KEPT_RECORDS as u64 + 10));
        assert!(all.last().unwrap().summary.contains("summed up"));
        assert!(j.take().is_empty(), "taken once");
    }
}
