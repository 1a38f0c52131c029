//! A model directory in Immich's Hugging Face layout, validated before anything is loaded.
//!
//! ```text
//! config.json                  embed_dim, vision_cfg.image_size, text_cfg.context_length
//! visual/model.onnx            image tensor -> embedding
//! visual/preprocess_cfg.json   size, mean, std, interpolation, resize mode
//! textual/model.onnx           token ids -> embedding
//! textual/tokenizer.json       Hugging Face tokenizer
//! textual/tokenizer_config.json (optional) pad_token
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::id_cache::IdCache;
use super::json::read_json;
use super::preprocess::PreprocessConfig;
use super::scoring::Scoring;
use super::ClipError;
use crate::ModelId;

/// The multiplier of cosine similarities before a softmax when the model does not declare one
/// (OpenAI CLIP's learned temperature converges to this clamp).
pub const DEFAULT_LOGIT_SCALE: f32 = 100.0;

/// SigLIP's initial logit scale (Zhai et al., 2023: t' = log 10), used when a sigmoid-trained
/// model's config carries no trained one.
const SIGLIP_INITIAL_SCALE: f32 = 10.0;

/// What config.json says about the model (open_clip's model config format, as Immich saves it).
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Embedding size both towers must produce.
    pub embed_dim: usize,
    /// Input resolution of the image tower, if the config declares it.
    pub image_size: Option<u32>,
    /// Number of token ids the text tower takes.
    pub context_length: usize,
    /// How cosines become probabilities (see [`ModelConfig::scoring_origin`] for where the values
    /// come from).
    pub scoring: Scoring,
    /// Where each value of [`ModelConfig::scoring`] comes from, in words (`model info`).
    pub scoring_origin: String,
    /// Whether texts are cleaned by open_clip's `canonicalize` (`text_cfg.tokenizer_kwargs.clean`,
    /// SigLIP's): ASCII punctuation removed and lower case, before tokenising.
    pub canonicalize: bool,
}

#[derive(Deserialize)]
struct RawConfig {
    embed_dim: usize,
    #[serde(default)]
    vision_cfg: Option<RawVision>,
    #[serde(default)]
    text_cfg: Option<RawText>,
    #[serde(default)]
    logit_scale: Option<f32>,
    #[serde(default)]
    init_logit_bias: Option<f32>,
    #[serde(default)]
    logit_bias: Option<f32>,
}

#[derive(Deserialize)]
struct RawVision {
    #[serde(default)]
    image_size: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    context_length: Option<usize>,
    #[serde(default)]
    tokenizer_kwargs: Option<RawTokenizerKwargs>,
}

#[derive(Deserialize)]
struct RawTokenizerKwargs {
    #[serde(default)]
    clean: Option<String>,
}

/// The files of one model directory, checked to exist, and its parsed configuration.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The directory itself.
    pub root: PathBuf,
    /// Parsed config.json.
    pub config: ModelConfig,
    /// Parsed visual/preprocess_cfg.json.
    pub preprocess: PreprocessConfig,
    /// Token id used for padding (tokenizer_config.json's `pad_token`).
    pub pad_token: String,
}

impl ModelDir {
    /// Path of the image tower.
    pub fn visual_model(&self) -> PathBuf {
        self.root.join("visual/model.onnx")
    }

    /// Path of the text tower.
    pub fn textual_model(&self) -> PathBuf {
        self.root.join("textual/model.onnx")
    }

    /// Path of the tokenizer.
    pub fn tokenizer(&self) -> PathBuf {
        self.root.join("textual/tokenizer.json")
    }

    /// Opens and validates a model directory: every required file present and parseable.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, ClipError> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(ClipError::Model {
                path: root,
                message: "not a directory; pass a model directory in Immich's layout \
                          (config.json, visual/, textual/), or fetch one with `clipsight model pull NAME`"
                    .into(),
            });
        }
        for rel in [
            "config.json",
            "visual/model.onnx",
            "visual/preprocess_cfg.json",
            "textual/model.onnx",
            "textual/tokenizer.json",
        ] {
            let p = root.join(rel);
            if !p.is_file() {
                return Err(ClipError::Model {
                    path: p,
                    message: format!(
                        "missing {rel}; a model directory needs config.json, visual/model.onnx, \
                         visual/preprocess_cfg.json, textual/model.onnx and textual/tokenizer.json \
                         (re-download it with `clipsight model pull NAME`)"
                    ),
                });
            }
        }
        let config = parse_config(&root.join("config.json"))?;
        let preprocess = PreprocessConfig::from_file(&root.join("visual/preprocess_cfg.json"))?;
        if let Some(size) = config.image_size {
            if preprocess.size != (size, size) {
                tracing::warn!(
                    "config.json declares image_size {size} but preprocess_cfg.json says {:?}; \
                     preprocess_cfg.json wins",
                    preprocess.size
                );
            }
        }
        let pad_token = read_pad_token(&root.join("textual/tokenizer_config.json"))?;
        Ok(Self { root, config, preprocess, pad_token })
    }

    /// The content-derived id of this model: a hash of both ONNX files, remembered by their
    /// identity in the user's cache so a start need not read them (see [`IdCache`]).
    pub fn model_id(&self) -> Result<ModelId, ClipError> {
        IdCache::user().get_or_compute(&[self.visual_model(), self.textual_model()], || self.hash_id())
    }

    /// Hashes both ONNX files.
    fn hash_id(&self) -> Result<ModelId, ClipError> {
        let mut hasher = blake3::Hasher::new();
        for path in [self.visual_model(), self.textual_model()] {
            let mut file = std::fs::File::open(&path).map_err(|e| ClipError::io(&path, e))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(|e| ClipError::io(&path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        Ok(ModelId(id))
    }
}

fn parse_config(path: &Path) -> Result<ModelConfig, ClipError> {
    let raw: RawConfig = read_json(path)?;
    let image_size = raw.vision_cfg.as_ref().and_then(|v| v.image_size.clone()).and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_u64().map(|n| n as u32),
        serde_json::Value::Array(a) => a.first().and_then(|n| n.as_u64()).map(|n| n as u32),
        _ => None,
    });
    let context_length = raw.text_cfg.as_ref().and_then(|t| t.context_length).unwrap_or(77);
    let canonicalize = raw.text_cfg.as_ref().and_then(|t| t.tokenizer_kwargs.as_ref()).and_then(|k| k.clean.as_deref()) == Some("canonicalize");
    if raw.embed_dim == 0 || context_length < 2 {
        return Err(ClipError::Model {
            path: path.to_path_buf(),
            message: "embed_dim must be positive and text_cfg.context_length at least 2".into(),
        });
    }
    let (scoring, scoring_origin) = scoring(&raw);
    Ok(ModelConfig { embed_dim: raw.embed_dim, image_size, context_length, scoring, scoring_origin, canonicalize })
}

/// The scoring config.json implies, and where its values come from. A logit bias (`logit_bias`,
/// trained, or open_clip's `init_logit_bias` of SigLIP and NLLB-SigLIP configs) marks a model
/// trained with SigLIP's sigmoid loss; the trained scale and bias are model weights that Immich's
/// ONNX exports do not carry, so without `logit_scale`/`logit_bias` in config.json the initial
/// values are used: they rank candidates as the trained ones do, but their probabilities are
/// not calibrated.
fn scoring(raw: &RawConfig) -> (Scoring, String) {
    let scale_from = |fallback: f32, why: &str| match raw.logit_scale {
        Some(s) => (s, format!("scale {s} (config.json logit_scale)")),
        None => (fallback, format!("scale {fallback} ({why})")),
    };
    match (raw.logit_bias, raw.init_logit_bias) {
        (None, None) => {
            let (scale, origin) = scale_from(DEFAULT_LOGIT_SCALE, "no logit_scale in config.json: OpenAI CLIP's clamp");
            (Scoring::Softmax { scale }, format!("softmax at {origin}"))
        }
        (trained, initial) => {
            let (scale, scale_origin) = scale_from(SIGLIP_INITIAL_SCALE, "no trained logit_scale in config.json: SigLIP's initial value");
            let (bias, bias_origin) = match (trained, initial) {
                (Some(b), _) => (b, format!("bias {b} (config.json logit_bias)")),
                (None, b) => {
                    let b = b.expect("a bias of some kind: (None, None) is matched above");
                    (b, format!("bias {b} (no trained logit_bias in config.json: its init_logit_bias)"))
                }
            };
            let calibrated = raw.logit_scale.is_some() && trained.is_some();
            let note = if calibrated {
                ""
            } else {
                "; initial values rank labels as trained ones do, but their probabilities are not calibrated \
                 (automatic tags fall back to a softmax over the vocabulary): add the trained logit_scale and \
                 logit_bias to config.json"
            };
            (Scoring::Sigmoid { scale, bias, calibrated }, format!("sigmoid, {scale_origin}, {bias_origin}{note}"))
        }
    }
}

/// `pad_token` of tokenizer_config.json: a string, or `{"content": ...}`. Without the file,
/// OpenAI CLIP's `<|endoftext|>`.
fn read_pad_token(path: &Path) -> Result<String, ClipError> {
    const DEFAULT: &str = "<|endoftext|>";
    if !path.is_file() {
        return Ok(DEFAULT.to_string());
    }
    let value: serde_json::Value = read_json(path)?;
    Ok(match value.get("pad_token") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(obj) => obj
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or(DEFAULT)
            .to_string(),
        None => DEFAULT.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_id_hex_round_trips() {
        let id = ModelId([7; 16]);
        assert_eq!(ModelId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(ModelId::from_hex("zz"), None);
    }

    #[test]
    fn the_model_id_is_the_hash_of_both_onnx_files_cached_or_not() {
        // The package's directory as the test runs (not as it was built: a test binary a shared
        // target directory kept from another checkout reads this checkout's fixture).
        let package = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test names the package's directory");
        let dir = ModelDir::open(format!("{package}/../tests/fixtures/models/clipsight-tiny")).unwrap();
        let hashed = dir.hash_id().unwrap();
        assert_eq!(dir.model_id().unwrap(), hashed);
        assert_eq!(dir.model_id().unwrap(), hashed, "from the cache");
    }

    fn config(json: &str) -> ModelConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        parse_config(&path).unwrap()
    }

    #[test]
    fn scoring_follows_the_training_loss_and_says_where_its_values_come_from() {
        let clip = config(r#"{"embed_dim": 8}"#);
        assert_eq!(clip.scoring, Scoring::Softmax { scale: 100.0 });
        assert!(clip.scoring_origin.contains("OpenAI CLIP's clamp"), "{}", clip.scoring_origin);
        assert_eq!(config(r#"{"embed_dim": 8, "logit_scale": 25.5}"#).scoring, Scoring::Softmax { scale: 25.5 });
        // Immich's SigLIP exports: open_clip's config, the initial bias only.
        let immich = config(r#"{"embed_dim": 8, "init_logit_bias": -10, "text_cfg": {"context_length": 64, "tokenizer_kwargs": {"clean": "canonicalize"}}}"#);
        assert_eq!(immich.scoring, Scoring::Sigmoid { scale: 10.0, bias: -10.0, calibrated: false });
        assert!(immich.scoring_origin.contains("not calibrated"), "{}", immich.scoring_origin);
        assert!(immich.canonicalize && immich.context_length == 64);
        let trained = config(r#"{"embed_dim": 8, "init_logit_bias": -10, "logit_scale": 117.3, "logit_bias": -12.9}"#);
        assert_eq!(trained.scoring, Scoring::Sigmoid { scale: 117.3, bias: -12.9, calibrated: true });
        assert!(trained.scoring_origin.contains("config.json logit_bias") && !trained.scoring_origin.contains("not calibrated"), "{}", trained.scoring_origin);
        assert!(!trained.canonicalize);
    }

    #[test]
    fn missing_file_error_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let err = ModelDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("visual/model.onnx"), "{err}");
        assert!(err.contains("model pull"), "{err}");
    }
}
