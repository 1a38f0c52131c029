//! Text to token ids the way Immich feeds CLIP text towers: whitespace collapsed, encoded with the
//! model's own `tokenizer.json`, truncated to the context length (still ending with end-of-text)
//! and padded with the tokenizer config's pad token.

use std::path::Path;

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::ClipError;

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
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, padding and truncating to `context_length` with `pad_token`.
    pub fn from_file(path: &Path, context_length: usize, pad_token: &str) -> Result<Self, ClipError> {
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
        Ok(Self { inner, context_length, pad_id })
    }

    /// Whether the vocabulary holds `token` (a language code of NLLB's, say).
    pub fn has_token(&self, token: &str) -> bool {
        self.inner.token_to_id(token).is_some()
    }

    /// Number of ids in each row.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Token ids and attention mask for one text, exactly `context_length` long.
    pub fn encode(&self, text: &str) -> Result<Tokens, ClipError> {
        let cleaned = text.split_whitespace().collect::<Vec<_>>().join(" ");
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
