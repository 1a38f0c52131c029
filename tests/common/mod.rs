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

/// A `clipsight serve` process on a free loopback port, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    /// Starts `clipsight serve --bind 127.0.0.1:0 EXTRA...` on `data` and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        use std::io::BufRead;
        let mut child = clipsight(data)
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("clipsight serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let line = lines.next().expect("serve prints its address").expect("utf-8");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.stop_with("TERM")
    }

    /// Sends the signal `name` (as kill(1) spells it) and waits for the exit status.
    pub fn stop_with(mut self, name: &str) -> std::process::ExitStatus {
        signal(self.child.id(), name);
        wait_timeout(&mut self.child, std::time::Duration::from_secs(40)).expect("server exits after SIGTERM")
    }

    /// `METHOD path` with an optional body and content type → (status, body bytes, content type).
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &[u8])>, headers: &[(&str, &str)]) -> (u16, Vec<u8>, String) {
        let mut req = ureq::request(method, &format!("{}{path}", self.base)).timeout(std::time::Duration::from_secs(60));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some((content_type, bytes)) => req.set("Content-Type", content_type).send_bytes(bytes),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let content_type = response.header("content-type").unwrap_or("").to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).expect("body");
        (status, bytes, content_type)
    }

    /// `METHOD path` → (status, JSON body).
    pub fn json(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let (status, out, _) = self.call(method, path, bytes.as_deref().map(|b| ("application/json", b)), &[]);
        (status, serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{method} {path} → {status}, not JSON ({e}): {}", String::from_utf8_lossy(&out))))
    }

    /// Polls `GET /api/stats` until no indexing job is queued or running.
    pub fn wait_idle(&self) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (_, stats) = self.json("GET", "/api/stats", None);
            if stats["indexing"] == false {
                return stats;
            }
            assert!(std::time::Instant::now() < deadline, "indexing did not finish: {stats}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            if wait_timeout(&mut self.child, std::time::Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Sends a signal with kill(1).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Waits for a child up to `limit`.
pub fn wait_timeout(child: &mut std::process::Child, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A multipart/form-data body: `(content type, bytes)`. Parts are `(name, filename, bytes)`;
/// a part without a file name is a text field.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "clipsight-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A folder of generated scenes indexed into a fresh library with the fixture model.
pub struct SceneLibrary {
    _tmp: tempfile::TempDir,
    /// The scene images.
    pub photos: PathBuf,
    /// The library.
    pub data: PathBuf,
    /// The generator's manifest (file, caption, labels per image).
    pub manifest: serde_json::Value,
}

impl SceneLibrary {
    /// Generates `count` scenes from `seed` and indexes them.
    pub fn index(count: usize, seed: u64) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        let data = tmp.path().join("data");
        let manifest = scenes(&photos, count, seed);
        let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
        assert_eq!(summary["indexed"], count, "{summary}");
        SceneLibrary { _tmp: tmp, photos, data, manifest }
    }

    /// The caption the generator wrote for the image at `path`.
    pub fn caption_of(&self, path: &str) -> String {
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        self.manifest["images"].as_array().unwrap().iter().find(|i| i["file"] == name).unwrap()["caption"].as_str().unwrap().to_string()
    }

    /// Files of single-object scenes with these labels.
    pub fn singles(&self, colour: &str, shape: &str) -> Vec<String> {
        self.manifest["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["labels"]["colour"] == colour && i["labels"]["shape"] == shape)
            .map(|i| i["file"].as_str().unwrap().to_string())
            .collect()
    }

    /// The first single-object scene with these labels.
    pub fn single(&self, colour: &str, shape: &str) -> String {
        self.singles(colour, shape).into_iter().next().unwrap_or_else(|| panic!("precondition: a single {colour} {shape} in the scenes"))
    }
}

impl Server {
    /// The id of the indexed file whose path ends with `file`.
    pub fn id_of(&self, file: &str) -> u64 {
        let (_, v) = self.json("GET", "/api/search?q=&k=1000&mode=vector", None);
        v["results"].as_array().unwrap().iter().find(|r| r["path"].as_str().unwrap().ends_with(file)).unwrap()["id"].as_u64().unwrap()
    }
}

/// A small JPEG of one colour carrying the given EXIF fields as ASCII values of arbitrary
/// bytes (what a buggy phone or editor may write), in an APP1 segment after SOI.
pub fn jpeg_with_exif(rgb: [u8; 3], fields: &[(exif::Tag, Vec<u8>)]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(96, 64, image::Rgb(rgb));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(image).write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    let fields: Vec<exif::Field> = fields
        .iter()
        .map(|(tag, bytes)| exif::Field { tag: *tag, ifd_num: exif::In::PRIMARY, value: exif::Value::Ascii(vec![bytes.clone()]) })
        .collect();
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("EXIF serialises");
    let payload = [b"Exif\0\0".as_slice(), tiff.get_ref()].concat();
    let length = u16::try_from(payload.len() + 2).expect("EXIF fits one segment");
    [&jpeg[..2], &[0xFF, 0xE1], &length.to_be_bytes(), &payload, &jpeg[2..]].concat()
}
