//! `clipsight bench`: printed figures, each a ratio against a baseline measured in the same run
//! (machines are noisy; absolute numbers travel badly).
//!
//! - [`crate::ann::bench`]: the HNSW graph against an exact scan, on synthetic CLIP-like vectors.
//! - [`index`]: end-to-end indexing against the model-only floor and a Python/PIL peer pipeline,
//!   on generated realistic photos ([`photos`]).
//! - [`keywords`]: the keyword index's CJK-aware analyzer against tantivy's default tokenizer.
//! - [`query`]: text-encoder latency against search end to end, in process, CLI and REST.
//! - [`server`]: a `clipsight serve` child process, for the query bench and the integration tests.
//! - [`disk`]: a throttled disk for the query bench's cold starts.

pub mod disk;
pub mod index;
pub mod keywords;
pub mod photos;
pub mod query;
pub mod server;

/// The process's current resident set size in MiB (`VmRSS`).
pub fn rss_mb() -> f64 {
    proc_status_kib("self", "VmRSS:") as f64 / 1024.0
}

/// Another process's resident set size in MiB (a `clipsight serve` child, say).
pub fn rss_mb_of(pid: u32) -> f64 {
    proc_status_kib(&pid.to_string(), "VmRSS:") as f64 / 1024.0
}

/// The part of another process's RSS that is file-backed (mapped files: the graph's data, the
/// flat copy, the binary and libraries), in MiB: page cache the kernel can reclaim under memory
/// pressure, unlike the anonymous rest.
pub fn rss_file_mb_of(pid: u32) -> f64 {
    proc_status_kib(&pid.to_string(), "RssFile:") as f64 / 1024.0
}

/// Samples this process's RSS every 20 ms until [`RssSampler::peak_mb`] is asked: the peak of
/// one phase (the kernel's own high-water mark covers the whole process life).
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl RssSampler {
    /// Starts sampling.
    pub fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = rss_mb();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mb());
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            peak.max(rss_mb())
        });
        Self { stop, thread }
    }

    /// Stops sampling and returns the peak in MiB.
    pub fn peak_mb(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0.0)
    }
}

fn proc_status_kib(process: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The `p`-quantile (0–1) of sorted samples.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
