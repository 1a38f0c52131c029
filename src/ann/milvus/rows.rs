//! A collection's row: an item's vector with the fields its filters read and what a front end
//! needs to show and find it without the indexer's disk (its record, annotations, automatic tags
//! and thumbnail), made from the local library; and what a search or a read gives back.

use milvus::v2::prelude::*;
use serde_json::json;

use crate::store::{AnnotationRecord, FileRecord};

/// The vector field.
pub const VECTOR: &str = "vector";
/// Folder runs kept per row: every run of up to [`FOLDER_RUN`] consecutive folders of the path.
const MAX_FOLDERS: usize = 256;
/// The longest `folder:` fragment, in folders, that the server itself filters on; longer ones
/// are checked on the returned path.
pub const FOLDER_RUN: usize = 4;
/// The longest path kept (bytes); a longer one is cut, and its folder filter checked on the runs.
const MAX_PATH: usize = 4096;
/// The longest record kept (base64 of its encoding); a [`RowRecord`] longer than this keeps its
/// file record alone, and a file record longer still (hundreds of companion files, a camera make
/// of thousands of bytes) is left out: the row cannot be shown by a front end that did not index it.
const MAX_RECORD: usize = 16_384;
/// The longest thumbnail kept (base64 of its JPEG, Milvus's largest VARCHAR); the thumbnails
/// clipsight makes (256 px) take 10–40 KB.
const MAX_THUMB: usize = 65_535;

/// The collection's fields.
pub fn schema(dim: usize) -> CollectionSchema {
    let varchar = |name: &str, len: u32| FieldSchema::new().name(name).data_type(DataType::VarChar).max_length(len);
    let array = |name: &str, capacity: u32, len: u32| FieldSchema::new().name(name).data_type(DataType::Array).element_type(DataType::VarChar).max_capacity(capacity).max_length(len);
    let scalar = |name: &str, t: DataType| FieldSchema::new().name(name).data_type(t);
    CollectionSchema::new()
        .enable_dynamic_field(false)
        .description("clipsight: one item's vector and the fields its filters read")
        .add_field(FieldSchema::new().name("id").data_type(DataType::Int64).primary_key(true))
        .add_field(FieldSchema::new().name(VECTOR).data_type(DataType::FloatVector).dimension(dim as u32))
        .add_field(varchar("origin", 64))
        .add_field(varchar("path", MAX_PATH as u32 + 8))
        .add_field(array("folders", MAX_FOLDERS as u32, 1024))
        .add_field(scalar("day", DataType::Int64))
        .add_field(scalar("taken", DataType::Int64))
        .add_field(varchar("camera", 1024))
        .add_field(array("formats", 16, 32))
        .add_field(scalar("kind", DataType::Int8))
        .add_field(scalar("gps", DataType::Bool))
        .add_field(scalar("lat", DataType::Double))
        .add_field(scalar("lon", DataType::Double))
        .add_field(varchar("record", MAX_RECORD as u32))
        .add_field(varchar("thumb", MAX_THUMB as u32))
        .add_field(varchar("stamp", 32))
}

/// The vector index: HNSW on inner product (the vectors are unit length, so it is the cosine),
/// with the build parameters of the local graph (see [`crate::ann::AnnParams`]).
pub fn vector_index() -> IndexParam {
    let p = crate::ann::AnnParams::default();
    IndexParam::new()
        .field_name(VECTOR)
        .index_type(IndexType::Hnsw)
        .metric_type(MetricType::Ip)
        .extra_params([("M".to_string(), p.m.to_string()), ("efConstruction".to_string(), p.ef_construction.to_string())].into_iter().collect())
}

/// Bits of a row key: 53, so a key is an integer JavaScript (the web UI) holds exactly — front
/// ends use row keys as image ids. Two paths share a key with probability n²/2⁵⁴: one in 200 for a
/// library of ten million files, so past that size keys need a registry (not built yet).
pub const KEY_BITS: u32 = 53;

/// The row key of the file at `path`: [`KEY_BITS`] bits of its BLAKE3 hash, so every indexer
/// that sees the file gives it the same row, and every front end the same id.
pub fn row_key(path: &[u8]) -> u64 {
    let hash = blake3::hash(path);
    u64::from_be_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes")) >> (64 - KEY_BITS)
}

/// The folder names of `path`, without the file name.
fn folders_of(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop();
    parts
}

/// Every run of 1 to [`FOLDER_RUN`] consecutive folders, joined by `/` (what `folder:` names),
/// the innermost first, at most [`MAX_FOLDERS`].
fn folder_runs(path: &str) -> Vec<String> {
    let parts = folders_of(path);
    let mut runs = Vec::new();
    for end in (1..=parts.len()).rev() {
        for len in 1..=FOLDER_RUN.min(end) {
            runs.push(parts[end - len..end].join("/"));
        }
    }
    runs.truncate(MAX_FOLDERS);
    runs
}

/// `YYYYMMDD` of a day, an integer that orders like the day.
pub fn day_number(day: jiff::civil::Date) -> i64 {
    day.year() as i64 * 10_000 + day.month() as i64 * 100 + day.day() as i64
}

/// What a row says of its image beside its vector and thumbnail: the file's record, what people
/// wrote about it (XMP/IPTC titles and keywords) and its automatic tags, so a front end or a
/// pulled library finds it by the same words as the library that indexed it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRecord {
    /// The file's record.
    pub file: FileRecord,
    /// Its annotations.
    pub annotations: AnnotationRecord,
    /// Its automatic tags.
    pub tags: Vec<String>,
}

impl RowRecord {
    /// The stored form: the file record's encoding followed by the annotations' and tags', so a
    /// reader that knows only the file record reads it alone.
    fn encode(&self) -> Vec<u8> {
        let mut bytes = self.file.encode();
        if !self.annotations.is_empty() || !self.tags.is_empty() {
            bytes.extend(postcard::to_stdvec(&(&self.annotations, &self.tags)).expect("annotations serialise"));
        }
        bytes
    }

    /// A row record from its stored form (rows written before annotations and tags were kept
    /// hold the file record alone); `None` when the file record does not decode.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let (file, rest) = postcard::take_from_bytes::<FileRecord>(bytes).ok()?;
        let (annotations, tags) = if rest.is_empty() { Default::default() } else { postcard::from_bytes(rest).unwrap_or_default() };
        Some(Self { file, annotations, tags })
    }
}

impl From<FileRecord> for RowRecord {
    fn from(file: FileRecord) -> Self {
        Self { file, annotations: AnnotationRecord::default(), tags: Vec::new() }
    }
}

/// The row of `about`, embedded as `vector`, with its thumbnail, pushed by library `origin`,
/// and its stamp: a fingerprint of everything else in it (the row is sent again, and a front
/// end's copy refreshed, when the stamp changes).
pub fn row(about: &RowRecord, vector: &[f32], thumbnail: &[u8], origin: &str) -> (serde_json::Value, [u8; 16]) {
    use base64::Engine;
    let b64 = |bytes: &[u8], limit: usize| Some(base64::engine::general_purpose::STANDARD.encode(bytes)).filter(|s| s.len() <= limit).unwrap_or_default();
    let record = &about.file;
    let mut kept = b64(&about.encode(), MAX_RECORD);
    if kept.is_empty() {
        kept = b64(&record.encode(), MAX_RECORD);
    }
    let full_path = record.display_path();
    let mut path = full_path.clone();
    if path.len() > MAX_PATH {
        let cut = (0..=MAX_PATH).rev().find(|i| path.is_char_boundary(*i)).unwrap_or(0);
        path.truncate(cut);
    }
    let date = record.exif.date_taken;
    let taken: i64 = date.map_or(0, |d| d.to_string().chars().filter(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0));
    let camera = format!("{} {}", record.exif.make.as_deref().unwrap_or(""), record.exif.model.as_deref().unwrap_or("")).to_lowercase();
    let camera: String = camera.chars().take(255).collect();
    let (lat, lon) = record.exif.gps.unwrap_or((0.0, 0.0));
    let mut row = json!({
        "id": row_key(&record.path),
        VECTOR: vector,
        "origin": origin,
        "folders": folder_runs(&full_path),
        "path": path,
        "day": date.map_or(0, |d| day_number(d.day())),
        "taken": taken,
        "camera": camera,
        "formats": record.formats().take(16).collect::<Vec<_>>(),
        "kind": record.kind() as i8,
        "gps": record.exif.gps.is_some(),
        "lat": lat,
        "lon": lon,
        "record": kept,
        "thumb": b64(thumbnail, MAX_THUMB),
    });
    let hash = blake3::hash(&serde_json::to_vec(&row).expect("rows serialise"));
    let stamp: [u8; 16] = hash.as_bytes()[..16].try_into().expect("16 bytes");
    row["stamp"] = hex::encode(stamp).into();
    (row, stamp)
}

/// A row read back for a front end to show: its record, thumbnail and vector.
pub struct Stored {
    /// Row key.
    pub key: u64,
    /// The record (`None` when it was too long to keep, or unreadable).
    pub record: Option<RowRecord>,
    /// The thumbnail JPEG (empty when it was too large to keep, or not read).
    pub thumbnail: Vec<u8>,
    /// The vector (empty when not read).
    pub vector: Vec<f32>,
    /// The row's stamp.
    pub stamp: [u8; 16],
}

/// The stamp of a row as stored (hex), as bytes.
pub fn stamp_of(hex_stamp: &str) -> [u8; 16] {
    let mut stamp = [0; 16];
    let _ = hex::decode_to_slice(hex_stamp, &mut stamp);
    stamp
}

impl Stored {
    /// The row's vector as an embedding (`None` when it cannot be one).
    pub fn embedding(&self) -> Option<clipsight_indexer::Embedding> {
        clipsight_indexer::Embedding::from_le_bytes(&self.vector.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>())
    }

    /// The rows of a query's answer (fields `id`, `record`, `stamp`, and `thumb` and `vector`
    /// when asked for: else empty).
    pub(super) fn all_of(results: &QueryResults) -> Vec<Stored> {
        use base64::Engine;
        let strings = |name: &str| match results.get_output_field(name) {
            Some(FieldData::VarChar { values, .. }) => values.clone(),
            _ => Vec::new(),
        };
        let keys: Vec<u64> = match results.get_output_field("id") {
            Some(FieldData::Int64 { values, .. }) => values.iter().map(|&v| v as u64).collect(),
            _ => Vec::new(),
        };
        let vectors = match results.get_output_field(VECTOR) {
            Some(FieldData::FloatVector { values, .. }) => values.clone(),
            _ => Vec::new(),
        };
        let (records, thumbs, stamps) = (strings("record"), strings("thumb"), strings("stamp"));
        let decode = |s: Option<&String>| s.and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()).unwrap_or_default();
        keys.into_iter()
            .enumerate()
            .map(|(i, key)| Stored {
                key,
                record: RowRecord::decode(&decode(records.get(i))),
                thumbnail: decode(thumbs.get(i)),
                vector: vectors.get(i).cloned().unwrap_or_default(),
                stamp: stamps.get(i).map_or([0; 16], |s| stamp_of(s)),
            })
            .collect()
    }
}

/// The first value of an integer field.
pub fn first_int(field: &FieldData) -> Option<i64> {
    match field {
        FieldData::Int64 { values, .. } => values.first().copied(),
        _ => None,
    }
}

/// One query's answer: row keys and scores, best first, with the fields asked for.
pub struct Found {
    /// Row keys.
    pub keys: Vec<u64>,
    /// Inner products with the query.
    pub scores: Vec<f32>,
    /// The `path` of each row, when asked for.
    pub paths: Option<Vec<String>>,
    /// The `camera` of each row, when asked for.
    pub cameras: Option<Vec<String>>,
    /// `lat` and `lon` of each row, when asked for.
    pub places: Option<Vec<(f64, f64)>>,
    /// The `stamp` of each row, when asked for.
    pub stamps: Option<Vec<[u8; 16]>>,
}

impl Found {
    pub(super) fn of(result: &SingleResult) -> Self {
        let keys = match result.get_ids() {
            Ids::Int64(ids) => ids.iter().map(|&i| i as u64).collect(),
            _ => Vec::new(),
        };
        let strings = |name: &str| match result.get_output_field(name) {
            Some(FieldData::VarChar { values, .. }) => Some(values.clone()),
            _ => None,
        };
        let doubles = |name: &str| match result.get_output_field(name) {
            Some(FieldData::Double { values, .. }) => Some(values.clone()),
            _ => None,
        };
        let places = doubles("lat").zip(doubles("lon")).map(|(lat, lon)| lat.into_iter().zip(lon).collect());
        let stamps = strings("stamp").map(|v| v.iter().map(|s| stamp_of(s)).collect());
        Self { keys, scores: result.get_scores().to_vec(), paths: strings("path"), cameras: strings("camera"), places, stamps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_carries_the_annotations_and_tags_and_reads_rows_written_before_them() {
        let file = FileRecord::synthetic("/photos/cape.jpg", [7; 32], "jpeg");
        let sidecar = clipsight_indexer::annotations::Annotations { title: Some("Cape St. Vincent".into()), description: None, keywords: vec!["Sagres".into()] };
        let about = RowRecord { file: file.clone(), annotations: AnnotationRecord { embedded: Default::default(), sidecar }, tags: vec!["lighthouse".into()] };
        assert_eq!(RowRecord::decode(&about.encode()), Some(about.clone()));
        assert_eq!(FileRecord::decode(&about.encode()), Some(file.clone()), "a reader of file records alone still reads the row");
        assert_eq!(RowRecord::decode(&file.encode()), Some(RowRecord::from(file.clone())), "an older row: no annotations, no tags");
        assert_eq!(RowRecord::decode(b"\xff\xff"), None);
        // Annotations too long for the row leave the file record alone in it.
        let long = RowRecord { tags: (0..3000).map(|i| format!("tag-{i}")).collect(), ..about };
        let (value, _) = row(&long, &[0.0; 4], &[], "origin");
        let kept = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value["record"].as_str().unwrap()).unwrap();
        assert_eq!(RowRecord::decode(&kept), Some(RowRecord::from(file)));
    }

    #[test]
    fn folder_runs_name_every_fragment_a_folder_filter_can_push_down() {
        let runs = folder_runs("/photos/trips/2019/beach.jpg");
        for run in ["photos", "trips", "2019", "photos/trips", "trips/2019", "photos/trips/2019"] {
            assert!(runs.contains(&run.to_string()), "{run} in {runs:?}");
        }
        assert!(!runs.iter().any(|r| r.contains("beach")), "the file name is not a folder");
        assert_eq!(folder_runs("/a.jpg"), Vec::<String>::new());
        let deep = format!("/{}/x.jpg", (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join("/"));
        assert_eq!(folder_runs(&deep).len(), MAX_FOLDERS);
        assert!(folder_runs(&deep).contains(&"96/97/98/99".to_string()), "the innermost folders come first");
    }

    #[test]
    fn a_row_key_is_the_same_for_the_same_path_and_safe_in_javascript() {
        assert_eq!(row_key(b"/p/a.jpg"), row_key(b"/p/a.jpg"));
        assert_ne!(row_key(b"/p/a.jpg"), row_key(b"/p/b.jpg"));
        assert!((0..1000).all(|i| row_key(format!("/{i}").as_bytes()) < 1 << 53), "JavaScript holds every key exactly");
    }
}
