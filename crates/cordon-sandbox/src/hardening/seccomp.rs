//! The seccomp filter: which system calls are refused, as data ([`rules`]), then compiled
//! and installed.

use super::HardeningError;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;

/// Namespace-creating flags refused to `clone`.
const NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// Syscalls refused outright: debugging other processes, mounts, namespaces, kernel keyrings,
/// BPF, perf, module and kexec loading, io_uring (which would bypass this filter), and others
/// no command needs.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_syslog,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // Host-wide administration: the clock, names, port I/O, roots, other processes' files.
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_chroot,
    libc::SYS_vhangup,
    libc::SYS_pidfd_getfd,
    libc::SYS_fanotify_init,
    libc::SYS_mount_setattr,
    libc::SYS_quotactl_fd,
    libc::SYS_lookup_dcookie,
    libc::SYS_uselib,
];

/// `ioctl` requests that change the host's terminals or network interfaces, refused
/// outright. Reading an interface's settings stays allowed.
const DENIED_IOCTLS: &[u64] = &[
    libc::TIOCSTI,   // push characters into a terminal's input
    libc::TIOCLINUX, // console tricks
    0x541D,          // TIOCCONS: take over the console's output
    0x890B,          // SIOCADDRT: routes
    0x890C,          // SIOCDELRT
    0x8911,          // SIOCSIFLINK
    0x8914,          // SIOCSIFFLAGS: bring interfaces up or down
    0x8916,          // SIOCSIFADDR
    0x8918,          // SIOCSIFDSTADDR
    0x891A,          // SIOCSIFBRDADDR
    0x891C,          // SIOCSIFNETMASK
    0x891E,          // SIOCSIFMETRIC
    0x8922,          // SIOCSIFMTU
    0x8923,          // SIOCSIFNAME
    0x8924,          // SIOCSIFHWADDR
    0x8931,          // SIOCADDMULTI
    0x8932,          // SIOCDELMULTI
    0x8934,          // SIOCSIFPFLAGS
    0x8936,          // SIOCDIFADDR
    0x8937,          // SIOCSIFHWBROADCAST
    0x8943,          // SIOCSIFTXQLEN
    0x8946,          // SIOCETHTOOL
    0x8949,          // SIOCSMIIREG
    0x8953,          // SIOCDARP
    0x8955,          // SIOCSARP
    0x8962,          // SIOCSRARP
    0x8971,          // SIOCSIFMAP
    0x89A0,          // SIOCBRADDBR
    0x89A1,          // SIOCBRDELBR
    0x89A2,          // SIOCBRADDIF
    0x89A3,          // SIOCBRDELIF
];

/// A condition on a system call's argument: `(argument index, operation, value)`.
pub type Condition = (u8, SeccompCmpOp, u64);

/// The filter as data: system call → the conditions under which it is refused (each inner
/// list is one rule, all of whose conditions must hold; an empty list refuses it always).
pub type Rules = BTreeMap<i64, Vec<Vec<Condition>>>;

/// Every refusal of the main filter (refused calls answer `EPERM`).
pub fn rules() -> Rules {
    let mut rules: Rules = DENIED.iter().map(|s| (*s, Vec::new())).collect();
    // Raw packets and kernel interfaces over sockets.
    rules.insert(
        libc::SYS_socket,
        vec![
            vec![(0, SeccompCmpOp::Eq, libc::AF_NETLINK as u64)],
            vec![(0, SeccompCmpOp::Eq, libc::AF_PACKET as u64)],
            vec![(1, SeccompCmpOp::MaskedEq(0xf), libc::SOCK_RAW as u64)],
        ],
    );
    // Typing into a terminal that is not ours, console tricks, changing interfaces.
    rules.insert(
        libc::SYS_ioctl,
        DENIED_IOCTLS
            .iter()
            .map(|r| vec![(1, SeccompCmpOp::Eq, *r)])
            .collect(),
    );
    // Device nodes: mknod of a character or block device (fifos and sockets stay allowed).
    let device = |arg: u8| -> Vec<Vec<Condition>> {
        [libc::S_IFCHR, libc::S_IFBLK]
            .iter()
            .map(|kind| {
                vec![(
                    arg,
                    SeccompCmpOp::MaskedEq(libc::S_IFMT as u64),
                    *kind as u64,
                )]
            })
            .collect()
    };
    rules.insert(libc::SYS_mknod, device(1));
    rules.insert(libc::SYS_mknodat, device(2));
    // New namespaces through clone's flags.
    rules.insert(
        libc::SYS_clone,
        NS_FLAGS
            .iter()
            .map(|f| vec![(0, SeccompCmpOp::MaskedEq(*f), *f)])
            .collect(),
    );
    rules
}

fn compile(rules: &Rules, refuse: SeccompAction) -> Result<BpfProgram, HardeningError> {
    let mut compiled = BTreeMap::new();
    for (call, list) in rules {
        let mut out = Vec::new();
        for conditions in list {
            let conds = conditions
                .iter()
                .map(|(arg, op, value)| {
                    SeccompCondition::new(*arg, SeccompCmpArgLen::Dword, op.clone(), *value)
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push(SeccompRule::new(conds)?);
        }
        compiled.insert(*call, out);
    }
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(HardeningError::SeccompBuild)?;
    let filter = SeccompFilter::new(compiled, SeccompAction::Allow, refuse, arch)?;
    Ok(filter.try_into()?)
}

/// Installs `rules`, and a second filter that answers `clone3` with ENOSYS: its flags sit in
/// memory the filter cannot read, so libc falls back to `clone`, whose flags it checks.
pub fn install(rules: &Rules) -> Result<(), HardeningError> {
    let main = compile(rules, SeccompAction::Errno(libc::EPERM as u32))?;
    let clone3 = compile(
        &[(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Errno(libc::ENOSYS as u32),
    )?;
    seccompiler::apply_filter(&main)?;
    seccompiler::apply_filter(&clone3)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_refuses_what_the_sandbox_promises() {
        let r = rules();
        for always in [
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_bpf,
            libc::SYS_io_uring_setup,
            libc::SYS_sethostname,
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_iopl,
            libc::SYS_ioperm,
            libc::SYS_keyctl,
        ] {
            assert_eq!(r.get(&always), Some(&Vec::new()), "syscall {always}");
        }
        let mknod = &r[&libc::SYS_mknod];
        assert_eq!(mknod.len(), 2, "character and block devices, not fifos");
        assert!(mknod.iter().all(|c| c[0].0 == 1));
        assert!(r[&libc::SYS_mknodat].iter().all(|c| c[0].0 == 2));
        let ioctls: Vec<u64> = r[&libc::SYS_ioctl].iter().map(|c| c[0].2).collect();
        for request in [libc::TIOCSTI, 0x8914, 0x890B] {
            assert!(ioctls.contains(&request), "ioctl {request:#x}");
        }
        assert!(
            !ioctls.contains(&0x8913),
            "reading an interface's flags stays allowed"
        );
        assert_eq!(r[&libc::SYS_clone].len(), NS_FLAGS.len());
        assert!(
            compile(&r, SeccompAction::Errno(1)).is_ok(),
            "and it compiles"
        );
    }
}
