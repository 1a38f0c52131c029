//! `clipsight bench ann --milvus milvus://…`: the synthetic vectors and queries of `bench ann`
//! in a Milvus collection on the same machine, against the local graph — ingest rows/s (rows
//! as an indexer sends them), and per ef recall@10 against the exact scan, p50/p99 latency of
//! one client and queries/s of eight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clipsight_indexer::{Embedding, ModelId};
use serde::Serialize;

use super::client::Patience;
use super::rows::{row, row_key};
use super::{Freshness, Milvus};
use crate::ann::bench::Dataset;
use crate::ann::{AnnError, Hit};
use crate::store::{FileRecord, ImageId};

/// Rows per upsert while loading the bench collection.
const INGEST_BATCH: usize = 5_000;
/// Concurrent clients of the throughput measurement.
pub const CLIENTS: usize = 8;

/// One (system, query set, ef) measurement.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRun {
    /// "local graph", "milvus strong" or "milvus bounded" (see [`Freshness`]).
    pub system: &'static str,
    /// "image" or "text".
    pub queries: &'static str,
    /// HNSW candidate list.
    pub ef: usize,
    /// Mean recall@10 against the exact scan.
    pub recall_at_10: f64,
    /// Median latency of one client, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of one client, ms.
    pub p99_ms: f64,
    /// Queries per second with [`CLIENTS`] clients.
    pub qps_8_clients: f64,
}

/// A front end's mirror of the rows' records (see [`super::Depth::Records`]), made from nothing.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorRun {
    /// Records copied per second (listing, reading and committing them).
    pub records_per_s: f64,
    /// Seconds to build the keyword index over the mirrored records.
    pub keyword_index_s: f64,
    /// Median latency of a keyword query (one file-name word), ms.
    pub keyword_p50_ms: f64,
}

/// The Milvus side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct MilvusReport {
    /// Rows sent per second (upserts of [`INGEST_BATCH`] rows, the fields an indexer sends);
    /// `None` when the collection already held the data (a second run), and nothing was sent.
    pub ingest_rows_per_s: Option<f64>,
    /// Seconds until every row was sealed and indexed after the last upsert.
    pub index_wait_s: f64,
    /// Measurements.
    pub runs: Vec<LatencyRun>,
    /// A front end's mirror of the records.
    pub mirror: MirrorRun,
}

/// One query's ten best hits, from the system measured.
pub type SearchOne<'a> = dyn Fn(&[f32]) -> Result<Vec<Hit>, AnnError> + Sync + 'a;

/// One measured query set: its name, queries and exact answers.
pub type QuerySet<'a> = (&'static str, &'a [Embedding], Vec<Vec<Hit>>);

/// Measures `search` (one query → its ten best ids) on `set`: recall against `truth`, the
/// latency of one client, and the throughput of [`CLIENTS`].
pub fn latency(system: &'static str, queries: &'static str, ef: usize, set: &[Embedding], truth: &[Vec<Hit>], search: &SearchOne) -> Result<LatencyRun, AnnError> {
    let mut times = Vec::with_capacity(set.len());
    let mut found = Vec::with_capacity(set.len());
    for q in set {
        let started = Instant::now();
        found.push(search(q.as_slice())?);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS).map(|c| scope.spawn(move || set.iter().cycle().skip(c).take(set.len()).try_for_each(|q| search(q.as_slice()).map(drop)))).collect();
        workers.into_iter().try_for_each(|w| w.join().expect("a bench client does not panic"))
    })?;
    let qps_8_clients = (CLIENTS * set.len()) as f64 / started.elapsed().as_secs_f64();
    Ok(LatencyRun { system, queries, ef, recall_at_10: crate::ann::bench::recall_at_10(&found, truth), p50_ms: pct(0.5), p99_ms: pct(0.99), qps_8_clients })
}

/// Loads `data` into a collection of `milvus` (named for the data's size) and measures it for
/// each query set of `truth` and each ef.
pub fn measure(milvus: &Arc<Milvus>, data: &Dataset, truth: &[QuerySet], efs: &[usize], progress: &mut dyn FnMut(&str)) -> Result<MilvusReport, AnnError> {
    let dim = data.vectors.first().map_or(0, |(_, e)| e.dim());
    let mut model = [0u8; 16];
    // Named for the data (its size and first vector): a second run on the same data finds it.
    let mut name = blake3::Hasher::new();
    name.update(format!("bench {} {dim}", data.vectors.len()).as_bytes());
    if let Some((_, e)) = data.vectors.first() {
        name.update(&e.to_le_bytes());
    }
    model.copy_from_slice(&name.finalize().as_bytes()[..16]);
    let collection = milvus.collection(ModelId(model), Some(dim), Patience::Write)?.expect("created when missing");
    let record_of = |id: ImageId| FileRecord::synthetic(&format!("/bench/{}.jpg", id.0), [0; 32], "jpeg");
    let ids: HashMap<u64, ImageId> = data.vectors.iter().map(|(id, _)| (row_key(&record_of(*id).path), *id)).collect();
    let loaded = !collection.created() && collection.count("")? == data.vectors.len();
    let ingest_rows_per_s = if loaded {
        progress("milvus: the collection holds the data already; nothing sent");
        None
    } else {
        let started = Instant::now();
        for batch in data.vectors.chunks(INGEST_BATCH) {
            let rows: Vec<serde_json::Value> = batch.iter().map(|(id, e)| row(&record_of(*id).into(), e.as_slice(), &[], "bench").0).collect();
            collection.upsert(&rows)?;
        }
        let ingest_s = started.elapsed().as_secs_f64();
        progress(&format!("milvus: {} rows sent in {ingest_s:.1}s", data.vectors.len()));
        Some(data.vectors.len() as f64 / ingest_s)
    };
    let started = Instant::now();
    collection.wait_indexed(Duration::from_secs(3600))?;
    let index_wait_s = started.elapsed().as_secs_f64();
    progress(&format!("milvus: sealed and indexed {index_wait_s:.1}s later"));
    // The query node loads the new index after the build: the first searches may time out.
    let started = Instant::now();
    while let Err(e) = collection.search(&[truth[0].1[0].as_slice()], 10, 64, "", &[]) {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(e.into());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    progress(&format!("milvus: first answer {:.1}s after that", started.elapsed().as_secs_f64()));
    let mut runs = Vec::new();
    for freshness in [Freshness::Strong, Freshness::Bounded] {
        let system = match freshness {
            Freshness::Strong => "milvus strong",
            Freshness::Bounded => "milvus bounded",
        };
        let reader = Milvus::with_freshness(milvus.address().clone(), freshness);
        let collection = reader.collection(ModelId(model), None, Patience::Write)?.expect("created above");
        for (name, set, truth) in truth {
            for &ef in efs {
                let search = |q: &[f32]| -> Result<Vec<Hit>, AnnError> {
                    let found = collection.search(&[q], 10, ef, "", &[])?;
                    Ok(found[0].keys.iter().zip(&found[0].scores).filter_map(|(k, s)| ids.get(k).map(|id| Hit::new(*id, *s))).collect())
                };
                let run = latency(system, name, ef, set, truth, &search)?;
                progress(&format!("{system} {name} queries, ef {ef}: recall@10 {:.4}, p50 {:.2} ms, p99 {:.2} ms, {:.0} q/s at {CLIENTS} clients", run.recall_at_10, run.p50_ms, run.p99_ms, run.qps_8_clients));
                runs.push(run);
            }
        }
    }
    let mirror = mirror(&collection, ModelId(model), data.vectors.len(), progress)?;
    Ok(MilvusReport { ingest_rows_per_s, index_wait_s, runs, mirror })
}

/// Mirrors `collection`'s records into a new library, as a front end does when it starts, then
/// builds its keyword index and queries it.
fn mirror(collection: &super::Collection, model: ModelId, n: usize, progress: &mut dyn FnMut(&str)) -> Result<MirrorRun, AnnError> {
    let dir = tempfile::tempdir().map_err(|source| AnnError::Io { path: std::env::temp_dir(), source })?;
    let store = crate::store::Store::open(dir.path(), crate::store::OpenMode::ReadWrite)?;
    let started = Instant::now();
    let summary = super::pull(&store, collection, model, super::Depth::Records, &mut |_, _| {})?;
    let records_per_s = summary.copied as f64 / started.elapsed().as_secs_f64();
    let keyword_error = |e: crate::keywords::KeywordError| AnnError::Graph { path: dir.path().to_path_buf(), message: e.to_string() };
    let started = Instant::now();
    let keywords = crate::keywords::Keywords::open(&store).map_err(keyword_error)?;
    let keyword_index_s = started.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for i in (1..=n).step_by((n / 200).max(1)) {
        let started = Instant::now();
        keywords.search(&i.to_string(), crate::keywords::Scope::All, 10).map_err(keyword_error)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let run = MirrorRun { records_per_s, keyword_index_s, keyword_p50_ms: times.get(times.len() / 2).copied().unwrap_or(0.0) };
    progress(&format!("front end mirror: {} records at {:.0}/s, keyword index built in {:.1}s, keyword query p50 {:.2} ms", summary.copied, run.records_per_s, run.keyword_index_s, run.keyword_p50_ms));
    Ok(run)
}
