//! Retrieval quality on a labelled folder: text→image and image→text recall@k and zero-shot
//! accuracy, computed exactly as `tools/train_tiny_clip/evaluate.py` (the Python reference) does.
//!
//! The folder holds images and a `manifest.json`:
//! `{"images":[{"file","caption","labels":{task: class}}], "zero_shot":{task:{"classes":[..],"prompts":[..]}}}`.

use std::collections::BTreeMap;
use std::path::Path;

use clipsight_indexer::embedding::{dot, softmax};
use clipsight_indexer::Embedding;
use serde::{Deserialize, Serialize};

/// One labelled image.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestImage {
    /// File name relative to the folder.
    pub file: String,
    /// Its caption.
    pub caption: String,
    /// Class per zero-shot task (only for images that take part in the task).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A zero-shot task: one prompt per class.
#[derive(Debug, Clone, Deserialize)]
pub struct ZeroShotTask {
    /// Class names.
    pub classes: Vec<String>,
    /// Prompt of each class, same order.
    pub prompts: Vec<String>,
}

/// A parsed manifest.json.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The images.
    pub images: Vec<ManifestImage>,
    /// Zero-shot tasks by name.
    #[serde(default)]
    pub zero_shot: BTreeMap<String, ZeroShotTask>,
}

impl Manifest {
    /// Reads `DIR/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Recall at 1, 5 and 10.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Recall {
    /// Recall@1.
    pub r1: f64,
    /// Recall@5.
    pub r5: f64,
    /// Recall@10.
    pub r10: f64,
}

/// All figures of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Number of images.
    pub images: usize,
    /// Text → image retrieval.
    pub t2i: Recall,
    /// Image → text retrieval.
    pub i2t: Recall,
    /// Zero-shot accuracy per task.
    pub zero_shot: BTreeMap<String, f64>,
}

/// Computes the report from embeddings: `images[i]` and `captions[i]` belong to manifest image i;
/// `prompts[task][c]` to class c of that task.
pub fn evaluate(manifest: &Manifest, images: &[Embedding], captions: &[Embedding], prompts: &BTreeMap<String, Vec<Embedding>>) -> EvalReport {
    let n = images.len();
    let same = |i: usize, j: usize| manifest.images[i].caption == manifest.images[j].caption;
    // Rank of the best matching item for query i over all candidates, ties broken by lower index.
    let best_rank = |query: &Embedding, candidates: &[Embedding], i: usize| -> usize {
        let scores: Vec<f32> = candidates.iter().map(|c| dot(query.as_slice(), c.as_slice())).collect();
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        order.iter().position(|&j| same(i, j)).unwrap_or(usize::MAX)
    };
    let recall = |ranks: &[usize]| Recall {
        r1: fraction(ranks.iter().filter(|&&r| r < 1).count(), n),
        r5: fraction(ranks.iter().filter(|&&r| r < 5).count(), n),
        r10: fraction(ranks.iter().filter(|&&r| r < 10).count(), n),
    };
    let t2i: Vec<usize> = (0..n).map(|i| best_rank(&captions[i], images, i)).collect();
    let i2t: Vec<usize> = (0..n).map(|i| best_rank(&images[i], captions, i)).collect();
    let mut zero_shot = BTreeMap::new();
    for (task, spec) in &manifest.zero_shot {
        let Some(class_embeddings) = prompts.get(task) else { continue };
        let (mut correct, mut total) = (0usize, 0usize);
        for (i, img) in manifest.images.iter().enumerate() {
            let Some(label) = img.labels.get(task) else { continue };
            let Some(truth) = spec.classes.iter().position(|c| c == label) else { continue };
            total += 1;
            let predicted = class_embeddings
                .iter()
                .enumerate()
                .max_by(|a, b| images[i].cosine(a.1).total_cmp(&images[i].cosine(b.1)).then(b.0.cmp(&a.0)))
                .map(|(c, _)| c);
            if predicted == Some(truth) {
                correct += 1;
            }
        }
        zero_shot.insert(task.clone(), fraction(correct, total));
    }
    EvalReport { images: n, t2i: recall(&t2i), i2t: recall(&i2t), zero_shot }
}

fn fraction(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Cosine similarities of `images` (rows) × `texts` (columns).
pub fn similarity(images: &[Embedding], texts: &[Embedding]) -> Vec<Vec<f32>> {
    images.iter().map(|i| texts.iter().map(|t| i.cosine(t)).collect()).collect()
}

/// Symmetric InfoNCE of matched pairs (row i ↔ column i) over scaled similarities.
pub fn info_nce(similarity: &[Vec<f32>], scale: f32) -> Option<f32> {
    let n = similarity.len();
    if n == 0 || similarity.iter().any(|r| r.len() != n) {
        return None;
    }
    let ce = |logits: Vec<f32>, target: usize| -> f32 { -softmax(&logits)[target].max(f32::MIN_POSITIVE).ln() };
    let rows: f32 = (0..n).map(|i| ce(similarity[i].iter().map(|s| s * scale).collect(), i)).sum();
    let cols: f32 = (0..n).map(|j| ce((0..n).map(|i| similarity[i][j] * scale).collect(), j)).sum();
    Some((rows + cols) / (2.0 * n as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(v: &[f32]) -> Embedding {
        Embedding::normalized(v.to_vec())
    }

    #[test]
    fn perfect_embeddings_give_perfect_recall() {
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "images": [
                {"file": "a.png", "caption": "red", "labels": {"colour": "red"}},
                {"file": "b.png", "caption": "blue", "labels": {"colour": "blue"}}
            ],
            "zero_shot": {"colour": {"classes": ["red", "blue"], "prompts": ["a red thing", "a blue thing"]}}
        }))
        .unwrap();
        let images = vec![e(&[1.0, 0.0]), e(&[0.0, 1.0])];
        let prompts = BTreeMap::from([("colour".to_string(), images.clone())]);
        let r = evaluate(&manifest, &images, &images, &prompts);
        assert_eq!(r.t2i, Recall { r1: 1.0, r5: 1.0, r10: 1.0 });
        assert_eq!(r.zero_shot["colour"], 1.0);
        // Swapped captions: nothing at rank 1, everything by rank 2.
        let swapped = vec![images[1].clone(), images[0].clone()];
        let r = evaluate(&manifest, &images, &swapped, &prompts);
        assert_eq!((r.t2i.r1, r.t2i.r5), (0.0, 1.0));
    }
}
