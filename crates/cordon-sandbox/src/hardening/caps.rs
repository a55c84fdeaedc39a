//! Capabilities: every set emptied and the securebits that keep them so locked.

use super::HardeningError;

/// The securebits locked on: root gets no capabilities from exec or from a uid change, and
/// ambient capabilities cannot be raised; locked, so nothing inside can turn them off.
pub fn locked_securebits() -> capctl::prctl::Secbits {
    use capctl::prctl::Secbits;
    Secbits::NOROOT
        | Secbits::NOROOT_LOCKED
        | Secbits::NO_SETUID_FIXUP
        | Secbits::NO_SETUID_FIXUP_LOCKED
        | Secbits::KEEP_CAPS_LOCKED
        | Secbits::NO_CAP_AMBIENT_RAISE
        | Secbits::NO_CAP_AMBIENT_RAISE_LOCKED
}

/// Drops every capability from every set, after locking the securebits (which needs
/// CAP_SETPCAP, so it comes first), then checks that nothing is left; returns whether the
/// securebits are locked and the bounding set cleared. A supervisor started by root in the
/// landlock tier holds every capability until here.
///
/// A supervisor started without privilege and without a user namespace holds no capability
/// and no root uid, and may neither lock securebits nor clear its bounding set. With
/// no_new_privs (set here) it can never gain a capability or root, which is what those
/// would guard; its effective, permitted, inheritable and ambient sets are still emptied.
pub fn drop_all() -> Result<bool, HardeningError> {
    use capctl::{CapState, ambient, bounding, prctl};
    let err = |what: &'static str| move |source| HardeningError::Capabilities { what, source };
    prctl::set_no_new_privs().map_err(err("set no_new_privs"))?;
    let current = CapState::get_current().map_err(err("read"))?;
    let privileged = any_root_uid() || !current.permitted.is_empty();
    if privileged {
        let want = locked_securebits();
        let have = prctl::get_securebits().map_err(err("read securebits"))?;
        if !have.contains(want) {
            prctl::set_securebits(have | want).map_err(err("lock securebits"))?;
        }
        bounding::clear().map_err(err("clear the bounding set"))?;
        bounding::clear_unknown().map_err(err("clear the bounding set"))?;
    }
    ambient::clear().map_err(err("clear the ambient set"))?;
    CapState::empty()
        .set_current()
        .map_err(err("clear the effective, permitted and inheritable sets"))?;
    let now = CapState::get_current().map_err(err("read back"))?;
    let bounding_left = bounding::probe();
    if !now.effective.is_empty()
        || !now.permitted.is_empty()
        || !now.inheritable.is_empty()
        || (privileged && !bounding_left.is_empty())
        || ambient::probe().is_some_and(|a| !a.is_empty())
    {
        return Err(HardeningError::CapabilitiesLeft(format!(
            "{now:?}, bounding {bounding_left:?}"
        )));
    }
    Ok(privileged)
}

/// Whether any of the real, effective or saved uids is root.
fn any_root_uid() -> bool {
    let r = nix::unistd::getresuid();
    r.map_or(true, |u| {
        u.real.is_root() || u.effective.is_root() || u.saved.is_root()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_securebit_that_keeps_capabilities_out_is_locked() {
        let bits = locked_securebits().bits();
        // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE and each one's lock; KEEP_CAPS
        // locked off.
        assert_eq!(bits, 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x40 | 0x80);
        assert_eq!(bits & 0x10, 0, "KEEP_CAPS itself is never set");
    }
}
