//! The server's SSH host keys, kept in the state directory.
//!
//! Clients pin host keys in their `known_hosts`, so the keys must survive restarts: they are
//! generated once, on the first start, and loaded on every start after that. Two keys are kept,
//! because clients differ in what they accept: ed25519 for modern clients and RSA (3072 bits,
//! usable with `rsa-sha2-256`/`rsa-sha2-512`) for paramiko/ncclient and libssh2-based clients
//! such as yangcli. Both files use the OpenSSH private key format, so `ssh-keygen -lf` can show
//! their fingerprints; a `.pub` file is written next to each for pinning in `known_hosts`.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::{Algorithm, HashAlg, PrivateKey};

/// File name of the ed25519 host key (the name OpenSSH uses).
pub const ED25519_KEY_FILE: &str = "ssh_host_ed25519_key";
/// File name of the RSA host key (the name OpenSSH uses).
pub const RSA_KEY_FILE: &str = "ssh_host_rsa_key";
/// Size of a generated RSA host key: OpenSSH's default, and what current guidance asks for.
const RSA_KEY_BITS: usize = 3072;
/// The comment stored in generated keys, so an operator can tell where a key came from.
const KEY_COMMENT: &str = "pyvmd host key";

/// The kinds of host key the server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Ed25519,
    Rsa,
}

impl KeyKind {
    fn file_name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => ED25519_KEY_FILE,
            KeyKind::Rsa => RSA_KEY_FILE,
        }
    }

    fn matches(self, algorithm: &Algorithm) -> bool {
        match self {
            KeyKind::Ed25519 => *algorithm == Algorithm::Ed25519,
            KeyKind::Rsa => algorithm.clone().is_rsa(),
        }
    }

    fn generate(self) -> Result<PrivateKey> {
        let mut rng = rand::rng();
        let mut key = match self {
            KeyKind::Ed25519 => PrivateKey::random(&mut rng, Algorithm::Ed25519)
                .context("generating an ed25519 key")?,
            KeyKind::Rsa => {
                // `PrivateKey::random` would make a 4096-bit key; 3072 bits is as strong as
                // needed and makes every handshake noticeably cheaper.
                let keypair =
                    RsaKeypair::random(&mut rng, RSA_KEY_BITS).context("generating an RSA key")?;
                PrivateKey::new(KeypairData::from(keypair), "").context("building the RSA key")?
            }
        };
        key.set_comment(KEY_COMMENT);
        Ok(key)
    }
}

/// Loads the host keys from `state_dir`, generating (and saving) any that do not exist yet.
///
/// Returns the ed25519 key first, then the RSA key. Creates `state_dir` if needed. Key files are
/// written atomically (temporary file, fsync, rename) with mode 0600, so a crash never leaves a
/// truncated key behind that would fail the next start. RSA generation takes a noticeable
/// moment (CPU-bound): call this from a blocking context, not on an async runtime thread.
pub fn load_or_generate(state_dir: &Path) -> Result<Vec<PrivateKey>> {
    fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state directory {}", state_dir.display()))?;
    [KeyKind::Ed25519, KeyKind::Rsa]
        .into_iter()
        .map(|kind| load_or_generate_one(state_dir, kind))
        .collect()
}

fn load_or_generate_one(state_dir: &Path, kind: KeyKind) -> Result<PrivateKey> {
    let path = state_dir.join(kind.file_name());
    match fs::read(&path) {
        Ok(text) => {
            let key = load(&path, &text, kind)?;
            tracing::info!(
                path = %path.display(),
                fingerprint = %key.fingerprint(HashAlg::Sha256),
                "loaded SSH host key"
            );
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let key = kind.generate()?;
            save(&path, &key)?;
            tracing::info!(
                path = %path.display(),
                fingerprint = %key.fingerprint(HashAlg::Sha256),
                "generated new SSH host key"
            );
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading host key {}", path.display())),
    }
}

fn load(path: &Path, text: &[u8], kind: KeyKind) -> Result<PrivateKey> {
    let key = PrivateKey::from_openssh(text)
        .with_context(|| format!("parsing host key {} (OpenSSH format)", path.display()))?;
    if key.is_encrypted() {
        bail!(
            "host key {} is encrypted with a passphrase; the server cannot use it",
            path.display()
        );
    }
    if !kind.matches(&key.algorithm()) {
        bail!(
            "host key {} is a {} key, expected {:?}",
            path.display(),
            key.algorithm(),
            kind
        );
    }
    // Like sshd, complain about a private key that others can read; we do not refuse it, since
    // the operator may have reasons (e.g. a read-only mounted secret with fixed permissions).
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
            "SSH host key is accessible by group or others"
        );
    }
    Ok(key)
}

/// Writes `key` to `path` atomically, plus its public half to `path.pub`.
fn save(path: &Path, key: &PrivateKey) -> Result<()> {
    let private = key
        .to_openssh(LineEnding::LF)
        .context("encoding host key in OpenSSH format")?;
    let public = key
        .public_key()
        .to_openssh()
        .context("encoding public host key")?;
    // The public file is only a convenience for operators; write it first so that the private
    // key's existence (which decides "generate or load") implies a complete pair on disk.
    write_atomically(
        &with_suffix(path, ".pub"),
        format!("{public}\n").as_bytes(),
        0o644,
    )?;
    write_atomically(path, private.as_bytes(), 0o600)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Replaces `path` with `contents`: write a temporary file in the same directory, fsync it,
/// rename it over `path` and fsync the directory, so that readers (and a restart after a crash)
/// see either nothing or the whole file.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = with_suffix(path, &format!(".tmp.{}", std::process::id()));
    // A temporary file left by a crash of an earlier run with the same pid would make
    // `create_new` fail; it is garbage by definition.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let result = (|| -> Result<()> {
        // The mode is set at creation so the secret is never readable by others, not even
        // for a moment.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(contents)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        // Make the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", dir.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");

        let first = load_or_generate(&state).expect("generate");
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].algorithm(), Algorithm::Ed25519);
        assert!(first[1].algorithm().is_rsa());
        match first[1].key_data() {
            KeypairData::Rsa(rsa) => assert_eq!(rsa.key_size(), RSA_KEY_BITS as u32),
            other => panic!("expected an RSA key, got {other:?}"),
        }

        for name in [ED25519_KEY_FILE, RSA_KEY_FILE] {
            let mode = fs::metadata(state.join(name))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
            assert!(state.join(format!("{name}.pub")).exists());
        }
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(&state)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");

        let second = load_or_generate(&state).expect("load");
        let public = |keys: &[PrivateKey]| {
            keys.iter()
                .map(|k| k.public_key().key_data().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(public(&first), public(&second));
    }

    #[test]
    fn rejects_a_key_of_the_wrong_type() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = KeyKind::Ed25519.generate().expect("generate");
        save(&dir.path().join(RSA_KEY_FILE), &key).expect("save");
        let err = load_or_generate(dir.path()).expect_err("wrong type must fail");
        assert!(format!("{err:#}").contains("expected Rsa"), "{err:#}");
    }

    #[test]
    fn rejects_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(ED25519_KEY_FILE), "not a key").expect("write");
        assert!(load_or_generate(dir.path()).is_err());
    }
}
