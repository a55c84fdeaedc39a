//! Session errors: what went wrong, what sort of trouble it is (so a front end can pick an
//! exit code or an HTTP status), what to do about it, and the cause.

use std::fmt;

/// What sort of trouble a [`SessionError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something the caller gave cannot be used (an agent, a model name, a manifest, a run
    /// id, a workspace); nothing was started.
    BadInput,
    /// A run's record does not verify, or the store is damaged: cordon will not add to it.
    Damaged,
    /// No sandbox could be started here (no isolation kind works, the provider failed).
    SandboxUnavailable,
    /// Anything else: the store, the disk, a task, a provider failing mid-way.
    Failed,
}

/// Why a session could not do what it was asked.
#[derive(Debug)]
pub struct SessionError {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SessionError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SessionError {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Bad input, with what to do about it.
    pub fn bad_input(message: impl Into<String>, hint: impl Into<String>) -> Self {
        SessionError::new(ErrorKind::BadInput, message).hint(hint)
    }

    /// Adds what to do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds the cause.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What sort of trouble it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What to do about it, when there is something to do.
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The message, without its cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The store error behind this one, if that is what it is (front ends pick exit codes by
    /// its kind).
    pub fn store_error(&self) -> Option<&cordon_store::StoreError> {
        let source = self.source.as_deref()?;
        source
            .downcast_ref::<cordon_store::StoreError>()
            .or_else(|| match source.downcast_ref::<cordon_harness::RunError>() {
                Some(cordon_harness::RunError::Store(s)) => Some(s),
                _ => None,
            })
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<cordon_store::StoreError> for SessionError {
    fn from(e: cordon_store::StoreError) -> Self {
        use cordon_store::StoreErrorKind;
        let kind = match e.kind() {
            StoreErrorKind::BadInput => ErrorKind::BadInput,
            StoreErrorKind::Damaged => ErrorKind::Damaged,
            StoreErrorKind::Full | StoreErrorKind::Other => ErrorKind::Failed,
        };
        SessionError::new(kind, e.to_string())
            .hint(e.hint_text())
            .caused_by(e)
    }
}

impl From<cordon_harness::RunError> for SessionError {
    fn from(e: cordon_harness::RunError) -> Self {
        match e {
            cordon_harness::RunError::Store(s) => s.into(),
            cordon_harness::RunError::Agent(a) => SessionError::bad_input(
                a.to_string(),
                "list each tool once; prices go in the config file as [prices.\"MODEL\"]",
            ),
            other => SessionError::new(ErrorKind::Failed, other.to_string()).caused_by(other),
        }
    }
}

impl From<cordon_store::snapshot::SnapshotError> for SessionError {
    fn from(e: cordon_store::snapshot::SnapshotError) -> Self {
        SessionError::new(ErrorKind::Failed, e.to_string()).caused_by(e)
    }
}

impl From<std::io::Error> for SessionError {
    fn from(e: std::io::Error) -> Self {
        SessionError::new(ErrorKind::Failed, e.to_string()).caused_by(e)
    }
}

impl From<cordon_model::ModelError> for SessionError {
    fn from(e: cordon_model::ModelError) -> Self {
        SessionError::new(ErrorKind::Failed, e.to_string()).caused_by(e)
    }
}

/// A stored event that does not read as the event it says it is.
impl From<serde_json::Error> for SessionError {
    fn from(e: serde_json::Error) -> Self {
        SessionError::new(
            ErrorKind::Damaged,
            format!("the run's log holds an event cordon cannot read: {e}"),
        )
        .hint("`cordon verify` checks it")
        .caused_by(e)
    }
}

/// A sandbox that could not be made: a refused configuration is bad input; anything else
/// means no sandbox works here.
impl From<cordon_sandbox::SandboxError> for SessionError {
    fn from(e: cordon_sandbox::SandboxError) -> Self {
        match &e {
            cordon_sandbox::SandboxError::Config(_) => SessionError::bad_input(
                e.to_string(),
                "what a sandbox may reach (its workspace, grants) is in the README's sections on the sandbox and on manifests",
            ),
            _ => SessionError::new(ErrorKind::SandboxUnavailable, e.to_string())
                .hint("`cordon doctor` shows which isolation kinds work here and what is missing"),
        }
        .caused_by(e)
    }
}
