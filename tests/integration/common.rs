//! Helpers shared by the integration tests: the fixture model, the Python reference, the
//! `clipsight` binary, generated scene folders, and the optional shared model tool.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clipsight::auth::AccessControl;
use clipsight::bench::server::ServeProcess;
use clipsight::library::{IndexSettings, Library};
use clipsight::server::{app, ServeOptions, Shared};
use clipsight::store::{OpenMode, Store};
use clipsight_indexer::clip::RuntimeOptions;
use clipsight_indexer::Clip;

/// Repository root, as the tests run (not as they were built: a test binary a shared target
/// directory kept from another checkout reads this checkout's files).
pub fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test names the package's directory"))
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

/// Runs Debian's `ffmpeg` (quiet, overwriting), failing the test on error.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The multilingual model trained by tools/train_tiny_clip/train_mclip.py (M-CLIP's layout and
/// recipe: the fixture's image tower, a text tower distilled from its English one).
pub fn multilingual_model() -> PathBuf {
    root().join("tests/fixtures/models/clipsight-tiny-multilingual")
}

/// The same multilingual student in NLLB-CLIP's layout (`train_mclip.py --layout nllb`): FLORES-200
/// codes in its vocabulary, written before the text; `text` its only input.
pub fn nllb_model() -> PathBuf {
    root().join("tests/fixtures/models/clipsight-tiny-nllb")
}

/// A tiny model in SigLIP's layout trained with the sigmoid loss (`train.py --loss sigmoid`):
/// trained scale and bias in config.json, canonicalized 64-token texts, squashed images.
pub fn siglip_model() -> PathBuf {
    root().join("tests/fixtures/models/clipsight-tiny-siglip")
}

/// A `clipsight` command with the fixture model and `data` as its library.
pub fn clipsight(data: &Path) -> Command {
    clipsight_with(data, &fixture_model())
}

/// A `clipsight` command with `model` and `data` as its library.
pub fn clipsight_with(data: &Path, model: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clipsight"));
    cmd.arg("--data").arg(data).arg("--model").arg(model).env_remove("CLIPSIGHT_MODEL");
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

/// Serialises the tests that load the whole machine (the load test, the browser, schemathesis):
/// in this one binary they would otherwise run at the same time.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// HTTP calls to a server at [`Http::base`] — a `clipsight serve` child ([`Server`]) or the app
/// served in this process ([`InProcess`]); the tests read the same either way.
pub trait Http {
    /// `http://127.0.0.1:PORT`
    fn base(&self) -> &str;

    /// The `Authorization` header every call carries unless it sets its own.
    fn authorization(&self) -> Option<&str> {
        None
    }

    /// `METHOD path` with an optional body and content type → (status, body bytes, content type).
    fn call(&self, method: &str, path: &str, body: Option<(&str, &[u8])>, headers: &[(&str, &str)]) -> (u16, Vec<u8>, String) {
        let mut req = ureq::request(method, &format!("{}{path}", self.base())).timeout(std::time::Duration::from_secs(60));
        if let Some(authorization) = self.authorization().filter(|_| !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"))) {
            req = req.set("Authorization", authorization);
        }
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
    fn json(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let (status, out, _) = self.call(method, path, bytes.as_deref().map(|b| ("application/json", b)), &[]);
        (status, serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{method} {path} → {status}, not JSON ({e}): {}", String::from_utf8_lossy(&out))))
    }

    /// Polls `GET /api/stats` until no indexing job is queued or running.
    fn wait_idle(&self) -> serde_json::Value {
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

    /// The id of the indexed file whose path ends with `file`.
    fn id_of(&self, file: &str) -> u64 {
        let (_, v) = self.json("GET", "/api/search?q=&k=1000&mode=vector", None);
        v["results"].as_array().unwrap().iter().find(|r| r["path"].as_str().unwrap().ends_with(file)).unwrap()["id"].as_u64().unwrap()
    }
}

/// A `clipsight serve` process on a free loopback port, stopped (SIGTERM, then SIGKILL) on drop.
/// Started with `--token T`, its calls carry `Authorization: Bearer T` unless they set their
/// own (see [`Server::anonymous`]).
pub struct Server(ServeProcess, Option<String>);

impl Server {
    /// Starts `clipsight serve --bind 127.0.0.1:0 EXTRA...` on `data` and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::start_with(data, &fixture_model(), extra)
    }

    /// Starts `clipsight --model MODEL serve --bind 127.0.0.1:0 EXTRA...` on `data`.
    pub fn start_with(data: &Path, model: &Path, extra: &[&str]) -> Server {
        Self::launch(data, model, extra, &[])
    }

    /// Starts as [`Server::start`] does, with these environment variables set.
    pub fn start_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::launch(data, &fixture_model(), extra, env)
    }

    fn launch(data: &Path, model: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut serve = clipsight_with(data, model);
        serve.args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"]).args(extra).envs(env.iter().copied()).stderr(std::process::Stdio::inherit());
        let token = extra.iter().position(|a| *a == "--token").and_then(|i| extra.get(i + 1)).map(|t| format!("Bearer {t}"));
        Server(ServeProcess::start(serve).expect("clipsight serve starts"), token)
    }

    /// The same server, called without credentials.
    pub fn anonymous(&self) -> Anonymous<'_> {
        Anonymous(&self.0.base)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal` and waits for the exit status.
    pub fn stop_with(mut self, signal: i32) -> std::process::ExitStatus {
        self.0.stop_with(signal, std::time::Duration::from_secs(40)).expect("server exits after the signal")
    }
}

impl Http for Server {
    fn base(&self) -> &str {
        &self.0.base
    }

    fn authorization(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

/// A server's address, called without credentials.
pub struct Anonymous<'a>(&'a str);

impl<'a> Anonymous<'a> {
    /// The server at `base` (`http://127.0.0.1:PORT`).
    pub fn at(base: &'a str) -> Self {
        Anonymous(base)
    }
}

impl Http for Anonymous<'_> {
    fn base(&self) -> &str {
        self.0
    }
}

/// `clipsight::server::app` over a library opened read-only in this process, served on a free
/// loopback port by an actix system on its own thread: the routes, middleware and error mapping
/// of `serve`, without a process (and without its watcher, jobs thread or signals).
pub struct InProcess {
    base: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Serves the library in `data` (indexed with the fixture model), read-only.
    pub fn read_only(data: &Path) -> InProcess {
        Self::serve(open_library(data, false), serve_options())
    }

    /// Serves the library in `data`, indexed with `model`, read-only.
    pub fn read_only_with(data: &Path, model: &Path) -> InProcess {
        Self::serve(open_library_with(data, model, false), serve_options())
    }

    /// Serves `library` with `options`' token and upload limit.
    pub fn serve(library: Library, options: ServeOptions) -> InProcess {
        library.load_indexes(clipsight::ann::Use::Many, true, &mut |_, _| {});
        let access = AccessControl::open(None, options.access.clone(), options.bind.ip().is_loopback()).expect("access settings are valid");
        let shared = Shared::new(std::sync::Arc::new(library), &options, access);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || app(&shared)).workers(options.workers).bind(options.bind).expect("binds a free port");
                let addr = server.addrs()[0];
                let server = server.disable_signals().run();
                tx.send((addr, server.handle())).expect("the test waits");
                server.await.expect("the server runs");
            })
        });
        let (addr, handle) = rx.recv().expect("the server starts");
        InProcess { base: format!("http://{addr}"), handle, thread: Some(thread) }
    }
}

impl Http for InProcess {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let stop = self.handle.stop(true);
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `clipsight serve`'s defaults (20 MB uploads, no token) on a free loopback port, 2 workers.
pub fn serve_options() -> ServeOptions {
    ServeOptions { bind: "127.0.0.1:0".parse().unwrap(), access: Default::default(), upload_limit: 20_000_000, watch: Vec::new(), workers: 2 }
}

/// The library in `data` with the fixture model, as `clipsight serve` opens it.
pub fn open_library(data: &Path, writable: bool) -> Library {
    open_library_with(data, &fixture_model(), writable)
}

/// The library in `data` with `model`, as `clipsight serve` opens it.
pub fn open_library_with(data: &Path, model: &Path, writable: bool) -> Library {
    let mode = if writable { OpenMode::ReadWrite } else { OpenMode::ReadOnly };
    let store = Store::open(data, mode).expect("the library opens");
    let clip = Clip::open(model, RuntimeOptions::default()).expect("the model loads");
    let settings = IndexSettings { roots: Vec::new(), hidden: false, batch_size: 8, tag_vocabulary: Vec::new(), video: Default::default(), pairs: Default::default(), shard: Default::default() };
    Library::new(store, Box::new(clip), settings, writable, clipsight::ann::VectorHome::Local).expect("the library opens")
}

/// Sends a signal with kill(1).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
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

/// 300 generated scenes (seed 4242) indexed once per run, shared by every test that only reads
/// them (a server over it may be started; readers take no lock).
pub fn scene_library() -> &'static SceneLibrary {
    static LIB: std::sync::OnceLock<SceneLibrary> = std::sync::OnceLock::new();
    LIB.get_or_init(|| SceneLibrary::index(300, 4242))
}

/// The scenes of [`scene_library`] indexed with [`multilingual_model`] into a library of their
/// own, once per run: its data directory.
pub fn multilingual_library() -> &'static Path {
    scene_library_with(&multilingual_model())
}

/// The scenes of [`scene_library`] indexed with `model` into a library of their own, once per
/// run and model: its data directory.
pub fn scene_library_with(model: &Path) -> &'static Path {
    static LIBS: std::sync::Mutex<Vec<(PathBuf, &'static (tempfile::TempDir, PathBuf))>> = std::sync::Mutex::new(Vec::new());
    let mut libs = LIBS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, lib)) = libs.iter().find(|(m, _)| m == model) {
        return &lib.1;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let summary = json_of(clipsight_with(&data, model).args(["--json", "index"]).arg(&scene_library().photos));
    assert_eq!(summary["failed"], 0, "{summary}");
    let lib: &'static (tempfile::TempDir, PathBuf) = Box::leak(Box::new((tmp, data)));
    libs.push((model.to_path_buf(), lib));
    &lib.1
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

/// A small JPEG of one colour carrying the given EXIF fields as ASCII values of arbitrary
/// bytes (what a buggy phone or editor may write), in an APP1 segment after SOI.
pub fn jpeg_with_exif(rgb: [u8; 3], fields: &[(exif::Tag, Vec<u8>)]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(96, 64, image::Rgb(rgb));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(image).write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    with_exif(&jpeg, fields)
}

/// A JPEG with an APP1 segment carrying the given EXIF fields (ASCII values) after SOI.
pub fn with_exif(jpeg: &[u8], fields: &[(exif::Tag, Vec<u8>)]) -> Vec<u8> {
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

/// `s` percent-encoded for a URL query (every byte but unreserved ASCII).
pub fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// 61 scenes as JPEGs: 60 taken on 60 days of 2021 (in file order) and one without a date, a
/// single large red object (a strong match for "red"). Returns the folder, the generator's
/// manifest and the undated file's name.
pub fn dated_library(dir: &Path) -> (PathBuf, serde_json::Value, String) {
    let scenes_dir = dir.join("scenes");
    let manifest = scenes(&scenes_dir, 61, 8080);
    let images = manifest["images"].as_array().unwrap();
    let objects = |i: &serde_json::Value| i["objects"].as_array().unwrap().clone();
    let undated = images
        .iter()
        .position(|i| objects(i).len() == 1 && objects(i)[0]["colour"] == "red" && objects(i)[0]["size"] == "large")
        .expect("precondition: a single large red object among the scenes");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let mut day = jiff::civil::date(2021, 1, 1);
    for (i, image) in images.iter().enumerate() {
        let png = image::open(scenes_dir.join(image["file"].as_str().unwrap())).unwrap();
        let mut jpeg = Vec::new();
        png.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        let name = image["file"].as_str().unwrap().replace(".png", ".jpg");
        let bytes = if i == undated {
            jpeg
        } else {
            day = day.tomorrow().unwrap();
            with_exif(&jpeg, &[(exif::Tag::DateTimeOriginal, day.strftime("%Y:%m:%d 12:00:00").to_string().into_bytes())])
        };
        std::fs::write(photos.join(name), bytes).unwrap();
    }
    let undated = images[undated]["file"].as_str().unwrap().replace(".png", ".jpg");
    (photos, manifest, undated)
}
