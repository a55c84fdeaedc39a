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
    secrets: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// 32 hex digits from the kernel's random source.
fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The system's certificate bundle, which the sandbox's own bundle starts from.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The largest credential value read.
const MAX_CREDENTIAL: usize = 64 * 1024;

/// Reads every credential the policy declares, from where it says, on the host.
async fn read_credentials(
    policy: &Policy,
) -> Result<Vec<(cordon_policy::rules::CredentialRule, String)>, SessionError> {
    let mut all = Vec::new();
    for (rule, at) in policy.credentials() {
        let at = at.unwrap_or("the policy");
        let bad = |why: String, hint: &str| {
            SessionError::bad_input(
                format!("credential {} ({at}): {why}", rule.name),
                hint.to_string(),
            )
        };
        let value = if let Some(var) = &rule.from_env {
            std::env::var(var).map_err(|_| {
                bad(
                    format!("its value comes from the host variable {var}, which is not set"),
                    "export it before running cordon",
                )
            })?
        } else if let Some(file) = &rule.from_file {
            // Relative to the policy file that declares it.
            let origin = at.rsplitn(3, ':').nth(2).unwrap_or("");
            let base = std::path::Path::new(origin)
                .parent()
                .filter(|_| !origin.starts_with("builtin:"))
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default();
            let path = base.join(file);
            let bytes = read_bounded(&path).map_err(|e| {
                bad(
                    format!("cannot read {}: {e}", path.display()),
                    "from_file is relative to the policy file, and names a regular file holding the credential alone",
                )
            })?;
            String::from_utf8(bytes).map_err(|_| {
                bad(
                    format!("{} is not UTF-8 text", path.display()),
                    "a credential is text",
                )
            })?
        } else if let Some(argv) = &rule.from_command {
            run_for_value(argv).await.map_err(|why| {
                bad(
                    why,
                    "the command runs on the host, without a shell, and must print the value",
                )
            })?
        } else {
            return Err(bad(
                "it names no source".into(),
                "give from_env, from_file or from_command",
            ));
        };
        let value = value.trim().to_string();
        if value.len() < 4 || value.contains(['\r', '\n']) {
            return Err(bad(
                "its value is empty, shorter than 4 characters, or more than one line".into(),
                "a credential is one line of at least 4 characters (shorter ones cannot be kept out of the log)",
            ));
        }
        all.push((rule.clone(), value));
    }
    Ok(all)
}

/// A regular file's bytes, refused beyond [`MAX_CREDENTIAL`] before they are read (a
/// device or a huge file is never read whole).
fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CREDENTIAL as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_CREDENTIAL {
        return Err(std::io::Error::other(format!(
            "it is larger than {MAX_CREDENTIAL} bytes"
        )));
    }
    Ok(bytes)
}

/// Runs `argv` on the host (no shell, 10 s at most) and returns what it printed, reading
/// no more than [`MAX_CREDENTIAL`] bytes of it.
async fn run_for_value(argv: &[String]) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("{}'s output cannot be read", argv[0]))?;
    let finished = async {
        let mut bytes = Vec::new();
        (&mut stdout)
            .take(MAX_CREDENTIAL as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("cannot read what {} printed: {e}", argv[0]))?;
        if bytes.len() > MAX_CREDENTIAL {
            return Err(format!(
                "{} printed more than {MAX_CREDENTIAL} bytes",
                argv[0]
            ));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("cannot wait for {}: {e}", argv[0]))?;
        Ok((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(std::time::Duration::from_secs(10), finished)
        .await
        .map_err(|_| format!("{} did not finish within 10 s", argv[0]))??;
    if !status.success() {
        return Err(format!(
            "{} failed ({status}); what it said is not shown, as it may hold the value",
            argv[0]
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{} printed something that is not text", argv[0]))
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
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(cannot)?;
        let credentials = read_credentials(policy).await?;
        let mut env = Vec::new();
        let mut secrets = Vec::new();
        for c in &credentials {
            if let Some(var) = &c.0.env {
                env.push((var.clone(), cordon_egress::placeholder(&c.0.name)));
            }
            secrets.push((format!("credential {}", c.0.name), c.1.clone()));
        }
        // Only the run's sandbox may use its proxy: other users of this host reach its
        // loopback port too.
        let token = random_token().map_err(cannot)?;
        secrets.push(("the egress proxy's password".to_string(), token.clone()));
        let mut config = EgressConfig::new(run_id.as_str());
        config.socket = Some(dir.path().join("proxy.sock"));
        config.tcp = true;
        config.token = Some(token.clone());
        config.credentials = cordon_egress::Credentials::new(
            credentials
                .into_iter()
                .map(|(rule, value)| cordon_egress::Credential::new(rule, value))
                .collect(),
        );
        let proxy = EgressProxy::start(config, Judge::new(Arc::new(policy.clone()), granted))
            .await
            .map_err(cannot)?;
        // Programs in the sandbox trust the run's authority (which opens the tunnels that add
        // credentials) beside the system's.
        let ca_bundle = match proxy.ca_certificate() {
            None => None,
            Some(pem) => {
                let system = std::fs::read_to_string(SYSTEM_BUNDLE).unwrap_or_default();
                let path = dir.path().join("ca-bundle.pem");
                std::fs::write(&path, format!("{system}\n{pem}")).map_err(cannot)?;
                Some(path)
            }
        };
        let endpoint = Egress {
            socket: dir.path().join("proxy.sock"),
            tcp: proxy.tcp().ok_or_else(|| {
                SessionError::new(
                    ErrorKind::SandboxUnavailable,
                    "the egress proxy has no TCP address",
                )
            })?,
            ca_bundle,
            env,
            token: Some(token),
        };
        Ok(Some(RunEgress {
            proxy,
            endpoint,
            secrets,
            _dir: dir,
        }))
    }

    /// The credentials' values, named, for the run's redactor: nothing that prints them may
    /// put them in the log.
    pub(crate) fn secrets(&self) -> &[(String, String)] {
        &self.secrets
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

/// Refuses a sandbox whose isolation the policy does not accept
/// (`[defaults] network_isolation = "namespaces"`): the landlock tier leaves UDP open, with or
/// without a proxy, and the unconfined tier has the host's network.
pub(crate) fn check_isolation(
    policy: Option<&Policy>,
    sandbox: &dyn cordon_sandbox::Sandbox,
) -> Result<(), SessionError> {
    let Some(policy) = policy else {
        return Ok(());
    };
    let kind = &sandbox.isolation().kind;
    if policy.network_needs_namespaces() && kind != "namespaces" {
        return Err(SessionError::new(
            ErrorKind::SandboxUnavailable,
            format!(
                "the policy {} allows network access only from a sandbox with a network namespace of its own (network_isolation = \"namespaces\"), and this sandbox's isolation is {kind}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_file_is_never_read_whole() {
        assert!(read_bounded(std::path::Path::new("/dev/zero")).is_err());
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        // Sparse: 20 GB that take no room and must not be read.
        f.set_len(20 << 30).unwrap();
        let e = read_bounded(&big).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        std::fs::write(dir.path().join("ok"), "tok3n\n").unwrap();
        assert_eq!(read_bounded(&dir.path().join("ok")).unwrap(), b"tok3n\n");
    }

    #[tokio::test]
    async fn a_credential_command_is_read_within_bounds() {
        let flood = ["head", "-c", "800000000", "/dev/zero"].map(String::from);
        let e = run_for_value(&flood).await.unwrap_err();
        assert!(e.contains("more than"), "{e}");
        let ok = ["printf", "s3cret"].map(String::from);
        assert_eq!(run_for_value(&ok).await.unwrap(), "s3cret");
        let failing = ["sh", "-c", "echo s3cret; exit 3"].map(String::from);
        let e = run_for_value(&failing).await.unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
