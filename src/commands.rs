//! One function per command: parse arguments → call the library → print text or JSON.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clipsight::ann::milvus::Milvus;
use clipsight::ann::{Use, VectorHome};
use clipsight::eval::{self, Manifest};
use clipsight::library::views::{ClassifyResponse, DescribeResponse, HitView, MatrixResponse, SearchResponse};
use clipsight::library::{self, ImageRef, IndexSettings, Library};
use clipsight::{ann, describe, hub, server};
use clipsight::search;
use clipsight::store::{OpenMode, Store, StoreError};
use clipsight_indexer::clip::{Clip, RuntimeOptions, Scoring};
use clipsight_indexer::video::VideoOptions;
use clipsight_indexer::Embedding;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use crate::cli::{BenchCommand, Cli, Command, Global, IndexArgs, IndexTuning, ModelCommand, ServeArgs, SortBy, StoreArg, StoreCommand, TextsCommand};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Index(args) => cmd_index(g, args),
        Command::Serve(args) => cmd_serve(g, args),
        Command::Check => cmd_check(g),
        Command::Search { query, k, offset, min_score, exact, mode, relevant_only, sort, oldest_first } => {
            let sort = match (sort, oldest_first) {
                // A usage error, as clap reports its own (exit code 2).
                (SortBy::Score, true) => clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, "--oldest-first goes with --sort date\n").exit(),
                (SortBy::Score, false) => search::Sort::Score,
                (SortBy::Date, false) => search::Sort::Newest,
                (SortBy::Date, true) => search::Sort::Oldest,
            };
            let options = search::SearchOptions { k, offset, min_score, allow_files: true, mode: mode.into(), language: g.language(), relevant_only, sort };
            cmd_search(g, &query, options, exact)
        }
        Command::Similar { path, k } => cmd_similar(g, &path, k),
        Command::Classify { image, labels } => cmd_classify(g, &image, &labels),
        Command::Embed { images, texts } => cmd_embed(g, &images, &texts),
        Command::Matrix { images, texts } => cmd_matrix(g, &images, &texts),
        Command::Eval { dir } => cmd_eval(g, &dir),
        Command::Stats => cmd_stats(g),
        Command::Model(ModelCommand::Info { dir }) => cmd_model_info(g, dir.as_deref()),
        Command::Model(ModelCommand::Pull { name, to }) => cmd_model_pull(g, &name, to),
        Command::Model(ModelCommand::Quantize { out, eval }) => cmd_model_quantize(g, &out, eval.as_deref()),
        Command::Texts(TextsCommand::Add { file }) => cmd_texts_add(g, &file),
        Command::Store(StoreCommand::Push { to, sample }) => cmd_store_push(g, &to, sample),
        Command::Store(StoreCommand::Pull { from, sample }) => cmd_store_pull(g, &from, sample),
        Command::User(command) => crate::auth_commands::user(g, command),
        Command::Token(command) => crate::auth_commands::token(g, command),
        Command::Describe { image, k } => cmd_describe(g, &image, k),
        Command::Duplicates { threshold } => cmd_duplicates(g, threshold),
        Command::Bench(BenchCommand::Ann { n, dim, latent, power_law, queries, ef, sketch, no_graph, m, ef_construction, milvus }) => {
            let params = ann::AnnParams { m, ef_construction, ef_search: 0 };
            let data = match power_law {
                Some(alpha) => clipsight::ann::bench::Data::PowerLaw { alpha },
                None => clipsight::ann::bench::Data::Clustered { latent },
            };
            let milvus = milvus.map(Milvus::new);
            let report = clipsight::ann::bench::run(n, dim, data, queries, &ef, !no_graph, &sketch, params, milvus.as_ref(), |line| {
                if !g.json {
                    eprintln!("{line}");
                }
            })?;
            if g.json {
                print_json(&serde_json::to_value(&report)?);
            } else {
                println!("n={} dim={} data={:?} M={} ef_construction={}: build {:.1}s, +{:.0} MiB, exact {:.1} q/s", report.n, report.dim, report.data, report.m, report.ef_construction, report.build_s, report.memory_mb, report.exact_qps);
                for r in &report.runs {
                    println!("  {:5} ef={:4}  {:8.0} q/s ({:5.1}x exact)  recall@10 {:.4}", r.queries, r.ef, r.qps, r.qps / report.exact_qps, r.recall_at_10);
                }
                println!("sketch (* the candidate count searches use): {:.1} MiB (flat copy {:.1} MiB)", report.sketch_mb, (report.n * report.dim * 4) as f64 / (1024.0 * 1024.0));
                for r in &report.sketch_runs {
                    println!("  {:5} candidates={:5}{} {:8.0} q/s (all cores)  recall@10 {:.4}", r.queries, r.candidates, if r.chosen { "*" } else { " " }, r.qps, r.recall_at_10);
                }
                if let Some(m) = &report.milvus {
                    match m.ingest_rows_per_s {
                        Some(rate) => println!("milvus: ingest {rate:.0} rows/s, sealed and indexed {:.1}s after the last row", m.index_wait_s),
                        None => println!("milvus: the collection held the data already"),
                    }
                    println!("  front end mirror: {:.0} records/s, keyword index {:.1}s, keyword query p50 {:.2} ms", m.mirror.records_per_s, m.mirror.keyword_index_s, m.mirror.keyword_p50_ms);
                    for r in report.graph_latency.iter().chain(&m.runs) {
                        println!("  {:11} {:5} ef={:4}  recall@10 {:.4}  p50 {:6.2} ms  p99 {:6.2} ms  {:7.0} q/s at 8 clients", r.system, r.queries, r.ef, r.recall_at_10, r.p50_ms, r.p99_ms, r.qps_8_clients);
                    }
                }
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Index { photos, large, batch, no_peer, per_format, video_minutes }) => cmd_bench_index(g, photos, large, &batch, no_peer, per_format, video_minutes),
        Command::Bench(BenchCommand::Query { n, samples, clients, seconds, work, cold, disk_mbps, disk_iops, text_models }) => {
            let disk = disk_mbps.map(|mb_per_s| clipsight::bench::disk::DiskLimit { mb_per_s, iops: disk_iops });
            cmd_bench_query(g, n, samples, clients, seconds, work, cold, disk, &text_models)
        }
        Command::Bench(BenchCommand::Keywords { n }) => {
            let report = clipsight::bench::keywords::run(n)?;
            if g.json {
                print_json(&report);
            } else {
                println!("{} names (Latin and CJK words):", report.docs);
                let base = &report.rows[0];
                for r in &report.rows {
                    println!(
                        "  {:8} {:9.0} docs/s ({:.2}x)  {:7.2} MB ({:.2}x)  query p50 {:6.0} µs  CJK word recall {:.2}",
                        r.analyzer, r.docs_per_s, r.docs_per_s / base.docs_per_s, r.index_bytes as f64 / 1e6, r.index_bytes as f64 / base.index_bytes as f64, r.query_p50_us, r.cjk_word_recall
                    );
                }
            }
            Ok(())
        }
    }
}

/// The Python with onnxruntime, numpy and Pillow: CLIPSIGHT_PYTHON, else `python3`.
fn python() -> PathBuf {
    std::env::var_os("CLIPSIGHT_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

fn bench_progress(g: &Global) -> impl FnMut(&str) + '_ {
    move |line| {
        if !g.json {
            eprintln!("{line}");
        }
    }
}

fn cmd_bench_index(g: &Global, photos: Option<PathBuf>, large: usize, batches: &[usize], no_peer: bool, per_format: usize, video_minutes: f64) -> Result<()> {
    use clipsight::bench::photos::{self, RowFormat};
    let clip = open_model(g)?;
    let tmp = tempfile::tempdir()?;
    let dir = photos.unwrap_or_else(|| tmp.path().join("photos"));
    let set = photos::PhotoSet { large_jpegs: large, medium_jpegs: 4, pngs: 4 };
    eprintln!("photos: {} in {} (generated once)", set.len(), dir.display());
    photos::generate(&dir, set)?;
    // Beside the photo folder, not in it: the main run must not index them.
    let rows_dir = dir.with_file_name(format!("{}-formats", dir.file_name().map_or("photos".into(), |n| n.to_string_lossy())));
    let mut folders = Vec::new();
    if per_format > 0 {
        eprintln!("per-format rows: {per_format} × 4000×3000 JPEG, HEIC, AVIF in {} (encoded once; HEVC and AV1 encoding is slow)", rows_dir.display());
        for format in RowFormat::ALL {
            folders.push((format, photos::generate_row(&rows_dir, format, per_format)?));
        }
    }
    let video = if video_minutes > 0.0 {
        eprintln!("video row: {video_minutes} min of 1080p H.264 in {} (encoded once)", rows_dir.display());
        Some(photos::generate_video(&rows_dir, video_minutes)?)
    } else {
        None
    };
    let py = python();
    let report = clipsight::bench::index::run(&clip, &dir, &folders, video.as_deref().map(|v| (v, video_minutes)), batches, (!no_peer).then_some(py.as_path()), bench_progress(g))?;
    if g.json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        println!("{} images, batch {}, on {}:", report.images, report.batch, report.device);
        let per_batch: Vec<String> = report.model_only.iter().map(|b| format!("batch {} {:.2}", b.batch, b.images_per_s)).collect();
        println!("  model only   {:7.2} images/s  ({})", report.model_only_images_per_s, per_batch.join(", "));
        println!("  end to end   {:7.2} images/s  ({:.2}x the model-only floor)", report.end_to_end_images_per_s, report.ratio);
        if let (Some(p), Some(r)) = (report.peer_images_per_s, report.peer_ratio) {
            println!("  Python peer  {p:7.2} images/s  (clipsight {r:.2}x the peer)");
        }
        println!("  stages (s, summed over threads): {}", report.stages_s.iter().map(|(k, v)| format!("{k} {v:.1}")).collect::<Vec<_>>().join(", "));
        println!("  peak RSS {:.0} MiB{}", report.peak_rss_mb, report.peer_peak_rss_mb.map(|p| format!(" (peer {p:.0} MiB)")).unwrap_or_default());
        for row in &report.formats {
            let decode = row.stages_s.get("decode").copied().unwrap_or(f64::NAN);
            println!(
                "  12 MP {:4}   {:7.2} images/s  ({:.2}x the floor, {:.2}x JPEG; decode {:.2} s/image over threads)",
                row.format, row.images_per_s, row.floor_ratio, row.jpeg_ratio, decode / row.images as f64
            );
        }
        if let Some(v) = &report.video {
            println!(
                "  1080p video  {:7.2} video minutes per minute  ({} moments in {:.1} s: {:.2} moments/s, {:.2}x the floor; decode {:.1} s over threads)",
                v.video_minutes_per_minute,
                v.moments,
                v.seconds,
                v.moments_per_s,
                v.floor_ratio,
                v.stages_s.get("decode").copied().unwrap_or(f64::NAN)
            );
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one per option of `bench query`
fn cmd_bench_query(g: &Global, n: usize, samples: usize, clients: usize, seconds: u64, work: Option<PathBuf>, cold: bool, disk: Option<clipsight::bench::disk::DiskLimit>, text_models: &[PathBuf]) -> Result<()> {
    let clip = open_model(g)?;
    let work = work.unwrap_or_else(|| clipsight::bench::query::default_work_dir(&clip, n));
    let exe = std::env::current_exe()?;
    let model_dir = clip.dir().root.clone();
    let bench = clipsight::bench::query::QueryBench { n, samples: samples.max(2), clients: clients.max(1), seconds: seconds.max(1), cold, disk };
    let r = clipsight::bench::query::run(&clip, &model_dir, text_models, &work, &exe, bench, bench_progress(g))?;
    if g.json {
        print_json(&serde_json::to_value(&r)?);
    } else {
        let row = |name: &str, l: clipsight::bench::query::Latency| println!("  {name:28} p50 {:8.2} ms   p99 {:8.2} ms", l.p50_ms, l.p99_ms);
        println!("{} vectors ({}), setup {:.1}s:", r.vectors, if r.graph { "HNSW graph" } else { "exact scan" }, r.setup_s);
        row("text encoder alone", r.text_encoder);
        row("search in process", r.in_process);
        row("REST, distinct queries", r.rest);
        row("REST, repeated queries", r.rest_repeated);
        row("CLI process per query", r.cli);
        println!("  in process ÷ encoder {:.2}x, REST ÷ encoder {:.2}x; REST {:.1} q/s at {} clients", r.in_process_ratio, r.rest_ratio, r.rest_qps, r.clients);
        let t = r.serve_start;
        let cold = match (r.cold, r.disk) {
            (_, Some(d)) => format!(" (cold: page cache dropped, disk read at {} MB/s{})", d.mb_per_s, d.iops.map_or(String::new(), |n| format!(", {n} IOPS"))),
            (true, None) => " (cold: page cache dropped)".into(),
            (false, None) => String::new(),
        };
        println!("  serve start{cold}: listening {:.2}s, first answer {:.2}s, graph in use {:.2}s", t.listening_s, t.first_answer_s, t.graph_in_use_s);
        if let Some(early) = &r.early {
            println!("  answers before the graph was in use: {} of {} probes, recall@10 {:.4} against exact", early.answered, early.probes, early.recall_at_10);
        }
        println!(
            "  serve RSS: {:.0} MiB after text and image queries ({:.0} MiB of it mapped files), {:.0} MiB after the throughput run",
            r.serve_rss_mb, r.serve_rss_file_mb, r.serve_rss_after_load_mb
        );
        println!("  text encoders, one query at a time:");
        for t in &r.text_encoders {
            row(&format!("{} ({})", t.model, t.family), t.latency);
        }
    }
    Ok(())
}

/// Resolves `--model`: a directory, or the name of a pulled model.
fn model_dir(g: &Global, explicit: Option<&str>) -> Result<PathBuf> {
    let Some(spec) = explicit.or(g.model.as_deref()) else {
        let default = hub::model_path("ViT-B-32__openai");
        if default.is_dir() {
            return Ok(default);
        }
        bail!("no model given: pass --model DIR (or set CLIPSIGHT_MODEL), or download one with `clipsight model pull ViT-B-32__openai`");
    };
    let path = PathBuf::from(spec);
    if path.exists() {
        return Ok(path);
    }
    let pulled = hub::model_path(spec);
    if pulled.is_dir() {
        return Ok(pulled);
    }
    bail!("model {spec:?} is neither a directory nor a pulled model; try `clipsight model pull {spec}`")
}

fn open_model(g: &Global) -> Result<Clip> {
    let dir = model_dir(g, None)?;
    Ok(Clip::open(&dir, RuntimeOptions { device: g.device, intra_threads: g.threads })?)
}

/// A progress bar on stderr when it is a terminal and the output is not JSON; hidden otherwise.
fn progress_bar(g: &Global, template: &str) -> ProgressBar {
    if g.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar
}

/// A `progress(done, total)` callback that drives `bar`.
fn report_to(bar: &ProgressBar) -> impl FnMut(usize, usize) + '_ {
    move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }
}

fn print_json(value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("views serialise"));
}

fn embed_images(clip: &Clip, paths: &[PathBuf]) -> Result<Vec<Embedding>> {
    Ok(library::embed_files(clip, paths)?)
}

/// Indexing settings from the command line (`--watch` roots for `serve`).
fn index_settings(tuning: &IndexTuning, roots: Vec<PathBuf>) -> Result<IndexSettings> {
    let video = VideoOptions {
        max_gap_s: tuning.video_gap,
        max_moments: tuning.video_max_moments.max(1),
        budget: std::time::Duration::from_secs_f64(tuning.file_budget.max(1.0)),
        ..VideoOptions::default()
    };
    Ok(IndexSettings { roots, hidden: tuning.hidden, batch_size: tuning.batch_size, tag_vocabulary: tag_vocabulary(tuning)?, video, pairs: tuning.pairs.into(), shard: tuning.shard })
}

/// The library in `--data` with the model, opened read-write (`Write`), read-write or else
/// read-only when another process owns it (`Serve`), or read-only (`Read`).
fn open_library(g: &Global, access: Access, settings: IndexSettings) -> Result<Library> {
    let clip = open_model(g)?;
    let (store, writable) = match access {
        Access::Write => (Store::open(&g.data, OpenMode::ReadWrite)?, true),
        Access::Read => (Store::open(&g.data, OpenMode::ReadOnly)?, false),
        Access::Serve => match Store::open(&g.data, OpenMode::ReadWrite) {
            Ok(store) => (store, true),
            Err(e @ StoreError::InUse { .. }) => {
                eprintln!("warning: {e}; serving read-only (no indexing from this server)");
                (Store::open(&g.data, OpenMode::ReadOnly)?, false)
            }
            Err(e) => return Err(e.into()),
        },
    };
    Ok(Library::new(store, Box::new(clip), settings, writable, vector_home(g))?)
}

/// Where `--store` puts the vectors.
pub fn vector_home(g: &Global) -> VectorHome {
    match &g.store {
        StoreArg::Local => VectorHome::Local,
        StoreArg::Milvus(address) => VectorHome::Milvus(Milvus::new(address.clone())),
    }
}

/// How a command opens the library.
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
    Serve,
}

/// The library opened for queries with `usage`'s vector index (a progress bar while a graph
/// builds), and the keyword index when `keywords`; an error when it was indexed with another
/// model than the one given.
fn open_for_query(g: &Global, usage: Use, keywords: bool) -> Result<Library> {
    let library = open_library(g, Access::Read, IndexSettings { roots: Vec::new(), hidden: false, batch_size: 1, tag_vocabulary: Vec::new(), video: VideoOptions::default(), pairs: Default::default(), shard: Default::default() })?;
    library.check_model()?;
    let bar = progress_bar(g, "building the search graph {pos}/{len} [{elapsed_precise}] ETA {eta} {wide_bar}");
    library.load_indexes(usage, keywords, &mut report_to(&bar));
    bar.finish_and_clear();
    Ok(library)
}

fn cmd_index(g: &Global, args: IndexArgs) -> Result<()> {
    let library = open_library(g, Access::Write, index_settings(&args.tuning, Vec::new())?)?;
    let bar = progress_bar(g, "{spinner} {pos}/{len} images [{elapsed_precise}] {per_sec} ETA {eta} {wide_bar}");
    let summary = library.index(&args.roots, args.full, report_to(&bar))?;
    bar.finish_and_clear();
    if g.json {
        print_json(&summary);
    } else {
        println!(
            "{} scanned, {} indexed, {} unchanged, {} moved, {} removed, {} paired with a twin, {} failed in {:.1}s ({:.1} images/s)",
            summary.scanned, summary.indexed, summary.unchanged, summary.moved, summary.removed, summary.companions, summary.failed,
            summary.elapsed_s, summary.images_per_s
        );
        if let Some(s) = summary.searchable_after_s {
            println!("  searchable after {s:.1}s");
        }
        for e in &summary.errors {
            println!("  skipped {}: {}", e.path, e.error);
        }
        for w in &summary.warnings {
            println!("  indexed {}, but: {}", w.path, w.warning);
        }
    }
    Ok(())
}

/// The automatic-tag vocabulary: `--tags FILE`, or the built-in one.
fn tag_vocabulary(tuning: &IndexTuning) -> Result<Vec<String>> {
    let custom = match &tuning.tags {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    Ok(describe::vocabulary_words(custom.as_deref()))
}

fn cmd_serve(g: &Global, args: ServeArgs) -> Result<()> {
    for root in &args.watch {
        if !root.is_dir() {
            bail!("--watch {}: not a folder", root.display());
        }
    }
    let access = clipsight::auth::AccessSettings {
        public: args.public,
        tokens: crate::auth_commands::serve_tokens(args.token, args.token_file.as_deref())?,
        session_ttl: std::time::Duration::from_secs(args.session_hours.saturating_mul(3600)),
        first_lockout: std::time::Duration::from_secs(args.lockout_seconds),
    };
    let library = open_library(g, Access::Serve, index_settings(&args.tuning, args.watch.clone())?)?;
    let options = server::ServeOptions {
        bind: args.bind,
        access,
        upload_limit: args.upload_limit_mb.saturating_mul(1_000_000),
        watch: args.watch,
        workers: args.workers,
    };
    server::serve(library, options)?;
    Ok(())
}

/// Prints ranked images: the view as JSON, or a score and a path per line (a video's with its
/// best moment: `@ 1:05`; the files listed with it after `+`: `+ IMG_0001.DNG`).
fn print_hits(g: &Global, response: &SearchResponse) {
    if g.json {
        print_json(response);
    } else {
        if let Some(n) = response.relevant_count {
            eprintln!("{n}{} relevant", if response.relevant_more { "+" } else { "" });
        }
        let mut relevant = true;
        for hit in &response.results {
            if relevant && !hit.relevant {
                println!("-- less relevant --");
            }
            relevant = hit.relevant;
            let moment = hit.moment_s.map(|at| format!(" @ {}", clock(at))).unwrap_or_default();
            let companions: String = hit.companions.iter().map(|c| format!("  + {}", c.name)).collect();
            println!("{:.4}  {}{moment}{companions}", hit.score, hit.path);
        }
    }
}

/// `m:ss`, or `h:mm:ss` from an hour.
fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn cmd_search(g: &Global, text: &str, options: search::SearchOptions, exact: bool) -> Result<()> {
    let query = search::parse(text)?;
    let library = open_for_query(g, if exact { Use::Exact } else { Use::One }, options.mode != search::Mode::Vector)?;
    print_hits(g, &library.search(&query, None, options)?);
    Ok(())
}

fn cmd_similar(g: &Global, path: &Path, k: usize) -> Result<()> {
    let library = open_for_query(g, Use::One, false)?;
    let options = search::SearchOptions { k, allow_files: true, ..Default::default() };
    print_hits(g, &library.similar(ImageRef::File(path.to_path_buf()), options)?);
    Ok(())
}

fn cmd_classify(g: &Global, image: &Path, labels: &str) -> Result<()> {
    let labels: Vec<String> = labels.split(',').map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    library::check_labels(&labels)?; // before the model loads and the image is embedded
    let clip = open_model(g)?;
    let img = embed_images(&clip, &[image.to_path_buf()])?.remove(0);
    let response: ClassifyResponse = library::classify(&clip, &img, labels, g.language())?;
    if g.json {
        print_json(&response);
    } else {
        for l in &response.labels {
            println!("{:6.2}%  {}", l.prob * 100.0, l.label);
        }
    }
    Ok(())
}

fn cmd_embed(g: &Global, images: &[PathBuf], texts: &[String]) -> Result<()> {
    if images.is_empty() == texts.is_empty() {
        bail!("give either --image FILE... or --text TEXT...");
    }
    let clip = open_model(g)?;
    let embeddings = if images.is_empty() { clip.encode_texts(texts)? } else { embed_images(&clip, images)? };
    let rows: Vec<Vec<f32>> = embeddings.into_iter().map(Embedding::into_vec).collect();
    if g.json {
        print_json(&json!({"model": clip.id().to_hex(), "dim": clip.dim(), "embeddings": rows}));
    } else {
        for r in rows {
            println!("{}", r.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(" "));
        }
    }
    Ok(())
}

fn cmd_matrix(g: &Global, images: &[PathBuf], texts: &[String]) -> Result<()> {
    let clip = open_model(g)?;
    let img = embed_images(&clip, images)?;
    let response: MatrixResponse = library::matrix(&clip, &img, texts)?;
    if g.json {
        print_json(&response);
    } else {
        let width = texts.iter().map(|t| t.chars().count().min(24)).max().unwrap_or(8).max(8);
        print!("{:30}", "");
        for t in texts {
            print!(" {:>width$}", t.chars().take(24).collect::<String>());
        }
        println!();
        for (p, row) in images.iter().zip(&response.similarity) {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            print!("{:30}", name.chars().take(30).collect::<String>());
            for s in row {
                print!(" {s:>width$.4}");
            }
            println!();
        }
        match response.loss {
            Some(l) => println!("InfoNCE loss (pairs in order): {l:.4}"),
            None => println!("InfoNCE loss: needs as many images as texts"),
        }
    }
    Ok(())
}

fn cmd_eval(g: &Global, dir: &Path) -> Result<()> {
    let report = evaluate_model(&open_model(g)?, dir)?;
    if g.json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        println!("images: {}", report.images);
        println!("text→image recall@1/5/10: {:.3} {:.3} {:.3}", report.t2i.r1, report.t2i.r5, report.t2i.r10);
        println!("image→text recall@1/5/10: {:.3} {:.3} {:.3}", report.i2t.r1, report.i2t.r5, report.i2t.r10);
        for (task, acc) in &report.zero_shot {
            println!("zero-shot {task}: {acc:.3}");
        }
        if let Some(r) = &report.relevance {
            println!("relevance over {} held-out queries (precision / recall / F1):", r.queries);
            let cut = |c: &eval::Cut| format!("{:.3} / {:.3} / {:.3}", c.precision, c.recall, c.f1);
            println!("  per-query cutoff        {}", cut(&r.per_query));
            println!("  best fixed threshold    {} (at {:.3}, chosen on the other queries)", cut(&r.fixed), r.fixed.threshold.unwrap_or_default());
            println!("  per-query oracle F1     {:.3}; gap from fixed closed: {:.0}%", r.oracle_f1, r.gap_closed * 100.0);
            println!("  cut at the true count   {:.3} (a cutoff that knew how many images are relevant)", r.known_count_f1);
            println!("  queries with relevant images but none judged relevant: {:.1}%", r.none_relevant * 100.0);
            println!("  recall@10 {:.3}", r.recall_at_10);
            let e = &r.ensembling;
            if e.queries == 0 {
                println!("  prompt ensembling: not used with this model family");
            } else {
                println!("  {} queries of at most {} words: recall@10 as typed {:.3}, ensembled {:.3}", e.queries, search::ENSEMBLE_WORDS, e.recall_at_10_as_typed, e.recall_at_10_ensembled);
            }
        }
    }
    Ok(())
}

/// `clip`'s retrieval quality on the labelled folder `dir` (see [`eval::evaluate`]).
fn evaluate_model(clip: &Clip, dir: &Path) -> Result<eval::EvalReport> {
    let manifest = Manifest::load(dir).map_err(|e| anyhow!(e))?;
    let paths: Vec<PathBuf> = manifest.images.iter().map(|i| dir.join(&i.file)).collect();
    let mut images = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(64) {
        images.extend(embed_images(clip, chunk)?);
    }
    let captions: Vec<&str> = manifest.images.iter().map(|i| i.caption.as_str()).collect();
    let mut caption_embeddings = Vec::with_capacity(captions.len());
    for chunk in captions.chunks(64) {
        caption_embeddings.extend(clip.encode_texts(chunk)?);
    }
    let mut prompts = BTreeMap::new();
    for (task, spec) in &manifest.zero_shot {
        prompts.insert(task.clone(), clip.encode_texts(&spec.prompts)?);
    }
    let mut report = eval::evaluate(&manifest, &images, &caption_embeddings, &prompts);
    let queries: Vec<&str> = manifest.queries.iter().map(|q| q.text.as_str()).collect();
    let (mut plain, mut searched) = (Vec::with_capacity(queries.len()), Vec::with_capacity(queries.len()));
    for chunk in queries.chunks(64) {
        plain.extend(clip.encode_texts(chunk)?);
        searched.extend(search::query_texts(clip, chunk, None)?);
    }
    report.relevance = eval::relevance(&manifest, &images, &plain, &searched, clip.family()?);
    Ok(report)
}

fn cmd_check(g: &Global) -> Result<()> {
    let store = Store::open(&g.data, OpenMode::ReadOnly)?;
    let model = match store.active_model()? {
        Some(m) => m,
        None => open_model(g)?.id(),
    };
    let report = clipsight::check::check(&store, model)?;
    if g.json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        println!(
            "{} files, {} embeddings, {} thumbnails, graph {}{}",
            report.files, report.embeddings, report.thumbnails, report.graph,
            if report.interrupted_run { ", an interrupted run to resume" } else { "" }
        );
        for p in &report.problems {
            println!("  problem: {p}");
        }
    }
    if !report.problems.is_empty() {
        bail!("{} problems found", report.problems.len());
    }
    Ok(())
}

fn cmd_stats(g: &Global) -> Result<()> {
    // The store alone: no model is needed to look at a library.
    let store = Store::open(&g.data, OpenMode::ReadOnly)?;
    let stats = library::stats_of(&store, store.count_files()?, None)?;
    if g.json {
        print_json(&stats);
    } else {
        println!("images: {} ({} videos)", stats.images, stats.videos);
        println!("roots: {}", stats.roots.join(", "));
        match &stats.active_model {
            Some(m) => println!("active model: {m} ({} images lack embeddings for it)", stats.missing_embeddings),
            None => println!("active model: none"),
        }
        if stats.interrupted_run {
            println!("an interrupted indexing run: `clipsight index` resumes it");
        }
    }
    Ok(())
}

fn cmd_model_info(g: &Global, dir: Option<&str>) -> Result<()> {
    let path = model_dir(g, dir)?;
    let clip = Clip::load(&path, RuntimeOptions { device: g.device, intra_threads: g.threads })
        .with_context(|| format!("loading {}", path.display()))?;
    let cfg = &clip.dir().config;
    let pre = clip.preprocess();
    let info = json!({
        "path": path.display().to_string(),
        "id": clip.id().to_hex(),
        "embed_dim": cfg.embed_dim,
        "context_length": cfg.context_length,
        "scoring": cfg.scoring.name(),
        "logit_scale": cfg.scoring.scale(),
        "logit_bias": match cfg.scoring { Scoring::Sigmoid { bias, .. } => Some(bias), Scoring::Softmax { .. } => None },
        "scoring_origin": cfg.scoring_origin,
        "image_size": [pre.size.0, pre.size.1],
        "image_input": format!("{:?}", clip.image_layout()?),
        "text_ids": format!("{:?}", clip.id_type()?),
        "text_inputs": clip.text_inputs()?,
        "family": clip.family()?.name(),
        "languages": clip.family()?.languages(),
        "canonicalize": cfg.canonicalize,
        "resize_mode": format!("{:?}", pre.resize_mode),
        "interpolation": format!("{:?}", pre.interpolation),
        "device": format!("{:?}", clip.device()?),
    });
    if g.json {
        print_json(&info);
    } else {
        for (k, v) in info.as_object().expect("object") {
            println!("{k:>15}: {}", v.to_string().trim_matches('"'));
        }
    }
    Ok(())
}

struct BarProgress(ProgressBar);

impl hub::PullProgress for BarProgress {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn file(&self, name: &str) {
        self.0.set_message(name.to_string());
    }
}

fn cmd_model_pull(g: &Global, name: &str, to: Option<PathBuf>) -> Result<()> {
    let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.trim().is_empty()).unwrap_or_else(|| hub::DEFAULT_ENDPOINT.to_string());
    let dest = to.unwrap_or_else(|| hub::model_path(name));
    let bar = progress_bar(g, "{msg:24} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_bar}");
    let dir = hub::pull(name, &endpoint, &dest, &BarProgress(bar.clone()))?;
    bar.finish_and_clear();
    let clip = Clip::open(&dir, RuntimeOptions::default())?;
    if g.json {
        print_json(&json!({"name": name, "path": dir.display().to_string(), "id": clip.id().to_hex()}));
    } else {
        println!("{name} → {} (model id {})", dir.display(), clip.id());
    }
    Ok(())
}

/// The quantization script, embedded so the command works from any directory.
const QUANTIZE_SCRIPT: &str = include_str!("../tools/quantize.py");

fn cmd_model_quantize(g: &Global, out: &Path, eval_dir: Option<&Path>) -> Result<()> {
    let fp32 = open_model(g)?;
    let tmp = tempfile::tempdir()?;
    let script = tmp.path().join("quantize.py");
    std::fs::write(&script, QUANTIZE_SCRIPT)?;
    // Its progress lines go to stderr, so that `--json` output stays one JSON document.
    let status = std::process::Command::new(python()).arg(&script).arg(&fp32.dir().root).arg(out).stdout(std::io::stderr()).status().context("running Python (set CLIPSIGHT_PYTHON to one with onnxruntime)")?;
    if !status.success() {
        bail!("quantization failed (see above)");
    }
    let int8 = Clip::open(out, RuntimeOptions { device: g.device, intra_threads: g.threads })?;
    // Agreement: cosine of fp32 and int8 embeddings of the same photos and texts.
    let photos = clipsight::bench::photos::generate(&tmp.path().join("photos"), clipsight::bench::photos::PhotoSet { large_jpegs: 0, medium_jpegs: 8, pngs: 0 })?;
    let texts: Vec<String> = ["a dog on the beach", "a red car at night", "a birthday cake", "snowy mountains", "a cat asleep on a sofa", "a city street in the rain"].map(String::from).to_vec();
    let cosines = |a: &[Embedding], b: &[Embedding]| -> (f32, f32) {
        let c: Vec<f32> = a.iter().zip(b).map(|(x, y)| x.cosine(y)).collect();
        (c.iter().sum::<f32>() / c.len() as f32, c.iter().copied().fold(f32::INFINITY, f32::min))
    };
    let (image_mean, image_min) = cosines(&embed_images(&fp32, &photos)?, &embed_images(&int8, &photos)?);
    let (text_mean, text_min) = cosines(&fp32.encode_texts(&texts)?, &int8.encode_texts(&texts)?);
    // Speed: model-only image throughput, and text encodings per second, same run.
    let image_speed = |clip: &Clip| clipsight::bench::index::model_only(clip, 8, 32);
    let text_speed = |clip: &Clip| -> Result<f64> {
        let started = Instant::now();
        for _ in 0..4 {
            clip.encode_texts(&texts)?;
        }
        Ok((4 * texts.len()) as f64 / started.elapsed().as_secs_f64())
    };
    let (img32, img8) = (image_speed(&fp32)?, image_speed(&int8)?);
    let (txt32, txt8) = (text_speed(&fp32)?, text_speed(&int8)?);
    // Retrieval quality of both on a labelled folder: what decides whether int8 is good enough.
    let quality = match eval_dir {
        Some(dir) => Some((evaluate_model(&fp32, dir)?, evaluate_model(&int8, dir)?)),
        None => None,
    };
    let mut report = json!({
        "out": out.display().to_string(),
        "id": int8.id().to_hex(),
        "image_cosine_mean": image_mean, "image_cosine_min": image_min,
        "text_cosine_mean": text_mean, "text_cosine_min": text_min,
        "image_images_per_s": {"fp32": img32, "int8": img8, "speedup": img8 / img32},
        "text_texts_per_s": {"fp32": txt32, "int8": txt8, "speedup": txt8 / txt32},
    });
    if let Some((a, b)) = &quality {
        report["eval"] = json!({"fp32": a, "int8": b});
    }
    if g.json {
        print_json(&report);
    } else {
        println!("int8 model written to {} (id {})", out.display(), int8.id());
        println!("  image encoder: {img32:.1} → {img8:.1} images/s ({:.2}x), cosine vs fp32 mean {image_mean:.4} min {image_min:.4}", img8 / img32);
        println!("  text encoder:  {txt32:.1} → {txt8:.1} texts/s ({:.2}x), cosine vs fp32 mean {text_mean:.4} min {text_min:.4}", txt8 / txt32);
        if let Some((a, b)) = &quality {
            println!("  on {} labelled images (fp32 → int8):", a.images);
            let r = |x: eval::Recall| format!("{:.3} {:.3} {:.3}", x.r1, x.r5, x.r10);
            println!("    text→image recall@1/5/10  {} → {}", r(a.t2i), r(b.t2i));
            println!("    image→text recall@1/5/10  {} → {}", r(a.i2t), r(b.i2t));
            for (task, acc) in &a.zero_shot {
                println!("    zero-shot {task:10}  {acc:.3} → {:.3}", b.zero_shot.get(task).copied().unwrap_or(f64::NAN));
            }
        }
        println!("  index with it: clipsight --model {} index PHOTOS (a new model id: the library re-embeds)", out.display());
    }
    Ok(())
}

fn cmd_texts_add(g: &Global, file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let clip = open_model(g)?;
    let store = Store::open(&g.data, OpenMode::ReadWrite)?;
    let added = describe::add_corpus(&store, &clip, &lines, g.language())?;
    store.flush()?;
    if g.json {
        print_json(&json!({"added": added, "lines": lines.len()}));
    } else {
        println!("added {added} captions ({} lines read)", lines.len());
    }
    Ok(())
}

/// `store push`: the library's vectors of its active model into a Milvus collection, then the
/// check (counts, a sample of vectors read back).
fn cmd_store_push(g: &Global, to: &ann::milvus::MilvusAddress, sample: usize) -> Result<()> {
    let store = Store::open(&g.data, OpenMode::ReadWrite)?;
    let model = store.active_model()?.ok_or_else(|| anyhow!("the library in {} has no embeddings to push yet", g.data.display()))?;
    let milvus = Milvus::new(to.clone());
    let started = Instant::now();
    let summary = ann::milvus::push_library(&milvus, &store, model, &mut |_, _| {})?;
    let seconds = started.elapsed().as_secs_f64();
    let collection = milvus.collection(model, None, ann::milvus::Patience::Write)?.ok_or_else(|| anyhow!("{to} has no collection for this library's model"))?;
    let check = ann::milvus::verify(&store, &collection, model, sample, ann::milvus::Copied::Pushed)?;
    if g.json {
        print_json(&json!({"collection": collection.name(), "pushed": summary, "seconds": seconds, "check": check, "ok": check.ok()}));
    } else {
        println!("{}: {} rows sent, {} removed, {} unchanged in {seconds:.1}s", collection.name(), summary.sent, summary.removed, summary.unchanged);
    }
    report_check(g, &check, &format!("the copy in {to} does not match the library (see the check above); run the push again"))
}

/// Prints a copy's check (text mode) and fails with `failed` when it does not hold.
fn report_check(g: &Global, check: &ann::milvus::Verification, failed: &str) -> Result<()> {
    if !g.json {
        println!("check: {} rows there for {} images here ({} skipped); {} of {} sampled vectors equal", check.remote, check.local, check.skipped, check.equal, check.sampled);
    }
    if !check.ok() {
        bail!("{failed}");
    }
    Ok(())
}

fn cmd_store_pull(g: &Global, from: &ann::milvus::MilvusAddress, sample: usize) -> Result<()> {
    let model = open_model(g)?.id();
    let store = Store::open(&g.data, OpenMode::ReadWrite)?;
    if !store.roots()?.is_empty() {
        bail!("the library in {} indexes folders of its own; pull into a new --data directory", g.data.display());
    }
    let milvus = Milvus::new(from.clone());
    let collection = milvus.collection(model, None, ann::milvus::Patience::Write)?.ok_or_else(|| anyhow!("{from} has no collection for this model ({})", model.to_hex()))?;
    let bar = progress_bar(g, "{spinner} {pos}/{len} rows [{elapsed_precise}] {per_sec} ETA {eta} {wide_bar}");
    let started = Instant::now();
    let summary = ann::milvus::pull(&store, &collection, model, ann::milvus::Depth::Whole, &mut report_to(&bar))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let check = ann::milvus::verify(&store, &collection, model, sample, ann::milvus::Copied::Pulled { skipped: summary.skipped })?;
    if g.json {
        print_json(&json!({"collection": collection.name(), "pulled": summary, "seconds": seconds, "check": check, "ok": check.ok()}));
    } else {
        println!("{}: {} rows copied, {} unchanged, {} removed here, {} without a record skipped, in {seconds:.1}s", collection.name(), summary.copied, summary.unchanged, summary.removed, summary.skipped);
    }
    report_check(g, &check, &format!("the library does not match {from} (see the check above); run the pull again"))
}

fn cmd_describe(g: &Global, image: &str, k: usize) -> Result<()> {
    let library = open_for_query(g, Use::Immediate, false)?;
    let image = match image.parse::<u64>() {
        Ok(id) if !Path::new(image).exists() => ImageRef::Id(id),
        _ => ImageRef::File(PathBuf::from(image)),
    };
    let response: DescribeResponse = library.describe(&image, k)?;
    if g.json {
        print_json(&response);
    } else {
        for c in &response.captions {
            println!("{:.4}  {}", c.score, c.text);
        }
        println!("tags: {}", response.tags.iter().map(|t| format!("{} ({:.0}%)", t.text, t.score * 100.0)).collect::<Vec<_>>().join(", "));
    }
    Ok(())
}

fn cmd_duplicates(g: &Global, threshold: f32) -> Result<()> {
    let library = open_for_query(g, Use::Many, false)?;
    let groups: Vec<Vec<HitView>> = library.duplicates(threshold)?;
    if g.json {
        print_json(&json!({"groups": groups}));
    } else {
        for (i, group) in groups.iter().enumerate() {
            println!("group {}:", i + 1);
            for item in group {
                println!("  {}", item.path);
            }
        }
    }
    Ok(())
}
