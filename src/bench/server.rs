//! A `clipsight serve` child process on a free loopback port: started from a prepared command,
//! found by the address line it prints, stopped with SIGTERM (then SIGKILL) when dropped.
//! The query bench measures through it; the integration tests start theirs with it too.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `clipsight serve`.
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    /// Seconds from spawning until the address line was printed.
    pub listening_s: f64,
}

impl ServeProcess {
    /// Spawns `serve` (a `clipsight … serve --bind 127.0.0.1:0 …` command; its stdout is taken
    /// over here) and waits for the line that names its URL. Its stdout is drained afterwards, so
    /// the server never blocks on a full pipe.
    pub fn start(mut serve: Command) -> std::io::Result<Self> {
        let started = Instant::now();
        let mut child = serve.stdout(Stdio::piped()).spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let line = lines.next().transpose()?.unwrap_or_default();
        let listening_s = started.elapsed().as_secs_f64();
        let Some(base) = line.split_whitespace().find(|w| w.starts_with("http://")).map(|u| u.trim_end_matches('/').to_string()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!("serve did not print its address: {line:?}")));
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, base, listening_s })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) and waits up to `limit` for the exit status.
    pub fn stop_with(&mut self, signal: i32, limit: Duration) -> Option<ExitStatus> {
        // SAFETY: kill(2) on our own child's pid, which is not reaped before this returns.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
        self.wait_timeout(limit)
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    /// A graceful stop (SIGTERM, 10 s), then SIGKILL.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if self.stop_with(libc::SIGTERM, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}
