//! Text to token ids the way Immich feeds CLIP text towers: whitespace collapsed (and, for models
//! whose config asks for open_clip's `canonicalize`, ASCII punctuation removed and lower-cased),
//! a FLORES-200 language code written before the text for towers that read one (NLLB-CLIP),
//! encoded with the model's own `tokenizer.json`, truncated to the context length (still ending
//! with end-of-text) and padded with the tokenizer config's pad token.

use std::path::Path;

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{ClipError, Language};

/// One text as a text tower takes it: token ids, and the attention mask that tells the text's
/// tokens (1) from the padding (0), both exactly the context length long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Token ids, padded.
    pub ids: Vec<u32>,
    /// 1 for each token of the text (special tokens included), 0 for padding.
    pub mask: Vec<u32>,
}

/// A configured tokenizer producing fixed-length id rows.
pub struct TextTokenizer {
    inner: Tokenizer,
    context_length: usize,
    pad_id: u32,
    canonicalize: bool,
    language_codes: bool,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, padding and truncating to `context_length` with `pad_token`;
    /// `canonicalize` cleans texts as open_clip's `clean="canonicalize"` does.
    pub fn from_file(path: &Path, context_length: usize, pad_token: &str, canonicalize: bool) -> Result<Self, ClipError> {
        let bad = |message: String| ClipError::Model { path: path.to_path_buf(), message };
        let mut inner = Tokenizer::from_file(path).map_err(|e| bad(format!("cannot load tokenizer: {e}")))?;
        let pad_id = inner.token_to_id(pad_token).ok_or_else(|| {
            bad(format!(
                "pad token {pad_token:?} (from tokenizer_config.json) is not in the vocabulary"
            ))
        })?;
        inner
            .with_truncation(Some(TruncationParams { max_length: context_length, ..Default::default() }))
            .map_err(|e| bad(format!("cannot set truncation: {e}")))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(context_length),
            pad_id,
            pad_token: pad_token.to_string(),
            ..Default::default()
        }));
        // NLLB's vocabulary holds the FLORES-200 codes as tokens; no other family's does.
        let language_codes = inner.token_to_id(Language::ENGLISH.code()).is_some();
        Ok(Self { inner, context_length, pad_id, canonicalize, language_codes })
    }

    /// Whether texts are written after a language code (NLLB-CLIP's tokenizer).
    pub fn takes_language(&self) -> bool {
        self.language_codes
    }

    /// Number of ids in each row.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Token ids and attention mask for one text in `language` (read only by towers that
    /// [take one](Self::takes_language); without one, the text is encoded as it is, as Immich
    /// does), exactly `context_length` long.
    pub fn encode(&self, text: &str, language: Option<Language>) -> Result<Tokens, ClipError> {
        let mut cleaned = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if self.canonicalize {
            cleaned = cleaned.chars().filter(|c| !c.is_ascii_punctuation()).collect::<String>().to_lowercase();
        }
        if let Some(language) = language.filter(|_| self.language_codes) {
            // A FLORES-200 code this vocabulary lacks is English, as an unknown tag is.
            let known = self.inner.token_to_id(language.code()).is_some();
            cleaned.insert_str(0, if known { language.code() } else { Language::ENGLISH.code() });
        }
        let encoding = self
            .inner
            .encode(cleaned.as_str(), true)
            .map_err(|e| ClipError::Text(format!("cannot tokenise {text:?}: {e}")))?;
        let (mut ids, mut mask) = (encoding.get_ids().to_vec(), encoding.get_attention_mask().to_vec());
        // Fixed padding already gives the length; this only guards the tensor shape against an
        // unusual tokenizer.json (e.g. a post-processor that adds tokens after truncation).
        ids.resize(self.context_length, self.pad_id);
        mask.resize(self.context_length, 0);
        Ok(Tokens { ids, mask })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str, pad: &str, canonicalize: bool) -> TextTokenizer {
        // The package's directory as the test runs (not as it was built: a test binary a shared
        // target directory kept from another checkout reads this checkout's fixtures).
        let package = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test names the package's directory");
        let path = format!("{package}/../tests/fixtures/models/{name}/textual/tokenizer.json");
        TextTokenizer::from_file(Path::new(&path), 77, pad, canonicalize).unwrap()
    }

    #[test]
    fn canonicalize_drops_ascii_punctuation_and_lower_cases() {
        let plain = fixture("clipsight-tiny", "<|endoftext|>", false);
        let canonical = fixture("clipsight-tiny", "<|endoftext|>", true);
        let clean = plain.encode("a red circle", None).unwrap();
        assert_eq!(canonical.encode("  A RED, circle!!! ", None).unwrap(), clean);
        assert_ne!(plain.encode("A RED, circle!!!", None).unwrap(), clean);
        // Not ASCII punctuation: kept.
        assert_ne!(canonical.encode("a red circle。", None).unwrap(), clean);
    }

    #[test]
    fn a_language_code_goes_first_only_where_the_vocabulary_has_codes() {
        let clip = fixture("clipsight-tiny", "<|endoftext|>", false);
        assert!(!clip.takes_language());
        let zh = Language::resolve("zh-CN").language;
        assert_eq!(clip.encode("红色的圆", Some(zh)).unwrap(), clip.encode("红色的圆", None).unwrap());
        let nllb = fixture("clipsight-tiny-nllb", "<pad>", false);
        assert!(nllb.takes_language());
        let code = nllb.inner.token_to_id("zho_Hans").unwrap();
        let tokens = nllb.encode("红色的圆", Some(zh)).unwrap();
        assert_eq!(tokens.ids[0], code);
        assert_eq!(tokens.ids[1..], nllb.encode("红色的圆", None).unwrap().ids[..76]);
        let english = Some(Language::ENGLISH);
        assert_eq!(nllb.encode("x", Some(Language::resolve("kab_Latn").language)).unwrap(), nllb.encode("x", english).unwrap(), "a code the vocabulary lacks is English");
    }
}
