//! `clipsight model pull` against a local server speaking the Hugging Face hub API (no real hub
//! is reachable from CI): listing, download, checksum verification, resume.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::*;
use sha2::Digest;

/// Serves the fixture model as `immich-app/Tiny__test`. With `corrupt`, model files are served
/// with one byte changed (the listing keeps the true checksums).
struct Hub {
    url: String,
    ranged: Arc<AtomicBool>,
    _thread: std::thread::JoinHandle<()>,
}

fn serve(files: HashMap<String, Vec<u8>>, corrupt: bool) -> Hub {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let ranged = Arc::new(AtomicBool::new(false));
    let saw_range = ranged.clone();
    let thread = std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let path = request.url().to_string();
            if path.starts_with("/api/models/immich-app/Tiny__test/tree/main") {
                let listing: Vec<serde_json::Value> = files
                    .iter()
                    .map(|(name, data)| {
                        if name.ends_with(".onnx") {
                            let sha = hex::encode(sha2::Sha256::digest(data));
                            serde_json::json!({"type": "file", "path": name, "size": 134, "oid": "0", "lfs": {"oid": sha, "size": data.len(), "pointerSize": 134}})
                        } else {
                            serde_json::json!({"type": "file", "path": name, "size": data.len(), "oid": clipsight::hub::git_blob_sha1(data)})
                        }
                    })
                    .chain([serde_json::json!({"type": "directory", "path": "visual", "size": 0, "oid": "1"})])
                    .collect();
                let _ = request.respond(tiny_http::Response::from_string(serde_json::to_string(&listing).unwrap()));
                continue;
            }
            let Some(name) = path.strip_prefix("/immich-app/Tiny__test/resolve/main/") else {
                let _ = request.respond(tiny_http::Response::empty(404));
                continue;
            };
            let Some(data) = files.get(name) else {
                let _ = request.respond(tiny_http::Response::empty(404));
                continue;
            };
            let mut body = data.clone();
            if corrupt && name.ends_with(".onnx") {
                body[100] ^= 0xff;
            }
            let range = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Range"))
                .and_then(|h| h.value.as_str().strip_prefix("bytes=").and_then(|r| r.trim_end_matches('-').parse::<usize>().ok()));
            let response = match range {
                Some(start) if start < body.len() => {
                    saw_range.store(true, Ordering::SeqCst);
                    tiny_http::Response::from_data(body[start..].to_vec()).with_status_code(206)
                }
                _ => tiny_http::Response::from_data(body),
            };
            let _ = request.respond(response);
        }
    });
    Hub { url, ranged, _thread: thread }
}

fn model_files() -> HashMap<String, Vec<u8>> {
    let root = fixture_model();
    ["config.json", "visual/model.onnx", "visual/preprocess_cfg.json", "textual/model.onnx", "textual/tokenizer.json", "textual/tokenizer_config.json"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(root.join(f)).unwrap()))
        .collect()
}

fn pull(hub: &Hub, dest: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_clipsight"))
        .args(["--json", "model", "pull", "Tiny__test", "--to"])
        .arg(dest)
        .env("HF_ENDPOINT", &hub.url)
        .output()
        .unwrap()
}

#[test]
fn pull_downloads_and_verifies_a_model_from_the_hub_endpoint() {
    let files = model_files();
    let hub = serve(files.clone(), false);
    let dest = tempfile::tempdir().unwrap();
    let out = pull(&hub, dest.path());
    assert_success(&out);
    for (name, data) in &files {
        assert_eq!(&std::fs::read(dest.path().join(name)).unwrap(), data, "{name}");
    }
    // The pulled model works.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"].as_str().unwrap().len(), 32);
}

#[test]
fn pull_resumes_a_partial_download() {
    let files = model_files();
    let hub = serve(files.clone(), false);
    let dest = tempfile::tempdir().unwrap();
    let visual = &files["visual/model.onnx"];
    std::fs::create_dir_all(dest.path().join("visual")).unwrap();
    std::fs::write(dest.path().join("visual/model.onnx.part"), &visual[..visual.len() / 2]).unwrap();
    assert_success(&pull(&hub, dest.path()));
    assert!(hub.ranged.load(Ordering::SeqCst), "the partial file was continued with a Range request");
    assert_eq!(&std::fs::read(dest.path().join("visual/model.onnx")).unwrap(), visual);
    assert!(!dest.path().join("visual/model.onnx.part").exists());
}

#[test]
fn pull_rejects_files_that_fail_their_checksum() {
    let hub = serve(model_files(), true);
    let dest = tempfile::tempdir().unwrap();
    let out = pull(&hub, dest.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(!dest.path().join("visual/model.onnx").exists(), "a corrupt file must not be kept");
}

#[test]
fn pull_reports_an_unreachable_hub() {
    let dest = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clipsight"))
        .args(["model", "pull", "Tiny__test", "--to"])
        .arg(dest.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("127.0.0.1:9").count(), 1, "the address once: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("cannot reach the model hub") && err.contains("--model DIR") && err.contains("HF_ENDPOINT"), "what failed and what to do: {err}");
}
