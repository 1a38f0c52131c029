//! The credentials a library's server accepts: users with a passphrase (kept only as an Argon2id
//! hash) and named API tokens (kept only as a SHA-256 digest), in `DATA/auth.json`, which
//! `clipsight user …` and `clipsight token …` edit and a running server re-reads when it changes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Principal, Role};

/// The shortest passphrase `user add` accepts.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// What the server's credential file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// People who sign in through the web UI.
    #[serde(default)]
    pub users: Vec<User>,
    /// API clients (`Authorization: Bearer …`).
    #[serde(default)]
    pub tokens: Vec<Token>,
}

/// A person who signs in with a name and a passphrase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The sign-in name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The passphrase's Argon2id hash in PHC form (salt and parameters included).
    pub passphrase_hash: String,
}

/// A named bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    /// What the token is for (shown in logs and `token list`, never the secret).
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// SHA-256 of the secret, hex. Tokens are 256 random bits, so a fast digest is enough: there
    /// is nothing to guess, only a stolen file to make useless.
    pub sha256: String,
}

impl Token {
    /// A token for `secret` (from `--token` or `--token-file`, kept in memory only).
    pub fn from_secret(name: &str, secret: &str, role: Role) -> Self {
        Self { name: name.to_string(), role, sha256: digest(secret) }
    }
}

impl Credentials {
    /// No user and no token: nobody could authenticate.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.tokens.is_empty()
    }

    /// The token whose secret is `secret`. Every stored digest is compared, each in constant
    /// time, so the answer's timing says nothing about which bytes matched.
    pub fn verify_token(&self, secret: &str) -> Option<Principal> {
        let given = hex::decode(digest(secret)).expect("a digest is hex");
        let mut found = None;
        for token in &self.tokens {
            let stored = hex::decode(&token.sha256).unwrap_or_default();
            if bool::from(stored.ct_eq(&given)) && found.is_none() {
                found = Some(Principal { name: token.name.clone(), role: token.role });
            }
        }
        found
    }

    /// The user `name` if `passphrase` is theirs. An unknown name costs the same Argon2 work as a
    /// known one, so timing does not tell which names exist.
    pub fn verify_passphrase(&self, name: &str, passphrase: &str) -> Option<Principal> {
        let user = self.users.iter().find(|u| u.name == name);
        let hash = user.map_or_else(|| dummy_hash().to_string(), |u| u.passphrase_hash.clone());
        let matches = PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(passphrase.as_bytes(), &h).is_ok());
        user.filter(|_| matches).map(|u| Principal { name: u.name.clone(), role: u.role })
    }

    /// The user `name`'s current role, if they still exist (a session outlives no removal).
    pub fn user_role(&self, name: &str) -> Option<Role> {
        self.users.iter().find(|u| u.name == name).map(|u| u.role)
    }
}

/// The credential file of a library directory.
#[derive(Debug, Clone)]
pub struct CredentialFile {
    path: PathBuf,
}

/// When a credential file was last written (`None`: it does not exist), to notice edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(Option<(SystemTime, u64)>);

impl Stamp {
    /// The stamp of no file.
    pub fn none() -> Self {
        Stamp(None)
    }
}

impl CredentialFile {
    /// `DATA/auth.json`.
    pub fn of_library(data: &Path) -> Self {
        Self { path: data.join("auth.json") }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current stamp.
    pub fn stamp(&self) -> Stamp {
        Stamp(std::fs::metadata(&self.path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len())))
    }

    /// The credentials in the file; none when it does not exist.
    pub fn load(&self) -> Result<Credentials, AuthError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AuthError::File { path: self.path.clone(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(AuthError::File { path: self.path.clone(), reason: e.to_string() }),
        }
    }

    /// Adds (or replaces) the user `name` with `passphrase`.
    pub fn add_user(&self, name: &str, passphrase: &str, role: Role) -> Result<(), AuthError> {
        check_name(name)?;
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(AuthError::WeakPassphrase);
        }
        let passphrase_hash = hash_passphrase(passphrase)?;
        self.edit(|c| {
            c.users.retain(|u| u.name != name);
            c.users.push(User { name: name.to_string(), role, passphrase_hash });
            Ok(())
        })
    }

    /// Creates the token `name` and returns its secret, which is stored nowhere else: the caller
    /// shows it once.
    pub fn add_token(&self, name: &str, role: Role) -> Result<String, AuthError> {
        check_name(name)?;
        let secret = format!("cs_{}", random_hex(32));
        self.edit(|c| {
            if c.tokens.iter().any(|t| t.name == name) {
                return Err(AuthError::Exists(name.to_string()));
            }
            c.tokens.push(Token::from_secret(name, &secret, role));
            Ok(())
        })?;
        Ok(secret)
    }

    /// Removes the user `name`.
    pub fn remove_user(&self, name: &str) -> Result<(), AuthError> {
        self.edit(|c| remove(&mut c.users, |u| u.name == name, name))
    }

    /// Removes the token `name`.
    pub fn remove_token(&self, name: &str) -> Result<(), AuthError> {
        self.edit(|c| remove(&mut c.tokens, |t| t.name == name, name))
    }

    /// Loads, changes and writes the file back atomically (a new file renamed over the old one),
    /// readable by its owner only.
    fn edit(&self, change: impl FnOnce(&mut Credentials) -> Result<(), AuthError>) -> Result<(), AuthError> {
        let mut credentials = self.load()?;
        change(&mut credentials)?;
        let io = |e: std::io::Error| AuthError::File { path: self.path.clone(), reason: e.to_string() };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(&credentials).expect("credentials serialise")).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        file.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

fn remove<T>(items: &mut Vec<T>, is: impl Fn(&T) -> bool, name: &str) -> Result<(), AuthError> {
    let before = items.len();
    items.retain(|item| !is(item));
    if items.len() == before {
        return Err(AuthError::Unknown(name.to_string()));
    }
    Ok(())
}

/// Names are shown in logs and lists: printable, short, no spaces.
fn check_name(name: &str) -> Result<(), AuthError> {
    let fine = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c));
    if fine {
        Ok(())
    } else {
        Err(AuthError::BadName(name.to_string()))
    }
}

/// Argon2id with the crate's default (OWASP-recommended) parameters and a random salt.
fn hash_passphrase(passphrase: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::default().hash_password(passphrase.as_bytes(), &salt).map_err(|e| AuthError::Hash(e.to_string()))?.to_string())
}

/// A hash no passphrase is known for, verified against for unknown names.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_passphrase(&random_hex(16)).expect("hashing works"))
}

/// `bytes` random bytes (the thread's CSPRNG, seeded from the OS), hex.
pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// SHA-256 of `secret`, hex.
pub(super) fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_tokens_round_trip_through_the_file_without_their_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::of_library(dir.path());
        assert!(file.load().unwrap().is_empty(), "no file: no credentials");
        file.add_user("alice", "correct horse", Role::Write).unwrap();
        let secret = file.add_token("scanner", Role::Read).unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("correct horse") && !text.contains(&secret), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }

        let c = file.load().unwrap();
        assert_eq!(c.verify_passphrase("alice", "correct horse"), Some(Principal { name: "alice".into(), role: Role::Write }));
        assert_eq!(c.verify_passphrase("alice", "correct horsE"), None);
        assert_eq!(c.verify_passphrase("bob", "correct horse"), None);
        assert_eq!(c.verify_token(&secret), Some(Principal { name: "scanner".into(), role: Role::Read }));
        assert_eq!(c.verify_token(&secret[..secret.len() - 1]), None);
        assert_eq!(c.verify_token(""), None);
    }

    #[test]
    fn edits_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::of_library(dir.path());
        assert!(matches!(file.add_user("alice", "short", Role::Read), Err(AuthError::WeakPassphrase)));
        assert!(matches!(file.add_user("al ice", "long enough", Role::Read), Err(AuthError::BadName(_))));
        file.add_token("ci", Role::Write).unwrap();
        assert!(matches!(file.add_token("ci", Role::Write), Err(AuthError::Exists(_))));
        assert!(matches!(file.remove_user("nobody"), Err(AuthError::Unknown(_))));
        file.remove_token("ci").unwrap();
        assert!(file.load().unwrap().is_empty());
        std::fs::write(file.path(), b"{not json").unwrap();
        assert!(matches!(file.load(), Err(AuthError::File { .. })));
    }

    #[test]
    fn the_stamp_changes_when_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::of_library(dir.path());
        let none = file.stamp();
        file.add_token("a", Role::Read).unwrap();
        let one = file.stamp();
        assert_ne!(none, one);
        file.add_token("bb", Role::Read).unwrap();
        assert_ne!(one, file.stamp(), "a longer file has another stamp even within one mtime tick");
    }
}
