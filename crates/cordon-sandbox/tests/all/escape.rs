//! The escape suite: every test really attempts an attack from inside a sandbox, and fails
//! if the attack works. Each runs against both isolation tiers; the Landlock tier's
//! documented limits (`Tier::limits`) are the only places where it is allowed to differ.
//! `scripts/test` runs it as root and again as an unprivileged user.

use cordon_sandbox::Sandbox as _;
use cordon_sandbox::{LocalSandbox, Output, SandboxConfig, SupervisorCommand, Tier, TierChoice};
use std::path::Path;
use std::time::Duration;

pub(crate) struct Lab {
    pub(crate) sandbox: LocalSandbox,
    pub(crate) workspace: tempfile::TempDir,
}

pub(crate) async fn lab(tier: Tier, tune: impl FnOnce(&mut SandboxConfig)) -> Lab {
    settle().await;
    let workspace = tempfile::tempdir().unwrap();
    // scripts/test runs this suite a second time as an unprivileged user, from copies of the
    // binaries that user can reach.
    let program = std::env::var_os("CORDON_TEST_SUPERVISOR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_cordon-test-supervisor").into());
    let mut config = SandboxConfig::new(
        workspace.path(),
        SupervisorCommand {
            program,
            args: vec![],
            fallback: None,
        },
    );
    config.tier = TierChoice::Exactly(tier);
    tune(&mut config);
    let sandbox = LocalSandbox::create(config)
        .await
        .expect("the sandbox starts");
    Lab { sandbox, workspace }
}

impl Lab {
    pub(crate) async fn sh(&self, script: &str) -> Output {
        self.sh_in(".", script).await.expect("the command runs")
    }

    async fn sh_in(&self, cwd: &str, script: &str) -> Result<Output, cordon_sandbox::SandboxError> {
        let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
        self.sandbox.run(&argv, cwd, Duration::from_secs(30)).await
    }

    pub(crate) fn ws(&self) -> &Path {
        self.workspace.path()
    }
}

fn secret() -> String {
    format!(
        "cordon-secret-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .elapsed()
            .map_or(0, |d| d.as_nanos())
            ^ 0x5eed
    )
}

/// Generates one test per tier for an attack.
macro_rules! attack {
    ($name:ident, |$lab:ident, $tier:ident| $body:block) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn namespaces() {
                run(Tier::Namespaces).await
            }
            #[tokio::test]
            async fn landlock() {
                run(Tier::Landlock).await
            }
            async fn run($tier: Tier) {
                let $lab = lab($tier, |_| {}).await;
                let _ = &$tier;
                $body
            }
        }
    };
}

attack!(read_a_file_in_the_harness_home, |lab, tier| {
    let home = std::env::var("HOME").expect("HOME is set");
    let target = Path::new(&home).join(format!(".cordon-escape-{}-{tier:?}", std::process::id()));
    let s = secret();
    std::fs::write(&target, &s).unwrap();
    let out = lab
        .sh(&format!(
            "cat '{}'; cat ~root/.bash_history; ls -la '{home}'",
            target.display()
        ))
        .await;
    std::fs::remove_file(&target).unwrap();
    assert!(
        !out.stdout_text().contains(&s),
        "read the secret: {}",
        out.stdout_text()
    );
    assert!(
        !out.stdout_text().contains(".cordon-escape"),
        "listed the harness home: {}",
        out.stdout_text()
    );
});

attack!(write_outside_the_workspace, |lab, _tier| {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("pwned");
    let out = lab
        .sh(&format!(
            "echo x > '{}'; echo x > /usr/pwned; echo x > /etc/pwned; echo x > /pwned; echo x > ../pwned; echo inside > ok",
            target.display()
        ))
        .await;
    assert!(!target.exists(), "wrote outside: {}", out.stderr_text());
    assert!(
        !Path::new("/usr/pwned").exists()
            && !Path::new("/etc/pwned").exists()
            && !Path::new("/pwned").exists()
    );
    assert!(!lab.ws().parent().unwrap().join("pwned").exists());
    assert_eq!(
        std::fs::read_to_string(lab.ws().join("ok")).unwrap(),
        "inside\n",
        "the workspace itself is writable"
    );
});

attack!(see_the_harness_environment, |lab, _tier| {
    // The test process's own environment stands in for the harness's (cargo sets these).
    let manifest = env!("CARGO_MANIFEST_DIR");
    let out = lab
        .sh("env; cat /proc/1/environ /proc/$PPID/environ 2>/dev/null | tr '\\0' '\\n'")
        .await;
    let text = out.stdout_text();
    assert!(
        !text.contains(manifest) && !text.contains("CARGO_"),
        "harness variables leaked: {text}"
    );
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for name in names {
        assert!(
            [
                "PATH", "HOME", "LANG", "TERM", "PWD", "SHLVL", "_", "TMPDIR", "OLDPWD"
            ]
            .contains(&name),
            "unexpected variable {name} in: {text}"
        );
    }
});

attack!(connect_to_a_host_loopback_listener, |lab, _tier| {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = lab
        .sh(&format!(
            "bash -c 'echo hello > /dev/tcp/127.0.0.1/{port}' && echo CONNECTED; \
             perl -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => \"127.0.0.1:{port}\", Timeout => 2) and print \"CONNECTED\\n\"'"
        ))
        .await;
    assert!(
        !out.stdout_text().contains("CONNECTED"),
        "connected: {}",
        out.stdout_text()
    );
    assert!(
        listener.accept().is_err(),
        "the host listener received a connection"
    );
});

attack!(open_raw_and_netlink_sockets, |lab, _tier| {
    // AF_PACKET (17) raw, AF_INET (2) SOCK_RAW (3), AF_NETLINK (16).
    let out = lab
        .sh("for spec in '17 3 768' '2 3 1' '16 3 0'; do \
               perl -e '($d,$t,$p)=split / /, $ARGV[0]; socket(S,$d,$t,$p) ? print \"OPENED $ARGV[0]\\n\" : print \"refused: $!\\n\"' \"$spec\"; \
             done; ip link show 2>&1 | head -1")
        .await;
    let text = out.stdout_text();
    assert!(!text.contains("OPENED"), "{text}");
    assert_eq!(text.matches("refused").count(), 3, "{text}");
});

attack!(see_or_signal_a_host_process, |lab, tier| {
    let mut host = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    let pid = host.id();
    let out = lab
        .sh(&format!("ls /proc/{pid}/ >/dev/null 2>&1 && echo SEEN; kill -0 {pid} 2>/dev/null && echo SIGNALLABLE; kill -9 {pid}; ls /proc | grep -c '^[0-9]'"))
        .await;
    let alive = host.try_wait().unwrap().is_none();
    let _ = host.kill();
    let _ = host.wait();
    assert!(alive, "the sandbox killed a host process");
    let text = out.stdout_text();
    assert!(!text.contains("SIGNALLABLE"), "{text}");
    assert!(
        !text.contains("SEEN"),
        "{tier:?}: host process visible: {text}"
    );
});

attack!(ptrace_another_process, |lab, _tier| {
    // SYS_ptrace is 101 on x86_64; PTRACE_ATTACH is 16.
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let out = lab
        .sh("sleep 30 & p=$!; perl -e 'my $r = syscall(101, 16, $ARGV[0], 0, 0); print $r == 0 ? \"ATTACHED\\n\" : \"refused: $!\\n\"' $p; kill $p")
        .await;
    assert!(
        out.stdout_text()
            .contains("refused: Operation not permitted"),
        "{}",
        out.stdout_text()
    );
});

attack!(mount_a_filesystem, |lab, _tier| {
    let out = lab.sh("mkdir -p m; mount -t tmpfs none m 2>&1 && echo MOUNTED; perl -e 'syscall(165, \"none\", \"m\", \"tmpfs\", 0, 0) == 0 ? print \"MOUNTED\\n\" : print \"refused: $!\\n\"'").await;
    assert!(
        !out.stdout_text().contains("MOUNTED"),
        "{}",
        out.stdout_text()
    );
});

attack!(create_a_nested_user_namespace, |lab, _tier| {
    let out = lab
        .sh("unshare --user --map-root-user id -u 2>&1 && echo NESTED; unshare --user --pid --fork true 2>&1 && echo NESTED")
        .await;
    assert!(
        !out.stdout_text().contains("NESTED"),
        "{}",
        out.stdout_text()
    );
});

attack!(gain_privileges_through_a_setuid_binary, |lab, _tier| {
    // A copy of `id` owned by another user with the setuid bit: honoured, it would report
    // that user as the effective uid.
    let copy = lab.ws().join("id-setuid");
    std::fs::copy("/usr/bin/id", &copy).unwrap();
    std::process::Command::new("chown")
        .arg("65534:65534")
        .arg(&copy)
        .status()
        .unwrap();
    std::process::Command::new("chmod")
        .arg("6755")
        .arg(&copy)
        .status()
        .unwrap();
    let out = lab
        .sh("./id-setuid -u; id -u; su -c 'echo ROOT' root </dev/null 2>&1 | tail -1")
        .await;
    let lines: Vec<String> = out.stdout_text().lines().map(str::to_string).collect();
    assert_eq!(
        lines[0], lines[1],
        "the setuid bit changed the effective uid: {lines:?}"
    );
    assert!(!out.stdout_text().contains("ROOT"), "{}", out.stdout_text());
});

attack!(escape_workdir_with_dotdot_or_a_symlink, |lab, _tier| {
    std::os::unix::fs::symlink("/etc", lab.ws().join("etc-link")).unwrap();
    std::os::unix::fs::symlink("..", lab.ws().join("up")).unwrap();
    for cwd in ["..", "../..", "etc-link", "up", "/", "/etc"] {
        match lab.sh_in(cwd, "pwd").await {
            Ok(out) => panic!("workdir {cwd} was accepted: ran in {}", out.stdout_text()),
            Err(e) => assert!(
                e.to_string().contains("outside the workspace"),
                "{cwd}: {e}"
            ),
        }
    }
    assert!(
        lab.sh_in("sub/..", "echo fine").await.is_err(),
        "missing dirs are refused too"
    );
    std::fs::create_dir(lab.ws().join("sub")).unwrap();
    assert_eq!(
        lab.sh_in("sub", "pwd")
            .await
            .unwrap()
            .stdout_text()
            .trim_end()
            .rsplit('/')
            .next(),
        Some("sub")
    );
});

attack!(inject_input_into_a_terminal, |lab, _tier| {
    // TIOCSTI (0x5412) would push characters into a terminal's input queue.
    let out = lab
        .sh("perl -e 'my $c = \"x\"; ioctl(STDIN, 0x5412, $c) ? print \"INJECTED\\n\" : print \"refused: $!\\n\"'; \
             perl -e 'open(T, \"+<\", \"/dev/tty\") or print \"no tty: $!\\n\"'")
        .await;
    let text = out.stdout_text();
    assert!(
        text.contains("refused: Operation not permitted"),
        "the filter, not the fd type, refused it: {text}"
    );
    assert!(!text.contains("INJECTED"));
});

/// Runs an attack that stresses resources with small limits.
async fn limited(tier: Tier) -> Lab {
    lab(tier, |c| {
        c.limits.max_processes = 64;
        c.limits.memory = 256 << 20;
        c.limits.address_space = 512 << 20;
        c.limits.file_size = 16 << 20;
        c.limits.tmp_size = 32 << 20;
    })
    .await
}

macro_rules! resource_attack {
    ($name:ident, |$lab:ident| $body:block) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn namespaces() {
                let $lab = limited(Tier::Namespaces).await;
                $body
            }
            #[tokio::test]
            async fn landlock() {
                let $lab = limited(Tier::Landlock).await;
                $body
            }
        }
    };
}

/// How many processes this test's user has (threads included, as `RLIMIT_NPROC` counts).
fn user_tasks() -> usize {
    let uid = nix::unistd::getuid().as_raw().to_string();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
                .filter(|st| {
                    st.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .and_then(|l| l.split_whitespace().next())
                        == Some(uid.as_str())
                })
                .map(|st| {
                    st.lines()
                        .find_map(|l| l.strip_prefix("Threads:"))
                        .and_then(|t| t.trim().parse().ok())
                        .unwrap_or(1)
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Unprivileged, the process limit counts every process of this user, so each attack first
/// waits for an earlier one's processes (a fork bomb's, still being reaped after its
/// sandbox was killed) to be gone; otherwise the next sandbox's own supervisor could find no
/// process left to start a thread with.
async fn settle() {
    if nix::unistd::getuid().is_root() {
        return;
    }
    for _ in 0..100 {
        if user_tasks() < 32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

resource_attack!(a_fork_bomb_is_contained, |lab| {
    // As root, RLIMIT_NPROC does not hold (root is exempt), so a pids cgroup must; as anyone
    // else the rlimit holds.
    assert!(
        lab.sandbox.confinement().cgroups.is_some() || !nix::unistd::getuid().is_root(),
        "no pids cgroup: a fork bomb could not be contained here"
    );
    // First a counted flood, to see the limit hold; then the real thing.
    // Each process that starts leaves a marker, so the host can count them.
    lab.sh(
        "for i in $(seq 300); do (: > started.$i; sleep 5) 2>/dev/null & done 2>/dev/null; wait",
    )
    .await;
    let started = std::fs::read_dir(lab.ws())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("started.")
        })
        .count();
    assert!(started > 10, "the flood ran ({started} started)");
    assert!(
        started <= 64,
        "{started} processes started under a limit of 64"
    );
    let bomb = lab
        .sandbox
        .run(
            &["/bin/sh".into(), "-c".into(), "b(){ b | b & }; b".into()],
            ".",
            Duration::from_secs(3),
        )
        .await;
    assert!(bomb.is_ok(), "the sandbox survives: {bomb:?}");
    // The bomb's processes take a moment to die and be reaped; then the sandbox works again.
    let mut alive = String::new();
    for _ in 0..50 {
        if let Ok(out) = lab.sh_in(".", "echo alive").await {
            alive = out.stdout_text();
            if alive == "alive\n" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(alive, "alive\n", "and still works");
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success(),
        "the host can still fork"
    );
});

resource_attack!(a_memory_bomb_is_contained, |lab| {
    let out = lab
        .sh("perl -e '$x = \"a\" x (2 * 1024**3); print \"ALLOCATED\\n\"'; echo exit=$?")
        .await;
    assert!(
        !out.stdout_text().contains("ALLOCATED"),
        "{}",
        out.stdout_text()
    );
    assert_eq!(lab.sh("echo alive").await.stdout_text(), "alive\n");
});

resource_attack!(a_disk_fill_is_contained, |lab| {
    // One huge file stops at the file-size limit; /tmp stops at its tmpfs size.
    let out = lab
        .sh("dd if=/dev/zero of=big bs=1M count=200 2>&1 | tail -1; dd if=/dev/zero of=/tmp/big bs=1M count=200 2>&1 | tail -1")
        .await;
    let size = std::fs::metadata(lab.ws().join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        size <= 16 << 20,
        "a {size}-byte file was written past the 16 MiB limit: {}",
        out.stdout_text()
    );
    assert_eq!(lab.sh("echo alive").await.stdout_text(), "alive\n");
});

/// Free bytes on the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).unwrap();
    st.blocks_available() * st.fragment_size()
}

mod a_fill_of_many_files_stops_at_the_disk_reserve {
    use super::*;

    async fn run(tier: Tier) {
        // Keep all but 40 MiB of what is free now; then write 200 MiB in 5 MiB files, each
        // well under the file-size limit.
        let probe = tempfile::tempdir().unwrap();
        let reserve = free_bytes(probe.path()).saturating_sub(40 << 20);
        let lab = lab(tier, |c| c.limits.disk_reserve = reserve).await;
        let out = lab
            .sh("for i in $(seq 40); do dd if=/dev/zero of=fill.$i bs=1M count=5 2>/dev/null; sleep 0.05; done; echo FINISHED")
            .await;
        let written: u64 = std::fs::read_dir(lab.ws())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(
            !out.stdout_text().contains("FINISHED"),
            "{tier:?}: the fill ran to its end ({written} bytes)"
        );
        assert!(
            written < 120 << 20,
            "{tier:?}: {written} bytes written past a 40 MiB margin"
        );
        assert_eq!(out.signal, Some(9), "{tier:?}: killed");
    }

    #[tokio::test]
    async fn namespaces() {
        run(Tier::Namespaces).await
    }

    #[tokio::test]
    async fn landlock() {
        run(Tier::Landlock).await
    }
}

/// Reads this process's capability sets with capget(2) and prctl(2) (not /proc, which the
/// landlock tier hides), as `name=hex` pairs.
const CAPS_PY: &str = r#"
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
hdr = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0), 8)
data = ctypes.create_string_buffer(24)
assert libc.capget(hdr, data) == 0, ctypes.get_errno()
e0, p0, i0, e1, p1, i1 = struct.unpack("6I", data.raw)
bnd = sum(1 << c for c in range(64) if libc.prctl(23, c, 0, 0, 0) == 1)
amb = sum(1 << c for c in range(64) if libc.prctl(47, 1, c, 0, 0) == 1)
sec = libc.prctl(27, 0, 0, 0, 0)
nnp = libc.prctl(39, 0, 0, 0, 0)
print("eff=%x prm=%x inh=%x amb=%x nnp=%d bnd=%x secbits=%x" % (e0 | e1 << 32, p0 | p1 << 32, i0 | i1 << 32, amb, nnp, bnd, sec))
"#;

attack!(keep_or_regain_a_capability, |lab, tier| {
    std::fs::write(lab.ws().join("caps.py"), CAPS_PY).unwrap();
    let out = lab
        .sh("python3 caps.py; /bin/sh -c 'python3 caps.py'")
        .await;
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{tier:?}: {text} {}", out.stderr_text());
    let root = nix::unistd::getuid().is_root();
    for line in lines {
        assert!(
            line.starts_with("eff=0 prm=0 inh=0 amb=0 nnp=1 "),
            "{tier:?}: a capability is left, or no_new_privs is off: {line}"
        );
        let secbits = u32::from_str_radix(line.rsplit('=').next().unwrap(), 16).unwrap();
        if root || tier == Tier::Namespaces {
            assert!(
                line.contains(" bnd=0 "),
                "{tier:?}: the bounding set is left: {line}"
            );
            assert_eq!(
                secbits & 0xef,
                0xef,
                "{tier:?}: securebits not locked: {line}"
            );
            assert!(lab.sandbox.confinement().securebits_locked);
        } else {
            // Started without privilege and without a user namespace: nothing here can hold
            // a capability or become root (no_new_privs), and nothing may set the securebits
            // or clear the bounding set either.
            assert!(!lab.sandbox.confinement().securebits_locked);
        }
    }
    assert!(lab.sandbox.confinement().capabilities_dropped);
});

attack!(make_a_device_node, |lab, tier| {
    let out = lab
        .sh("mknod ./mem c 1 1; mknod ./disk b 8 0; python3 -c 'import os; os.mknod(\"pymem\", 0o600 | 0o020000, os.makedev(1, 1))'; mkfifo ./fifo && echo FIFO-OK")
        .await;
    for node in ["mem", "disk", "pymem"] {
        assert!(
            !lab.ws().join(node).exists(),
            "{tier:?}: made a device node {node}: {}",
            out.stderr_text()
        );
    }
    assert!(
        out.stdout_text().contains("FIFO-OK"),
        "fifos still work: {}",
        out.stderr_text()
    );
});

attack!(change_the_hosts_clock_name_or_network, |lab, tier| {
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let py = r#"
import ctypes, socket, struct, fcntl
libc = ctypes.CDLL(None, use_errno=True)
def tried(name, r):
    print(name, "OK" if r == 0 else "refused %d" % ctypes.get_errno())
tried("sethostname", libc.sethostname(b"pwned", 5))
tv = struct.pack("ll", 86400, 0)
tried("settimeofday", libc.settimeofday(ctypes.c_char_p(tv), None))
tried("iopl", libc.iopl(3))
tried("ioperm", libc.ioperm(0x80, 1, 1))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ifr = struct.pack("16sH14s", b"lo", 0, b"")
try:
    fcntl.ioctl(s, 0x8914, ifr)
    print("SIOCSIFFLAGS OK")
except OSError as e:
    print("SIOCSIFFLAGS refused %d" % e.errno)
"#;
    std::fs::write(lab.ws().join("admin.py"), py).unwrap();
    let out = lab.sh("python3 admin.py").await;
    let text = out.stdout_text();
    for call in [
        "sethostname",
        "settimeofday",
        "iopl",
        "ioperm",
        "SIOCSIFFLAGS",
    ] {
        assert!(
            text.contains(&format!("{call} refused 1\n")),
            "{tier:?}: {call} was not refused by the filter: {text} {}",
            out.stderr_text()
        );
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
});

attack!(outlive_a_timeout_by_leaving_the_group, |lab, tier| {
    // Three ways out of the command's process group: setsid, a double fork into a new
    // session, and a new group; each leaves a heartbeat in the workspace.
    let script = "setsid sh -c 'while :; do echo . >> beat1; sleep 0.05; done' & \
                  ( setsid sh -c 'while :; do echo . >> beat2; sleep 0.05; done' & ) ; \
                  perl -e 'setpgrp(0, 0); while (1) { open(F, \">>beat3\"); print F \".\"; close F; select(undef, undef, undef, 0.05) }' & \
                  sleep 300";
    let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
    let out = lab
        .sandbox
        .run(&argv, ".", Duration::from_millis(1500))
        .await
        .expect("the command ends at its timeout");
    assert!(out.timed_out, "{tier:?}");
    let sizes = || {
        ["beat1", "beat2", "beat3"]
            .map(|f| std::fs::metadata(lab.ws().join(f)).map_or(0, |m| m.len()))
    };
    let first = sizes();
    assert!(
        first.iter().all(|n| *n > 0),
        "{tier:?}: every heartbeat ran: {first:?}"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        sizes(),
        first,
        "{tier:?}: a process outlived its command's timeout"
    );
});

attack!(hold_a_finished_commands_output_open, |lab, tier| {
    let argv = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        "setsid sleep 300 & echo done".to_string(),
    ];
    let started = std::time::Instant::now();
    let out = lab
        .sandbox
        .run(&argv, ".", Duration::from_secs(60))
        .await
        .expect("the command ends");
    assert_eq!(out.code, Some(0), "{tier:?}");
    assert_eq!(out.stdout_text(), "done\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{tier:?}: a background process holding the output kept the command running"
    );
});

/// Starts a heartbeat that leaves its command's session, group and (by a double fork) its
/// parent, then returns its file's size over time as a closure.
async fn detached_heartbeat(lab: &Lab) {
    let out = lab
        .sh("( setsid sh -c 'while :; do echo . >> beat; sleep 0.02; done' & ) ; sleep 0.2; echo started")
        .await;
    assert_eq!(out.stdout_text(), "started\n", "{}", out.stderr_text());
}

fn beat_size(lab: &Lab) -> u64 {
    std::fs::metadata(lab.ws().join("beat")).map_or(0, |m| m.len())
}

attack!(outlive_the_sandbox_when_it_stops, |lab, tier| {
    detached_heartbeat(&lab).await;
    assert!(beat_size(&lab) > 0, "{tier:?}: the heartbeat ran");
    lab.sandbox.stop().await;
    let after = beat_size(&lab);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        beat_size(&lab),
        after,
        "{tier:?}: a process outlived its stopped sandbox"
    );
});

attack!(outlive_the_sandbox_when_it_is_dropped, |lab, tier| {
    detached_heartbeat(&lab).await;
    assert!(beat_size(&lab) > 0, "{tier:?}: the heartbeat ran");
    let Lab { sandbox, workspace } = lab;
    drop(sandbox);
    // Dropping does not wait: the supervisor ends everything within its grace period.
    std::thread::sleep(Duration::from_millis(2500));
    let size =
        |w: &tempfile::TempDir| std::fs::metadata(w.path().join("beat")).map_or(0, |m| m.len());
    let after = size(&workspace);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        size(&workspace),
        after,
        "{tier:?}: a process outlived its dropped sandbox"
    );
});
