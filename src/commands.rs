//! One function per command: parse arguments → call the library → print text or JSON.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clipsight::eval::{self, Manifest};
use clipsight::keywords::Keywords;
use clipsight::{ann, describe, duplicates, hub, server};
use clipsight::index::{self, IndexOptions};
use clipsight::search;
use clipsight::store::{OpenMode, Store};
use clipsight_indexer::clip::{Clip, RuntimeOptions};
use clipsight_indexer::pipeline::prepare_file;
use clipsight_indexer::Embedding;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::{BenchCommand, Cli, Command, Global, IndexArgs, IndexTuning, ModelCommand, ServeArgs, TextsCommand};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Index(args) => cmd_index(g, args),
        Command::Serve(args) => cmd_serve(g, args),
        Command::Check => cmd_check(g),
        Command::Search { query, k, offset, min_score, exact, mode } => {
            cmd_search(g, &query, search::SearchOptions { k, offset, min_score, allow_files: true, mode }, exact)
        }
        Command::Similar { path, k } => cmd_similar(g, &path, k),
        Command::Classify { image, labels } => cmd_classify(g, &image, &labels),
        Command::Embed { images, texts } => cmd_embed(g, &images, &texts),
        Command::Matrix { images, texts } => cmd_matrix(g, &images, &texts),
        Command::Eval { dir } => cmd_eval(g, &dir),
        Command::Stats => cmd_stats(g),
        Command::Model(ModelCommand::Info { dir }) => cmd_model_info(g, dir.as_deref()),
        Command::Model(ModelCommand::Pull { name, to }) => cmd_model_pull(g, &name, to),
        Command::Model(ModelCommand::Quantize { out }) => cmd_model_quantize(g, &out),
        Command::Texts(TextsCommand::Add { file }) => cmd_texts_add(g, &file),
        Command::Describe { image, k } => cmd_describe(g, &image, k),
        Command::Duplicates { threshold } => cmd_duplicates(g, threshold),
        Command::Bench(BenchCommand::Ann { n, dim, queries, ef, m, ef_construction }) => {
            let params = ann::AnnParams { m, ef_construction, ef_search: 0 };
            let report = clipsight::bench::ann::run(n, dim, queries, &ef, params, |line| {
                if !g.json {
                    eprintln!("{line}");
                }
            });
            if g.json {
                print_json(&serde_json::to_value(&report)?);
            } else {
                println!("n={} dim={} M={} ef_construction={}: build {:.1}s, +{:.0} MiB, exact {:.1} q/s", report.n, report.dim, report.m, report.ef_construction, report.build_s, report.memory_mb, report.exact_qps);
                for r in &report.runs {
                    println!("  {:5} ef={:4}  {:8.0} q/s ({:5.1}x exact)  recall@10 {:.4}", r.queries, r.ef, r.qps, r.qps / report.exact_qps, r.recall_at_10);
                }
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Index { photos, large, batch, no_peer }) => cmd_bench_index(g, photos, large, &batch, no_peer),
        Command::Bench(BenchCommand::Query { n, samples, clients, seconds, work }) => cmd_bench_query(g, n, samples, clients, seconds, work),
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

fn cmd_bench_index(g: &Global, photos: Option<PathBuf>, large: usize, batches: &[usize], no_peer: bool) -> Result<()> {
    let clip = open_model(g)?;
    let tmp = tempfile::tempdir()?;
    let dir = photos.unwrap_or_else(|| tmp.path().join("photos"));
    let set = clipsight::bench::photos::PhotoSet { large_jpegs: large, medium_jpegs: 4, pngs: 4 };
    eprintln!("photos: {} in {} (generated once)", set.len(), dir.display());
    clipsight::bench::photos::generate(&dir, set)?;
    let py = python();
    let report = clipsight::bench::index::run(&clip, &dir, batches, (!no_peer).then_some(py.as_path()), bench_progress(g))?;
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
    }
    Ok(())
}

fn cmd_bench_query(g: &Global, n: usize, samples: usize, clients: usize, seconds: u64, work: Option<PathBuf>) -> Result<()> {
    let clip = open_model(g)?;
    let work = work.unwrap_or_else(|| clipsight::bench::query::default_work_dir(&clip, n));
    let exe = std::env::current_exe()?;
    let model_dir = clip.dir().root.clone();
    let bench = clipsight::bench::query::QueryBench { n, samples: samples.max(2), clients: clients.max(1), seconds: seconds.max(1) };
    let r = clipsight::bench::query::run(&clip, &model_dir, &work, &exe, bench, bench_progress(g))?;
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
        println!("  serve start: listening {:.2}s, first answer {:.2}s, graph in use {:.2}s", t.listening_s, t.first_answer_s, t.graph_in_use_s);
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

fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values serialise"));
}

fn embed_images(clip: &Clip, paths: &[PathBuf]) -> Result<Vec<Embedding>> {
    let prepared = paths.iter().map(|p| prepare_file(clip, p).map_err(|e| anyhow!(e))).collect::<Result<Vec<_>>>()?;
    Ok(clip.encode_images(&prepared)?)
}

fn cmd_index(g: &Global, args: IndexArgs) -> Result<()> {
    let clip = open_model(g)?;
    let store = Store::open(&g.data, OpenMode::ReadWrite)?;
    let roots = if args.roots.is_empty() { store.roots()? } else { args.roots.clone() };
    if roots.is_empty() {
        bail!("nothing to index: give a folder, e.g. `clipsight index ~/Pictures`");
    }
    let bar = progress_bar(g, "{spinner} {pos}/{len} images [{elapsed_precise}] {per_sec} ETA {eta} {wide_bar}");
    let options = IndexOptions {
        roots,
        hidden: args.tuning.hidden,
        full: args.full,
        batch_size: args.tuning.batch_size,
        tag_vocabulary: tag_vocabulary(&args.tuning)?,
        stop: None,
    };
    let summary = index::run(&store, &clip, &options, report_to(&bar))?;
    bar.finish_and_clear();
    store.flush()?;
    if g.json {
        print_json(&serde_json::to_value(&summary)?);
    } else {
        println!(
            "{} scanned, {} indexed, {} unchanged, {} moved, {} removed, {} failed in {:.1}s ({:.1} images/s)",
            summary.scanned, summary.indexed, summary.unchanged, summary.moved, summary.removed, summary.failed,
            summary.elapsed_s, summary.images_per_s
        );
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
    let clip = open_model(g)?;
    let (store, writable) = match Store::open(&g.data, OpenMode::ReadWrite) {
        Ok(store) => (store, true),
        Err(e @ clipsight::store::StoreError::InUse { .. }) => {
            eprintln!("warning: {e}; serving read-only (no indexing from this server)");
            (Store::open(&g.data, OpenMode::ReadOnly)?, false)
        }
        Err(e) => return Err(e.into()),
    };
    for root in &args.watch {
        if !root.is_dir() {
            bail!("--watch {}: not a folder", root.display());
        }
    }
    let settings = server::IndexSettings {
        roots: args.watch.clone(),
        hidden: args.tuning.hidden,
        batch_size: args.tuning.batch_size,
        tag_vocabulary: tag_vocabulary(&args.tuning)?,
    };
    let options = server::ServeOptions {
        bind: args.bind,
        token: args.token.filter(|t| !t.is_empty()),
        upload_limit: args.upload_limit_mb.saturating_mul(1_000_000),
        watch: args.watch,
        workers: args.workers,
    };
    server::serve(store, clip, settings, writable, options)?;
    Ok(())
}

/// Prints ranked hits with their paths.
fn print_hits(g: &Global, store: &Store, hits: &[clipsight::ann::Hit], started: Instant) -> Result<()> {
    let mut results = Vec::new();
    for hit in hits {
        let path = store.file(hit.id)?.map(|r| r.display_path()).unwrap_or_default();
        results.push(json!({"id": hit.id, "path": path, "score": hit.score}));
    }
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    if g.json {
        print_json(&json!({"results": results, "took_ms": took_ms}));
    } else {
        for r in &results {
            println!("{:.4}  {}", r["score"].as_f64().unwrap_or(0.0), r["path"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// The library opened for reading, and the model its queries must use.
fn open_for_query(g: &Global) -> Result<(Store, Clip)> {
    let store = Store::open(&g.data, OpenMode::ReadOnly)?;
    let clip = open_model(g)?;
    if store.active_model()?.is_some_and(|m| m != clip.id()) && store.embeddings(clip.id()).next().is_none() {
        bail!(
            "the library was indexed with another model than {}; pass that model with --model, or re-index with this one",
            clip.dir().root.display()
        );
    }
    Ok((store, clip))
}

/// The library's HNSW graph (None for small libraries), with a progress bar while it builds.
fn open_graph(g: &Global, store: &Store, clip: &Clip) -> Result<Option<ann::AnnIndex>> {
    let bar = progress_bar(g, "building the search graph {pos}/{len} [{elapsed_precise}] ETA {eta} {wide_bar}");
    let graph = ann::open(store, clip.id(), ann::AnnParams::default(), &mut report_to(&bar))?;
    bar.finish_and_clear();
    Ok(graph)
}

/// What one CLI query ranks vectors with: the flat copy of a fresh graph's vectors when there
/// is one (mapping it is instant and one exact scan costs well under a second at a million
/// images, where loading the graph takes seconds), else the graph (built when needed).
fn vectors_for_one_query(g: &Global, store: &Store, clip: &Clip, exact: bool) -> Result<(Option<ann::AnnIndex>, Option<ann::FlatVectors>)> {
    if let Some(flat) = ann::open_flat(store, clip.id())? {
        return Ok((None, Some(flat)));
    }
    Ok((if exact { None } else { open_graph(g, store, clip)? }, None))
}

fn cmd_search(g: &Global, text: &str, options: search::SearchOptions, exact: bool) -> Result<()> {
    let started = Instant::now();
    let query = search::parse(text)?;
    let (store, clip) = open_for_query(g)?;
    let (graph, vectors) = vectors_for_one_query(g, &store, &clip, exact)?;
    let keywords = match options.mode {
        search::Mode::Vector => None,
        _ => Some(Keywords::open(&store)?),
    };
    let rankers = search::Rankers { graph: graph.as_ref(), vectors: vectors.as_ref(), keywords: keywords.as_ref() };
    let hits = search::run(&store, &clip, &query, options, rankers)?;
    print_hits(g, &store, &hits, started)
}

fn cmd_similar(g: &Global, path: &Path, k: usize) -> Result<()> {
    let started = Instant::now();
    let (store, clip) = open_for_query(g)?;
    let query = search::Query {
        terms: vec![search::Term { weight: 1.0, kind: search::TermKind::File(path.display().to_string()) }],
        filters: search::Filters::default(),
    };
    let (graph, vectors) = vectors_for_one_query(g, &store, &clip, false)?;
    let rankers = search::Rankers { graph: graph.as_ref(), vectors: vectors.as_ref(), keywords: None };
    let options = search::SearchOptions { k, allow_files: true, mode: search::Mode::Vector, ..Default::default() };
    let hits = search::run(&store, &clip, &query, options, rankers)?;
    print_hits(g, &store, &hits, started)
}

fn cmd_classify(g: &Global, image: &Path, labels: &str) -> Result<()> {
    let labels: Vec<String> = labels.split(',').map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if labels.len() < 2 {
        bail!("give at least two comma-separated labels, e.g. --labels \"a dog,a cat,a bird\"");
    }
    let clip = open_model(g)?;
    let img = embed_images(&clip, &[image.to_path_buf()])?.remove(0);
    let (probs, best) = describe::zero_shot(&clip, &img, &labels)?;
    if g.json {
        let rows: Vec<_> = labels.iter().zip(&probs).map(|(l, p)| json!({"label": l, "prob": p})).collect();
        print_json(&json!({"labels": rows, "best": labels[best]}));
    } else {
        for (l, p) in labels.iter().zip(&probs) {
            println!("{:6.2}%  {l}", p * 100.0);
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
    let txt = clip.encode_texts(texts)?;
    let similarity = eval::similarity(&img, &txt);
    let loss = eval::info_nce(&similarity, clip.logit_scale());
    if g.json {
        print_json(&json!({"similarity": similarity, "loss": loss}));
    } else {
        let width = texts.iter().map(|t| t.chars().count().min(24)).max().unwrap_or(8).max(8);
        print!("{:30}", "");
        for t in texts {
            print!(" {:>width$}", t.chars().take(24).collect::<String>());
        }
        println!();
        for (p, row) in images.iter().zip(&similarity) {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            print!("{:30}", name.chars().take(30).collect::<String>());
            for s in row {
                print!(" {s:>width$.4}");
            }
            println!();
        }
        match loss {
            Some(l) => println!("InfoNCE loss (pairs in order): {l:.4}"),
            None => println!("InfoNCE loss: needs as many images as texts"),
        }
    }
    Ok(())
}

fn cmd_eval(g: &Global, dir: &Path) -> Result<()> {
    let manifest = Manifest::load(dir).map_err(|e| anyhow!(e))?;
    let clip = open_model(g)?;
    let paths: Vec<PathBuf> = manifest.images.iter().map(|i| dir.join(&i.file)).collect();
    let mut images = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(64) {
        images.extend(embed_images(&clip, chunk)?);
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
    let report = eval::evaluate(&manifest, &images, &caption_embeddings, &prompts);
    if g.json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        println!("images: {}", report.images);
        println!("text→image recall@1/5/10: {:.3} {:.3} {:.3}", report.t2i.r1, report.t2i.r5, report.t2i.r10);
        println!("image→text recall@1/5/10: {:.3} {:.3} {:.3}", report.i2t.r1, report.i2t.r5, report.i2t.r10);
        for (task, acc) in &report.zero_shot {
            println!("zero-shot {task}: {acc:.3}");
        }
    }
    Ok(())
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
    let store = Store::open(&g.data, OpenMode::ReadOnly)?;
    let images = store.count_files()?;
    let mut models = Vec::new();
    for m in store.models()? {
        let embedded = store.embeddings(m).count();
        models.push(json!({"id": m.to_hex(), "embedded": embedded, "missing": images.saturating_sub(embedded)}));
    }
    let active = store.active_model()?;
    let missing = match active {
        Some(m) => images.saturating_sub(store.embeddings(m).count()),
        None => images,
    };
    let roots: Vec<String> = store.roots()?.iter().map(|r| r.display().to_string()).collect();
    if g.json {
        print_json(&json!({
            "images": images,
            "active_model": active.map(|m| m.to_hex()),
            "missing_embeddings": missing,
            "models": models,
            "roots": roots,
            "interrupted_run": store.interrupted_run()?,
        }));
    } else {
        println!("images: {images}");
        println!("roots: {}", roots.join(", "));
        match active {
            Some(m) => println!("active model: {m} ({missing} images lack embeddings for it)"),
            None => println!("active model: none"),
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
        "logit_scale": cfg.logit_scale,
        "image_size": [pre.size.0, pre.size.1],
        "image_input": format!("{:?}", clip.image_layout()?),
        "text_ids": format!("{:?}", clip.id_type()?),
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

fn cmd_model_quantize(g: &Global, out: &Path) -> Result<()> {
    let fp32 = open_model(g)?;
    let tmp = tempfile::tempdir()?;
    let script = tmp.path().join("quantize.py");
    std::fs::write(&script, QUANTIZE_SCRIPT)?;
    let status = std::process::Command::new(python()).arg(&script).arg(&fp32.dir().root).arg(out).status().context("running Python (set CLIPSIGHT_PYTHON to one with onnxruntime)")?;
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
    let report = json!({
        "out": out.display().to_string(),
        "id": int8.id().to_hex(),
        "image_cosine_mean": image_mean, "image_cosine_min": image_min,
        "text_cosine_mean": text_mean, "text_cosine_min": text_min,
        "image_images_per_s": {"fp32": img32, "int8": img8, "speedup": img8 / img32},
        "text_texts_per_s": {"fp32": txt32, "int8": txt8, "speedup": txt8 / txt32},
    });
    if g.json {
        print_json(&report);
    } else {
        println!("int8 model written to {} (id {})", out.display(), int8.id());
        println!("  image encoder: {img32:.1} → {img8:.1} images/s ({:.2}x), cosine vs fp32 mean {image_mean:.4} min {image_min:.4}", img8 / img32);
        println!("  text encoder:  {txt32:.1} → {txt8:.1} texts/s ({:.2}x), cosine vs fp32 mean {text_mean:.4} min {text_min:.4}", txt8 / txt32);
        println!("  index with it: clipsight --model {} index PHOTOS (a new model id: the library re-embeds)", out.display());
    }
    Ok(())
}

fn cmd_texts_add(g: &Global, file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let clip = open_model(g)?;
    let store = Store::open(&g.data, OpenMode::ReadWrite)?;
    let added = describe::add_corpus(&store, &clip, &lines)?;
    store.flush()?;
    if g.json {
        print_json(&json!({"added": added, "lines": lines.len()}));
    } else {
        println!("added {added} captions ({} lines read)", lines.len());
    }
    Ok(())
}

/// An image given as an indexed id or as a file, resolved like a query term.
fn image_embedding(store: &Store, clip: &Clip, image: &str) -> Result<Embedding> {
    let kind = match image.parse::<u64>() {
        Ok(id) if !Path::new(image).exists() => search::TermKind::Image(id),
        _ => search::TermKind::File(image.to_string()),
    };
    let query = search::Query { terms: vec![search::Term { weight: 1.0, kind }], filters: search::Filters::default() };
    Ok(search::query_vector(store, clip, &query, true)?.expect("one image term gives a vector"))
}

fn cmd_describe(g: &Global, image: &str, k: usize) -> Result<()> {
    let (store, clip) = open_for_query(g)?;
    let embedding = image_embedding(&store, &clip, image)?;
    let captions = describe::best_captions(&store, &clip, &embedding, k)?;
    let tags: Vec<describe::Scored> = describe::Vocabulary::current(&store, &clip)?.score(&embedding).into_iter().take(k).collect();
    if g.json {
        print_json(&json!({"captions": captions, "tags": tags}));
    } else {
        for c in &captions {
            println!("{:.4}  {}", c.score, c.text);
        }
        println!("tags: {}", tags.iter().map(|t| format!("{} ({:.0}%)", t.text, t.score * 100.0)).collect::<Vec<_>>().join(", "));
    }
    Ok(())
}

fn cmd_duplicates(g: &Global, threshold: f32) -> Result<()> {
    let (store, clip) = open_for_query(g)?;
    let graph = open_graph(g, &store, &clip)?;
    let groups = duplicates::groups(&store, clip.id(), threshold, graph.as_ref())?;
    let mut out = Vec::new();
    for group in &groups {
        let mut paths = Vec::new();
        for id in group {
            paths.push(json!({"id": id, "path": store.file(*id)?.map(|r| r.display_path()).unwrap_or_default()}));
        }
        out.push(paths);
    }
    if g.json {
        print_json(&json!({"groups": out}));
    } else {
        for (i, group) in out.iter().enumerate() {
            println!("group {}:", i + 1);
            for item in group {
                println!("  {}", item["path"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}
