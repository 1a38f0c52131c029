//! The keyword index's analyzer ([`crate::keywords`]: jieba-rs segmentation) against tantivy's
//! default tokenizer, on synthetic file and folder names in Latin and CJK scripts: documents
//! indexed per second, bytes on disk, query latency, and the share of one-word CJK queries that
//! find the names holding that word (the default tokenizer keeps `生日派对` one term, so `生日`
//! finds nothing).

use std::time::Instant;

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::Schema;
use tantivy::{doc, Index};

/// Words names are made of: Chinese words (whole names are compounds of two), Latin ones.
const CJK_WORDS: [&str; 16] = ["生日", "派对", "海边", "日落", "东京", "旅行", "夜景", "家人", "婚礼", "花园", "小猫", "雪山", "毕业", "典礼", "早餐", "公园"];
const LATIN_WORDS: [&str; 8] = ["IMG", "beach", "party", "trip", "Canon", "EOS", "holiday", "2019-06-01"];

/// One analyzer's figures.
#[derive(Debug, Serialize)]
pub struct AnalyzerRow {
    /// `default` (tantivy's) or `jieba` (clipsight's).
    pub analyzer: &'static str,
    /// Documents indexed per second (one thread, commit included).
    pub docs_per_s: f64,
    /// Bytes of the committed index.
    pub index_bytes: u64,
    /// Median latency of a one-word CJK query's top 10, microseconds.
    pub query_p50_us: f64,
    /// Share of one-word CJK queries that find every name holding the word.
    pub cjk_word_recall: f64,
}

/// Both analyzers on `n` names.
#[derive(Debug, Serialize)]
pub struct KeywordsReport {
    /// Names indexed.
    pub docs: usize,
    /// Default first, then jieba.
    pub rows: Vec<AnalyzerRow>,
}

/// The `i`th synthetic name: a folder and a file name of two CJK words, with Latin words.
fn name(i: usize) -> String {
    let w = |k: usize| CJK_WORDS[k % CJK_WORDS.len()];
    format!("{}{} {}{} {}_{} {}", w(i / 16), w(i / 256 + 3), w(i), w(i / 7 + 1), LATIN_WORDS[i % 8], i, LATIN_WORDS[(i / 8) % 8])
}

/// Indexes `n` names with each analyzer and measures it.
pub fn run(n: usize) -> Result<KeywordsReport, tantivy::TantivyError> {
    let mut rows = Vec::new();
    for (label, tokenizer) in [("default", "default"), ("jieba", crate::keywords::analyzer::NAME)] {
        let dir = tempfile::tempdir()?;
        let mut schema = Schema::builder();
        let field = schema.add_text_field("metadata", crate::keywords::words(tokenizer));
        let index = Index::create_in_dir(dir.path(), schema.build())?;
        crate::keywords::analyzer::register(&index);
        let started = Instant::now();
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        for i in 0..n {
            writer.add_document(doc!(field => name(i)))?;
        }
        writer.commit()?;
        drop(writer);
        let docs_per_s = n as f64 / started.elapsed().as_secs_f64();
        let index_bytes = std::fs::read_dir(dir.path())?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
        let reader = index.reader()?;
        let searcher = reader.searcher();
        let parser = QueryParser::for_index(&index, vec![field]);
        let (mut latencies, mut complete) = (Vec::new(), 0);
        for word in CJK_WORDS {
            let holding = (0..n).filter(|i| name(*i).contains(word)).count();
            let query = parser.parse_query_lenient(word).0;
            let started = Instant::now();
            searcher.search(&query, &TopDocs::with_limit(10).order_by_score())?;
            latencies.push(started.elapsed().as_secs_f64() * 1e6);
            let found = searcher.search(&query, &tantivy::collector::Count)?;
            complete += usize::from(found >= holding && holding > 0);
        }
        latencies.sort_by(f64::total_cmp);
        rows.push(AnalyzerRow { analyzer: label, docs_per_s, index_bytes, query_p50_us: super::quantile(&latencies, 0.5), cjk_word_recall: complete as f64 / CJK_WORDS.len() as f64 });
    }
    Ok(KeywordsReport { docs: n, rows })
}
