//! The sign-in throttle: per client address, a few wrong passphrases are free, then the client is
//! locked out, and every further failure locks it again for twice as long (up to a cap). While
//! locked, even the right passphrase is refused; a successful sign-in forgets the client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// Wrong passphrases a client may try before the first lockout.
pub const FREE_ATTEMPTS: u32 = 5;
/// The longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(3600);
/// Clients remembered at most; idle ones are forgotten first.
const MAX_CLIENTS: usize = 100_000;

/// Failed sign-ins per client.
pub struct Throttle {
    first_lockout: Duration,
    clients: Mutex<HashMap<IpAddr, Strikes>>,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    lockouts: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

impl Throttle {
    /// A throttle whose first lockout lasts `first_lockout`.
    pub fn new(first_lockout: Duration) -> Self {
        Self { first_lockout, clients: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry_after)` while `client` is locked out.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        match lock(&self.clients).get(&client).and_then(|s| s.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a wrong passphrase; returns the lockout it starts, if any.
    pub fn failed(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut clients = lock(&self.clients);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let horizon = now.checked_sub(MAX_LOCKOUT).unwrap_or(now);
            clients.retain(|_, s| s.last > horizon);
        }
        let strikes = clients.entry(client).or_insert(Strikes { failures: 0, lockouts: 0, locked_until: None, last: now });
        strikes.failures += 1;
        strikes.last = now;
        if strikes.failures < FREE_ATTEMPTS {
            return None;
        }
        let lockout = self.first_lockout.saturating_mul(1 << strikes.lockouts.min(20)).min(MAX_LOCKOUT);
        strikes.lockouts += 1;
        strikes.locked_until = Some(now + lockout);
        Some(lockout)
    }

    /// Forgets `client`'s failures (it signed in).
    pub fn succeeded(&self, client: IpAddr) {
        lock(&self.clients).remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_attempts_then_doubling_lockouts_per_client() {
        let throttle = Throttle::new(Duration::from_millis(100));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 1..FREE_ATTEMPTS {
            assert_eq!(throttle.failed(a), None);
            assert!(throttle.check(a).is_ok());
        }
        assert_eq!(throttle.failed(a), Some(Duration::from_millis(100)));
        assert!(throttle.check(a).is_err(), "locked");
        assert!(throttle.check(b).is_ok(), "another client is not");
        std::thread::sleep(Duration::from_millis(120));
        assert!(throttle.check(a).is_ok(), "the lock expired");
        assert_eq!(throttle.failed(a), Some(Duration::from_millis(200)), "the next failure locks for twice as long");
        throttle.succeeded(a);
        assert!(throttle.check(a).is_ok());
        assert_eq!(throttle.failed(a), None, "a sign-in forgets the strikes");
    }
}
