//! A slower disk for cold-start figures: a cgroup that caps how fast its processes read from the
//! disk holding a path (the kernel's block-I/O throttle, cgroup v1 `blkio` or v2 `io`).
//!
//! A virtual machine's disk is often served from its host's page cache: dropping the guest's
//! cache then re-reads at gigabytes per second (3.1 GB/s measured on the bench machines), so a
//! "cold" start there is not cold. Throttling to, say, 200 MB/s reproduces the small server's
//! disk the targets are about. It caps bandwidth and, optionally, operations per second; it
//! adds no seek time, so it models an SSD-class device more closely than a spinning disk.
//! Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::index::BenchError;

/// Read limits of a [`SlowDisk`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DiskLimit {
    /// Bytes read per second, in MB (10⁶ bytes).
    pub mb_per_s: u64,
    /// Read operations per second (`None`: unlimited).
    pub iops: Option<u64>,
}

/// A throttled cgroup, removed when dropped.
pub struct SlowDisk {
    dir: PathBuf,
    version: Version,
}

#[derive(Debug, Clone, Copy)]
enum Version {
    V1,
    V2,
}

const V1_ROOT: &str = "/sys/fs/cgroup/blkio";
const V2_ROOT: &str = "/sys/fs/cgroup";

impl SlowDisk {
    /// Creates a cgroup whose reads from the disk holding `path` are limited to `limit`.
    pub fn new(path: &Path, limit: DiskLimit) -> Result<Self, BenchError> {
        let fail = |what: String| BenchError::Search(format!("--disk-mbps: {what} (it needs root and the blkio or io cgroup controller)"));
        let device = whole_disk_of(path).map_err(|e| fail(format!("cannot find the disk of {}: {e}", path.display())))?;
        let name = format!("clipsight-bench-{}", std::process::id());
        let (version, dir) = if Path::new(V1_ROOT).join("blkio.throttle.read_bps_device").exists() {
            (Version::V1, Path::new(V1_ROOT).join(&name))
        } else if std::fs::read_to_string(Path::new(V2_ROOT).join("cgroup.controllers")).is_ok_and(|c| c.split_whitespace().any(|c| c == "io")) {
            let _ = std::fs::write(Path::new(V2_ROOT).join("cgroup.subtree_control"), "+io");
            (Version::V2, Path::new(V2_ROOT).join(&name))
        } else {
            return Err(fail("no blkio (v1) or io (v2) cgroup controller".into()));
        };
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        let disk = Self { dir, version };
        let bps = limit.mb_per_s * 1_000_000;
        let set = |file: &str, value: String| std::fs::write(disk.dir.join(file), value).map_err(|e| fail(format!("cannot write {file}: {e}")));
        match disk.version {
            Version::V1 => {
                set("blkio.throttle.read_bps_device", format!("{device} {bps}"))?;
                if let Some(iops) = limit.iops {
                    set("blkio.throttle.read_iops_device", format!("{device} {iops}"))?;
                }
            }
            Version::V2 => {
                let iops = limit.iops.map_or(String::new(), |n| format!(" riops={n}"));
                set("io.max", format!("{device} rbps={bps}{iops}"))?;
            }
        }
        Ok(disk)
    }

    /// `command`, run inside the cgroup from its first instruction: through `sh`, which moves
    /// itself in and then becomes the command. Carries the program, arguments, environment
    /// changes and directory over; not an `env_clear` or stdio settings (set those on the
    /// returned command).
    pub fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("sh");
        wrapped.arg("-c").arg("echo $$ > \"$0\" && exec \"$@\"").arg(self.dir.join("cgroup.procs")).arg(command.get_program()).args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }
}

impl Drop for SlowDisk {
    /// Removes the cgroup (its processes have exited by then; a leftover one is harmless).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `MAJOR:MINOR` of the whole disk (not the partition) that holds `path`: the throttle applies
/// to disks.
fn whole_disk_of(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path)?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"))?;
    let disk = if sys.join("partition").exists() { sys.parent().map(Path::to_path_buf).unwrap_or(sys) } else { sys };
    Ok(std::fs::read_to_string(disk.join("dev"))?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_of_a_path_is_a_block_device_number() {
        // Containers may lack /sys/dev/block entries for overlay file systems: then say so.
        match whole_disk_of(Path::new("/")) {
            Ok(device) => {
                let (major, minor) = device.split_once(':').expect("MAJOR:MINOR");
                assert!(major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok(), "{device}");
            }
            Err(e) => eprintln!("SKIPPED: / is on no block device here ({e})"),
        }
    }
}
