//! The model behind a small LRU cache of text embeddings: a repeated query (paging, a shared
//! link, the UI's search-as-you-type settling on the same words) skips the text encoder.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use clipsight_indexer::clip::{PreparedImage, PreprocessConfig};
use clipsight_indexer::{ClipError, Embedding, Encoder, ModelId};
use lru::LruCache;

use crate::sync::lock;

/// Text embeddings kept.
const ENTRIES: usize = 4096;

/// An encoder whose text embeddings are cached.
pub struct TextCache {
    inner: Box<dyn Encoder>,
    texts: Mutex<LruCache<String, Embedding>>,
}

impl TextCache {
    /// `inner` with an empty cache.
    pub fn new(inner: Box<dyn Encoder>) -> Self {
        Self { inner, texts: Mutex::new(LruCache::new(NonZeroUsize::new(ENTRIES).expect("non-zero"))) }
    }

    /// The encoder itself (indexing embeds images only, and caches nothing).
    pub fn inner(&self) -> &dyn Encoder {
        self.inner.as_ref()
    }
}

impl Encoder for TextCache {
    fn id(&self) -> ModelId {
        self.inner.id()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn logit_scale(&self) -> f32 {
        self.inner.logit_scale()
    }

    fn preprocess(&self) -> &PreprocessConfig {
        self.inner.preprocess()
    }

    fn encode_images(&self, images: &[PreparedImage]) -> Result<Vec<Embedding>, ClipError> {
        self.inner.encode_images(images)
    }

    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Embedding>, ClipError> {
        let mut out: Vec<Option<Embedding>> = {
            let mut cache = lock(&self.texts);
            texts.iter().map(|t| cache.get(*t).cloned()).collect()
        };
        let missing: Vec<&str> = texts.iter().zip(&out).filter(|(_, e)| e.is_none()).map(|(t, _)| *t).collect();
        if !missing.is_empty() {
            let fresh = self.inner.encode_texts(&missing)?;
            let mut cache = lock(&self.texts);
            let mut fresh = missing.iter().zip(fresh);
            for slot in out.iter_mut().filter(|e| e.is_none()) {
                let (text, embedding) = fresh.next().expect("one embedding per missing text");
                cache.put((*text).to_string(), embedding.clone());
                *slot = Some(embedding);
            }
        }
        Ok(out.into_iter().map(|e| e.expect("filled")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clipsight_indexer::HashEncoder;

    #[test]
    fn cached_texts_embed_as_the_encoder_does() {
        let cache = TextCache::new(Box::new(HashEncoder::new(ModelId([1; 16]))));
        let direct = HashEncoder::new(ModelId([1; 16])).encode_texts(&["a", "b", "c"]).unwrap();
        assert_eq!(cache.encode_texts(&["b"]).unwrap()[0], direct[1]);
        assert_eq!(cache.encode_texts(&["a", "b", "c"]).unwrap(), direct, "a mix of cached and fresh texts, in order");
    }
}
