//! The model behind a small LRU cache of text embeddings: a repeated query (paging, a shared
//! link, the UI's search-as-you-type settling on the same words) skips the text encoder. A text
//! is cached with its language, which NLLB-CLIP embeds differently.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use clipsight_indexer::clip::{Family, Language, PreparedImage, PreprocessConfig, Scoring};
use clipsight_indexer::{ClipError, Embedding, Encoder, ModelId};
use lru::LruCache;

use crate::sync::lock;

/// Text embeddings kept.
const ENTRIES: usize = 4096;

/// An encoder whose text embeddings are cached.
pub struct TextCache {
    inner: Box<dyn Encoder>,
    texts: Mutex<LruCache<(Option<Language>, String), Embedding>>,
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

    fn scoring(&self) -> Scoring {
        self.inner.scoring()
    }

    fn takes_language(&self) -> bool {
        self.inner.takes_language()
    }

    fn family(&self) -> Result<Family, ClipError> {
        self.inner.family()
    }

    fn release_image_tower(&self) {
        self.inner.release_image_tower()
    }

    fn preprocess(&self) -> &PreprocessConfig {
        self.inner.preprocess()
    }

    fn encode_images(&self, images: &[PreparedImage]) -> Result<Vec<Embedding>, ClipError> {
        self.inner.encode_images(images)
    }

    fn encode_texts_in(&self, texts: &[&str], language: Option<Language>) -> Result<Vec<Embedding>, ClipError> {
        // A model that reads no language embeds a text alike in all of them: one entry.
        let language = language.filter(|_| self.inner.takes_language());
        let key = |text: &str| (language, text.to_string());
        let mut out: Vec<Option<Embedding>> = {
            let mut cache = lock(&self.texts);
            texts.iter().map(|t| cache.get(&key(t)).cloned()).collect()
        };
        let missing: Vec<&str> = texts.iter().zip(&out).filter(|(_, e)| e.is_none()).map(|(t, _)| *t).collect();
        if !missing.is_empty() {
            let fresh = self.inner.encode_texts_in(&missing, language)?;
            let mut cache = lock(&self.texts);
            let mut fresh = missing.iter().zip(fresh);
            for slot in out.iter_mut().filter(|e| e.is_none()) {
                let (text, embedding) = fresh.next().expect("one embedding per missing text");
                cache.put(key(text), embedding.clone());
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

    /// The hash encoder, reading a language: a text embeds as its language code and words.
    struct Lingual(HashEncoder, std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Encoder for Lingual {
        fn id(&self) -> ModelId {
            self.0.id()
        }
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn scoring(&self) -> Scoring {
            self.0.scoring()
        }
        fn preprocess(&self) -> &PreprocessConfig {
            self.0.preprocess()
        }
        fn encode_images(&self, images: &[PreparedImage]) -> Result<Vec<Embedding>, ClipError> {
            self.0.encode_images(images)
        }
        fn encode_texts_in(&self, texts: &[&str], language: Option<Language>) -> Result<Vec<Embedding>, ClipError> {
            self.1.fetch_add(texts.len(), std::sync::atomic::Ordering::Relaxed);
            let coded: Vec<String> = texts.iter().map(|t| format!("{} {t}", language.map_or_else(|| "-".to_string(), |l| l.to_string()))).collect();
            self.0.encode_texts(&coded.iter().map(String::as_str).collect::<Vec<_>>())
        }
        fn takes_language(&self) -> bool {
            true
        }
        fn family(&self) -> Result<Family, ClipError> {
            Ok(Family::NllbClip)
        }
    }

    #[test]
    fn a_text_is_cached_per_language_where_the_model_reads_one() {
        let embedded = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cache = TextCache::new(Box::new(Lingual(HashEncoder::new(ModelId([1; 16])), embedded.clone())));
        let (zh, es) = (Some(Language::resolve("zh").language), Some(Language::resolve("es").language));
        let in_zh = cache.encode_texts_in(&["rojo"], zh).unwrap();
        let in_es = cache.encode_texts_in(&["rojo"], es).unwrap();
        assert_ne!(in_zh, in_es);
        assert_eq!(cache.encode_texts_in(&["rojo"], zh).unwrap(), in_zh, "from the cache");
        cache.encode_texts_in(&["rojo"], None).unwrap();
        assert_eq!(embedded.load(std::sync::atomic::Ordering::Relaxed), 3, "zh, es and no language: three entries");
    }

    #[test]
    fn cached_texts_embed_as_the_encoder_does() {
        let cache = TextCache::new(Box::new(HashEncoder::new(ModelId([1; 16]))));
        let direct = HashEncoder::new(ModelId([1; 16])).encode_texts(&["a", "b", "c"]).unwrap();
        assert_eq!(cache.encode_texts(&["b"]).unwrap()[0], direct[1]);
        assert_eq!(cache.encode_texts(&["a", "b", "c"]).unwrap(), direct, "a mix of cached and fresh texts, in order");
    }
}
