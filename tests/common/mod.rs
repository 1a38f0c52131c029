//! Helpers shared by the integration tests: the fixture model, the Python reference, the
//! `clipsight` binary, generated scene folders, and the optional shared model tool.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The small CLIP trained by tools/train_tiny_clip, committed in the repository.
pub fn fixture_model() -> PathBuf {
    root().join("tests/fixtures/models/clipsight-tiny")
}

/// The Python with the reference packages (scripts/setup.sh creates it).
pub fn python() -> PathBuf {
    let p = std::env::var_os("CLIPSIGHT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    assert!(p.exists(), "{} not found: run scripts/setup.sh (scripts/test.sh does)", p.display());
    p
}

/// Runs a Python script of the repository and returns stdout, failing the test on error.
pub fn run_python(args: &[&str]) -> String {
    let out = Command::new(python()).args(args).current_dir(root()).output().expect("python runs");
    assert!(out.status.success(), "python {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A `clipsight` command with the fixture model and `data` as its library.
pub fn clipsight(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clipsight"));
    cmd.arg("--data").arg(data).arg("--model").arg(fixture_model()).env_remove("CLIPSIGHT_MODEL");
    cmd
}

/// Runs a command, asserting success, and parses its stdout as JSON.
pub fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("clipsight runs");
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Panics with the command's output unless it succeeded.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `count` procedural scenes (seeded) with a manifest.json into `dir`.
pub fn scenes(dir: &Path, count: usize, seed: u64) -> serde_json::Value {
    run_python(&[
        "tools/train_tiny_clip/scenes.py",
        "--out",
        dir.to_str().expect("utf-8 temp path"),
        "--count",
        &count.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest")).expect("manifest JSON")
}

/// `../shared/tools/make_clip_model.py` when it exists (it does not on a fresh clone). Tests that
/// need it print a SKIPPED line and return when this is `None`.
pub fn shared_model_tool() -> Option<PathBuf> {
    let p = root().join("../shared/tools/make_clip_model.py");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared/tools/make_clip_model.py is not present (fresh clone); variant-model test not run");
        None
    }
}

/// Generates a random-weight model variant with the shared tool.
pub fn make_variant(tool: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![tool.to_str().unwrap(), "--preset", "tiny", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_python(&args);
}
