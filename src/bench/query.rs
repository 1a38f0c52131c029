//! `clipsight bench query`: what a text query costs beyond the text encoder, with `n` stored
//! vectors (synthetic, CLIP-like: see [`crate::ann::bench::Dataset`]).
//!
//! Measured in one run: the text encoder alone; search in process (encode + graph or scan +
//! hydrate); the same through `clipsight serve` over HTTP, with distinct and with repeated
//! queries (the server caches text embeddings); one `clipsight search` process per query; and
//! REST throughput with concurrent clients on 127.0.0.1. The library is kept in `work` so its
//! HNSW graph is built once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clipsight_indexer::clip::{Language, RuntimeOptions};
use clipsight_indexer::Clip;
use serde::Serialize;

use super::disk::{DiskLimit, SlowDisk};
use super::index::BenchError;
use super::quantile;
use super::server::ServeProcess;
use crate::ann::{self, Hit};
use crate::keywords::Keywords;
use crate::search::{self, Mode, SearchOptions};
use crate::store::{FileRecord, ImageId, OpenMode, Store};

/// p50 and p99 in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl Latency {
    fn of(mut samples_ms: Vec<f64>) -> Self {
        samples_ms.sort_by(f64::total_cmp);
        Self { p50_ms: quantile(&samples_ms, 0.5), p99_ms: quantile(&samples_ms, 0.99) }
    }
}

/// The bench's figures.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    /// Stored vectors.
    pub vectors: usize,
    /// Whether the HNSW graph answered (else the exact scan).
    pub graph: bool,
    /// The text encoder alone, one query at a time.
    pub text_encoder: Latency,
    /// Search in process: encode, rank, hydrate records.
    pub in_process: Latency,
    /// `GET /api/search`, distinct queries.
    pub rest: Latency,
    /// `GET /api/search`, repeated queries (text embedding cache).
    pub rest_repeated: Latency,
    /// One `clipsight search` process per query (model and library opened each time).
    pub cli: Latency,
    /// REST queries per second with `clients` concurrent connections, distinct queries.
    pub rest_qps: f64,
    /// Concurrent clients of the throughput run.
    pub clients: usize,
    /// in_process p50 ÷ text_encoder p50 (target ≤ 1.3).
    pub in_process_ratio: f64,
    /// rest p50 ÷ text_encoder p50.
    pub rest_ratio: f64,
    /// Seconds spent building or loading the library and graph (not part of the figures).
    pub setup_s: f64,
    /// The server's start-up with this library (target: first answer within 2 s at 1M vectors).
    pub serve_start: StartTimes,
    /// The server's RSS in MiB after its text queries and one image query (both towers loaded;
    /// issue 19's target: ≤ 0.85 GB with ViT-B/32).
    pub serve_rss_mb: f64,
    /// Of `serve_rss_mb`, the file-backed part (mapped files: reclaimable page cache).
    pub serve_rss_file_mb: f64,
    /// The server's RSS in MiB after the throughput run.
    pub serve_rss_after_load_mb: f64,
    /// The text encoder of --model and of each --text-models model, one query at a time.
    pub text_encoders: Vec<TextEncoderLatency>,
    /// Whether the page cache was dropped before the server started (`serve_start` is cold).
    pub cold: bool,
    /// The server's disk read limit (`--disk-mbps`), if any.
    pub disk: Option<DiskLimit>,
    /// Vector queries answered while the graph loaded, against an exact scan (`None` when the
    /// library is small enough to be scanned exactly).
    pub early: Option<EarlyAnswers>,
}

/// Vector-only queries asked of a starting server before its graph is in use (answered from the
/// flat copy or its sketch), compared with an exact scan in process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EarlyAnswers {
    /// Queries asked.
    pub probes: usize,
    /// Of those, answered while the server still said its graph was loading.
    pub answered: usize,
    /// Mean recall@10 of those answers against the exact top 10.
    pub recall_at_10: f64,
}

/// Writes dirty pages out and drops the page cache, dentries and inodes (`--cold`).
fn drop_page_cache() -> Result<(), BenchError> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
        .map_err(|e| BenchError::Search(format!("--cold: cannot drop the page cache ({e}); it needs root")))
}

/// One model's text encoder, timed by [`text_encoders`].
#[derive(Debug, Clone, Serialize)]
pub struct TextEncoderLatency {
    /// The model directory's name.
    pub model: String,
    /// Its family ([`clipsight_indexer::clip::Family::name`]).
    pub family: String,
    /// The text tower's inputs, as `model info` lists them.
    pub text_inputs: Vec<String>,
    /// One text per call.
    pub latency: Latency,
}

/// Each model's text encoder on `samples` distinct caption-like texts, one per call, after five
/// warm-up calls; a model that reads a language is given English.
pub fn text_encoders(models: &[PathBuf], options: RuntimeOptions, samples: usize, progress: &mut dyn FnMut(&str)) -> Result<Vec<TextEncoderLatency>, BenchError> {
    let texts = queries(samples);
    models
        .iter()
        .map(|dir| {
            let clip = Clip::open(dir, options)?;
            let english = Some(Language::ENGLISH);
            for _ in 0..5 {
                clip.encode_texts_in(&["warm up"], english)?;
            }
            let samples = texts.iter().map(|t| time_ms(|| clip.encode_texts_in(&[t.as_str()], english).map(drop))).collect::<Result<Vec<_>, _>>()?;
            let timed = TextEncoderLatency {
                model: dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned()),
                family: clip.family()?.name().to_string(),
                text_inputs: clip.text_inputs()?,
                latency: Latency::of(samples),
            };
            progress(&format!("{} ({}) text encoder p50 {:.2} ms", timed.model, timed.family, timed.latency.p50_ms));
            Ok(timed)
        })
        .collect()
}

/// Distinct, caption-like query texts.
fn queries(count: usize) -> Vec<String> {
    let colours = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "brown", "grey"];
    let things = ["dog", "cat", "car", "house", "beach", "mountain", "bicycle", "flower", "child", "boat", "tree", "cake"];
    let places = ["in the snow", "at sunset", "on a table", "in the city", "by the sea", "in a forest", "at night", "indoors"];
    (0..count)
        .map(|i| format!("a {} {} {}", colours[i % colours.len()], things[(i / colours.len()) % things.len()], places[(i / (colours.len() * things.len())) % places.len()]))
        .collect()
}

/// Fills `work` with `n` synthetic records and embeddings for `clip`'s model, unless it already
/// holds them, and returns the store.
fn library(work: &Path, clip: &Clip, n: usize, progress: &mut dyn FnMut(&str)) -> Result<Store, BenchError> {
    let store = Store::open(work, OpenMode::ReadWrite)?;
    if store.count_embeddings(clip.id())? == n {
        return Ok(store);
    }
    progress(&format!("writing {n} synthetic vectors to {}", work.display()));
    let data = crate::ann::bench::Dataset::generate(n, clip.dim(), 0, 7);
    for chunk in data.vectors.chunks(10_000) {
        let mut changes = store.changes();
        for (id, e) in chunk {
            let path = format!("/bench/photos/{:03}/img-{:07}.jpg", id.0 % 997, id.0);
            let record = FileRecord { width: 4000, height: 3000, ..FileRecord::synthetic(&path, distinct_hash(id.0), "jpeg") };
            changes.put_image(*id, &record, clip.id(), e, &[]);
        }
        changes.set_next_image_id(ImageId(n as u64 + 1));
        changes.set_active_model(clip.id());
        changes.commit()?;
    }
    store.flush()?;
    Ok(store)
}

/// A distinct 32-byte content hash per id.
fn distinct_hash(id: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&id.to_le_bytes());
    h
}

/// What the query bench measures.
#[derive(Debug, Clone, Copy)]
pub struct QueryBench {
    /// Stored vectors.
    pub n: usize,
    /// Queries per latency figure.
    pub samples: usize,
    /// Concurrent clients of the throughput run.
    pub clients: usize,
    /// Seconds of the throughput run.
    pub seconds: u64,
    /// Drop the page cache before the server starts, so its start reads the library and the
    /// model from disk (needs root: `/proc/sys/vm/drop_caches`).
    pub cold: bool,
    /// Throttle the server's reads ([`SlowDisk`]; implies `cold`).
    pub disk: Option<DiskLimit>,
}

/// Vector-only queries a starting server is asked while its graph loads.
const PROBES: usize = 10;

/// Runs the bench. `exe` is the `clipsight` binary (for the REST and CLI figures);
/// `text_models` are timed beside `model_dir` by [`text_encoders`].
pub fn run(clip: &Clip, model_dir: &Path, text_models: &[PathBuf], work: &Path, exe: &Path, bench: QueryBench, mut progress: impl FnMut(&str)) -> Result<QueryReport, BenchError> {
    let QueryBench { n, samples, clients, seconds, cold, disk } = bench;
    let cold = cold || disk.is_some();
    let setup = Instant::now();
    let store = library(work, clip, n, &mut progress)?;
    progress("opening the graph (built once, then loaded)");
    let vectors = ann::open_index(&ann::VectorHome::Local, &store, clip.id(), ann::Use::Many, &mut |_, _| {}).map_err(|e| BenchError::Search(e.to_string()))?;
    let keywords = Keywords::open(&store).map_err(|e| BenchError::Search(e.to_string()))?;
    let setup_s = setup.elapsed().as_secs_f64();
    let texts = queries(samples * 4);
    let (encoder_set, process_set, rest_set) = (&texts[..samples], &texts[samples..samples * 2], &texts[samples * 2..samples * 3]);

    for _ in 0..5 {
        clip.encode_texts(&["warm up"])?;
    }
    // Interleaved, so drift in the machine's speed affects both figures alike.
    let library = vectors.count().map_err(|e| BenchError::Search(e.to_string()))?;
    let background = search::Background::sample(&store, clip.id(), library).map_err(|e| BenchError::Search(e.to_string()))?;
    let rankers = search::Rankers { vectors: vectors.as_ref(), keywords: Some(&keywords), background: &background };
    let options = SearchOptions { k: 20, mode: Mode::Hybrid, ..Default::default() };
    let search_once = |t: &str| -> Result<(), BenchError> {
        let query = search::parse(t).map_err(|e| BenchError::Search(e.to_string()))?;
        let ranked = search::run(&store, clip, &query, options, rankers).map_err(|e| BenchError::Search(e.to_string()))?;
        for found in ranked.hits {
            store.file(found.hit.id)?;
        }
        Ok(())
    };
    let (mut encoder_ms, mut process_ms) = (Vec::new(), Vec::new());
    for (a, b) in encoder_set.iter().zip(process_set) {
        encoder_ms.push(time_ms(|| clip.encode_texts(&[a.as_str()]).map(drop))?);
        process_ms.push(time_ms(|| search_once(b))?);
    }
    let (text_encoder, in_process) = (Latency::of(encoder_ms), Latency::of(process_ms));
    progress(&format!("text encoder p50 {:.2} ms", text_encoder.p50_ms));
    progress(&format!("search in process p50 {:.2} ms", in_process.p50_ms));
    // The exact top 10 of the probes a starting server is asked (see `EarlyAnswers`).
    let probes = &texts[samples * 3..samples * 3 + PROBES.min(samples)];
    let exact = if n >= ann::exact_below() {
        progress("exact answers of the start-up probes (a scan of the store)");
        let embedded: Vec<_> = probes.iter().map(|t| clip.encode_texts(&[t.as_str()]).map(|mut e| e.remove(0))).collect::<Result<_, _>>()?;
        let queries: Vec<&[f32]> = embedded.iter().map(|e| e.as_slice()).collect();
        let scan = ann::open_index(&ann::VectorHome::Local, &store, clip.id(), ann::Use::Exact, &mut |_, _| {}).map_err(|e| BenchError::Search(e.to_string()))?;
        Some(scan.search(&queries, 10, &Default::default()).map_err(|e| BenchError::Search(e.to_string()))?)
    } else {
        None
    };
    drop(vectors);
    drop(keywords);
    drop(store);

    let slow = disk.map(|limit| SlowDisk::new(work, limit)).transpose()?;
    if cold {
        drop_page_cache()?;
        progress(&match disk {
            Some(d) => format!("page cache dropped, reads limited to {} MB/s: the server starts cold", d.mb_per_s),
            None => "page cache dropped: the server starts cold".into(),
        });
    }
    let server = Server::start(exe, work, model_dir, slow.as_ref(), if exact.is_some() { probes } else { &[] })?;
    let early = exact.map(|exact| {
        let (found, truth): (Vec<Vec<Hit>>, Vec<Vec<Hit>>) = server
            .early
            .iter()
            .zip(exact)
            .filter_map(|(found, truth)| found.as_ref().map(|ids| (ids.iter().map(|id| Hit::new(ImageId(*id), 0.0)).collect(), truth)))
            .unzip();
        EarlyAnswers { probes: probes.len(), answered: found.len(), recall_at_10: ann::bench::recall_at_10(&found, &truth) }
    });
    if let Some(e) = early {
        progress(&format!("{} of {} probes answered before the graph was in use, recall@10 {:.4}", e.answered, e.probes, e.recall_at_10));
    }
    let serve_start = server.times;
    progress(&format!(
        "serve: listening after {:.2}s, first answer after {:.2}s, graph in use after {:.2}s",
        serve_start.listening_s, serve_start.first_answer_s, serve_start.graph_in_use_s
    ));
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
    let get = |agent: &ureq::Agent, text: &str| -> Result<(), BenchError> {
        let url = format!("{}/api/search?k=20&q={}", server.process.base, urlencode(text));
        agent.get(&url).call().map_err(|e| BenchError::Serve(format!("GET {url}: {e}")))?.into_string()?;
        Ok(())
    };
    get(&agent, "warm up")?;
    let rest = Latency::of(rest_set.iter().map(|t| time_ms(|| get(&agent, t))).collect::<Result<_, _>>()?);
    let rest_repeated = Latency::of(rest_set.iter().map(|t| time_ms(|| get(&agent, t))).collect::<Result<_, _>>()?);
    progress(&format!("REST p50 {:.2} ms (repeated {:.2} ms)", rest.p50_ms, rest_repeated.p50_ms));
    search_by_image(&agent, &server.process.base)?;
    let serve_rss_mb = super::rss_mb_of(server.process.pid());
    let serve_rss_file_mb = super::rss_file_mb_of(server.process.pid());
    progress(&format!("serve RSS after text and image queries: {serve_rss_mb:.0} MiB ({serve_rss_file_mb:.0} MiB of it mapped files)"));
    let load_set = &texts[samples * 3..];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for c in 0..clients {
            let (done, agent, get) = (&done, agent.clone(), &get);
            scope.spawn(move || {
                let mut i = c;
                while Instant::now() < deadline {
                    if get(&agent, &format!("{} {i}", load_set[i % load_set.len()])).is_ok() {
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    i += clients;
                }
            });
        }
    });
    let rest_qps = done.into_inner() as f64 / seconds as f64;
    let serve_rss_after_load_mb = super::rss_mb_of(server.process.pid());
    progress(&format!("REST throughput {rest_qps:.1} q/s at {clients} clients"));
    drop(server);

    let cli_samples: Vec<f64> = texts[..samples.min(10)]
        .iter()
        .map(|t| {
            time_ms(|| {
                let out = std::process::Command::new(exe).arg("--data").arg(work).arg("--model").arg(model_dir).args(["search", t.as_str(), "-k", "20"]).output()?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(BenchError::Search(String::from_utf8_lossy(&out.stderr).into_owned()))
                }
            })
        })
        .collect::<Result<_, _>>()?;
    let cli = Latency::of(cli_samples);
    let models: Vec<PathBuf> = std::iter::once(model_dir.to_path_buf()).chain(text_models.iter().cloned()).collect();
    let text_encoders = text_encoders(&models, *clip.options(), samples, &mut progress)?;
    Ok(QueryReport {
        vectors: n,
        graph: n >= ann::exact_below(),
        text_encoder,
        in_process,
        rest,
        rest_repeated,
        cli,
        rest_qps,
        clients,
        in_process_ratio: in_process.p50_ms / text_encoder.p50_ms,
        rest_ratio: rest.p50_ms / text_encoder.p50_ms,
        setup_s,
        serve_start,
        serve_rss_mb,
        serve_rss_file_mb,
        serve_rss_after_load_mb,
        text_encoders,
        cold,
        disk,
        early,
    })
}

/// `POST /api/search/image` with a generated 640×480 JPEG: loads the server's image tower.
fn search_by_image(agent: &ureq::Agent, base: &str) -> Result<(), BenchError> {
    let photo = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(photo)
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .map_err(|e| BenchError::Serve(format!("cannot make the query image: {e}")))?;
    let boundary = "clipsight-bench-boundary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").into_bytes();
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let url = format!("{base}/api/search/image?k=20");
    agent
        .post(&url)
        .set("Content-Type", &format!("multipart/form-data; boundary={boundary}"))
        .send_bytes(&body)
        .map_err(|e| BenchError::Serve(format!("POST {url}: {e}")))?
        .into_string()?;
    Ok(())
}

fn time_ms<E>(f: impl FnOnce() -> Result<(), E>) -> Result<f64, E> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// How long a `clipsight serve` took, from process start, to listen, to answer its first
/// search (by exact scan while the graph loads), and to put its graph in use.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StartTimes {
    /// Until it printed its URL.
    pub listening_s: f64,
    /// Until the first `GET /api/search` (polled from the moment it listens) returned results.
    pub first_answer_s: f64,
    /// Until `GET /api/stats` reported the graph in use (or the library small enough to scan).
    pub graph_in_use_s: f64,
}

/// A `clipsight serve` child on a free port, ready when its graph is in use.
struct Server {
    process: ServeProcess,
    times: StartTimes,
    /// The ids each probe got while the graph was loading (`None`: the graph was in use).
    early: Vec<Option<Vec<u64>>>,
}

impl Server {
    /// Starts the server (in `disk`'s cgroup when given), times its first answer, asks `probes`
    /// (vector only, k 10) while it says its graph is loading, and waits for the graph.
    fn start(exe: &Path, data: &Path, model: &Path, disk: Option<&SlowDisk>, probes: &[String]) -> Result<Self, BenchError> {
        let started = Instant::now();
        let mut serve = std::process::Command::new(exe);
        serve.arg("--data").arg(data).arg("--model").arg(model).args(["serve", "--bind", "127.0.0.1:0"]);
        let mut serve = match disk {
            Some(disk) => disk.wrap(&serve),
            None => serve,
        };
        serve.stderr(std::process::Stdio::null());
        let process = ServeProcess::start(serve).map_err(|e| BenchError::Serve(e.to_string()))?;
        let json = |path: &str| -> Result<serde_json::Value, BenchError> {
            let body = ureq::get(&format!("{}{path}", process.base)).call().map_err(|e| BenchError::Serve(format!("GET {path}: {e}")))?.into_string()?;
            serde_json::from_str(&body).map_err(|e| BenchError::Serve(e.to_string()))
        };
        let answer = json("/api/search?q=a%20dog%20on%20the%20beach&k=10")?;
        if answer["results"].as_array().is_none_or(|r| r.is_empty()) {
            return Err(BenchError::Serve(format!("the first search found nothing: {answer}")));
        }
        let first_answer_s = started.elapsed().as_secs_f64();
        let mut early = Vec::new();
        for probe in probes {
            let answer = json(&format!("/api/search?mode=vector&k=10&q={}", urlencode(probe)))?;
            let ids: Vec<u64> = answer["results"].as_array().map_or(Vec::new(), |r| r.iter().filter_map(|h| h["id"].as_u64()).collect());
            early.push((json("/api/stats")?["graph"] == "loading").then_some(ids));
        }
        let deadline = Instant::now() + Duration::from_secs(1800);
        while json("/api/stats")?["graph"] == "loading" {
            if Instant::now() > deadline {
                return Err(BenchError::Serve("the server's graph did not load in 30 minutes".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let times = StartTimes { listening_s: process.listening_s, first_answer_s, graph_in_use_s: started.elapsed().as_secs_f64() };
        Ok(Self { process, times, early })
    }
}

/// The default work directory for `n` vectors of `model` (kept between runs).
pub fn default_work_dir(clip: &Clip, n: usize) -> PathBuf {
    std::env::temp_dir().join(format!("clipsight-bench-query-{}-{n}", clip.id().to_hex()))
}
