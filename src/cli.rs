//! Command-line interface definition (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clipsight_indexer::clip::Device;

/// Self-hosted cross-modal image/text search with CLIP.
#[derive(Debug, Parser)]
#[command(name = "clipsight", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Library directory (RocksDB, thumbnails, indexes).
    #[arg(long, global = true, env = "CLIPSIGHT_DATA", default_value = "clipsight-data")]
    pub data: PathBuf,
    /// Model directory in Immich's layout, or the name of a pulled model.
    #[arg(long, global = true, env = "CLIPSIGHT_MODEL")]
    pub model: Option<String>,
    /// Inference device: auto, cpu or cuda.
    #[arg(long, global = true, default_value = "auto")]
    pub device: Device,
    /// ONNX Runtime threads per operator (0 = one per core).
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The language queries and labels are written in, as a BCP-47 tag (`zh-CN`, `es`) or a
    /// FLORES-200 code (`zho_Hans`): written before the text for models that read one
    /// (NLLB-CLIP), ignored by the others. An unknown tag is taken as English, with a warning.
    #[arg(long, global = true, env = "CLIPSIGHT_LANG")]
    pub lang: Option<String>,
    /// Where the vectors are searched: `local` (the library's own graph) or
    /// `milvus://HOST:PORT/COLLECTION` (a Milvus server, shared by many indexers and front ends;
    /// the library directory keeps this machine's records and progress).
    #[arg(long, global = true, env = "CLIPSIGHT_STORE", default_value = "local")]
    pub store: StoreArg,
}

/// `--store`: `local` or a Milvus address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreArg {
    /// The library's own indexes.
    Local,
    /// A Milvus collection.
    Milvus(clipsight::ann::milvus::MilvusAddress),
}

impl std::str::FromStr for StoreArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "local" {
            return Ok(Self::Local);
        }
        s.parse().map(Self::Milvus).map_err(|e| format!("{e} (or `local`)"))
    }
}

impl Global {
    /// `--lang` resolved (see [`clipsight_indexer::clip::Language::resolve`]); an unknown tag is
    /// English, and a warning says so.
    pub fn language(&self) -> Option<clipsight_indexer::clip::Language> {
        let tag = self.lang.as_deref()?;
        let resolved = clipsight_indexer::clip::Language::resolve(tag);
        if !resolved.known {
            tracing::warn!("unknown language {tag:?} (--lang / CLIPSIGHT_LANG): texts are taken as English ({})", resolved.language);
        }
        Some(resolved.language)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index (or re-scan) photo folders.
    Index(IndexArgs),
    /// Serve the library: REST API under /api and the web UI at /.
    Serve(ServeArgs),
    /// Verify the library: records, path index, embeddings, thumbnails and graph agree.
    Check,
    /// Find images matching a query: text terms (weighted, negated), images and filters, e.g.
    /// `"red car" -night 2:sunset +img:42 +file:./pool.jpg folder:trips after:2019-01-01 camera:canon type:png`.
    Search {
        /// The query.
        query: String,
        /// Number of results.
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// Results to skip (pagination).
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Drop results scoring below this cosine.
        #[arg(long)]
        min_score: Option<f32>,
        /// Scan every embedding instead of using the HNSW graph.
        #[arg(long)]
        exact: bool,
        /// Rankings to use: vector (CLIP), keyword (file names, folders, EXIF, automatic tags) or hybrid (CLIP fused with file names, folders, EXIF).
        #[arg(long, value_enum, default_value_t = SearchMode::Hybrid)]
        mode: SearchMode,
        /// Only the results relevant to the query (its own cutoff; see the README's Relevance).
        #[arg(long)]
        relevant_only: bool,
        /// Order of the relevant results: by score, or by capture date (newest first; see
        /// --oldest-first). The less relevant rest follows by score.
        #[arg(long, value_enum, default_value_t = SortBy::Score)]
        sort: SortBy,
        /// With --sort date: oldest first.
        #[arg(long, requires = "sort")]
        oldest_first: bool,
    },
    /// Find images similar to an image file.
    Similar {
        /// The image.
        path: PathBuf,
        /// Number of results.
        #[arg(short, default_value_t = 10)]
        k: usize,
    },
    /// Zero-shot classification of an image over labels (softmax of scaled cosines).
    Classify {
        /// The image.
        image: PathBuf,
        /// Comma-separated labels, e.g. "a dog,a cat,a bird".
        #[arg(long, required = true)]
        labels: String,
    },
    /// Print embeddings of images or texts.
    Embed {
        /// Image files: `--image a.jpg b.jpg`, a shell glob (`--image photos/*.jpg`) or repeated.
        #[arg(long = "image", num_args = 1..)]
        images: Vec<PathBuf>,
        /// Texts: `--text "a dog" "a cat"` or repeated.
        #[arg(long = "text", num_args = 1..)]
        texts: Vec<String>,
    },
    /// Cosine similarity matrix of images × texts and the InfoNCE loss of the pairs in order.
    Matrix {
        /// Image files (rows): several after one `--image`, a shell glob, or repeated.
        #[arg(long = "image", required = true, num_args = 1..)]
        images: Vec<PathBuf>,
        /// Texts (columns): several after one `--text`, or repeated.
        #[arg(long = "text", required = true, num_args = 1..)]
        texts: Vec<String>,
    },
    /// Retrieval quality on a labelled folder (manifest.json): recall@k and zero-shot accuracy.
    Eval {
        /// Folder with manifest.json and its images.
        dir: PathBuf,
    },
    /// Library statistics.
    Stats,
    /// Model management.
    #[command(subcommand)]
    Model(ModelCommand),
    /// People who sign in to the web UI (stored in DATA/auth.json as Argon2id hashes).
    #[command(subcommand)]
    User(UserCommand),
    /// Bearer tokens for API clients (stored in DATA/auth.json as SHA-256 digests).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Caption corpora for image→text retrieval.
    #[command(subcommand)]
    Texts(TextsCommand),
    /// Copy the library's vectors to another store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The best captions (from added corpora) and tags (built-in vocabulary) for an image.
    Describe {
        /// An image file, or the id of an indexed image.
        image: String,
        /// Number of captions and tags.
        #[arg(short, default_value_t = 5)]
        k: usize,
    },
    /// Groups of near-duplicate images.
    Duplicates {
        /// Minimum cosine similarity within a group.
        #[arg(long, default_value_t = 0.95)]
        threshold: f32,
    },
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum TextsCommand {
    /// Embed a text file (one caption per line) into the library; its captions are in --lang's
    /// language for models that read one (NLLB-CLIP).
    Add {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// HNSW and the cold-start sketch vs exact scan on synthetic CLIP-like vectors: build
    /// time, memory, QPS, recall@10.
    Ann {
        /// Indexed vectors.
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Dimensions.
        #[arg(long, default_value_t = 512)]
        dim: usize,
        /// Latent dimensions of the synthetic data (higher: harder to search).
        #[arg(long, default_value_t = clipsight::ann::bench::LATENT)]
        latent: usize,
        /// Index unclustered data instead, a cone with a power-law spectrum of this exponent
        /// (the hard case: 0.5 or 1).
        #[arg(long)]
        power_law: Option<f32>,
        /// Queries per set (image-like and text-like).
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// ef values to measure.
        #[arg(long, value_delimiter = ',', default_value = "32,64,128,256,512")]
        ef: Vec<usize>,
        /// Sketch candidates re-ranked exactly, per measurement (the count searches use at this
        /// size is always measured too).
        #[arg(long, value_delimiter = ',', default_value = "400,1600,6400")]
        sketch: Vec<usize>,
        /// No graph build: measure the sketch (and Milvus, with --milvus) only.
        #[arg(long)]
        no_graph: bool,
        /// Links per node (default: the library's).
        #[arg(long, default_value_t = clipsight::ann::AnnParams::default().m)]
        m: usize,
        /// Build-time ef (default: the library's).
        #[arg(long, default_value_t = clipsight::ann::AnnParams::default().ef_construction)]
        ef_construction: usize,
        /// Also load the data into this Milvus server (`milvus://HOST:PORT/COLLECTION`) and
        /// compare it with the graph: ingest rows/s, recall@10, p50/p99 latency, queries/s at
        /// eight clients.
        #[arg(long, value_name = "ADDRESS")]
        milvus: Option<clipsight::ann::milvus::MilvusAddress>,
    },
    /// Indexing throughput: model-only floor vs end to end vs a Python/PIL peer, on generated
    /// 12-megapixel photos, with the time per stage and peak memory. Uses --model.
    Index {
        /// Photo folder to use, generated there if missing (default: a temporary folder).
        #[arg(long)]
        photos: Option<std::path::PathBuf>,
        /// 4000×3000 JPEGs to generate (plus 4 two-megapixel JPEGs and 4 PNGs).
        #[arg(long, default_value_t = 40)]
        large: usize,
        /// Encoder batch sizes to try for the model-only floor.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        batch: Vec<usize>,
        /// Skip the Python peer pipeline.
        #[arg(long)]
        no_peer: bool,
        /// 4000×3000 pictures per format (JPEG, HEIC, AVIF) for the per-format rows; 0 skips them.
        #[arg(long, default_value_t = 4)]
        per_format: usize,
        /// Minutes of 1080p H.264 video for the video row; 0 skips it.
        #[arg(long, default_value_t = 2.0)]
        video_minutes: f64,
    },
    /// The keyword index's analyzer (jieba-rs segmentation, for CJK names) against tantivy's
    /// default tokenizer: documents/s, index bytes, query latency, CJK word recall.
    Keywords {
        /// Synthetic names to index.
        #[arg(long, default_value_t = 100_000)]
        n: usize,
    },
    /// Query latency: text encoder alone vs search in process, over REST (distinct and repeated
    /// queries) and per CLI process, plus REST throughput. Uses --model.
    Query {
        /// Stored vectors (synthetic, CLIP-like).
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Queries per latency figure.
        #[arg(long, default_value_t = 100)]
        samples: usize,
        /// Concurrent clients of the throughput run.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seconds of the throughput run.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Where the synthetic library is kept between runs.
        #[arg(long)]
        work: Option<std::path::PathBuf>,
        /// Drop the page cache before the server starts (a cold start: library and model read
        /// from disk; needs root).
        #[arg(long)]
        cold: bool,
        /// With --cold: the server reads its disk at most this many MB/s (a cgroup's block-I/O
        /// throttle; needs root), as a small server's disk would where the bench machine's is
        /// faster.
        #[arg(long)]
        disk_mbps: Option<u64>,
        /// With --disk-mbps: at most this many read operations per second too.
        #[arg(long, requires = "disk_mbps")]
        disk_iops: Option<u64>,
        /// More models whose text encoders are timed beside --model's, one query at a time, in
        /// the same run (a family each: CLIP, M-CLIP, NLLB-CLIP, SigLIP); comma-separated.
        #[arg(long, value_delimiter = ',')]
        text_models: Vec<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Folders to index (default: the library's roots).
    pub roots: Vec<PathBuf>,
    /// Re-embed every file, changed or not.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub tuning: IndexTuning,
}

/// How indexing runs (shared by `index` and `serve`).
#[derive(Debug, Args)]
pub struct IndexTuning {
    /// Include hidden files and folders.
    #[arg(long)]
    pub hidden: bool,
    /// Images per encoder batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Automatic-tag vocabulary, one tag per line (default: the built-in everyday tags).
    #[arg(long)]
    pub tags: Option<PathBuf>,
    /// Videos: at most this many seconds between two embedded moments (scene changes add more).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub video_gap: f64,
    /// Videos: at most this many moments per video (a longer video is sampled more sparsely).
    #[arg(long, default_value_t = 240, value_name = "N")]
    pub video_max_moments: usize,
    /// Give up on a video whose reading takes longer than this, and report it.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub file_budget: f64,
    /// A RAW beside its same-named JPEG/HEIC twin, and a Live Photo's still beside its MOV:
    /// one item listing both files (the still is embedded and shown), or an item each.
    #[arg(long, value_enum, default_value_t = PairsArg::Together)]
    pub pairs: PairsArg,
    /// Index only part I of N of the files (0-based, by a hash of their path), so N indexers
    /// over one big folder share the work of one `--store milvus://…` collection.
    #[arg(long, value_name = "I/N", default_value = "0/1")]
    pub shard: clipsight::index::Shard,
}

/// `--pairs` (the indexer's [`clipsight_indexer::pairs::Pairing`], for clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PairsArg {
    /// One item listing both files.
    Together,
    /// An item per file.
    Separate,
}

impl From<PairsArg> for clipsight_indexer::pairs::Pairing {
    fn from(pairs: PairsArg) -> Self {
        match pairs {
            PairsArg::Together => Self::Together,
            PairsArg::Separate => Self::Separate,
        }
    }
}

/// `clipsight serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Beyond loopback the server needs a user or a token (or --public).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Folders to index at start and keep indexing as files change.
    #[arg(long, num_args = 1..)]
    pub watch: Vec<PathBuf>,
    /// A read-write bearer token for API clients (in addition to `clipsight token add`'s). With
    /// any user or token, every route but /api/health needs credentials.
    #[arg(long, env = "CLIPSIGHT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding a read-write bearer token (first line), as secrets managers write them.
    #[arg(long, env = "CLIPSIGHT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Let anyone who reaches the port search and view the library without signing in (writes
    /// still need credentials). Without it, a server beyond loopback needs a user or a token.
    #[arg(long)]
    pub public: bool,
    /// How long a web sign-in lasts, in hours.
    #[arg(long, default_value_t = 168)]
    pub session_hours: u64,
    /// The first lockout after repeated failed sign-ins from one address, in seconds (it doubles
    /// with every further failure, up to an hour).
    #[arg(long, default_value_t = 30)]
    pub lockout_seconds: u64,
    /// Largest accepted upload, in MB.
    #[arg(long, default_value_t = 20)]
    pub upload_limit_mb: usize,
    /// HTTP worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    #[command(flatten)]
    pub tuning: IndexTuning,
}

/// What a user or token may do (the library's [`clipsight::auth::Role`], for clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Search, browse and download.
    Read,
    /// Also start indexing.
    Write,
}

impl From<RoleArg> for clipsight::auth::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Read => Self::Read,
            RoleArg::Write => Self::Write,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user, or set an existing user's passphrase and role. The passphrase is read from
    /// the terminal (twice, not echoed) or from the first line of standard input.
    Add {
        /// The sign-in name.
        name: String,
        /// What the user may do.
        #[arg(long, value_enum, default_value_t = RoleArg::Write)]
        role: RoleArg,
    },
    /// Remove a user (their sessions end).
    Remove {
        /// The sign-in name.
        name: String,
    },
    /// List users and tokens (names and roles; no secrets).
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret once (it is stored only as a digest).
    Add {
        /// What the token is for, e.g. `backup-script`.
        name: String,
        /// What the token may do.
        #[arg(long, value_enum, default_value_t = RoleArg::Read)]
        role: RoleArg,
    },
    /// Remove a token (it stops working at once, also on a running server).
    Remove {
        /// The token's name.
        name: String,
    },
    /// List users and tokens (names and roles; no secrets).
    List,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Describe a model directory: config, inputs, id.
    Info {
        /// Model directory (default: --model).
        dir: Option<String>,
    },
    /// Download an Immich model from Hugging Face (HF_ENDPOINT). Every family Immich publishes
    /// runs: CLIP (ViT-B-32__openai, ViT-L-14__openai, …), M-CLIP (XLM-Roberta-Large-Vit-B-32,
    /// LABSE-Vit-L-14, …), NLLB-CLIP (nllb-clip-base-siglip__v1, …; give queries a --lang) and
    /// SigLIP/SigLIP2 (ViT-B-16-SigLIP2__webli, …).
    Pull {
        /// Model name (immich-app/NAME) or owner/repository.
        name: String,
        /// Target directory (default: the model cache).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Write an int8 copy of --model (dynamic quantization of the MatMuls with ONNX Runtime's
    /// tooling; needs Python with onnxruntime) and report its speed-up and cosine against fp32.
    Quantize {
        /// Where to write the quantized model.
        out: PathBuf,
        /// A labelled folder (manifest.json, as for `clipsight eval`): also report retrieval
        /// recall and zero-shot accuracy of both models on it.
        #[arg(long)]
        eval: Option<PathBuf>,
    },
}

/// How relevant results are ordered (`--sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// Best first.
    Score,
    /// By capture date.
    Date,
}

/// Which rankings a search uses (the library's [`clipsight::search::Mode`], for clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchMode {
    /// Cosine similarity of CLIP embeddings only.
    Vector,
    /// BM25 over file names, folders, EXIF and automatic tags only.
    Keyword,
    /// Both, fused by reciprocal rank fusion.
    Hybrid,
}

impl From<SearchMode> for clipsight::search::Mode {
    fn from(mode: SearchMode) -> Self {
        match mode {
            SearchMode::Vector => Self::Vector,
            SearchMode::Keyword => Self::Keyword,
            SearchMode::Hybrid => Self::Hybrid,
        }
    }
}

/// `clipsight store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copies the library's vectors, with the fields filters read, into a Milvus collection:
    /// only what differs from the last push is sent (so an interrupted push resumes), rows of
    /// removed images are deleted there, and the copy is checked by count and by reading back
    /// a sample of vectors. Exit status 1 when the check fails.
    Push {
        /// `milvus://HOST:PORT/COLLECTION`.
        to: clipsight::ann::milvus::MilvusAddress,
        /// Vectors read back and compared.
        #[arg(long, default_value_t = 64)]
        sample: usize,
    },
    /// Copies a Milvus collection (the rows of --model's vectors, from every indexer) into the
    /// library at --data, an embedded library of its own: records, vectors and thumbnails, with
    /// row keys as image ids (those front ends use). Only rows that changed since the last pull
    /// are read (so an interrupted pull resumes), images whose rows are gone are removed, and
    /// the copy is checked by count and by comparing a sample of vectors. Use a new --data
    /// directory: a library with folders of its own is refused.
    Pull {
        /// `milvus://HOST:PORT/COLLECTION`.
        from: clipsight::ann::milvus::MilvusAddress,
        /// Vectors read back and compared.
        #[arg(long, default_value_t = 64)]
        sample: usize,
    },
}
