//! What the library's operations return, as both front ends show it: the REST API's JSON
//! bodies (with their OpenAPI schemas) and the CLI's `--json` output are the same views.

use serde::Serialize;
use utoipa::ToSchema;

use clipsight_indexer::annotations::Annotations;

use crate::ann::MomentScore;
use crate::store::{FileRecord, ImageId, VideoRecord};

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A still picture.
    Photo,
    /// A video, searched by its moments.
    Video,
}

impl From<clipsight_indexer::format::MediaKind> for Kind {
    fn from(kind: clipsight_indexer::format::MediaKind) -> Self {
        match kind {
            clipsight_indexer::format::MediaKind::Photo => Kind::Photo,
            clipsight_indexer::format::MediaKind::Video => Kind::Video,
        }
    }
}

/// A moment of a video that matches the query.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct MomentView {
    /// Seconds from the start.
    pub moment_s: f64,
    /// Cosine similarity with the query.
    pub score: f32,
}

/// Why a file is listed with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompanionRole {
    /// The camera's RAW file of the same shot (the item is its JPEG or HEIF twin).
    Raw,
    /// A Live Photo's motion: a short video around the still.
    Motion,
}

impl From<clipsight_indexer::pairs::CompanionRole> for CompanionRole {
    fn from(role: clipsight_indexer::pairs::CompanionRole) -> Self {
        match role {
            clipsight_indexer::pairs::CompanionRole::Raw => CompanionRole::Raw,
            clipsight_indexer::pairs::CompanionRole::Motion => CompanionRole::Motion,
        }
    }
}

/// A file of the same picture listed with an item (not an item of its own, never embedded).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompanionView {
    /// File name.
    pub name: String,
    /// Full path on the server (for display; never accepted back).
    pub path: String,
    /// Container format (`cr2`, `dng`, `mov`, ...).
    pub format: String,
    /// `raw` or `motion`.
    pub role: CompanionRole,
    /// Size in bytes.
    pub size: u64,
    /// URL of the file (range requests supported, so a browser can play a Live Photo's motion).
    pub file: String,
}

/// The views of an item's companions, in the order they are stored.
fn companion_views(id: ImageId, record: &FileRecord) -> Vec<CompanionView> {
    record
        .companions
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let path = c.path();
            CompanionView {
                name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                path: path.display().to_string(),
                format: c.format.clone(),
                role: c.role().into(),
                size: c.size,
                file: format!("/api/images/{}/companions/{n}/file", id.0),
            }
        })
        .collect()
}

/// Milliseconds as seconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// One ranked image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HitView {
    /// Image id.
    pub id: u64,
    /// Cosine similarity with the query in vector and hybrid mode (0 for keyword-only matches
    /// without a query vector); the BM25 score in keyword mode.
    pub score: f32,
    /// Whether the image is relevant to the query: its score is at or above the query's own
    /// cutoff (see the README's *Relevance*). Always true for a query without text or images
    /// (filters alone) and in keyword mode.
    pub relevant: bool,
    /// File name.
    pub name: String,
    /// Full path on the server (for display; never accepted back).
    pub path: String,
    /// Width in pixels, EXIF orientation applied.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Container format (`jpeg`, `png`, ...).
    pub format: String,
    /// EXIF date taken, `YYYY-MM-DD HH:MM:SS`.
    pub date_taken: Option<String>,
    /// URL of the thumbnail.
    pub thumbnail: String,
    /// `photo` or `video`.
    pub kind: Kind,
    /// A video's length in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// A video's best moment for the query, seconds from the start (its first moment when the
    /// query has no vector: filters alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moment_s: Option<f64>,
    /// A video's moments that match, best first (within 0.03 of the best, at most 8); empty
    /// when the query has no vector, or every frame of the video was blank. Absent for photos.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moments: Option<Vec<MomentView>>,
    /// A video's frame at `moment_s`, as a JPEG.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
    /// Files of the same picture listed with this one (its RAW, a Live Photo's motion); absent
    /// when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub companions: Vec<CompanionView>,
}

impl HitView {
    /// The view of `record` ranked with `score`; a video's needs [`HitView::with_video`] too.
    pub fn new(id: ImageId, score: f32, record: &FileRecord) -> Self {
        let path = record.path();
        Self {
            kind: record.kind().into(),
            duration_s: None,
            moment_s: None,
            moments: None,
            frame: None,
            id: id.0,
            score,
            relevant: true,
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            path: record.display_path(),
            width: record.width,
            height: record.height,
            format: record.format.clone(),
            date_taken: record.exif.date_taken.map(|d| d.to_string()),
            thumbnail: format!("/api/images/{}/thumbnail", id.0),
            companions: companion_views(id, record),
        }
    }

    /// This view with its relevance to the query.
    pub fn relevant(self, relevant: bool) -> Self {
        Self { relevant, ..self }
    }

    /// Adds a video's facts and the moments that matched (best first; none without a query
    /// vector, and then its first moment stands for it).
    pub fn with_video(mut self, video: &VideoRecord, moments: &[MomentScore]) -> Self {
        let best = moments.first().map(|m| m.at_ms).or_else(|| video.moments_ms.first().copied()).unwrap_or(0);
        self.duration_s = Some(seconds(video.duration_ms));
        self.moment_s = Some(seconds(best as u64));
        self.moments = Some(moments.iter().map(|m| MomentView { moment_s: seconds(m.at_ms as u64), score: m.score }).collect());
        self.frame = Some(format!("/api/images/{}/preview?t={}", self.id, seconds(best as u64)));
        self
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Best first (ties by ascending id); with `sort=date`, the relevant ones by date first.
    pub results: Vec<HitView>,
    /// How many results are relevant to the query, over all pages (absent for a query without
    /// text or images, and in keyword mode). Counted up to 1,000 (10,000 with `sort=date`, or
    /// the page's end when further); `relevant_more` says when there are more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevant_count: Option<usize>,
    /// Whether more results are relevant than `relevant_count` counted.
    pub relevant_more: bool,
    /// Server time for the query.
    pub took_ms: f64,
    /// Images in the library.
    pub total_images: usize,
    /// Whether an indexing job is running (results may be incomplete).
    pub indexing: bool,
    /// The FLORES-200 code the query's texts were written after (`zho_Hans`), for a model that
    /// reads one (NLLB-CLIP) when a language was given; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// Everything known about one image.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    /// Image id.
    pub id: u64,
    /// File name.
    pub name: String,
    /// Full path on the server.
    pub path: String,
    /// The folder holding it.
    pub folder: String,
    /// Size in bytes.
    pub size: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Container format.
    pub format: String,
    /// EXIF date taken.
    pub date_taken: Option<String>,
    /// Camera make and model.
    pub camera: Option<String>,
    /// Lens model.
    pub lens: Option<String>,
    /// Latitude and longitude in degrees.
    #[schema(value_type = Option<Vec<f64>>, min_items = 2, max_items = 2)]
    pub gps: Option<(f64, f64)>,
    /// User and automatic tags.
    pub tags: Vec<String>,
    /// The title people gave it (XMP `dc:title`, IPTC Object Name; a sidecar's wins).
    pub title: Option<String>,
    /// The description people wrote (XMP `dc:description`, IPTC Caption).
    pub description: Option<String>,
    /// The keywords people gave it (XMP `dc:subject` and hierarchical keywords, IPTC Keywords, from
    /// the file and its sidecars): searched as keywords.
    pub keywords: Vec<String>,
    /// When it was indexed, seconds since the Unix epoch.
    pub indexed_at: u64,
    /// URL of the thumbnail.
    pub thumbnail: String,
    /// URL of the original file.
    pub file: String,
    /// `photo` or `video`.
    pub kind: Kind,
    /// A video's length in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// A video's embedded moments, seconds from the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moments_s: Option<Vec<f64>>,
    /// Files of the same picture listed with this one: a RAW beside its JPEG twin, a Live
    /// Photo's motion video (empty when none).
    pub companions: Vec<CompanionView>,
}

impl ImageView {
    /// The view of `record` with its tags, what people wrote about it (and a video's facts).
    pub fn new(id: ImageId, record: &FileRecord, tags: Vec<String>, annotations: Annotations, video: Option<&VideoRecord>) -> Self {
        let hit = HitView::new(id, 0.0, record);
        let path = record.path();
        let exif = &record.exif;
        let camera = camera_name(exif);
        Self {
            id: id.0,
            name: hit.name,
            folder: path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            path: hit.path,
            size: record.size,
            width: record.width,
            height: record.height,
            format: hit.format,
            date_taken: hit.date_taken,
            camera,
            lens: exif.lens.clone(),
            gps: exif.gps,
            tags,
            title: annotations.title,
            description: annotations.description,
            keywords: annotations.keywords,
            indexed_at: record.indexed_at,
            thumbnail: hit.thumbnail,
            file: format!("/api/images/{}/file", id.0),
            kind: hit.kind,
            duration_s: video.map(|v| seconds(v.duration_ms)),
            moments_s: video.map(|v| v.moments_ms.iter().map(|ms| seconds(*ms as u64)).collect()),
            companions: hit.companions,
        }
    }
}

/// The camera as people name it: make and model, without repeating a make the model already
/// starts with ("Canon Canon EOS 5D" → "Canon EOS 5D").
pub fn camera_name(exif: &crate::store::ExifMeta) -> Option<String> {
    match (&exif.make, &exif.model) {
        (Some(make), Some(model)) if model.starts_with(make.as_str()) => Some(model.clone()),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (make, model) => make.clone().or_else(|| model.clone()),
    }
}

/// A caption or tag with its score.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoredText {
    /// The caption or tag.
    pub text: String,
    /// Cosine (captions) or probability over the vocabulary (tags).
    pub score: f32,
}

impl From<crate::describe::Scored> for ScoredText {
    fn from(s: crate::describe::Scored) -> Self {
        Self { text: s.text, score: s.score }
    }
}

/// Image → text: the closest captions of the library's corpus and the likeliest tags.
#[derive(Debug, Serialize, ToSchema)]
pub struct DescribeResponse {
    /// Best captions first (empty without a caption corpus; add one with `clipsight texts add`).
    pub captions: Vec<ScoredText>,
    /// Likeliest tags first.
    pub tags: Vec<ScoredText>,
}

/// One label's probability.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelProbability {
    /// The label as given.
    pub label: String,
    /// The label's probability as the model scores it (see `scoring`): a softmax of the scaled
    /// cosines over all labels (they sum to 1), or the sigmoid of this label alone (independent:
    /// several labels, or none, may be likely).
    pub prob: f32,
}

/// Zero-shot classification result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyResponse {
    /// Every label, in the order given.
    pub labels: Vec<LabelProbability>,
    /// The most probable label.
    pub best: String,
    /// `softmax` (CLIP-trained models) or `sigmoid` (SigLIP-trained ones).
    #[schema(example = "softmax")]
    pub scoring: &'static str,
    /// The FLORES-200 code the labels were written after, for a model that reads one (NLLB-CLIP)
    /// when a language was given; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// Cosine similarities of images × texts.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatrixResponse {
    /// `similarity[i][j]` = cosine(image i, text j).
    pub similarity: Vec<Vec<f32>>,
    /// Symmetric InfoNCE of the pairs in order (row i ↔ column i), when the matrix is square.
    pub loss: Option<f32>,
}

/// Values the library's images have, for filter chips.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Facets {
    /// Folders relative to their root (every level), sorted.
    pub folders: Vec<String>,
    /// Camera names.
    pub cameras: Vec<String>,
    /// Formats.
    pub types: Vec<String>,
    /// Earliest EXIF date (`YYYY-MM-DD`).
    pub date_min: Option<String>,
    /// Latest EXIF date.
    pub date_max: Option<String>,
}

/// One model's embeddings in the library.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelStats {
    /// Model id (hex).
    pub id: String,
    /// Images embedded with it.
    pub embedded: usize,
    /// Images not (yet) embedded with it.
    pub missing: usize,
}

/// The library at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// Images in the library (photos and videos).
    pub images: usize,
    /// Of which videos.
    pub videos: usize,
    /// The id (hex) of the model this process answers with (`null` from `clipsight stats`,
    /// which reads the store without loading a model).
    pub model: Option<String>,
    /// Its embedding dimension (`null` when no model is loaded).
    pub dim: Option<usize>,
    /// The model the library was last indexed with (hex).
    pub active_model: Option<String>,
    /// Images without an embedding of `model`, or of `active_model` when no model is loaded.
    pub missing_embeddings: usize,
    /// Every model with embeddings in the library.
    pub models: Vec<ModelStats>,
    /// Indexed folders.
    pub roots: Vec<String>,
    /// Whether an indexing run stopped before its end (the next run resumes it).
    pub interrupted_run: bool,
    /// Whether an indexing job is queued or running.
    pub indexing: bool,
    /// The running job.
    pub job: Option<super::Job>,
    /// How vector queries are answered.
    pub graph: super::GraphState,
    /// Whether this process may index (false while another process owns the library).
    pub writable: bool,
}
