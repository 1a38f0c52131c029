//! Signed-in browser sessions, kept in the server's memory: a session id is 256 random bits
//! handed to the browser once (in an `HttpOnly` cookie) and stored here only as its SHA-256, so
//! lookups compare digests, never the secret. A restart, a sign-out or the expiry ends a session;
//! an id from another server instance is unknown here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::credentials::{digest, random_hex};
use crate::sync::lock;

/// At most this many live sessions; the oldest goes when a new one would pass it.
const MAX_SESSIONS: usize = 10_000;

/// The sessions of one server.
pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<String, Session>>,
}

/// One signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user it belongs to.
    pub user: String,
    /// When it ends.
    pub expires: Instant,
    /// The same moment on the wall clock, for the client.
    pub expires_at: SystemTime,
}

impl Sessions {
    /// Sessions that last `ttl` from sign-in.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, live: Mutex::new(HashMap::new()) }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for `user`; returns its id (the cookie's value) and the session.
    pub fn open(&self, user: &str) -> (String, Session) {
        let id = random_hex(32);
        let session = Session { user: user.to_string(), expires: Instant::now() + self.ttl, expires_at: SystemTime::now() + self.ttl };
        let mut live = lock(&self.live);
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                live.remove(&oldest);
            }
        }
        live.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session with this id; an expired one is forgotten.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = digest(id);
        let mut live = lock(&self.live);
        match live.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session with this id (signing out); unknown ids are ignored.
    pub fn close(&self, id: &str) {
        lock(&self.live).remove(&digest(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_it_expires_or_is_closed() {
        let sessions = Sessions::new(Duration::from_millis(200));
        let (id, s) = sessions.open("alice");
        assert_eq!(s.user, "alice");
        assert_eq!(sessions.get(&id).unwrap().user, "alice");
        assert!(sessions.get("not-an-id").is_none());
        let (other, _) = sessions.open("bob");
        sessions.close(&other);
        assert!(sessions.get(&other).is_none(), "signed out");
        std::thread::sleep(Duration::from_millis(250));
        assert!(sessions.get(&id).is_none(), "expired");
    }

    #[test]
    fn another_instance_does_not_know_this_ones_sessions() {
        let (a, b) = (Sessions::new(Duration::from_secs(60)), Sessions::new(Duration::from_secs(60)));
        let (id, _) = a.open("alice");
        assert!(b.get(&id).is_none());
    }
}
