//! Keyword search (tantivy BM25) over what the file system and EXIF say about each image (file
//! name tokens, folder names, camera make/model/lens, date, format) and its automatic tags, kept
//! in two fields so a query can leave the tags out (see [`Scope`]).
//!
//! Derived data: the index lives in `DATA/keywords/`, records the store epoch it reflects, and is
//! rebuilt from RocksDB when that differs (about 80k documents a second).

pub(crate) mod analyzer;

use std::path::{Path, PathBuf};

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, STORED};
use tantivy::{doc, Index, IndexReader, TantivyDocument};

use clipsight_indexer::annotations::Annotations;

use crate::store::{FileRecord, ImageId, Store, StoreError};

/// Errors of the keyword index.
#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    /// tantivy failed.
    #[error("keyword index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// File system error.
    #[error("keyword index {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Reading records failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An open keyword index.
pub struct Keywords {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

/// The index's fields.
#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    /// What the file system and EXIF say: [`document_text`].
    metadata: Field,
    /// The automatic tags.
    tags: Field,
}

/// Which words a keyword query matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// File system and EXIF words and automatic tags (keyword mode).
    All,
    /// File system and EXIF words only. Hybrid ranking uses this: automatic tags are a coarse
    /// projection of the same CLIP embedding the vector ranking already scores, so fusing them
    /// counts CLIP twice, and a broad tag ("circle" on hundreds of images) lets its arbitrary
    /// BM25 order outrank the vector ranking.
    Metadata,
}

/// The searchable words of a record: its file system and EXIF words and what people wrote about
/// it (title, description, keywords).
pub fn document_text(record: &FileRecord, annotations: &Annotations) -> String {
    let path = record.path();
    let mut parts: Vec<String> = Vec::new();
    if let Some(stem) = path.file_stem() {
        parts.push(stem.to_string_lossy().into_owned());
    }
    let folders: Vec<String> = path
        .parent()
        .map(|p| p.components().rev().take(4).map(|c| c.as_os_str().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    parts.extend(folders);
    let exif = &record.exif;
    parts.extend([&exif.make, &exif.model, &exif.lens].into_iter().flatten().cloned());
    if let Some(date) = exif.date_taken {
        parts.push(date.day().to_string());
    }
    parts.extend(record.formats().map(String::from));
    parts.extend(annotations.title.iter().chain(&annotations.description).chain(&annotations.keywords).cloned());
    parts.join(" ")
}

impl Keywords {
    /// Where a library keeps its keyword index.
    pub fn dir_of(store: &Store) -> PathBuf {
        store.dir().join("keywords")
    }

    /// Opens the keyword index of `store`, rebuilding it when it is missing or stale.
    pub fn open(store: &Store) -> Result<Self, KeywordError> {
        let dir = Self::dir_of(store);
        let epoch = store.epoch()?;
        let epoch_file = dir.join("epoch");
        let fresh = std::fs::read_to_string(&epoch_file).ok().and_then(|s| s.trim().parse::<u64>().ok()) == Some(epoch);
        if fresh {
            // An index of an older schema (no tags field) is rebuilt.
            if let Some(keywords) = Index::open_in_dir(&dir).ok().and_then(|index| Self::from_index(index).ok()) {
                return Ok(keywords);
            }
        }
        Self::rebuild(store, &dir, epoch)
    }

    fn rebuild(store: &Store, dir: &Path, epoch: u64) -> Result<Self, KeywordError> {
        let io = |source| KeywordError::Io { path: dir.to_path_buf(), source };
        let staging = dir.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(io)?;
        let index = Index::create_in_dir(&staging, schema())?;
        analyzer::register(&index);
        let f = fields(&index.schema()).expect("the schema just built");
        // One thread with tantivy's minimum budget: a rebuild is a background task, and a
        // server rebuilding after every indexing job should not grow by 50 MB of arena each time.
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        for item in store.files() {
            let (image, record) = item?;
            let tags = store.tags(image)?;
            let annotations = store.annotations(image)?.combined();
            writer.add_document(doc!(f.id => image.0, f.metadata => document_text(&record, &annotations), f.tags => tags.join(" ")))?;
        }
        writer.commit()?;
        drop(writer);
        std::fs::write(staging.join("epoch"), epoch.to_string()).map_err(io)?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&staging, dir).map_err(io)?;
        Self::from_index(Index::open_in_dir(dir)?)
    }

    fn from_index(index: Index) -> Result<Self, KeywordError> {
        let fields = fields(&index.schema())?;
        analyzer::register(&index);
        let reader = index.reader()?;
        Ok(Self { index, reader, fields })
    }

    /// The best `limit` images for the words of `text` (BM25) within `scope`, best first with
    /// their scores.
    pub fn search(&self, text: &str, scope: Scope, limit: usize) -> Result<Vec<(ImageId, f32)>, KeywordError> {
        let searched = match scope {
            Scope::All => vec![self.fields.metadata, self.fields.tags],
            Scope::Metadata => vec![self.fields.metadata],
        };
        let parser = QueryParser::for_index(&self.index, searched);
        let (query, _errors) = parser.parse_query_lenient(text);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit.max(1)).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(self.fields.id).and_then(|v| v.as_u64()) {
                out.push((ImageId(id), score));
            }
        }
        Ok(out)
    }
}

fn schema() -> Schema {
    let mut b = Schema::builder();
    b.add_u64_field("id", STORED | FAST);
    b.add_text_field("metadata", words(analyzer::NAME));
    b.add_text_field("tags", words(analyzer::NAME));
    b.build()
}

/// A text field analysed by the tokenizer registered as `tokenizer` ([`analyzer::NAME`] here;
/// tantivy's `default` gives its `TEXT`), with positions (phrases: a Korean word is its syllables
/// in order).
pub(crate) fn words(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(TextFieldIndexing::default().set_tokenizer(tokenizer).set_index_option(IndexRecordOption::WithFreqsAndPositions))
}

/// The fields of an index of this schema; an index of an older one (without the tags field, or
/// analysed by tantivy's default tokenizer) is an error, and is rebuilt.
fn fields(schema: &Schema) -> Result<Fields, KeywordError> {
    if schema != &self::schema() {
        return Err(KeywordError::Tantivy(tantivy::TantivyError::SchemaError("the keyword index has an older schema".into())));
    }
    Ok(Fields { id: schema.get_field("id")?, metadata: schema.get_field("metadata")?, tags: schema.get_field("tags")? })
}

/// Reciprocal rank fusion of ranked lists: score(d) = Σ 1 / (K + rank(d)), K = 60.
pub fn reciprocal_rank_fusion(lists: &[Vec<ImageId>]) -> Vec<(ImageId, f64)> {
    const K: f64 = 60.0;
    let mut scores: std::collections::HashMap<ImageId, f64> = std::collections::HashMap::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            *scores.entry(*id).or_default() += 1.0 / (K + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(ImageId, f64)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_of_the_current_schema_is_reopened_not_rebuilt_and_finds_chinese_words() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = crate::store::test_support::library_of(dir.path(), clipsight_indexer::ModelId([3; 16]), 2);
        let mut changes = store.changes();
        changes.put_record(ImageId(9), &FileRecord::synthetic("/photos/生日派对.jpg", [9; 32], "jpeg"));
        changes.commit().unwrap();
        let first = Keywords::open(&store).unwrap();
        assert_eq!(first.search("生日", Scope::All, 5).unwrap().first().map(|(id, _)| *id), Some(ImageId(9)));
        let built = std::fs::metadata(Keywords::dir_of(&store)).unwrap().ino();
        drop(first);
        Keywords::open(&store).unwrap();
        assert_eq!(std::fs::metadata(Keywords::dir_of(&store)).unwrap().ino(), built, "reopened in place");
    }

    #[test]
    fn fusion_rewards_agreement_between_rankings() {
        let a = vec![ImageId(1), ImageId(2), ImageId(3)];
        let b = vec![ImageId(3), ImageId(2), ImageId(9)];
        let fused: Vec<u64> = reciprocal_rank_fusion(&[a, b]).into_iter().map(|(id, _)| id.0).collect();
        let mut top2 = fused[..2].to_vec();
        top2.sort_unstable();
        assert_eq!(top2, vec![2, 3], "being in both lists beats being first in one");
        assert_eq!(fused.len(), 4);
    }

    #[test]
    fn documents_carry_file_folder_camera_date_format_and_annotation_words() {
        let record = FileRecord {
            exif: crate::store::ExifMeta {
                make: Some("Canon".into()),
                date_taken: crate::store::CaptureDate::parse("2019:06:01 10:00:00"),
                ..Default::default()
            },
            ..FileRecord::synthetic("/photos/trips/2019/IMG_beach-party.jpg", [0; 32], "jpeg")
        };
        let annotations = Annotations { title: Some("Sunset".into()), description: Some("at the pier".into()), keywords: vec!["生日".into()] };
        let text = document_text(&record, &annotations);
        for word in ["IMG_beach-party", "trips", "2019", "Canon", "2019-06-01", "jpeg", "Sunset", "pier", "生日"] {
            assert!(text.contains(word), "{text}");
        }
    }
}
