//! Image → text: the best captions of the library's text corpora, and automatic tags from a
//! built-in vocabulary of everyday tags.
//!
//! Each tag is embedded with several prompt templates whose embeddings are averaged (CLIP's
//! zero-shot ensembling). Tags are scored as the model was trained to score ([`Scoring`]): a
//! CLIP-trained model's softmax over the whole vocabulary at its logit scale, kept when the
//! probability passes [`TAG_MIN_PROBABILITY`] (the model's own temperature calibrates the
//! threshold, so it carries over between models); a SigLIP-trained model's sigmoid of each tag
//! on its own, kept when it passes [`TAG_MIN_SIGMOID`]. The vocabulary is English, and embedded
//! as English for models that read a language. Vocabulary embeddings are computed once per model
//! and cached in the store.

use clipsight_indexer::clip::{Language, Scoring};
use clipsight_indexer::{ClipError, Embedding, Encoder, ModelId};
use serde::Serialize;

use crate::store::{Store, StoreError};

/// The built-in tag vocabulary, one tag per line.
pub const VOCABULARY: &str = include_str!("vocabulary.txt");

/// Prompt templates averaged per tag.
pub const TEMPLATES: [&str; 4] = ["a photo of a {}.", "a photo of the {}.", "a close-up photo of a {}.", "a bright photo of a {}."];

/// Minimum softmax probability (over the vocabulary) for an automatic tag.
pub const TAG_MIN_PROBABILITY: f32 = 0.12;

/// Minimum sigmoid probability (of the tag alone) for an automatic tag of a SigLIP-trained model.
pub const TAG_MIN_SIGMOID: f32 = 0.5;

/// Most automatic tags kept per image.
pub const MAX_TAGS: usize = 5;

/// Store key kind of vocabulary entries.
const VOCABULARY_KIND: u8 = b'v';
/// Store key kind of corpus captions.
pub const CORPUS_KIND: u8 = b'c';

/// Errors of image→text.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ClipError),
}

/// A text with its similarity to an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// The caption or tag.
    pub text: String,
    /// Cosine similarity (captions), or the tag's probability (over the vocabulary for a
    /// softmax-scored model, of the tag alone for a sigmoid-scored one).
    pub score: f32,
}

/// The tag vocabulary embedded with one model.
pub struct Vocabulary {
    tags: Vec<(String, Embedding)>,
    scoring: Scoring,
}

/// The tags of a vocabulary file (one per line), or of the built-in vocabulary.
pub fn vocabulary_words(text: Option<&str>) -> Vec<String> {
    let mut words: Vec<String> =
        text.unwrap_or(VOCABULARY).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    words.sort_unstable();
    words.dedup();
    words
}

impl Vocabulary {
    /// `words` embedded with `clip`: read from the store when the cached vocabulary has exactly
    /// these words, else embedded and (when the store is writable) cached in place of the old one.
    pub fn load(store: &Store, encoder: &dyn Encoder, words: &[String], writable: bool) -> Result<Self, DescribeError> {
        match Self::cached(store, encoder, words)? {
            Some(cached) => Ok(cached),
            None => Self::embed(store, encoder, words, writable),
        }
    }

    /// `words` embedded with `encoder` now, and (when `writable`) cached in `store` in place of
    /// the old vocabulary; [`Vocabulary::load`] when the cache is known not to hold them.
    pub fn embed(store: &Store, encoder: &dyn Encoder, words: &[String], writable: bool) -> Result<Self, DescribeError> {
        let wanted: Vec<&str> = words.iter().map(String::as_str).collect();
        let vocabulary = Self { tags: embed_tags(encoder, &wanted)?, scoring: tag_scoring(encoder) };
        if writable {
            vocabulary.cache_in(store, encoder.id())?;
        }
        Ok(vocabulary)
    }

    /// Stores this vocabulary (embedded with `model`) as `store`'s cached one, in place of the
    /// old: a later [`Vocabulary::load`] of the same words reads it instead of embedding them.
    pub fn cache_in(&self, store: &Store, model: ModelId) -> Result<(), DescribeError> {
        let mut changes = store.changes();
        changes.delete_texts(model, VOCABULARY_KIND);
        for (tag, e) in &self.tags {
            changes.put_text(model, VOCABULARY_KIND, tag, e);
        }
        changes.commit()?;
        Ok(())
    }

    /// `words` as the store has them embedded with `encoder`'s model, or `None` when the cached
    /// vocabulary has other words (or none): nothing is embedded here.
    pub fn cached(store: &Store, encoder: &dyn Encoder, words: &[String]) -> Result<Option<Self>, DescribeError> {
        let tags = store.texts(encoder.id(), VOCABULARY_KIND)?;
        let same = tags.len() == words.len() && tags.iter().zip(words).all(|((t, _), w)| t == w);
        Ok(same.then(|| Self { tags, scoring: tag_scoring(encoder) }))
    }

    /// The vocabulary the library last tagged with (the built-in one if none is cached).
    pub fn current(store: &Store, encoder: &dyn Encoder) -> Result<Self, DescribeError> {
        let tags = store.texts(encoder.id(), VOCABULARY_KIND)?;
        if tags.is_empty() {
            return Self::load(store, encoder, &vocabulary_words(None), false);
        }
        Ok(Self { tags, scoring: tag_scoring(encoder) })
    }

    /// Tags scored for an image, most probable first.
    pub fn score(&self, image: &Embedding) -> Vec<Scored> {
        let cosines: Vec<f32> = self.tags.iter().map(|(_, t)| image.cosine(t)).collect();
        let mut scored: Vec<Scored> = self
            .tags
            .iter()
            .zip(self.scoring.probabilities(&cosines))
            .map(|((text, _), p)| Scored { text: text.clone(), score: p })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.text.cmp(&b.text)));
        scored
    }

    /// The automatic tags of an image: probability at least [`TAG_MIN_PROBABILITY`] (softmax)
    /// or [`TAG_MIN_SIGMOID`] (sigmoid), at most [`MAX_TAGS`].
    pub fn auto_tags(&self, image: &Embedding) -> Vec<String> {
        let min = if self.scoring.exclusive() { TAG_MIN_PROBABILITY } else { TAG_MIN_SIGMOID };
        self.score(image)
            .into_iter()
            .take(MAX_TAGS)
            .filter(|s| s.score >= min)
            .map(|s| s.text)
            .collect()
    }
}

/// How tags are scored with `encoder` (see [`Scoring::for_tags`]: an uncalibrated sigmoid ranks
/// tags by a softmax at CLIP's clamp instead).
fn tag_scoring(encoder: &dyn Encoder) -> Scoring {
    encoder.scoring().for_tags(clipsight_indexer::clip::DEFAULT_LOGIT_SCALE)
}

fn embed_tags(encoder: &dyn Encoder, tags: &[&str]) -> Result<Vec<(String, Embedding)>, DescribeError> {
    Ok(tags.iter().map(|t| t.to_string()).zip(ensembled(encoder, tags, Some(Language::ENGLISH))?).collect())
}

/// Each text embedded inside every prompt template ([`TEMPLATES`]) and the embeddings averaged:
/// CLIP's zero-shot ensembling, for tags and short search queries.
pub fn ensembled(encoder: &dyn Encoder, texts: &[&str], language: Option<Language>) -> Result<Vec<Embedding>, ClipError> {
    let prompts: Vec<String> = texts.iter().flat_map(|t| TEMPLATES.iter().map(move |tpl| tpl.replace("{}", t.trim()))).collect();
    let mut embeddings = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(64) {
        embeddings.extend(encoder.encode_texts_in(&chunk.iter().map(String::as_str).collect::<Vec<_>>(), language)?);
    }
    Ok(embeddings.chunks(TEMPLATES.len()).map(|es| Embedding::weighted_sum(es.iter().map(|e| (1.0, e))).expect("templates exist")).collect())
}

/// Zero-shot classification (CLIP's recipe): the probability of each label (written in
/// `language`) as the model scores it ([`Scoring`]: a softmax over the labels, or each label's
/// own sigmoid), and the index of the most probable label.
pub fn zero_shot<S: AsRef<str>>(encoder: &dyn Encoder, image: &Embedding, labels: &[S], language: Option<Language>) -> Result<(Vec<f32>, usize), ClipError> {
    let texts = encoder.encode_texts_in(&labels.iter().map(AsRef::as_ref).collect::<Vec<_>>(), language)?;
    let cosines: Vec<f32> = texts.iter().map(|t| image.cosine(t)).collect();
    let probs = encoder.scoring().probabilities(&cosines);
    let best = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
    Ok((probs, best))
}

/// Adds the lines of a caption corpus, written in `language` (for models that read one), to the
/// store (embedded with `encoder`); returns how many new captions were added.
pub fn add_corpus(store: &Store, encoder: &dyn Encoder, lines: &[String], language: Option<Language>) -> Result<usize, DescribeError> {
    let existing: std::collections::HashSet<String> = store.texts(encoder.id(), CORPUS_KIND)?.into_iter().map(|(t, _)| t).collect();
    let mut new: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty() && !existing.contains(*l)).collect();
    new.sort_unstable();
    new.dedup();
    for chunk in new.chunks(64) {
        let embeddings = encoder.encode_texts_in(chunk, language)?;
        let mut changes = store.changes();
        for (text, e) in chunk.iter().zip(&embeddings) {
            changes.put_text(encoder.id(), CORPUS_KIND, text, e);
        }
        changes.commit()?;
    }
    Ok(new.len())
}

/// The `k` corpus captions closest to an image, best first.
pub fn best_captions(store: &Store, encoder: &dyn Encoder, image: &Embedding, k: usize) -> Result<Vec<Scored>, DescribeError> {
    let mut scored: Vec<Scored> = store
        .texts(encoder.id(), CORPUS_KIND)?
        .into_iter()
        .map(|(text, e)| Scored { score: image.cosine(&e), text })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.text.cmp(&b.text)));
    scored.truncate(k);
    Ok(scored)
}
