//! The encoder seam: what indexing, search and image→text need from a model — prepared images
//! and texts in, unit embeddings out — so that they run with the ONNX models ([`Clip`]) or,
//! in unit tests, with [`HashEncoder`], which needs no model and no ONNX Runtime.

use crate::ModelId;
use crate::clip::{Clip, ClipError, Family, Interpolation, Language, PreparedImage, PreprocessConfig, ResizeMode, Scoring};
use crate::embedding::Embedding;

/// A model that embeds images and texts into one space.
pub trait Encoder: Send + Sync {
    /// The model's identity (embeddings of different models are never compared).
    fn id(&self) -> ModelId;

    /// Embedding dimensions.
    fn dim(&self) -> usize;

    /// How the model turns cosines into probabilities (zero-shot labels, tags, InfoNCE).
    fn scoring(&self) -> Scoring;

    /// How images are brought to the model's input.
    fn preprocess(&self) -> &PreprocessConfig;

    /// Unit embeddings of prepared images, in order.
    fn encode_images(&self, images: &[PreparedImage]) -> Result<Vec<Embedding>, ClipError>;

    /// Unit embeddings of texts in `language` (for models that read one; see
    /// [`Encoder::takes_language`]), in order.
    fn encode_texts_in(&self, texts: &[&str], language: Option<Language>) -> Result<Vec<Embedding>, ClipError>;

    /// Unit embeddings of texts whose language is not given, in order.
    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Embedding>, ClipError> {
        self.encode_texts_in(texts, None)
    }

    /// Whether texts are embedded differently by language (NLLB-CLIP's language codes).
    fn takes_language(&self) -> bool {
        false
    }

    /// The model family (how texts go in and scores come out).
    fn family(&self) -> Result<Family, ClipError>;

    /// Frees what embedding images holds (a model's image tower) when a job needs only texts
    /// from here on; the next image loads it again. Nothing to free by default.
    fn release_image_tower(&self) {}
}

impl Encoder for Clip {
    fn id(&self) -> ModelId {
        Clip::id(self)
    }

    fn dim(&self) -> usize {
        Clip::dim(self)
    }

    fn scoring(&self) -> Scoring {
        Clip::scoring(self)
    }

    fn preprocess(&self) -> &PreprocessConfig {
        Clip::preprocess(self)
    }

    fn encode_images(&self, images: &[PreparedImage]) -> Result<Vec<Embedding>, ClipError> {
        Clip::encode_images(self, images)
    }

    fn encode_texts_in(&self, texts: &[&str], language: Option<Language>) -> Result<Vec<Embedding>, ClipError> {
        Clip::encode_texts_in(self, texts, language)
    }

    fn takes_language(&self) -> bool {
        self.tokenizer().takes_language()
    }

    fn family(&self) -> Result<Family, ClipError> {
        Clip::family(self)
    }

    fn release_image_tower(&self) {
        Clip::release_image_tower(self)
    }
}

/// A deterministic encoder without a model, for tests of everything around the model (index
/// planning, resume, search, describe) that should not need ONNX Runtime: an image's embedding
/// is its mean colour per channel and quadrant (so identical pixels embed identically and
/// similar pictures are near), a text's is a hash of its words (so equal texts embed equally).
pub struct HashEncoder {
    id: ModelId,
    preprocess: PreprocessConfig,
}

/// Dimensions of [`HashEncoder`]'s embeddings: 3 channels × 4 quadrants.
const HASH_DIM: usize = 12;

impl HashEncoder {
    /// An encoder whose model id is `id`, preparing images at 16×16.
    pub fn new(id: ModelId) -> Self {
        let preprocess = PreprocessConfig {
            size: (16, 16),
            mean: [0.0; 3],
            std: [1.0; 3],
            interpolation: Interpolation::Bilinear,
            resize_mode: ResizeMode::Squash,
            fill_color: [0; 3],
        };
        Self { id, preprocess }
    }

    fn image(image: &PreparedImage) -> Embedding {
        let (w, h) = (image.width.max(1) as usize, image.height.max(1) as usize);
        let mut sums = [0f32; HASH_DIM];
        for (i, px) in image.pixels.chunks_exact(3).enumerate() {
            let quadrant = 2 * usize::from(i / w >= h / 2) + usize::from(i % w >= w / 2);
            for (c, v) in px.iter().enumerate() {
                sums[quadrant * 3 + c] += f32::from(*v) + 1.0;
            }
        }
        Embedding::normalized(sums.to_vec())
    }

    fn text(text: &str) -> Embedding {
        let mut v = [0f32; HASH_DIM];
        for word in text.split_whitespace() {
            let h = blake3::hash(word.to_lowercase().as_bytes());
            for (slot, b) in v.iter_mut().zip(h.as_bytes()) {
                *slot += f32::from(*b) - 127.5;
            }
        }
        Embedding::normalized(v.to_vec())
    }
}

impl Encoder for HashEncoder {
    fn id(&self) -> ModelId {
        self.id
    }

    fn dim(&self) -> usize {
        HASH_DIM
    }

    fn scoring(&self) -> Scoring {
        Scoring::Softmax { scale: 100.0 }
    }

    fn preprocess(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    fn encode_images(&self, images: &[PreparedImage]) -> Result<Vec<Embedding>, ClipError> {
        Ok(images.iter().map(Self::image).collect())
    }

    fn encode_texts_in(&self, texts: &[&str], _language: Option<Language>) -> Result<Vec<Embedding>, ClipError> {
        Ok(texts.iter().map(|t| Self::text(t)).collect())
    }

    /// Scored as OpenAI CLIP scores (a softmax), so searches treat it as one.
    fn family(&self) -> Result<Family, ClipError> {
        Ok(Family::Clip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(rgb: [u8; 3]) -> PreparedImage {
        PreparedImage { width: 4, height: 4, pixels: rgb.repeat(16) }
    }

    #[test]
    fn the_hash_encoder_is_deterministic_and_tells_pictures_and_words_apart() {
        let e = HashEncoder::new(ModelId([1; 16]));
        let [red, red_again, blue] = <[Embedding; 3]>::try_from(e.encode_images(&[flat([200, 0, 0]), flat([200, 0, 0]), flat([0, 0, 200])]).unwrap()).unwrap();
        assert_eq!(red, red_again);
        assert!(red.cosine(&blue) < 0.9);
        let texts = e.encode_texts(&["a red car", "A RED car", "snowy mountains"]).unwrap();
        assert_eq!(texts[0], texts[1]);
        assert!(texts[0].cosine(&texts[2]) < 0.99);
        assert_eq!(texts[0].as_slice().len(), e.dim());
    }
}
