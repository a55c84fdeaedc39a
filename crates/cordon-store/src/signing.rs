//! Signed run heads: a store's Ed25519 key signs each run's head (its id, event count and
//! last hash) every time the head moves, so someone who can edit both the events and the
//! head records still cannot make them agree with a signature.
//!
//! The signed message is the RFC 8785 canonical JSON of
//! `{"count":N,"last_hash":"HEX","run_id":"ID","type":"cordon.run-head.v1"}`, signed with
//! Ed25519 (RFC 8032). A third party can check it with any Ed25519 implementation, for
//! example `openssl pkeyutl -verify -pubin -inkey KEY.pub.pem -rawin -in head.json -sigfile
//! head.sig`.
//!
//! The key is the [`HeadSigner`] trait: a key file on this host today ([`KeyFile`], PKCS#8
//! PEM, mode 0600, made on first use beside the store), a KMS or HSM behind the same trait
//! later.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What a signed head's `type` says: the message's kind and version.
pub const HEAD_TYPE: &str = "cordon.run-head.v1";

/// The most a key file may hold: a PEM key is about 120 bytes.
const KEY_FILE_MAX: u64 = 16 * 1024;

/// The bytes a head signature covers.
pub fn head_message(run_id: &str, count: u64, last_hash: &str) -> String {
    cordon_core::canonical::canonical_json(&serde_json::json!({
        "count": count,
        "last_hash": last_hash,
        "run_id": run_id,
        "type": HEAD_TYPE,
    }))
}

/// Signs run heads. Implemented by [`KeyFile`]; a key held by a KMS or an HSM implements it
/// too and is given to [`crate::Store::set_signer`].
pub trait HeadSigner: Send + Sync {
    /// The key that checks this signer's signatures.
    fn public_key(&self) -> PublicKey;
    /// Signs `message` (Ed25519, 64 bytes).
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SigningError>;
}

/// Why something could not be signed, or a key could not be read or made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SigningError(pub String);

/// An Ed25519 public key: what a verifier needs to check a store's or a bundle's heads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl PublicKey {
    /// The key as `ed25519:HEX` (how heads, bundles and `cordon verify` name it).
    pub fn to_text(&self) -> String {
        format!("ed25519:{}", hex::encode(self.0.as_bytes()))
    }

    /// The key as a SubjectPublicKeyInfo PEM block (what OpenSSL reads).
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// Reads a key written as `ed25519:HEX`, as bare hex, or as a public-key PEM block.
    pub fn parse(text: &str) -> Result<PublicKey, SigningError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return VerifyingKey::from_public_key_pem(text)
                .map(PublicKey)
                .map_err(|e| SigningError(format!("it is not an Ed25519 public key PEM: {e}")));
        }
        let hex_text = text.strip_prefix("ed25519:").unwrap_or(text);
        let bytes: [u8; 32] = hex::decode(hex_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                SigningError(
                    "it is not an Ed25519 public key (expected ed25519: and 64 hex digits, or a PEM block)"
                        .into(),
                )
            })?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| SigningError("it is not a valid Ed25519 public key".into()))
    }

    /// Reads a public key from a file: a public-key PEM, `ed25519:HEX`, or a private key
    /// file (whose public half is taken).
    pub fn from_file(path: &Path) -> Result<PublicKey, SigningError> {
        let text = read_small(path)?;
        if text.contains("PRIVATE KEY") {
            return KeyFile::parse(&text, path).map(|k| k.public_key());
        }
        PublicKey::parse(&text).map_err(|e| SigningError(format!("{}: {e}", path.display())))
    }

    /// Whether `signature` (hex) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = hex::decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        self.0
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
            .is_ok()
    }
}

/// A signing key kept in a file on this host (PKCS#8 PEM, readable only by its owner).
pub struct KeyFile {
    key: SigningKey,
}

impl KeyFile {
    /// Reads the key in `path`.
    pub fn load(path: &Path) -> Result<KeyFile, SigningError> {
        let text = read_small(path)?;
        KeyFile::parse(&text, path)
    }

    /// Reads the key in `path`, or makes one there (mode 0600, with its public half beside it
    /// as `PATH.pub`) when there is none.
    pub fn load_or_create(path: &Path) -> Result<KeyFile, SigningError> {
        KeyFile::load_or_make(path).map(|(key, _)| key)
    }

    /// [`KeyFile::load_or_create`], saying whether this call made the key.
    pub fn load_or_make(path: &Path) -> Result<(KeyFile, bool), SigningError> {
        match std::fs::metadata(path) {
            Ok(_) => return KeyFile::load(path).map(|k| (k, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SigningError(format!("cannot read {}: {e}", path.display()))),
        }
        let mut seed = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|e| SigningError(format!("cannot read the system's random source: {e}")))?;
        let key = SigningKey::from_bytes(&seed);
        // PKCS#8 v1 (the private half alone), which every tool reads (OpenSSL 3.0 does not
        // read the v2 form that carries the public half too).
        let pem = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: key.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SigningError(format!("cannot encode a new key: {e}")))?;
        let cannot = |e: std::io::Error| {
            SigningError(format!(
                "cannot create the store's signing key {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(cannot)?;
        }
        // Written under a temporary name and linked into place, so two processes making the
        // key at once end with one key, and nobody reads half of one.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(pem.as_bytes())?;
                f.sync_all()
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(cannot(e));
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                let file = KeyFile { key };
                std::fs::write(public_path(path), file.public_key().to_pem()).map_err(cannot)?;
                Ok((file, true))
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                KeyFile::load(path).map(|k| (k, false))
            }
            Err(e) => Err(cannot(e)),
        }
    }

    fn parse(text: &str, path: &Path) -> Result<KeyFile, SigningError> {
        SigningKey::from_pkcs8_pem(text.trim())
            .map(|key| KeyFile { key })
            .map_err(|e| {
                SigningError(format!(
                    "{} is not an Ed25519 private key in PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes): {e}",
                    path.display()
                ))
            })
    }
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half.
        write!(f, "KeyFile({})", self.public_key().to_text())
    }
}

impl HeadSigner for KeyFile {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SigningError> {
        Ok(self.key.sign(message).to_bytes())
    }
}

/// Where a store keeps its signing key when none is given: beside the database file.
pub fn default_key_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".signing-key.pem");
    store.with_file_name(name)
}

/// Where the public half of the key in `key` is written.
pub fn public_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

fn read_small(path: &Path) -> Result<String, SigningError> {
    let cannot = |e: String| SigningError(format!("cannot read the key {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut text = String::new();
    file.take(KEY_FILE_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| cannot(e.to_string()))?;
    if text.len() as u64 > KEY_FILE_MAX {
        return Err(cannot(format!(
            "it is larger than {KEY_FILE_MAX} bytes: not a key"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_signs_and_is_read_back_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = KeyFile::load_or_create(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = KeyFile::load_or_create(&path).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let msg = head_message("r", 3, &"a".repeat(64));
        assert_eq!(
            msg,
            format!(
                r#"{{"count":3,"last_hash":"{}","run_id":"r","type":"cordon.run-head.v1"}}"#,
                "a".repeat(64)
            )
        );
        let sig = hex::encode(key.sign(msg.as_bytes()).unwrap());
        let public = key.public_key();
        assert!(public.verifies(msg.as_bytes(), &sig));
        assert!(!public.verifies(b"other", &sig));
        assert!(!public.verifies(msg.as_bytes(), "00"));
        for read in [
            PublicKey::parse(&public.to_text()).unwrap(),
            PublicKey::parse(&public.to_pem()).unwrap(),
            PublicKey::from_file(&public_path(&path)).unwrap(),
            PublicKey::from_file(&path).unwrap(),
        ] {
            assert_eq!(read, public);
        }
        assert!(PublicKey::parse("ed25519:zz").is_err());
        std::fs::write(dir.path().join("junk"), "not a key").unwrap();
        let err = KeyFile::load(&dir.path().join("junk")).unwrap_err();
        assert!(err.to_string().contains("PKCS#8"), "{err}");
    }
}
