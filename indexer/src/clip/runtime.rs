//! ONNX Runtime: finding the shared library, one process-wide environment, execution providers.
//!
//! The library is loaded at run time (`ort`'s `load-dynamic`): from `ORT_DYLIB_PATH`, else from an
//! `onnxruntime` (or `onnxruntime-gpu`) Python package — the one `scripts/setup.sh` installs into
//! the project's `.venv`, an active virtualenv, or the user's site-packages.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use ort::environment::Environment;

use super::ClipError;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when the library has the CUDA provider and a GPU answers, else CPU.
    #[default]
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA, falling back to CPU (with a warning) when it cannot be used.
    Cuda,
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            other => Err(format!("unknown device {other:?}: use auto, cpu or cuda")),
        }
    }
}

/// How sessions are built.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Requested device.
    pub device: Device,
    /// Threads ONNX Runtime uses inside one operator (0 = one per available core).
    pub intra_threads: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self { device: Device::Auto, intra_threads: 0 }
    }
}

impl RuntimeOptions {
    /// Intra-op thread count actually used.
    pub fn threads(&self) -> usize {
        if self.intra_threads > 0 {
            self.intra_threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static Environment, ClipError> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = locate_library().ok_or_else(|| {
                "ONNX Runtime library not found. Run scripts/setup.sh (it installs the `onnxruntime` \
                 Python package into .venv), or `pip install onnxruntime==1.32.0` (onnxruntime-gpu for \
                 CUDA), or set ORT_DYLIB_PATH to libonnxruntime.so"
                    .to_string()
            })?;
            tracing::debug!("loading ONNX Runtime from {}", path.display());
            let builder = ort::init_from(&path)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?;
            builder
                .with_name("clipsight")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", path.display()))
        })
        .as_ref()
        .map_err(|e| ClipError::Runtime(e.clone()))
}

/// Candidate locations of `libonnxruntime.so`, most specific first.
pub fn locate_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(p));
    }
    site_packages_dirs().into_iter().find_map(|dir| find_in_site_packages(&dir))
}

fn site_packages_dirs() -> Vec<PathBuf> {
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        venvs.push(PathBuf::from(v));
    }
    // The project's .venv: next to the working directory or to any ancestor of the executable
    // (target/release/clipsight -> repo root).
    if let Ok(cwd) = std::env::current_dir() {
        venvs.extend(cwd.ancestors().map(|a| a.join(".venv")));
    }
    if let Ok(exe) = std::env::current_exe() {
        venvs.extend(exe.ancestors().skip(1).map(|a| a.join(".venv")));
    }
    let mut lib_dirs: Vec<PathBuf> = venvs.iter().map(|v| v.join("lib")).collect();
    if let Some(home) = std::env::var_os("HOME") {
        lib_dirs.push(Path::new(&home).join(".local/lib"));
    }
    lib_dirs.extend(["/usr/local/lib", "/usr/lib"].map(PathBuf::from));
    lib_dirs
        .into_iter()
        .filter(|d| d.is_dir())
        .flat_map(|d| {
            std::fs::read_dir(&d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("python3")))
                .flat_map(|p| [p.join("site-packages"), p.join("dist-packages")])
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Loads, once, the CUDA and cuDNN libraries that pip's `nvidia-*` packages (the extras of
/// `onnxruntime-gpu[cuda,cudnn]`) keep under `site-packages/nvidia/`. ONNX Runtime's CUDA provider
/// asks for its dependencies by name only and those folders are not on the loader's path; once a
/// library of that name is loaded, the loader reuses it. This is what onnxruntime's
/// `preload_dlls()` does for Python. Libraries found nowhere are left to the system's loader path.
pub(crate) fn preload_cuda_libraries() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let mut dirs: Vec<PathBuf> = locate_library().and_then(|lib| site_packages_of(&lib)).into_iter().collect();
        dirs.extend(site_packages_dirs());
        for lib in pip_cuda_libraries(&dirs) {
            match ort::util::preload_dylib(&lib) {
                Ok(()) => tracing::debug!("preloaded {}", lib.display()),
                Err(e) => tracing::debug!("cannot preload {}: {e}", lib.display()),
            }
        }
    });
}

/// The site-packages folder holding an `onnxruntime/capi/libonnxruntime.so*`.
fn site_packages_of(lib: &Path) -> Option<PathBuf> {
    let capi = lib.parent().filter(|capi| capi.ends_with("onnxruntime/capi"))?;
    capi.parent()?.parent().map(Path::to_path_buf)
}

/// The CUDA provider's libraries found in `site-packages/nvidia/*/lib` of `site_packages` (first
/// folder wins), in `ort`'s dependency order: CUDA's (`nvidia/cu13/lib`, or one package per
/// component before CUDA 13), then cuDNN's.
fn pip_cuda_libraries(site_packages: &[PathBuf]) -> Vec<PathBuf> {
    let lib_dirs: Vec<PathBuf> = site_packages
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir.join("nvidia")).into_iter().flatten().flatten())
        .map(|package| package.path().join("lib"))
        .filter(|lib| lib.is_dir())
        .collect();
    ort::ep::cuda::CUDA_DYLIBS
        .iter()
        .chain(ort::ep::cuda::CUDNN_DYLIBS)
        .filter_map(|name| lib_dirs.iter().map(|dir| dir.join(name)).find(|p| p.is_file()))
        .collect()
}

fn find_in_site_packages(dir: &Path) -> Option<PathBuf> {
    let capi = dir.join("onnxruntime/capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    // Prefer the fully versioned name (libonnxruntime.so.1.32.0) the wheel ships.
    libs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    libs.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn pip_cuda_libraries_are_found_in_dependency_order_first_folder_winning() {
        let tmp = tempfile::tempdir().unwrap();
        let (gpu_venv, other) = (tmp.path().join("a/site-packages"), tmp.path().join("b/site-packages"));
        // CUDA 13's consolidated package, cuDNN's own, and a second copy of cudart elsewhere.
        for name in ["libcublas.so.13", "libcudart.so.13", "libcublasLt.so.13"] {
            touch(&gpu_venv.join("nvidia/cu13/lib").join(name));
        }
        touch(&gpu_venv.join("nvidia/cudnn/lib/libcudnn.so.9"));
        touch(&other.join("nvidia/cuda_runtime/lib/libcudart.so.13"));
        touch(&other.join("nvidia/curand/lib/libcurand.so.10"));

        let found = pip_cuda_libraries(&[gpu_venv.clone(), other.clone()]);
        let expected = vec![
            gpu_venv.join("nvidia/cu13/lib/libcudart.so.13"),
            gpu_venv.join("nvidia/cu13/lib/libcublasLt.so.13"),
            gpu_venv.join("nvidia/cu13/lib/libcublas.so.13"),
            other.join("nvidia/curand/lib/libcurand.so.10"),
            gpu_venv.join("nvidia/cudnn/lib/libcudnn.so.9"),
        ];
        assert_eq!(found, expected);
        assert!(pip_cuda_libraries(&[tmp.path().join("nowhere")]).is_empty());
    }

    #[test]
    fn the_site_packages_of_a_wheel_library_is_two_folders_up() {
        let lib = Path::new("/v/lib/python3.12/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1");
        assert_eq!(site_packages_of(lib), Some(PathBuf::from("/v/lib/python3.12/site-packages")));
        assert_eq!(site_packages_of(Path::new("/opt/ort/lib/libonnxruntime.so")), None);
    }
}
