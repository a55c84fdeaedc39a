//! Landlock: the rules the sandbox gets, worked out as a plan ([`plan`]) and then applied.

use super::{Hardening, HardeningError};
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};

/// The newest ABI this crate knows: best-effort mode keeps what the kernel supports, so a
/// newer kernel gets its newer rules (UDP, for one) without a change here.
pub const ABI_WANTED: ABI = ABI::V10;

/// A Landlock ruleset, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Rights handled (everything not granted below is denied).
    pub handled: BitFlags<AccessFs>,
    /// Paths granted `read` (read and execute).
    pub read_only: Vec<String>,
    /// Rights on `read`.
    pub read: BitFlags<AccessFs>,
    /// Paths granted `write`.
    pub read_write: Vec<String>,
    /// Rights on `read_write`: everything but making device nodes.
    pub write: BitFlags<AccessFs>,
    /// Whether TCP bind and connect are denied (no network namespace).
    pub block_tcp: bool,
    /// The one port TCP may connect to when blocked (the egress proxy's).
    pub tcp_connect: Option<u16>,
    /// Scopes: signals and abstract unix sockets stay inside the sandbox.
    pub scopes: BitFlags<Scope>,
}

/// The ruleset for `h`.
pub fn plan(h: &Hardening) -> Plan {
    let abi = ABI_WANTED;
    Plan {
        handled: AccessFs::from_all(abi),
        read_only: h.read_only.clone(),
        read: AccessFs::from_read(abi),
        read_write: h.read_write.clone(),
        // A block device for the host's disk would be one mknod away.
        write: AccessFs::from_all(abi) & !(AccessFs::MakeChar | AccessFs::MakeBlock),
        block_tcp: h.block_tcp,
        tcp_connect: h.tcp_connect.filter(|_| h.block_tcp),
        scopes: Scope::from_all(abi),
    }
}

/// Applies `plan` to the calling thread (and so to everything it starts); returns how it
/// was enforced, in words, and the ABI in effect.
pub fn apply(plan: &Plan) -> Result<(String, u32), HardeningError> {
    let existing = |paths: &[String]| -> Vec<String> {
        paths
            .iter()
            .filter(|p| std::path::Path::new(p).exists())
            .cloned()
            .collect()
    };
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(plan.handled)?
        .scope(plan.scopes)?;
    if plan.block_tcp {
        ruleset = ruleset.handle_access(AccessNet::from_all(ABI_WANTED))?;
    }
    let mut created = ruleset
        .create()?
        .add_rules(path_beneath_rules(existing(&plan.read_only), plan.read))?
        .add_rules(path_beneath_rules(existing(&plan.read_write), plan.write))?;
    if let Some(port) = plan.tcp_connect {
        created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
    }
    let status = created.restrict_self()?;
    let effective = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
        _ => 0,
    };
    let how = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced",
        // Rights newer than the kernel are left out: everything it supports is enforced.
        RulesetStatus::PartiallyEnforced => "enforced with every right this kernel has",
        RulesetStatus::NotEnforced => "not enforced (no Landlock in this kernel)",
    };
    Ok((format!("{how} (ABI {effective})"), effective))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn nothing_may_make_devices_and_signals_stay_inside() {
        let p = plan(&Hardening {
            read_only: vec!["/usr".into()],
            read_write: vec!["/workspace".into(), "/dev".into()],
            block_tcp: true,
            tcp_connect: None,
            limits: Limits::default(),
        });
        assert!(p.handled.contains(AccessFs::MakeChar | AccessFs::MakeBlock));
        assert!(!p.write.contains(AccessFs::MakeChar));
        assert!(!p.write.contains(AccessFs::MakeBlock));
        assert!(
            p.write
                .contains(AccessFs::WriteFile | AccessFs::MakeDir | AccessFs::RemoveFile)
        );
        assert!(!p.read.contains(AccessFs::WriteFile));
        assert!(p.read.contains(AccessFs::Execute | AccessFs::ReadFile));
        assert!(p.scopes.contains(Scope::Signal | Scope::AbstractUnixSocket));
        assert!(p.block_tcp);
        assert_eq!(p.read_write, ["/workspace", "/dev"]);
    }
}
