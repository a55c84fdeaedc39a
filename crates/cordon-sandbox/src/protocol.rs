//! The private channel between the harness and the in-sandbox supervisor: length-prefixed
//! JSON frames (a 4-byte big-endian length, then the body) over the supervisor's stdin and
//! stdout. The first exchange is a `Hello` each way with [`PROTOCOL_VERSION`].
//!
//! The supervisor runs inside the sandbox, so whatever it sends is untrusted data: frames
//! have a size cap and anything that does not parse is an error, never an instruction.

use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version both sides must speak.
pub const PROTOCOL_VERSION: u32 = 2;

/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// The terminal of a PTY session (both streams together).
    Pty,
}

/// What the harness asks of the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The first frame: the harness's protocol version and the sandbox's settings.
    Hello {
        /// The harness's protocol version.
        version: u32,
        /// How to confine the supervisor (and so every command) before anything runs;
        /// `None` only when the user asked for an unconfined sandbox by name.
        hardening: Option<crate::hardening::Hardening>,
        /// The workspace as the sandbox sees it: working directories must stay inside.
        workspace: String,
        /// Free space to keep on the workspace's filesystem (see [`crate::Limits`]).
        disk_reserve: u64,
        /// How to start the shim each command runs under, inside the sandbox (the program
        /// and its arguments, before `--`); `None` runs commands directly.
        #[serde(default)]
        shim: Option<Vec<String>>,
        /// Forward connections to this loopback port to the egress proxy's Unix socket at
        /// this path (see [`crate::egress`]); `None`: no way out.
        #[serde(default)]
        egress: Option<(u16, String)>,
    },
    /// Start a command.
    Exec {
        /// The harness's id for the process.
        id: u64,
        /// Program and arguments.
        argv: Vec<String>,
        /// Working directory, inside the workspace (relative to it, or absolute under it).
        cwd: String,
        /// The environment, exactly.
        env: Vec<(String, String)>,
        /// Run under a pseudo-terminal (rows, cols).
        tty: Option<(u16, u16)>,
    },
    /// Write to a process's standard input (or terminal).
    Write {
        /// The process.
        id: u64,
        /// Base64 of the bytes.
        data: String,
    },
    /// Close a process's standard input.
    CloseStdin {
        /// The process.
        id: u64,
    },
    /// Resize a PTY session.
    Resize {
        /// The process.
        id: u64,
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Send a signal to a process's whole process group.
    Signal {
        /// The process.
        id: u64,
        /// The signal number.
        signal: i32,
    },
    /// Read a file in the workspace.
    ReadFile {
        /// The request's id.
        id: u64,
        /// Workspace-relative (or absolute inside the workspace).
        path: String,
    },
    /// Write a file in the workspace, creating its parent directories.
    WriteFile {
        /// The request's id.
        id: u64,
        /// Workspace-relative (or absolute inside the workspace).
        path: String,
        /// Base64 of the content.
        data: String,
        /// Permission bits, if not the default.
        mode: Option<u32>,
    },
    /// List a directory in the workspace.
    ListDir {
        /// The request's id.
        id: u64,
        /// Workspace-relative (or absolute inside the workspace).
        path: String,
    },
    /// Make a directory (and its parents) in the workspace.
    MakeDir {
        /// The request's id.
        id: u64,
        /// Workspace-relative (or absolute inside the workspace).
        path: String,
        /// Permission bits, if not the default.
        mode: Option<u32>,
    },
    /// Make a symbolic link in the workspace, pointing at `target` verbatim.
    Symlink {
        /// The request's id.
        id: u64,
        /// Workspace-relative path of the link.
        path: String,
        /// Where it points, as given (links are data: nothing is followed).
        target: String,
    },
    /// Apply file changes all or nothing (see [`crate::files::commit`]).
    Commit {
        /// The request's id.
        id: u64,
        /// The changes, in order.
        changes: Vec<FileChange>,
    },
    /// Remove a file, or a directory (with `recursive`, and everything in it).
    Remove {
        /// The request's id.
        id: u64,
        /// Workspace-relative (or absolute inside the workspace).
        path: String,
        /// Remove a directory and its contents.
        recursive: bool,
    },
}

/// One change of a `Commit` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    /// Workspace-relative path.
    pub path: String,
    /// Base64 of the new content; `None` removes the file.
    pub data: Option<String>,
    /// Permission bits for a new file.
    pub mode: Option<u32>,
}

/// One entry of a listed directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirEntry {
    /// The entry's name.
    pub name: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
}

/// What the supervisor reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Reply {
    /// The answer to `Hello`, once the supervisor is confined.
    Hello {
        /// The supervisor's protocol version.
        version: u32,
        /// What confinement took effect, for the run log.
        confinement: crate::hardening::Applied,
        /// The supervisor's build ([`crate::supervisor::BUILD`]); empty from supervisors
        /// older than the field.
        #[serde(default)]
        build: String,
    },
    /// A process started.
    Started {
        /// The harness's id.
        id: u64,
        /// Its pid inside the sandbox.
        pid: u32,
    },
    /// Output from a process.
    Output {
        /// The process.
        id: u64,
        /// Which stream.
        stream: Stream,
        /// Base64 of the bytes.
        data: String,
    },
    /// A process ended, and all its output has been sent.
    Exited {
        /// The process.
        id: u64,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
    },
    /// A file's content (`None`: there is no such file).
    File {
        /// The request.
        id: u64,
        /// Base64 of the content.
        data: Option<String>,
    },
    /// A directory's entries, sorted by name.
    Entries {
        /// The request.
        id: u64,
        /// The entries.
        entries: Vec<DirEntry>,
    },
    /// A write or remove is done.
    Done {
        /// The request.
        id: u64,
    },
    /// A request failed.
    Error {
        /// The process it was about, if any.
        id: Option<u64>,
        /// What went wrong.
        message: String,
    },
}

/// Encodes bytes for a frame.
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a frame's bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, ProtocolError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| ProtocolError::Malformed(format!("bad base64: {e}")))
}

/// A broken channel or a frame that makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Reading or writing failed.
    #[error("supervisor channel: {0}")]
    Io(#[from] std::io::Error),
    /// A frame was too large or did not parse.
    #[error("supervisor sent a malformed frame: {0}")]
    Malformed(String),
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), ProtocolError> {
    let body = serde_json::to_vec(msg).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(ProtocolError::Malformed(format!(
            "frame of {} bytes is over the cap",
            body.len()
        )));
    }
    w.write_all(&(body.len() as u32).to_be_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> Result<Option<T>, ProtocolError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtocolError::Malformed(format!(
            "frame of {len} bytes is over the cap"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Reads one frame with blocking I/O: for the supervisor's first frame, which must arrive
/// before any thread exists.
pub fn read_frame_blocking<R: std::io::Read, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> Result<T, ProtocolError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtocolError::Malformed(format!(
            "frame of {len} bytes is over the cap"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let msg = Reply::Output {
            id: 7,
            stream: Stream::Stderr,
            data: encode(b"\x00\xffbinary"),
        };
        write_frame(&mut a, &msg).await.unwrap();
        let got: Reply = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!(got, msg);
        a.write_all(&(MAX_FRAME as u32 + 1).to_be_bytes())
            .await
            .unwrap();
        assert!(matches!(
            read_frame::<_, Reply>(&mut b).await,
            Err(ProtocolError::Malformed(_))
        ));
        drop(a);
        assert!(read_frame::<_, Reply>(&mut b).await.unwrap().is_none());
    }
}
