//! A sandbox starts, runs commands, and keeps its processes between calls.

use cordon_sandbox::{LocalSandbox, Sandbox, SandboxConfig, SupervisorCommand, Tier, TierChoice};
use std::time::Duration;

fn supervisor() -> SupervisorCommand {
    SupervisorCommand {
        program: env!("CARGO_BIN_EXE_cordon-test-supervisor").into(),
        args: vec![],
        fallback: None,
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

#[tokio::test]
async fn commands_run_inside_with_a_clean_environment() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("hello.txt"), "hi from the host\n").unwrap();
    let mut config = SandboxConfig::new(ws.path(), supervisor());
    config.tier = TierChoice::Exactly(Tier::Namespaces);
    let sb = LocalSandbox::create(config).await.unwrap();
    println!("confinement: {:?}", sb.confinement());
    let out = sb
        .run(
            &sh("cat hello.txt; id -u; pwd; env | sort; echo err >&2; exit 3"),
            ".",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    println!("{}\n{}", out.stdout_text(), out.stderr_text());
    assert_eq!(out.code, Some(3));
    let text = out.stdout_text();
    assert!(text.contains("hi from the host"));
    assert!(text.contains("/workspace"));
    assert_eq!(out.stderr_text(), "err\n");
}

async fn read_until(p: &mut cordon_sandbox::Process, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, p.next_event()).await {
            Ok(Some(cordon_sandbox::ProcessEvent::Output(_, data))) => {
                seen.push_str(&String::from_utf8_lossy(&data))
            }
            Ok(Some(cordon_sandbox::ProcessEvent::Failed(why))) => panic!("failed: {why}"),
            Ok(Some(cordon_sandbox::ProcessEvent::Exited { .. })) | Ok(None) => break,
            Ok(Some(_)) => {}
            Err(_) => panic!("no '{needle}' in: {seen:?}"),
        }
    }
    seen
}

#[tokio::test]
async fn pty_sessions_echo_resize_and_end() {
    for tier in [Tier::Namespaces, Tier::Landlock] {
        let ws = tempfile::tempdir().unwrap();
        let mut config = SandboxConfig::new(ws.path(), supervisor());
        config.tier = TierChoice::Exactly(tier);
        let sb = LocalSandbox::create(config).await.unwrap();
        let mut p = sb
            .spawn(&["/bin/sh".to_string()], ".", &[], Some((24, 80)))
            .await
            .unwrap();
        p.write(b"tty; stty size; echo $((6*7))\n").await.unwrap();
        let out = read_until(&mut p, "42\r\n").await;
        assert!(
            out.contains("/dev/pts/") && out.contains("24 80"),
            "{tier:?}: {out:?}"
        );
        p.resize(40, 132).await.unwrap();
        p.write(b"stty size\n").await.unwrap();
        let out = read_until(&mut p, "40 132").await;
        assert!(out.contains("40 132"), "{tier:?}: {out:?}");
        p.write(b"exit 5\n").await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), p.next_event())
                .await
                .unwrap()
            {
                Some(cordon_sandbox::ProcessEvent::Exited { code, .. }) => {
                    assert_eq!(code, Some(5));
                    break;
                }
                Some(_) => {}
                None => panic!("no exit"),
            }
        }
    }
}

#[tokio::test]
async fn files_are_read_written_listed_committed_and_removed_through_the_interface() {
    for tier in [Tier::Namespaces, Tier::Landlock] {
        let ws = tempfile::tempdir().unwrap();
        let mut config = SandboxConfig::new(ws.path(), supervisor());
        config.tier = TierChoice::Exactly(tier);
        let sb: std::sync::Arc<dyn Sandbox> =
            std::sync::Arc::new(LocalSandbox::create(config).await.unwrap());

        sb.write_file("src/deep/main.rs", b"fn main() {}\n", Some(0o755))
            .await
            .unwrap();
        assert_eq!(
            sb.read_file("src/deep/main.rs").await.unwrap().unwrap(),
            b"fn main() {}\n"
        );
        assert_eq!(
            sb.read_file("no/such/dir/file.rs").await.unwrap(),
            None,
            "{tier:?}: a file in a directory that does not exist is simply not there"
        );
        let host = ws.path().join("src/deep/main.rs");
        assert_eq!(
            std::fs::read(&host).unwrap(),
            b"fn main() {}\n",
            "{tier:?}: written into the host workspace"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&host).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let entries = sb.list_dir("src").await.unwrap();
        assert_eq!(
            (entries[0].name.as_str(), entries[0].kind.as_str()),
            ("deep", "dir")
        );

        // Paths that lead out are refused, however they try.
        std::os::unix::fs::symlink("/etc", ws.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(ws.path().parent().unwrap(), ws.path().join("up")).unwrap();
        for bad in ["../x", "etc/passwd", "/etc/passwd", "up/escaped", "etc"] {
            assert!(sb.read_file(bad).await.is_err(), "{tier:?}: read {bad}");
            assert!(
                sb.write_file(bad, b"x", None).await.is_err(),
                "{tier:?}: write {bad}"
            );
        }
        assert!(
            sb.write_file("up/sub/escaped", b"x", None).await.is_err(),
            "{tier:?}: parents through a link"
        );
        assert!(!ws.path().parent().unwrap().join("escaped").exists());
        assert!(!ws.path().parent().unwrap().join("sub").exists());

        // A commit applies every change or none: a change into a link's target fails it.
        use cordon_sandbox::files::Change;
        let change = |path: &str, data: Option<&[u8]>| Change {
            path: path.into(),
            data: data.map(<[u8]>::to_vec),
            mode: None,
        };
        let failing = [
            change("src/deep/main.rs", Some(b"changed")),
            change("new.txt", Some(b"new")),
            change("etc/escaped", Some(b"x")),
        ];
        assert!(sb.commit(&failing).await.is_err(), "{tier:?}");
        assert_eq!(
            std::fs::read(&host).unwrap(),
            b"fn main() {}\n",
            "{tier:?}: unchanged"
        );
        assert!(!ws.path().join("new.txt").exists(), "{tier:?}");
        sb.commit(&[
            change("src/deep/main.rs", None),
            change("new.txt", Some(b"new")),
        ])
        .await
        .unwrap();
        assert!(
            !host.exists() && ws.path().join("new.txt").exists(),
            "{tier:?}"
        );
        sb.remove("src", true).await.unwrap();
        assert!(!ws.path().join("src").exists());
        assert!(
            sb.remove(".", true).await.is_err(),
            "the workspace itself stays"
        );
    }
}

/// A supervisor whose harness closes its input ends what runs and exits by itself: the
/// harness never has to wait out its grace period and kill it.
#[tokio::test]
async fn the_supervisor_exits_when_its_harness_goes() {
    use cordon_sandbox::protocol::{self, PROTOCOL_VERSION, Reply, Request};
    let ws = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cordon-test-supervisor"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        hardening: None,
        workspace: ws.path().display().to_string(),
        // A reserve, as every real sandbox has: its guard runs until the supervisor ends.
        disk_reserve: 1 << 20,
        shim: None,
        egress: None,
    };
    protocol::write_frame(&mut stdin, &hello).await.unwrap();
    let reply: Option<Reply> = protocol::read_frame(&mut stdout).await.unwrap();
    assert!(matches!(reply, Some(Reply::Hello { .. })), "{reply:?}");
    drop(stdin);
    // The harness waits 2 s before it kills; a supervisor that ends by itself is long gone.
    let status = tokio::time::timeout(Duration::from_millis(1500), child.wait()).await;
    assert!(
        matches!(status, Ok(Ok(s)) if s.success()),
        "the supervisor did not exit by itself: {status:?}"
    );
}

/// A supervisor that answers as another build (a `cordon-supervisor` left from an older
/// install) is never used: the fallback starts instead, or the error says what to do.
#[tokio::test]
async fn a_supervisor_of_another_build_gives_way_to_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let applied = serde_json::to_string(&cordon_sandbox::hardening::Applied::none()).unwrap();
    // Speaks just enough of the protocol: reads the hello, answers it as another build.
    let stale = dir.path().join("cordon-supervisor");
    std::fs::write(
        &stale,
        format!(
            "#!/usr/bin/python3\nimport sys, json, struct\nn = struct.unpack('>I', sys.stdin.buffer.read(4))[0]\nsys.stdin.buffer.read(n)\nbody = json.dumps({{'op': 'hello', 'version': {}, 'confinement': json.loads('{applied}'), 'build': '0.0.1-old'}}).encode()\nsys.stdout.buffer.write(struct.pack('>I', len(body)) + body)\nsys.stdout.buffer.flush()\nsys.stdin.buffer.read()\n",
            cordon_sandbox::protocol::PROTOCOL_VERSION
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ws = tempfile::tempdir().unwrap();
    let stale_only = SupervisorCommand {
        program: stale.clone(),
        args: vec![],
        fallback: None,
    };
    let mut config = SandboxConfig::new(ws.path(), stale_only.clone());
    config.tier = TierChoice::Exactly(Tier::Landlock);
    let err = LocalSandbox::create(config).await.err().expect("refused");
    assert!(
        err.to_string().contains("another build (0.0.1-old)")
            && err
                .to_string()
                .contains("build or install cordon and cordon-supervisor together"),
        "{err}"
    );
    let with_fallback = SupervisorCommand {
        fallback: Some(Box::new(supervisor())),
        ..stale_only
    };
    let mut config = SandboxConfig::new(ws.path(), with_fallback);
    config.tier = TierChoice::Exactly(Tier::Landlock);
    let sb = LocalSandbox::create(config).await.unwrap();
    let out = sb
        .run(&sh("echo from the fallback"), ".", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "from the fallback\n");
    sb.stop().await;
}
