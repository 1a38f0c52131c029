//! How keyword text becomes terms, in every script: jieba-rs's dictionary segmentation (through
//! `tantivy-jieba`, in its search mode) makes Chinese words terms of their own — `生日派对.jpg`
//! gives `生日`, `派对` and `生日派对`, so a search for `生日` finds it — while Latin words, digits
//! and dates come out as before (`IMG_beach-party` gives `img`, `beach`, `party` and the whole);
//! Japanese kana and Korean syllables become terms one character each, so a word of theirs is
//! found as a phrase. Then lower-cased, overlong terms dropped. The same analyzer reads queries.
//!
//! Chosen by measuring against tantivy's default tokenizer (which keeps `生日派对` one term) on
//! the keyword index of 100,000 file names: see `clipsight bench keywords` and the README.

use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, TextAnalyzer};
use tantivy_jieba::JiebaTokenizer;

/// The name the analyzer is registered under, in the schema of the keyword index.
pub const NAME: &str = "clipsight_words";

/// The analyzer of the keyword index's text fields.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(JiebaTokenizer::default()).filter(RemoveLongFilter::limit(40)).filter(LowerCaser).build()
}

/// Registers the analyzer with `index`: at creation and at every open (tantivy keeps analyzers
/// in memory only).
pub fn register(index: &tantivy::Index) {
    index.tokenizers().register(NAME, analyzer());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let term = stream.token().text.trim().to_string();
            if !term.is_empty() {
                out.push(term);
            }
        }
        out
    }

    #[test]
    fn chinese_words_are_terms_and_latin_words_stay_whole_and_lower_cased() {
        let t = terms("生日派对 IMG_Beach-party 2019-06-01 Canon");
        for term in ["生日", "派对", "生日派对", "img", "beach", "party", "2019-06-01", "canon"] {
            assert!(t.contains(&term.to_string()), "{term} in {t:?}");
        }
    }
}
