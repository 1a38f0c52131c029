//! Who may use a served library: the credentials (users with passphrases, named tokens), the
//! signed-in sessions, the sign-in throttle, and the one rule for anonymous callers. Nothing here
//! knows HTTP: `server::auth` reads requests and asks [`AccessControl`].
//!
//! The rule: a server with no credentials that listens on loopback answers anonymous callers as
//! before (`Anonymous::Everything`); `--public` lets anonymous callers read (`Anonymous::Read`);
//! otherwise every caller authenticates (`Anonymous::Nothing`). A server beyond loopback with
//! no credentials and no `--public` does not start.

mod credentials;
mod sessions;
mod throttle;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use credentials::{CredentialFile, Credentials, Token, User, MIN_PASSPHRASE_CHARS};
pub use sessions::Session;
pub use throttle::{FREE_ATTEMPTS, MAX_LOCKOUT};

use crate::sync;

/// What an authenticated caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, browse, download: every route that changes nothing.
    Read,
    /// Also start indexing jobs.
    Write,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
        })
    }
}

/// An authenticated caller: a user or a token, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's or token's name.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// What a caller without credentials may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    /// Everything (loopback, no credentials configured: the behaviour before sign-in existed).
    Everything,
    /// Read, not write (`--public`).
    Read,
    /// Nothing but the health check and signing in.
    Nothing,
}

/// Why credentials could not be read, changed or used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credential file is unreadable or not valid JSON.
    #[error("credential file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A passphrase shorter than [`MIN_PASSPHRASE_CHARS`].
    #[error("a passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    /// A user or token name that is empty, too long, or has spaces or odd characters.
    #[error("bad name {0:?}: use 1–64 letters, digits, '.', '_', '-' or '@'")]
    BadName(String),
    /// A token of that name exists already.
    #[error("a token named {0:?} exists already (remove it first)")]
    Exists(String),
    /// No user or token of that name.
    #[error("no user or token named {0:?}")]
    Unknown(String),
    /// Hashing failed (it does not, short of a broken build).
    #[error("cannot hash the passphrase: {0}")]
    Hash(String),
    /// Listening beyond loopback with nobody able to sign in and without `--public`.
    #[error(
        "refusing to serve beyond loopback without authentication: anyone on the network could see every photo. \
         Add a user (`clipsight user add NAME`) or a token (`clipsight token add NAME`, `--token`, `--token-file`), \
         or pass --public to let anyone who reaches the port search and view the library"
    )]
    Unprotected,
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong name or passphrase; `locked_for` when this failure started a lockout.
    Wrong {
        /// The lockout this failure started.
        locked_for: Option<Duration>,
    },
    /// Too many failures from this client: try again after this long.
    Locked(Duration),
}

/// How a server controls access.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// `--public`: anonymous callers may read.
    pub public: bool,
    /// Tokens given on the command line or in a token file (kept in memory only).
    pub tokens: Vec<Token>,
    /// How long a signed-in session lasts.
    pub session_ttl: Duration,
    /// The first sign-in lockout (it doubles with every further failure).
    pub first_lockout: Duration,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self { public: false, tokens: Vec::new(), session_ttl: Duration::from_secs(7 * 24 * 3600), first_lockout: Duration::from_secs(30) }
    }
}

/// The access state of one server: credentials (re-read when their file changes), sessions and
/// the throttle.
pub struct AccessControl {
    file: Option<CredentialFile>,
    loopback: bool,
    settings: AccessSettings,
    current: RwLock<(credentials::Stamp, Arc<Credentials>)>,
    sessions: sessions::Sessions,
    throttle: throttle::Throttle,
}

impl AccessControl {
    /// Access for a server with `settings` that listens on loopback only (`loopback`) or not,
    /// reading users and tokens from `file` (if any). Fails when the file is damaged, or when the
    /// server would listen beyond loopback with nobody able to authenticate and without `--public`.
    pub fn open(file: Option<CredentialFile>, settings: AccessSettings, loopback: bool) -> Result<Self, AuthError> {
        let stamp = file.as_ref().map_or(credentials::Stamp::none(), CredentialFile::stamp);
        let loaded = with_tokens(file.as_ref().map(CredentialFile::load).transpose()?.unwrap_or_default(), &settings.tokens);
        if !loopback && !settings.public && loaded.is_empty() {
            return Err(AuthError::Unprotected);
        }
        Ok(Self {
            file,
            loopback,
            sessions: sessions::Sessions::new(settings.session_ttl),
            throttle: throttle::Throttle::new(settings.first_lockout),
            current: RwLock::new((stamp, Arc::new(loaded))),
            settings,
        })
    }

    /// The credentials now: the file is re-read when it changed (one `stat` per call); a file
    /// that became unreadable keeps the last good credentials, with a warning.
    pub fn credentials(&self) -> Arc<Credentials> {
        let Some(file) = &self.file else { return sync::read(&self.current).1.clone() };
        let stamp = file.stamp();
        {
            let current = sync::read(&self.current);
            if current.0 == stamp {
                return current.1.clone();
            }
        }
        let mut current = sync::write(&self.current);
        match file.load() {
            Ok(loaded) => {
                tracing::info!("credentials reloaded from {}", file.path().display());
                *current = (stamp, Arc::new(with_tokens(loaded, &self.settings.tokens)));
            }
            Err(e) => {
                tracing::warn!("{e}; keeping the credentials read before");
                current.0 = stamp;
            }
        }
        current.1.clone()
    }

    /// What a caller without credentials may do now.
    pub fn anonymous(&self) -> Anonymous {
        if self.loopback && self.credentials().is_empty() {
            Anonymous::Everything
        } else if self.settings.public {
            Anonymous::Read
        } else {
            Anonymous::Nothing
        }
    }

    /// The token with this secret.
    pub fn bearer(&self, secret: &str) -> Option<Principal> {
        self.credentials().verify_token(secret)
    }

    /// The live session with this id and its user as they are now; a session whose user was
    /// removed is closed.
    pub fn session(&self, id: &str) -> Option<(Principal, Session)> {
        let session = self.sessions.get(id)?;
        match self.credentials().user_role(&session.user) {
            Some(role) => Some((Principal { name: session.user.clone(), role }, session)),
            None => {
                self.sessions.close(id);
                None
            }
        }
    }

    /// Checks `name`'s passphrase for a caller at `client` (throttled per client) and opens a
    /// session: its id (the cookie's value), the session and the user. Slow on purpose (Argon2):
    /// call it off the async threads.
    pub fn sign_in(&self, client: IpAddr, name: &str, passphrase: &str) -> Result<(String, Session, Principal), SignInError> {
        self.throttle.check(client).map_err(SignInError::Locked)?;
        match self.credentials().verify_passphrase(name, passphrase) {
            Some(principal) => {
                self.throttle.succeeded(client);
                let (id, session) = self.sessions.open(&principal.name);
                tracing::info!("{:?} signed in from {client}", principal.name);
                Ok((id, session, principal))
            }
            None => {
                let locked_for = self.throttle.failed(client);
                match locked_for {
                    Some(d) => tracing::warn!("sign-in failed for {name:?} from {client}; client locked out for {}s", d.as_secs()),
                    None => tracing::warn!("sign-in failed for {name:?} from {client}"),
                }
                Err(SignInError::Wrong { locked_for })
            }
        }
    }

    /// Ends the session with this id.
    pub fn sign_out(&self, id: &str) {
        self.sessions.close(id);
    }

    /// How long a session lasts.
    pub fn session_ttl(&self) -> Duration {
        self.sessions.ttl()
    }
}

fn with_tokens(mut credentials: Credentials, tokens: &[Token]) -> Credentials {
    credentials.tokens.extend(tokens.iter().cloned());
    credentials
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public: bool) -> AccessSettings {
        AccessSettings { public, first_lockout: Duration::from_millis(300), ..Default::default() }
    }

    #[test]
    fn anonymous_callers_get_everything_only_on_loopback_without_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::of_library(dir.path());
        let access = AccessControl::open(Some(file.clone()), settings(false), true).unwrap();
        assert_eq!(access.anonymous(), Anonymous::Everything);
        file.add_token("ci", Role::Write).unwrap();
        assert_eq!(access.anonymous(), Anonymous::Nothing, "a token added while serving takes effect");
        let public = AccessControl::open(Some(file.clone()), settings(true), false).unwrap();
        assert_eq!(public.anonymous(), Anonymous::Read);
        let with_flag = AccessControl::open(None, AccessSettings { tokens: vec![Token::from_secret("--token", "s3cret", Role::Write)], ..settings(false) }, true).unwrap();
        assert_eq!(with_flag.anonymous(), Anonymous::Nothing);
        assert_eq!(with_flag.bearer("s3cret").map(|p| p.role), Some(Role::Write));
    }

    #[test]
    fn beyond_loopback_nobody_able_to_sign_in_is_refused_unless_public() {
        assert!(matches!(AccessControl::open(None, settings(false), false), Err(AuthError::Unprotected)));
        assert!(AccessControl::open(None, settings(true), false).is_ok());
    }

    #[test]
    fn sign_in_opens_a_session_that_ends_with_sign_out_or_the_users_removal() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::of_library(dir.path());
        file.add_user("alice", "correct horse", Role::Read).unwrap();
        let access = AccessControl::open(Some(file.clone()), settings(false), false).unwrap();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(access.sign_in(client, "alice", "wrong horse").err(), Some(SignInError::Wrong { locked_for: None }));
        let (id, _, who) = access.sign_in(client, "alice", "correct horse").unwrap();
        assert_eq!(who.role, Role::Read);
        assert_eq!(access.session(&id).unwrap().0.name, "alice");
        access.sign_out(&id);
        assert!(access.session(&id).is_none());
        let (id, _, _) = access.sign_in(client, "alice", "correct horse").unwrap();
        file.remove_user("alice").unwrap();
        assert!(access.session(&id).is_none(), "a removed user's sessions end");
    }

    #[test]
    fn a_locked_out_client_is_refused_even_the_right_passphrase_until_the_lock_ends() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::of_library(dir.path());
        file.add_user("alice", "correct horse", Role::Write).unwrap();
        let access = AccessControl::open(Some(file), settings(false), false).unwrap();
        let client: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 1..FREE_ATTEMPTS {
            assert!(matches!(access.sign_in(client, "alice", "guess"), Err(SignInError::Wrong { locked_for: None })));
        }
        assert!(matches!(access.sign_in(client, "alice", "guess"), Err(SignInError::Wrong { locked_for: Some(_) })));
        assert!(matches!(access.sign_in(client, "alice", "correct horse"), Err(SignInError::Locked(_))));
        std::thread::sleep(Duration::from_millis(350));
        assert!(access.sign_in(client, "alice", "correct horse").is_ok());
    }
}
