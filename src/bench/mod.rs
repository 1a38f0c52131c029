//! `clipsight bench`: printed figures, each a ratio against a baseline measured in the same run
//! (machines are noisy; absolute numbers travel badly).
//!
//! - [`ann`]: the HNSW graph against an exact scan, on synthetic CLIP-like vectors.
//! - [`index`]: end-to-end indexing against the model-only floor and a Python/PIL peer pipeline,
//!   on generated realistic photos ([`photos`]).
//! - [`query`]: text-encoder latency against search end to end, in process, CLI and REST.

pub mod ann;
pub mod index;
pub mod photos;
pub mod query;

/// The process's peak resident set size in MiB (`VmHWM`), 0 where /proc is unavailable.
pub fn peak_rss_mb() -> f64 {
    proc_status_kib("VmHWM:") as f64 / 1024.0
}

/// The process's current resident set size in MiB (`VmRSS`).
pub fn rss_mb() -> f64 {
    proc_status_kib("VmRSS:") as f64 / 1024.0
}

/// Resets the peak RSS so the next phase is measured alone (Linux `clear_refs`; best effort).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
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
