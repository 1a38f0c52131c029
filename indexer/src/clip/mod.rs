//! CLIP on ONNX Runtime: a model directory in Immich's layout, its two towers, tokenizer and
//! preprocessing, behind [`Clip::encode_images`] and [`Clip::encode_texts`].

mod id_cache;
mod json;
mod language;
mod model_dir;
mod preprocess;
mod runtime;
mod scoring;
mod session;
mod tokenize;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub use id_cache::user_cache_dir;
pub use language::{Language, Resolved};
pub use model_dir::{ModelConfig, ModelDir, DEFAULT_LOGIT_SCALE};
pub use scoring::Scoring;
pub use preprocess::{Interpolation, PreparedImage, PreprocessConfig, ResizeMode};
pub use runtime::{locate_library, Device, RuntimeOptions};
pub use session::{release_freed_heap, ActiveDevice, IdType, ImageLayout};
pub use tokenize::{TextTokenizer, Tokens};

use session::{ImageEncoder, TextEncoder};

use crate::embedding::Embedding;
use crate::ModelId;

/// The model families Immich publishes, told apart by [`Clip::family`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI / open_clip CLIP: English text, softmax at the logit scale.
    Clip,
    /// M-CLIP: a multilingual text tower (XLM-R, LaBSE) distilled into a CLIP image space.
    MClip,
    /// NLLB-CLIP: NLLB's multilingual text tower; a FLORES-200 language code before the text.
    NllbClip,
    /// SigLIP / SigLIP2: trained with a sigmoid loss and a learned bias.
    SigLip,
}

impl Family {
    /// How `model info` names it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Clip => "CLIP (OpenAI/open_clip)",
            Family::MClip => "M-CLIP",
            Family::NllbClip => "NLLB-CLIP",
            Family::SigLip => "SigLIP",
        }
    }

    /// The languages its text tower reads, and how it is told which (README: *Model families
    /// and languages*).
    pub fn languages(self) -> &'static str {
        match self {
            Family::Clip => "the text tower's (English for OpenAI's and most open_clip models)",
            Family::MClip => "the text tower's (XLM-R: about 100; LaBSE: 109); no language code needed",
            Family::NllbClip => "NLLB's 200, each told by a FLORES-200 code written before the text: --lang / lang= / the browser's language",
            Family::SigLip => "the text tower's (English; the i18n and SigLIP2 models: many); texts canonicalized when config.json asks",
        }
    }
}

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The model directory or one of its files is wrong; the message says how to fix it.
    #[error("{}: {message}", path.display())]
    Model {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// ONNX Runtime could not be loaded or failed to run.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// An image could not be prepared.
    #[error("image: {0}")]
    Image(String),
    /// A text could not be tokenised.
    #[error("text: {0}")]
    Text(String),
}

impl ClipError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

/// A loaded CLIP model. The towers' sessions are created on first use, so a text-only query
/// never pays for loading the image tower. Safe to share between threads.
pub struct Clip {
    dir: ModelDir,
    id: ModelId,
    options: RuntimeOptions,
    tokenizer: TextTokenizer,
    /// The image tower, loaded on first use; [`Clip::release_image_tower`] drops it (a later use
    /// loads it again).
    visual: Mutex<Option<Arc<Mutex<ImageEncoder>>>>,
    textual: OnceLock<Mutex<TextEncoder>>,
    /// Held while a tower loads, so concurrent first uses wait for one load instead of each
    /// creating a session.
    loading: Mutex<()>,
}

impl Clip {
    /// Opens a model directory: validates the layout, reads configs and the tokenizer, and derives
    /// the model id. ONNX sessions are created lazily.
    pub fn open(dir: impl AsRef<Path>, options: RuntimeOptions) -> Result<Self, ClipError> {
        let dir = ModelDir::open(dir)?;
        let tokenizer = TextTokenizer::from_file(&dir.tokenizer(), dir.config.context_length, &dir.pad_token, dir.config.canonicalize)?;
        let id = dir.model_id()?;
        Ok(Self { dir, id, options, tokenizer, visual: Mutex::new(None), textual: OnceLock::new(), loading: Mutex::new(()) })
    }

    /// Opens a model and loads both towers now, checking that they agree with each other and
    /// with config.json. What `model info` and long-running commands use.
    pub fn load(dir: impl AsRef<Path>, options: RuntimeOptions) -> Result<Self, ClipError> {
        let clip = Self::open(dir, options)?;
        clip.visual()?;
        clip.textual()?;
        Ok(clip)
    }

    /// The content-derived model id.
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// The options its sessions are created with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// The model directory and its parsed configuration.
    pub fn dir(&self) -> &ModelDir {
        &self.dir
    }

    /// Embedding size.
    pub fn dim(&self) -> usize {
        self.dir.config.embed_dim
    }

    /// How cosines become probabilities: softmax at the logit scale, or SigLIP's sigmoid with
    /// scale and bias (config.json; see [`ModelConfig::scoring_origin`]).
    pub fn scoring(&self) -> Scoring {
        self.dir.config.scoring
    }

    /// The preprocessing this model needs.
    pub fn preprocess(&self) -> &PreprocessConfig {
        &self.dir.preprocess
    }

    /// The tokenizer, configured for this model.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The device the image tower runs on (loads it if needed).
    pub fn device(&self) -> Result<ActiveDevice, ClipError> {
        Ok(lock(&*self.visual()?).device)
    }

    /// Input layout of the image tower (loads it if needed).
    pub fn image_layout(&self) -> Result<ImageLayout, ClipError> {
        Ok(lock(&*self.visual()?).layout())
    }

    /// Id element type of the text tower (loads it if needed).
    pub fn id_type(&self) -> Result<IdType, ClipError> {
        Ok(lock(self.textual()?).id_type())
    }

    /// Which of the model families Immich publishes this is, from its files: a tokenizer with
    /// FLORES-200 language tokens is NLLB-CLIP's, a text tower with an `attention_mask` input is
    /// M-CLIP's, a config with a logit bias is SigLIP's; otherwise OpenAI/open_clip CLIP (loads
    /// the text tower if needed).
    pub fn family(&self) -> Result<Family, ClipError> {
        Ok(if self.tokenizer.takes_language() {
            Family::NllbClip
        } else if lock(self.textual()?).takes_mask() {
            Family::MClip
        } else if matches!(self.scoring(), Scoring::Sigmoid { .. }) {
            Family::SigLip
        } else {
            Family::Clip
        })
    }

    /// The text tower's inputs as `name:type` (`text:int32`; M-CLIP: `input_ids:int32`,
    /// `attention_mask:int32`), read from its graph (loads it if needed).
    pub fn text_inputs(&self) -> Result<Vec<String>, ClipError> {
        Ok(lock(self.textual()?).inputs())
    }

    /// Embeds prepared images (see [`PreprocessConfig::prepare`]); one unit vector each.
    pub fn encode_images(&self, images: &[PreparedImage]) -> Result<Vec<Embedding>, ClipError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let out = lock(&*self.visual()?).encode(&self.dir.preprocess, images, &self.dir.visual_model())?;
        self.check_dim(&out, &self.dir.visual_model())?;
        Ok(out)
    }

    /// Embeds texts written without saying their language; one unit vector each.
    pub fn encode_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Embedding>, ClipError> {
        self.encode_texts_in(texts, None)
    }

    /// Embeds texts in `language` (read by NLLB-CLIP, see [`TextTokenizer::encode`]); one unit
    /// vector each.
    pub fn encode_texts_in<S: AsRef<str>>(&self, texts: &[S], language: Option<Language>) -> Result<Vec<Embedding>, ClipError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = texts
            .iter()
            .map(|t| self.tokenizer.encode(t.as_ref(), language))
            .collect::<Result<Vec<_>, _>>()?;
        let out = lock(self.textual()?).encode(&tokens, &self.dir.textual_model())?;
        self.check_dim(&out, &self.dir.textual_model())?;
        Ok(out)
    }

    fn check_dim(&self, out: &[Embedding], path: &Path) -> Result<(), ClipError> {
        match out.first() {
            Some(e) if e.dim() != self.dim() => Err(dim_mismatch(path, e.dim(), self.dim())),
            _ => Ok(()),
        }
    }

    /// Lets the image tower go before the text tower loads, for a job that needs only texts from
    /// here on (the tag vocabulary after the photos of a first run), so the process never holds
    /// both. Nothing happens when the text tower is already loaded (a server holds both anyway,
    /// and would only reload the image tower). An encode still running keeps its session until it
    /// ends; the next image loads the tower again.
    pub fn release_image_tower(&self) {
        if self.textual.get().is_some() {
            return;
        }
        let _loading = lock(&self.loading);
        drop(lock(&self.visual).take());
        session::release_freed_heap();
    }

    fn visual(&self) -> Result<Arc<Mutex<ImageEncoder>>, ClipError> {
        if let Some(v) = lock(&self.visual).as_ref() {
            return Ok(Arc::clone(v));
        }
        let _loading = lock(&self.loading);
        if let Some(v) = lock(&self.visual).as_ref() {
            return Ok(Arc::clone(v));
        }
        let path = self.dir.visual_model();
        let enc = ImageEncoder::load(&path, &self.options, &self.dir.preprocess)?;
        check_declared_dim(&path, enc.output_dim(), self.dim())?;
        let enc = Arc::new(Mutex::new(enc));
        *lock(&self.visual) = Some(Arc::clone(&enc));
        Ok(enc)
    }

    fn textual(&self) -> Result<&Mutex<TextEncoder>, ClipError> {
        if let Some(t) = self.textual.get() {
            return Ok(t);
        }
        let _loading = lock(&self.loading);
        if let Some(t) = self.textual.get() {
            return Ok(t);
        }
        let path = self.dir.textual_model();
        let enc = TextEncoder::load(&path, &self.options, self.dir.config.context_length)?;
        check_declared_dim(&path, enc.output_dim(), self.dim())?;
        Ok(self.textual.get_or_init(|| Mutex::new(enc)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn check_declared_dim(path: &Path, declared: Option<usize>, expected: usize) -> Result<(), ClipError> {
    match declared {
        Some(d) if d != expected => Err(dim_mismatch(path, d, expected)),
        _ => Ok(()),
    }
}

fn dim_mismatch(path: &Path, got: usize, expected: usize) -> ClipError {
    ClipError::Model {
        path: path.to_path_buf(),
        message: format!(
            "produces {got}-dimensional embeddings but config.json's embed_dim is {expected}; \
             both towers must match embed_dim (is one tower from another model?)"
        ),
    }
}
