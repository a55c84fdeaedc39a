//! cordon's egress proxy: the one way out of a sandbox.
//!
//! A sandbox under a policy that allows some network gets no route of its own. Its
//! programs reach the network only through this proxy, which runs in the harness, on the
//! host, one per run:
//!
//! - **HTTPS** goes through `CONNECT host:port` and is tunnelled untouched: the proxy
//!   judges the host and port, never sees inside.
//! - **Plain HTTP** comes in absolute form (`GET http://host/path`) and is forwarded, so its
//!   method and path are judged and recorded too.
//! - **Names are resolved here**: the sandbox has no resolver. An address a name leads to is
//!   checked again, so an allowed name that resolves to a private or loopback address is
//!   refused unless a rule names it.
//! - **Refusals explain**: a refused request gets 403 (429 over a rate limit) with the rule
//!   in the status line, an `x-cordon-rule` header, and a body that says why and, when a
//!   person could allow the host, how.
//! - **Everything is recorded**: each request becomes a [`Record`] in the proxy's
//!   [`Journal`], which the run takes and writes to its log as `network_request` events.
//!
//! The decisions are the run's [`cordon_policy::Policy`] (see [`Judge`]); how the sandbox
//! reaches the proxy (a Unix socket bind-mounted into a network namespace, or a loopback
//! port that Landlock lets through) is the sandbox's business.
//!
//! ```no_run
//! # async fn demo(policy: std::sync::Arc<cordon_policy::Policy>) -> std::io::Result<()> {
//! use cordon_egress::{EgressConfig, EgressProxy, Judge};
//! let mut config = EgressConfig::new("run-1");
//! config.tcp = true;
//! let proxy = EgressProxy::start(config, Judge::new(policy, Default::default())).await?;
//! println!("HTTPS_PROXY=http://{}", proxy.tcp().unwrap());
//! // … later, the run records what went through:
//! for record in proxy.journal().take() {
//!     let _event = record.into_event();
//! }
//! # Ok(()) }
//! ```

mod count;
pub mod credentials;
mod intercept;
mod journal;
mod judge;
mod proxy;
pub mod tls;

pub use credentials::{Credential, Credentials, placeholder};
pub use journal::{Journal, KEPT_RECORDS, Record};
pub use judge::{Judge, Judgement, grant_key};
pub use proxy::{EgressConfig, EgressProxy};
