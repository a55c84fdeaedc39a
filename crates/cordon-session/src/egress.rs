//! A run's egress proxy: started for a run with a sandbox whose policy could let some
//! request out, and the sandbox's one way out while the run goes on. Runs without a policy,
//! or under one that allows no host, get no proxy and no network, as before.

use crate::{ErrorKind, SessionError};
use cordon_core::{EventPayload, RunId};
use cordon_egress::{EgressConfig, EgressProxy, Journal, Judge};
use cordon_harness::NetworkFeed;
use cordon_policy::Policy;
use cordon_sandbox::Egress;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A run's proxy, and the private directory its socket lives in.
pub(crate) struct RunEgress {
    proxy: EgressProxy,
    endpoint: Egress,
    _dir: tempfile::TempDir,
}

impl RunEgress {
    /// The proxy for run `run_id` under `policy` (`None`: the run has none), with the hosts
    /// a person allowed; `None` when the policy lets nothing out and no host was allowed.
    pub(crate) async fn start(
        policy: Option<&Policy>,
        run_id: &RunId,
        granted: BTreeSet<String>,
    ) -> Result<Option<RunEgress>, SessionError> {
        let Some(policy) = policy.filter(|p| p.may_reach_network() || !granted.is_empty()) else {
            return Ok(None);
        };
        let cannot = |e: std::io::Error| {
            SessionError::new(
                ErrorKind::SandboxUnavailable,
                format!("cannot start the run's egress proxy: {e}"),
            )
            .caused_by(e)
        };
        // Private to this user (0700): the socket's own mode is 0600 too.
        let dir = tempfile::Builder::new()
            .prefix("cordon-egress-")
            .tempdir()
            .map_err(cannot)?;
        let mut config = EgressConfig::new(run_id.as_str());
        config.socket = Some(dir.path().join("proxy.sock"));
        config.tcp = true;
        let proxy = EgressProxy::start(config, Judge::new(Arc::new(policy.clone()), granted))
            .await
            .map_err(cannot)?;
        let endpoint = Egress {
            socket: dir.path().join("proxy.sock"),
            tcp: proxy.tcp().ok_or_else(|| {
                SessionError::new(
                    ErrorKind::SandboxUnavailable,
                    "the egress proxy has no TCP address",
                )
            })?,
        };
        Ok(Some(RunEgress {
            proxy,
            endpoint,
            _dir: dir,
        }))
    }

    /// How the sandbox reaches the proxy.
    pub(crate) fn endpoint(&self) -> &Egress {
        &self.endpoint
    }

    /// Stops the proxy once the sandbox has: what its last tunnels carried is then in the
    /// journal.
    pub(crate) async fn stop(&self) {
        self.proxy.stop().await;
    }

    /// What the proxy saw, for the runner to record.
    pub(crate) fn feed(&self) -> Arc<dyn NetworkFeed> {
        Arc::new(Feed(self.proxy.journal()))
    }
}

/// Refuses a sandbox with a way out whose isolation the policy does not accept for network
/// access (`[defaults] network_isolation = "namespaces"`, when only the landlock tier could
/// be made: UDP stays open there).
pub(crate) fn check_isolation(
    policy: Option<&Policy>,
    egress: Option<&RunEgress>,
    sandbox: &dyn cordon_sandbox::Sandbox,
) -> Result<(), SessionError> {
    let (Some(policy), Some(_)) = (policy, egress) else {
        return Ok(());
    };
    let kind = &sandbox.isolation().kind;
    if policy.network_needs_namespaces() && kind != "namespaces" {
        return Err(SessionError::new(
            ErrorKind::SandboxUnavailable,
            format!(
                "the policy {} lets requests out only from a sandbox with a network namespace of its own, and this sandbox's isolation is {kind}",
                policy.name()
            ),
        )
        .hint("run where bubblewrap can make namespaces (`cordon doctor` says why it cannot here), or use a policy that allows no network"));
    }
    Ok(())
}

/// The proxy's journal as the runner takes it.
struct Feed(Arc<Journal>);

impl NetworkFeed for Feed {
    fn take(&self) -> Vec<EventPayload> {
        self.0.take().into_iter().map(|r| r.into_event()).collect()
    }
}
