//! FFmpeg's programs as subprocesses, each with a time budget: a file that makes FFmpeg hang or
//! crawl is killed and reported, and indexing goes on.

use std::io::Read;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a video could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// FFmpeg is not installed (`scripts/setup.sh` installs Debian's).
    #[error("cannot run {program} (install FFmpeg: scripts/setup.sh does): {source}")]
    MissingTool {
        /// `ffmpeg` or `ffprobe`.
        program: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The file has no picture stream (audio only, or only cover art).
    #[error("the file has no video stream")]
    NoVideoStream,
    /// FFmpeg could not read it.
    #[error("corrupt video: {0}")]
    Corrupt(String),
    /// Reading it took longer than the per-file budget.
    #[error("gave up after {0:?}: reading this video takes longer than the per-file budget (--file-budget)")]
    OverBudget(Duration),
}

/// A child process that is killed when `budget` runs out before [`Watched::finish`].
pub(super) struct Watched {
    child: Arc<Mutex<Child>>,
    cancel: crossbeam_channel::Sender<()>,
    watchdog: std::thread::JoinHandle<bool>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    program: String,
    budget: Duration,
}

impl Watched {
    /// Starts `command` with stdout piped (returned) and stderr collected.
    pub(super) fn spawn(mut command: Command, budget: Duration) -> Result<(Self, ChildStdout), VideoError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| VideoError::MissingTool { program: program.clone(), source })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut err = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = err.read_to_end(&mut text);
            text
        });
        let child = Arc::new(Mutex::new(child));
        let (cancel, cancelled) = crossbeam_channel::bounded::<()>(1);
        let watched = child.clone();
        let watchdog = std::thread::spawn(move || match cancelled.recv_timeout(budget) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let _ = lock(&watched).kill();
                true
            }
            _ => false,
        });
        Ok((Self { child, cancel, watchdog, stderr, program, budget }, stdout))
    }

    /// Stops the process now (its output is no longer wanted).
    pub(super) fn kill(&self) {
        let _ = lock(&self.child).kill();
    }

    /// Waits for the process; its stderr, or why it failed (`killed` says the caller stopped it).
    pub(super) fn finish(self, killed: bool) -> Result<Vec<u8>, VideoError> {
        let status = lock(&self.child).wait();
        let _ = self.cancel.send(());
        let over_budget = self.watchdog.join().unwrap_or(false);
        let stderr = self.stderr.join().unwrap_or_default();
        if over_budget {
            return Err(VideoError::OverBudget(self.budget));
        }
        match status {
            Ok(s) if s.success() || killed => Ok(stderr),
            Ok(_) => Err(VideoError::Corrupt(last_lines(&stderr, &self.program))),
            Err(e) => Err(VideoError::Corrupt(format!("{}: {e}", self.program))),
        }
    }
}

/// Runs `command` to its end within `budget`; its stdout.
pub(super) fn run_to_end(command: Command, budget: Duration) -> Result<Vec<u8>, VideoError> {
    let (process, mut stdout) = Watched::spawn(command, budget)?;
    let mut out = Vec::new();
    let _ = stdout.read_to_end(&mut out);
    process.finish(false)?;
    Ok(out)
}

/// The end of what a program wrote to stderr, as one line of an error message.
pub(super) fn last_lines(stderr: &[u8], program: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    // "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d1…] moov atom not found": the demuxer's address is noise.
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("Parsed_showinfo"))
        .map(|l| match (l.starts_with('['), l.find("] ")) {
            (true, Some(end)) if l[..end].contains(" @ 0x") => &l[end + 2..],
            _ => l,
        })
        .collect();
    match lines.len() {
        0 => format!("{program} failed without saying why"),
        n => lines[n.saturating_sub(2)..].join("; "),
    }
}

/// The child, even if a thread panicked holding it (killing and waiting stay safe).
fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
