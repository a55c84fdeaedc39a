//! The local provider: sandboxes on this host, and what each tier guarantees as data.

use super::{LocalSandbox, SandboxConfig, SupervisorCommand};
use crate::error::SandboxError;
use crate::hardening::{Applied, Limits};
use crate::provider::{Isolation, Network, SandboxProvider, SandboxRequest, Strength};
use crate::sandbox::{Sandbox, SandboxFuture};
use crate::tier::{Tier, TierChoice};
use std::sync::Arc;

/// Makes [`LocalSandbox`]es: bubblewrap namespaces where the host allows them, else
/// Landlock alone; unconfined only when asked for by name.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    supervisor: SupervisorCommand,
}

impl LocalProvider {
    /// A provider whose sandboxes run `supervisor` (usually [`SupervisorCommand::installed`]:
    /// the `cordon-supervisor` beside `cordon`, or `cordon __supervisor`).
    pub fn new(supervisor: SupervisorCommand) -> Self {
        LocalProvider { supervisor }
    }

    /// The local configuration a request asks for.
    pub fn config(&self, request: SandboxRequest) -> Result<SandboxConfig, SandboxError> {
        let tier = match request.isolation.as_deref() {
            None | Some("auto") => TierChoice::Auto,
            Some("namespaces") => TierChoice::Exactly(Tier::Namespaces),
            Some("landlock") => TierChoice::Exactly(Tier::Landlock),
            Some("unconfined") => TierChoice::Exactly(Tier::Unconfined),
            Some(other) => return Err(crate::provider::unknown_kind(self, other)),
        };
        let egress = match (request.network, request.egress) {
            (Network::Off, _) => None,
            (Network::Proxied, Some(egress)) => Some(egress),
            (Network::Proxied, None) => {
                return Err(SandboxError::Config(
                    "a proxied network needs the egress proxy's address".into(),
                ));
            }
            (other, _) => {
                return Err(SandboxError::Config(format!(
                    "the local provider gives sandboxes no network or only its egress proxy, and this request asks for {other:?}"
                )));
            }
        };
        Ok(SandboxConfig {
            workspace: request.workspace,
            read_only: request.read_only,
            env: request.env,
            tier,
            supervisor: self.supervisor.clone(),
            limits: request.limits,
            root: request.root,
            grants: request
                .mounts
                .into_iter()
                .map(|m| (m.path, m.writable))
                .collect(),
            read_only_paths: request.read_only_paths,
            hidden_paths: request.hidden_paths,
            protected: request.protected,
            egress,
        })
    }
}

impl SandboxProvider for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec!["namespaces", "landlock", "unconfined"]
    }

    fn create(&self, request: SandboxRequest) -> SandboxFuture<'_, Arc<dyn Sandbox>> {
        Box::pin(async move {
            let config = self.config(request)?;
            let sandbox: Arc<dyn Sandbox> = Arc::new(LocalSandbox::create(config).await?);
            Ok(sandbox)
        })
    }
}

/// What a local sandbox of `tier` guarantees, given what its supervisor applied.
pub(super) fn isolation(
    tier: Tier,
    applied: &Applied,
    writable_grants: bool,
    proxied: bool,
    limits: Limits,
) -> Isolation {
    let (strength, network) = match tier {
        Tier::Namespaces => (Strength::Isolated, Network::Off),
        Tier::Landlock => (Strength::Restricted, Network::NoTcp),
        Tier::Unconfined => (Strength::Unconfined, Network::Host),
    };
    let network = match (network, proxied) {
        (Network::Off | Network::NoTcp, true) => Network::Proxied,
        (n, _) => n,
    };
    let mut enforced = Vec::new();
    if tier == Tier::Namespaces {
        enforced
            .push("namespaces: user (unprivileged uid), mount, pid, network, IPC, UTS".to_string());
    }
    if applied.landlock_abi > 0 {
        enforced.push(format!("landlock: {}", applied.landlock));
    }
    if applied.seccomp {
        enforced.push("seccomp: system call filter".into());
    }
    if applied.rlimits {
        enforced.push("rlimits: processes, memory, file size, open files, CPU time".into());
    }
    if applied.capabilities_dropped {
        enforced.push(match applied.securebits_locked {
            true => "capabilities: all dropped, securebits locked".into(),
            false => "capabilities: none held (no_new_privs)".into(),
        });
    }
    if let Some(cg) = &applied.cgroups {
        enforced.push(format!("cgroups: {cg}"));
    }
    Isolation {
        provider: "local".into(),
        kind: tier.as_str().into(),
        strength,
        network,
        confined_to_workspace: tier == Tier::Namespaces && !writable_grants && !proxied,
        enforced,
        gaps: tier
            .gaps(applied)
            .iter()
            .map(|s| s.to_string())
            .chain(
                (proxied && tier == Tier::Landlock).then(|| {
                    "TCP may connect to the egress proxy's port number on any address: Landlock's rules name ports, not addresses".to_string()
                }),
            )
            .collect(),
        limits,
        details: serde_json::to_value(applied).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Mount;

    fn provider() -> LocalProvider {
        LocalProvider::new(SupervisorCommand {
            program: "/bin/true".into(),
            args: Vec::new(),
            fallback: None,
        })
    }

    #[test]
    fn requests_map_to_local_configs_and_unknown_kinds_are_refused() {
        let mut r = SandboxRequest::new("/w", "/project");
        r.mounts.push(Mount {
            path: "/data".into(),
            writable: true,
        });
        r.isolation = Some("landlock".into());
        let c = provider().config(r.clone()).unwrap();
        assert_eq!(c.tier, TierChoice::Exactly(Tier::Landlock));
        assert_eq!(c.grants, vec![("/data".into(), true)]);
        assert_eq!(c.root, "/project");
        r.isolation = Some("vm".into());
        let e = provider().config(r.clone()).unwrap_err().to_string();
        assert!(
            e.contains("no isolation kind 'vm'") && e.contains("namespaces"),
            "{e}"
        );
        r.isolation = None;
        r.network = Network::Host;
        assert!(provider().config(r).is_err(), "network is never granted");
    }

    #[test]
    fn isolation_reports_strength_network_and_confinement() {
        let applied = Applied {
            landlock: "fully enforced (ABI 7)".into(),
            landlock_abi: 7,
            seccomp: true,
            rlimits: true,
            capabilities_dropped: true,
            securebits_locked: true,
            cgroups: None,
        };
        let ns = isolation(Tier::Namespaces, &applied, false, false, Limits::default());
        assert_eq!(
            (ns.strength, ns.network, ns.confined_to_workspace),
            (Strength::Isolated, Network::Off, true)
        );
        assert!(ns.gaps.is_empty());
        assert!(ns.enforced.iter().any(|e| e.starts_with("seccomp")));
        let granted = isolation(Tier::Namespaces, &applied, true, false, Limits::default());
        assert!(
            !granted.confined_to_workspace,
            "a writable grant reaches the host"
        );
        let ll = isolation(Tier::Landlock, &applied, false, false, Limits::default());
        assert_eq!(
            (ll.strength, ll.network),
            (Strength::Restricted, Network::NoTcp)
        );
        assert!(!ll.confined_to_workspace && !ll.gaps.is_empty());
        let un = isolation(
            Tier::Unconfined,
            &Applied::none(),
            false,
            false,
            Limits::default(),
        );
        assert_eq!(un.strength, Strength::Unconfined);
        assert!(un.enforced.is_empty());
        assert!(
            Strength::Unconfined < Strength::Restricted
                && Strength::Restricted < Strength::Isolated
        );
    }
}
