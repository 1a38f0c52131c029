//! The connection to a Milvus server: a private async runtime under a blocking interface, one
//! lazily (re)connected client, timeouts on every call and retries with backoff where a call
//! failed in transit (the server down, restarting, or still loading a collection).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clipsight_indexer::ModelId;
use milvus::v2 as sdk;
use milvus::v2::prelude::*;

use super::rows;
use super::MilvusAddress;
use crate::sync::lock;

type Result<T, E = MilvusError> = std::result::Result<T, E>;

/// A failed Milvus call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MilvusError {
    /// The server could not be reached, or kept failing in transit, for as long as the call was
    /// willing to wait.
    #[error("Milvus at {address} is unreachable ({reason}); tried for {waited:.0?}")]
    Unavailable {
        /// The server.
        address: String,
        /// The last failure.
        reason: String,
        /// How long the call retried.
        waited: Duration,
    },
    /// The server refused the call (a bad expression, a schema mismatch).
    #[error("Milvus at {address} refused to {what}: {reason}")]
    Refused {
        /// The server.
        address: String,
        /// The call.
        what: &'static str,
        /// The server's reason.
        reason: String,
    },
}

/// How long a call retries calls that fail in transit.
#[derive(Debug, Clone, Copy)]
pub enum Patience {
    /// A query: a person or a front end is waiting, so fail soon and clearly.
    Read,
    /// A write: an indexer can wait for the server to come back (`CLIPSIGHT_MILVUS_PATIENCE_S`,
    /// default ten minutes).
    Write,
}

impl Patience {
    fn limit(self) -> Duration {
        match self {
            Patience::Read => Duration::from_secs(3),
            Patience::Write => Duration::from_secs(std::env::var("CLIPSIGHT_MILVUS_PATIENCE_S").ok().and_then(|v| v.parse().ok()).unwrap_or(600)),
        }
    }
}

/// The longest one remote call may take before it counts as failed in transit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows read per call by [`Collection::stored`]: 32 thumbnails of up to 48 KB of base64 stay
/// well under gRPC's 4 MiB reply limit.
const STORED_CHUNK: usize = 32;
/// Rows read per call without their vectors and thumbnails (records of up to 16 KB of base64).
const RECORDS_CHUNK: usize = 192;
/// The most rows one query returns (Milvus's result window).
const SCAN_LIMIT: usize = 16_384;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How fresh a search's view of the collection is (`CLIPSIGHT_MILVUS_CONSISTENCY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Every row written before the search (the default): what a search after a push expects,
    /// at the price of waiting for the server's next time tick (measured: ~200 ms on 2.3.5).
    Strong,
    /// Rows written up to a few seconds before the search (Milvus's own default, its
    /// `gracefulTime`): as fast as the index.
    Bounded,
}

impl Freshness {
    /// `CLIPSIGHT_MILVUS_CONSISTENCY` (`strong` or `bounded`), strong when unset or unknown.
    pub fn from_env() -> Self {
        match std::env::var("CLIPSIGHT_MILVUS_CONSISTENCY").as_deref() {
            Ok("bounded") => Self::Bounded,
            _ => Self::Strong,
        }
    }

    fn level(self) -> ConsistencyLevel {
        match self {
            Self::Strong => ConsistencyLevel::Strong,
            Self::Bounded => ConsistencyLevel::Bounded,
        }
    }
}

/// A Milvus server and the base name of the library's collections.
pub struct Milvus {
    address: MilvusAddress,
    freshness: Freshness,
    runtime: tokio::runtime::Runtime,
    client: Mutex<Option<sdk::ClientV2>>,
    /// Collections known to exist, with their index, loaded.
    ready: Mutex<HashSet<String>>,
}

/// What went wrong in one attempt.
enum Failure {
    /// In transit: worth retrying.
    Transient(String),
    /// The collection is not loaded (a restarted server): load it, then retry.
    NotLoaded(String),
    /// Refused: retrying will not help.
    Refused(String),
}

fn classify(e: &sdk::error::Error) -> Failure {
    use sdk::error::Error as E;
    let text = e.to_string();
    match e {
        E::Grpc(status) => match status.code() {
            tonic::Code::InvalidArgument
            | tonic::Code::NotFound
            | tonic::Code::AlreadyExists
            | tonic::Code::PermissionDenied
            | tonic::Code::Unimplemented
            | tonic::Code::Unauthenticated
            | tonic::Code::OutOfRange
            | tonic::Code::ResourceExhausted => Failure::Refused(text),
            _ => Failure::Transient(text),
        },
        E::Timeout(_) | E::RetryExhausted { .. } | E::Cancelled(_) => Failure::Transient(text),
        E::Server(s) if s.reason().contains("not loaded") || s.reason().contains("not been loaded") => Failure::NotLoaded(text),
        E::Server(s) if ["not ready", "not healthy", "unavailable", "is not serviceable", "no available", "channel not", "stopping"].iter().any(|m| s.reason().to_lowercase().contains(m)) => Failure::Transient(text),
        _ => Failure::Refused(text),
    }
}

impl Milvus {
    /// A handle on the server at `address`, searching with the freshness of
    /// `CLIPSIGHT_MILVUS_CONSISTENCY`; nothing is sent until the first call.
    pub fn new(address: MilvusAddress) -> Arc<Self> {
        Self::with_freshness(address, Freshness::from_env())
    }

    /// A handle on the server at `address` whose searches see the collection as `freshness` says.
    pub fn with_freshness(address: MilvusAddress, freshness: Freshness) -> Arc<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("milvus").enable_all().build().expect("a tokio runtime starts");
        Arc::new(Self { address, freshness, runtime, client: Mutex::new(None), ready: Mutex::new(HashSet::new()) })
    }

    /// The server's address.
    pub fn address(&self) -> &MilvusAddress {
        &self.address
    }

    fn client(&self) -> Result<sdk::ClientV2, String> {
        if let Some(c) = lock(&self.client).as_ref() {
            return Ok(c.clone());
        }
        let config = sdk::ConnectConfig::new()
            .uri(format!("http://{}:{}", self.address.host, self.address.port))
            .connect_timeout(CONNECT_TIMEOUT)
            .rpc_timeout(CALL_TIMEOUT)
            .retry(sdk::RetryConfig::new().max_attempts(1));
        let client = self.runtime.block_on(async { tokio::time::timeout(CONNECT_TIMEOUT * 2, sdk::ClientV2::new(&config)).await });
        let client = match client {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("connecting timed out".into()),
        };
        *lock(&self.client) = Some(client.clone());
        Ok(client)
    }

    /// Runs `call` with the client, retrying failures in transit with exponential backoff
    /// (0.25 s doubling to 8 s) for as long as `patience` allows; a collection found unloaded
    /// is loaded and the call retried.
    pub(super) fn call<T, F, Fut>(&self, what: &'static str, collection: Option<&str>, patience: Patience, call: F) -> Result<T, MilvusError>
    where
        F: Fn(sdk::ClientV2) -> Fut,
        Fut: Future<Output = Result<T, sdk::error::Error>>,
    {
        let started = Instant::now();
        let limit = patience.limit();
        let mut delay = Duration::from_millis(250);
        loop {
            let failure = match self.client() {
                Err(reason) => Failure::Transient(reason),
                Ok(client) => {
                    // One attempt waits at most what is left of the call's patience.
                    let attempt = CALL_TIMEOUT.min(limit.saturating_sub(started.elapsed())).max(Duration::from_millis(500));
                    match self.runtime.block_on(async { tokio::time::timeout(attempt, call(client)).await }) {
                        Ok(Ok(value)) => return Ok(value),
                        Ok(Err(e)) => classify(&e),
                        Err(_) => Failure::Transient(format!("no answer within {attempt:?}")),
                    }
                }
            };
            let reason = match failure {
                Failure::Refused(reason) => return Err(MilvusError::Refused { address: self.address.to_string(), what, reason }),
                Failure::NotLoaded(reason) => {
                    if let Some(name) = collection {
                        lock(&self.ready).remove(name);
                        let _ = self.load(name, patience);
                    }
                    reason
                }
                Failure::Transient(reason) => {
                    // A fresh channel after a failure in transit: the server may have restarted.
                    *lock(&self.client) = None;
                    reason
                }
            };
            let waited = started.elapsed();
            if waited + delay > limit {
                return Err(MilvusError::Unavailable { address: self.address.to_string(), reason, waited });
            }
            if matches!(patience, Patience::Write) {
                tracing::warn!("Milvus at {}: {what} failed ({reason}); retrying in {delay:.2?}", self.address);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(8));
        }
    }

    fn load(&self, name: &str, patience: Patience) -> Result<()> {
        self.call("load a collection", None, patience, |c| {
            let request = sdk::request::collection::LoadCollectionRequest::builder().collection_name(name).build();
            async move { c.load_collection(request?).await }
        })
    }

    /// The collection of `model`'s vectors, loaded; created with its index when `create` gives
    /// the vectors' size, else `None` when there is none yet.
    pub fn collection(self: &Arc<Self>, model: ModelId, create: Option<usize>, patience: Patience) -> Result<Option<Collection>> {
        let name = format!("{}__{}", self.address.collection, model.to_hex());
        let mut created = false;
        if !lock(&self.ready).contains(&name) {
            let exists = self.call("look up a collection", None, patience, |c| {
                let request = sdk::request::collection::HasCollectionRequest::builder().collection_name(&name).build();
                async move { Ok(c.has_collection(request?).await?.exists()) }
            })?;
            if !exists {
                let Some(dim) = create else { return Ok(None) };
                self.call("create a collection", None, patience, |c| {
                    let request = sdk::request::collection::CreateCollectionRequest::builder().collection_name(&name).schema(rows::schema(dim)).build();
                    async move { c.create_collection(request?).await }
                })?;
                self.call("index a collection", None, patience, |c| {
                    let request = sdk::request::index::CreateIndexRequest::builder().collection_name(&name).index_param(rows::vector_index()).build();
                    async move { c.create_index(request?).await }
                })?;
                created = true;
            }
            self.load(&name, patience)?;
            lock(&self.ready).insert(name.clone());
        }
        Ok(Some(Collection { milvus: self.clone(), name, created }))
    }
}

/// The expression selecting the rows with these keys.
fn keys_filter(keys: &[u64]) -> String {
    format!("id in [{}]", keys.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
}

/// What [`Collection::stored`] reads of each row (with its key and stamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Record, vector and thumbnail: all a front end shows.
    Whole,
    /// The record alone.
    Record,
    /// The vector alone.
    Vector,
}

/// One model's collection.
#[derive(Clone)]
pub struct Collection {
    milvus: Arc<Milvus>,
    name: String,
    /// Whether this handle created the collection (anything recorded as sent to an earlier one
    /// of that name is gone).
    created: bool,
}

impl Collection {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server and collection, as a library records what it sent there (`HOST:PORT/NAME`):
    /// the same name on another server is another collection.
    pub fn place(&self) -> String {
        format!("{}:{}/{}", self.milvus.address.host, self.milvus.address.port, self.name)
    }

    /// Whether this handle created the collection just now.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Inserts or replaces `rows` (JSON objects of [`rows::schema`]'s fields).
    pub fn upsert(&self, rows: &[serde_json::Value]) -> Result<()> {
        self.milvus.call("store rows", Some(&self.name), Patience::Write, |c| {
            let insert = sdk::request::dml::InsertRequest::builder().collection_name(&self.name).rows(rows.to_vec()).build();
            async move { c.upsert(sdk::request::dml::UpsertRequest::builder().insert(insert?).build()?).await.map(|_| ()) }
        })
    }

    /// Deletes the rows with these keys written by library `origin` (absent ones, and those
    /// another library wrote since, are left).
    pub fn delete(&self, keys: &[u64], origin: &str) -> Result<()> {
        let filter = format!("{} and origin == \"{origin}\"", keys_filter(keys));
        self.milvus.call("delete rows", Some(&self.name), Patience::Write, |c| {
            let request = sdk::request::dml::DeleteRequest::builder().collection_name(&self.name).filter(filter.clone()).build();
            async move { c.delete(request?).await.map(|_| ()) }
        })
    }

    /// Rows passing `filter` (all rows when empty).
    pub fn count(&self, filter: &str) -> Result<usize> {
        let filter = if filter.is_empty() { "id >= 0" } else { filter };
        let rows = self.milvus.call("count rows", Some(&self.name), Patience::Read, |c| {
            let request = QueryRequest::builder().collection_name(&self.name).filter(filter).output_fields(["count(*)"]).consistency_level(self.milvus.freshness.level()).build();
            async move { c.query(request?).await }
        })?;
        Ok(rows.results().get_output_field("count(*)").and_then(rows::first_int).unwrap_or(0) as usize)
    }

    /// Waits until the server has sealed every row written so far and indexed them all (a
    /// bench's clean start), checking every second, at most `limit`.
    pub fn wait_indexed(&self, limit: Duration) -> Result<()> {
        self.milvus.call("flush", Some(&self.name), Patience::Write, |c| {
            let request = sdk::request::utility::FlushRequest::builder().collection_names([self.name.clone()]).build();
            async move { c.flush(request?).await.map(|_| ()) }
        })?;
        let started = Instant::now();
        loop {
            let (indexed, total) = self.milvus.call("describe the index", Some(&self.name), Patience::Write, |c| {
                let request = sdk::request::index::DescribeIndexRequest::builder().collection_name(&self.name).field_name(rows::VECTOR).build();
                async move {
                    let answer = c.describe_index(request?).await?;
                    Ok(answer.indexes().first().map_or((0, 0), |i| (i.get_indexed_rows(), i.get_total_rows())))
                }
            })?;
            if (total > 0 && indexed >= total) || started.elapsed() > limit {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// The rows with these keys, the `part` of each asked for (absent rows are left out), read
    /// [`STORED_CHUNK`] at a time (with thumbnails a reply of a hundred rows would pass gRPC's
    /// 4 MiB limit), or [`RECORDS_CHUNK`] at a time without. Each chunk is read at bounded
    /// staleness (a few milliseconds instead of a strong read's wait for the server's next
    /// tick), and the keys it lacks — rows written in the last seconds — once more strongly;
    /// with `strong`, every chunk strongly (rows as of now).
    pub fn stored(&self, keys: &[u64], part: Part, strong: bool, patience: Patience) -> Result<Vec<rows::Stored>> {
        let (fields, chunk): (&[&str], usize) = match part {
            Part::Whole => (&["id", rows::VECTOR, "record", "thumb", "stamp"], STORED_CHUNK),
            Part::Record => (&["id", "record", "stamp"], RECORDS_CHUNK),
            Part::Vector => (&["id", rows::VECTOR, "stamp"], RECORDS_CHUNK),
        };
        let level = if strong { ConsistencyLevel::Strong } else { ConsistencyLevel::Bounded };
        let mut all = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(chunk) {
            let found = self.stored_chunk(chunk, fields, level, patience)?;
            let missing: Vec<u64> = chunk.iter().filter(|k| !found.iter().any(|row| row.key == **k)).copied().collect();
            all.extend(found);
            if !missing.is_empty() && !strong {
                all.extend(self.stored_chunk(&missing, fields, ConsistencyLevel::Strong, patience)?);
            }
        }
        Ok(all)
    }

    fn stored_chunk(&self, keys: &[u64], fields: &[&str], level: ConsistencyLevel, patience: Patience) -> Result<Vec<rows::Stored>> {
        let filter = keys_filter(keys);
        let answer = self.milvus.call("read rows", Some(&self.name), patience, |c| {
            let request = QueryRequest::builder().collection_name(&self.name).filter(filter.clone()).output_fields(fields.iter().map(|f| f.to_string()).collect::<Vec<_>>()).consistency_level(level).build();
            async move { c.query(request?).await }
        })?;
        Ok(rows::Stored::all_of(answer.results()))
    }

    /// Every row's key and stamp as of now (read strongly), by ranges of keys (a query returns
    /// at most [`SCAN_LIMIT`] rows): ranges sized for half that from the row count, and a range
    /// that comes back full split in two and read again.
    pub fn stamps(&self, patience: Patience) -> Result<Vec<(u64, [u8; 16])>> {
        let total = self.count("")?;
        let top = 1u64 << rows::KEY_BITS;
        let parts = (total / (SCAN_LIMIT / 2) + 1) as u64;
        let span = top / parts + 1;
        // (low, high): keys in low..high; `None` for the last range, open above (any key).
        let mut ranges: Vec<(u64, Option<u64>)> = (0..parts).map(|i| (i * span, ((i + 1) * span < top).then_some((i + 1) * span))).collect();
        let mut all = Vec::with_capacity(total);
        while let Some((low, high)) = ranges.pop() {
            let filter = match high {
                Some(high) => format!("id >= {low} and id < {high}"),
                None => format!("id >= {low}"),
            };
            let answer = self.milvus.call("list rows", Some(&self.name), patience, |c| {
                let request = QueryRequest::builder()
                    .collection_name(&self.name)
                    .filter(filter.clone())
                    .output_fields(["id", "stamp"])
                    .limit(SCAN_LIMIT as i64)
                    .consistency_level(ConsistencyLevel::Strong)
                    .build();
                async move { c.query(request?).await }
            })?;
            let listed = rows::Stored::all_of(answer.results());
            let middle = low + (high.unwrap_or(i64::MAX as u64) - low) / 2;
            if listed.len() >= SCAN_LIMIT && middle > low {
                ranges.push((low, Some(middle)));
                ranges.push((middle, high));
                continue;
            }
            all.extend(listed.into_iter().map(|row| (row.key, row.stamp)));
        }
        Ok(all)
    }

    /// For each query, the best `limit` rows passing `filter` (ties in the server's order): their
    /// keys, scores (inner products) and `fields`; `ef` is HNSW's candidate list (at least
    /// `limit`).
    pub fn search(&self, queries: &[&[f32]], limit: usize, ef: usize, filter: &str, fields: &[&str]) -> Result<Vec<rows::Found>> {
        let ef = ef.max(limit);
        let answer = self.milvus.call("search", Some(&self.name), Patience::Read, |c| {
            let mut request = SearchRequest::builder()
                .collection_name(&self.name)
                .vector_field(rows::VECTOR)
                .vectors(SearchVectors::Float(queries.iter().map(|q| q.to_vec()).collect()))
                .limit(limit as i64)
                .extra_params([("ef".to_string(), ef.to_string())].into_iter().collect())
                .output_fields(fields.iter().map(|f| f.to_string()).collect::<Vec<_>>())
                .consistency_level(self.milvus.freshness.level());
            if !filter.is_empty() {
                request = request.filter(filter);
            }
            let request = request.build();
            async move { c.search(request?).await }
        })?;
        Ok(answer.results().iter().map(rows::Found::of).collect())
    }
}
