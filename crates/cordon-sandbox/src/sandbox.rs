//! The sandbox interface that every provider's sandboxes implement: the local one here,
//! container and remote ones later. Commands and files go through the supervisor's protocol,
//! so a [`Process`] is the same whatever started the supervisor.

use crate::client::{Output, Process};
use crate::error::SandboxError;
use crate::protocol::DirEntry;
use crate::provider::Isolation;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so the trait can be used as `dyn Sandbox`.
pub type SandboxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SandboxError>> + Send + 'a>>;

/// An isolated workspace where commands run and files are read and written.
pub trait Sandbox: Send + Sync {
    /// What the sandbox guarantees: isolation kind and strength, network, limits, what is
    /// enforced and what is not.
    fn isolation(&self) -> &Isolation;

    /// The workspace's path as commands inside see it.
    fn workspace(&self) -> &str;

    /// Starts a command (under a terminal of `tty` rows and columns, if given) in `cwd`
    /// (workspace-relative, or absolute inside it), with `env` added to the sandbox's.
    fn spawn<'a>(
        &'a self,
        argv: &'a [String],
        cwd: &'a str,
        env: &'a [(String, String)],
        tty: Option<(u16, u16)>,
    ) -> SandboxFuture<'a, Process>;

    /// Runs a command to its end, or to `timeout` (its process group is then killed).
    fn run<'a>(
        &'a self,
        argv: &'a [String],
        cwd: &'a str,
        timeout: Duration,
    ) -> SandboxFuture<'a, Output>;

    /// Reads a file in the workspace; `None` if there is no such file.
    fn read_file<'a>(&'a self, path: &'a str) -> SandboxFuture<'a, Option<Vec<u8>>>;

    /// Writes a file in the workspace, creating its directories.
    fn write_file<'a>(
        &'a self,
        path: &'a str,
        data: &'a [u8],
        mode: Option<u32>,
    ) -> SandboxFuture<'a, ()>;

    /// Makes a directory (and its parents) in the workspace.
    fn make_dir<'a>(&'a self, path: &'a str, mode: Option<u32>) -> SandboxFuture<'a, ()>;

    /// Lists a directory in the workspace.
    fn list_dir<'a>(&'a self, path: &'a str) -> SandboxFuture<'a, Vec<DirEntry>>;

    /// Removes a file, or a directory with `recursive`.
    fn remove<'a>(&'a self, path: &'a str, recursive: bool) -> SandboxFuture<'a, ()>;

    /// Makes a symbolic link in the workspace pointing at `target` verbatim (links are data;
    /// file requests never follow them).
    fn symlink<'a>(&'a self, path: &'a str, target: &'a str) -> SandboxFuture<'a, ()>;

    /// Applies file changes all or nothing: on any failure the workspace is left as it was.
    fn commit<'a>(&'a self, changes: &'a [crate::files::Change]) -> SandboxFuture<'a, ()>;

    /// Stops the sandbox and everything running in it; later requests fail.
    fn stop(&self) -> SandboxFuture<'_, ()>;
}

impl Sandbox for crate::LocalSandbox {
    fn isolation(&self) -> &Isolation {
        crate::LocalSandbox::isolation(self)
    }

    fn workspace(&self) -> &str {
        self.client().workspace()
    }

    fn spawn<'a>(
        &'a self,
        argv: &'a [String],
        cwd: &'a str,
        env: &'a [(String, String)],
        tty: Option<(u16, u16)>,
    ) -> SandboxFuture<'a, Process> {
        Box::pin(self.client().spawn(argv, cwd, env, tty))
    }

    fn run<'a>(
        &'a self,
        argv: &'a [String],
        cwd: &'a str,
        timeout: Duration,
    ) -> SandboxFuture<'a, Output> {
        Box::pin(self.client().run(argv, cwd, timeout))
    }

    fn read_file<'a>(&'a self, path: &'a str) -> SandboxFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.client().read_file(path))
    }

    fn write_file<'a>(
        &'a self,
        path: &'a str,
        data: &'a [u8],
        mode: Option<u32>,
    ) -> SandboxFuture<'a, ()> {
        Box::pin(self.client().write_file(path, data, mode))
    }

    fn make_dir<'a>(&'a self, path: &'a str, mode: Option<u32>) -> SandboxFuture<'a, ()> {
        Box::pin(self.client().make_dir(path, mode))
    }

    fn list_dir<'a>(&'a self, path: &'a str) -> SandboxFuture<'a, Vec<DirEntry>> {
        Box::pin(self.client().list_dir(path))
    }

    fn remove<'a>(&'a self, path: &'a str, recursive: bool) -> SandboxFuture<'a, ()> {
        Box::pin(self.client().remove(path, recursive))
    }

    fn symlink<'a>(&'a self, path: &'a str, target: &'a str) -> SandboxFuture<'a, ()> {
        Box::pin(self.client().symlink(path, target))
    }

    fn commit<'a>(&'a self, changes: &'a [crate::files::Change]) -> SandboxFuture<'a, ()> {
        Box::pin(self.client().commit(changes))
    }

    fn stop(&self) -> SandboxFuture<'_, ()> {
        Box::pin(async move {
            crate::LocalSandbox::stop(self).await;
            Ok(())
        })
    }
}
