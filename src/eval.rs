//! Retrieval quality on a labelled folder: text→image and image→text recall@k and zero-shot
//! accuracy, computed exactly as `tools/train_tiny_clip/evaluate.py` (the Python reference) does.
//!
//! The folder holds images and a `manifest.json`:
//! `{"images":[{"file","caption","labels":{task: class}}], "zero_shot":{task:{"classes":[..],"prompts":[..]}}}`.

use std::collections::BTreeMap;
use std::path::Path;

use clipsight_indexer::embedding::{dot, softmax};
use clipsight_indexer::clip::Family;
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
    /// Queries with the files relevant to each: the ground truth of the relevance report.
    #[serde(default)]
    pub queries: Vec<RelevanceQuery>,
}

/// A query and the files relevant to it.
#[derive(Debug, Clone, Deserialize)]
pub struct RelevanceQuery {
    /// The query text.
    pub text: String,
    /// Files (as in `images`) relevant to it; the others are not.
    pub relevant: Vec<String>,
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
    /// How well relevance is judged, when the manifest has queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevance: Option<RelevanceReport>,
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
    EvalReport { images: n, t2i: recall(&t2i), i2t: recall(&i2t), zero_shot, relevance: None }
}

/// Precision, recall and F1 of a set of relevance decisions, averaged over queries (a query with
/// nothing relevant scores 1 when nothing is judged relevant, else 0).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Cut {
    /// The threshold, for a fixed cutoff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Mean precision.
    pub precision: f64,
    /// Mean recall.
    pub recall: f64,
    /// Mean F1.
    pub f1: f64,
}

/// The relevance figures: the per-query cutoff clipsight ships against the best fixed threshold
/// and the per-query oracle, on the same scores. The queries are split by position: the fixed
/// threshold is chosen on the even ones, and every figure is reported on the odd ones.
#[derive(Debug, Clone, Serialize)]
pub struct RelevanceReport {
    /// Queries reported on (the odd half).
    pub queries: usize,
    /// The per-query cutoff ([`crate::search::relevance`]).
    pub per_query: Cut,
    /// The single threshold with the best mean F1 on the even queries, applied to the odd ones.
    pub fixed: Cut,
    /// Each query's best threshold in hindsight: the upper bound of any cutoff of this ranking.
    pub oracle_f1: f64,
    /// Each query's ranking cut at its true number of relevant images: what a cutoff that knew
    /// how many images are relevant (but not which) would reach. Where it stands below the
    /// oracle, the oracle's lead is hindsight about the ranking's order, which no cutoff has.
    pub known_count_f1: f64,
    /// Share of the gap from `fixed` to the oracle that the per-query cutoff closes.
    pub gap_closed: f64,
    /// Share of the queries with relevant images for which none was judged relevant.
    pub none_relevant: f64,
    /// Mean recall@10 (relevant images in the top 10, over min(10, relevant)) of all the
    /// queries, as searches embed them.
    pub recall_at_10: f64,
    /// What prompt ensembling does to the queries it applies to.
    pub ensembling: Ensembling,
}

/// Recall@10 of the queries that searches ensemble (see [`crate::search::query_texts`]; none
/// for a model of another family than OpenAI CLIP's), embedded as typed and ensembled, over all
/// queries (not only the odd half).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ensembling {
    /// Queries ensembled.
    pub queries: usize,
    /// Their mean recall@10 embedded as typed.
    pub recall_at_10_as_typed: f64,
    /// Their mean recall@10 ensembled.
    pub recall_at_10_ensembled: f64,
}

/// The relevance report of `manifest.queries` (`None` without queries): `plain[q]` embeds query
/// q's text as typed, `searched[q]` as a search does; images as in [`evaluate`].
pub fn relevance(manifest: &Manifest, images: &[Embedding], plain: &[Embedding], searched: &[Embedding], family: Family) -> Option<RelevanceReport> {
    if manifest.queries.is_empty() {
        return None;
    }
    let index: std::collections::HashMap<&str, usize> = manifest.images.iter().enumerate().map(|(i, m)| (m.file.as_str(), i)).collect();
    let truth: Vec<Vec<bool>> = manifest
        .queries
        .iter()
        .map(|q| {
            let mut row = vec![false; images.len()];
            q.relevant.iter().filter_map(|f| index.get(f.as_str())).for_each(|&i| row[i] = true);
            row
        })
        .collect();
    let rankings = |queries: &[Embedding]| -> Vec<Ranking> {
        queries.iter().zip(&truth).map(|(q, t)| Ranking::new(images.iter().map(|i| dot(q.as_slice(), i.as_slice())).collect(), t)).collect()
    };
    let (plain, ranked) = (rankings(plain), rankings(searched));
    let background = crate::search::Background::new(spread(images, crate::search::relevance::BACKGROUND_SIZE).into_iter().cloned(), images.len());
    // As a search reads it: the best hits exactly, the background for the rest.
    let cutoffs: Vec<f32> = ranked
        .iter()
        .zip(searched)
        .map(|(r, q)| background.cutoff(q.as_slice(), &r.scores[..r.scores.len().min(crate::search::relevance::CUTOFF_HITS)]))
        .collect();
    let odd: Vec<usize> = (1..truth.len()).step_by(2).collect();
    let even: Vec<usize> = (0..truth.len()).step_by(2).collect();
    let cut_at = |queries: &[usize], threshold: &dyn Fn(usize) -> f32| mean_cut(&queries.iter().map(|&q| ranked[q].at(threshold(q))).collect::<Vec<_>>());
    // The fixed threshold: the best of 2,000 evenly spaced between the lowest and highest score.
    let (low, high) = even.iter().flat_map(|&q| ranked[q].scores.iter()).fold((f32::MAX, f32::MIN), |(l, h), &s| (l.min(s), h.max(s)));
    let threshold = (0..=2000)
        .map(|i| low + (high - low) * i as f32 / 2000.0)
        .map(|t| (t, cut_at(&even, &|_| t).f1))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0.0, |(t, _)| t);
    let per_query = cut_at(&odd, &|q| cutoffs[q]);
    let fixed = Cut { threshold: Some(threshold), ..cut_at(&odd, &|_| threshold) };
    let over = |queries: &[usize], f: &dyn Fn(usize) -> f64| if queries.is_empty() { 0.0 } else { queries.iter().map(|&q| f(q)).sum::<f64>() / queries.len() as f64 };
    let mean = |f: &dyn Fn(usize) -> f64| over(&odd, f);
    let ensembled: Vec<usize> = (0..truth.len()).filter(|&q| crate::search::is_ensembled(&manifest.queries[q].text, None, family)).collect();
    let oracle_f1 = mean(&|q| ranked[q].oracle());
    let known_count_f1 = mean(&|q| ranked[q].top(ranked[q].relevant).2);
    let with_truth: Vec<usize> = odd.iter().copied().filter(|&q| ranked[q].relevant > 0).collect();
    let none = with_truth.iter().filter(|&&q| ranked[q].judged(cutoffs[q]) == 0).count();
    Some(RelevanceReport {
        queries: odd.len(),
        per_query,
        fixed,
        oracle_f1,
        known_count_f1,
        gap_closed: if oracle_f1 > fixed.f1 { (per_query.f1 - fixed.f1) / (oracle_f1 - fixed.f1) } else { 0.0 },
        none_relevant: fraction(none, with_truth.len()),
        recall_at_10: mean(&|q| ranked[q].recall_at(10)),
        ensembling: Ensembling {
            queries: ensembled.len(),
            recall_at_10_as_typed: over(&ensembled, &|q| plain[q].recall_at(10)),
            recall_at_10_ensembled: over(&ensembled, &|q| ranked[q].recall_at(10)),
        },
    })
}

/// At most `n` of `items`, spread evenly (all of them when there are no more).
pub fn spread<T>(items: &[T], n: usize) -> Vec<&T> {
    if items.len() <= n {
        return items.iter().collect();
    }
    (0..n).map(|i| &items[i * items.len() / n]).collect()
}

/// One query's scores, best first, with the relevant images counted down the ranking.
struct Ranking {
    /// Scores, descending (ties: lower image index first).
    scores: Vec<f32>,
    /// `correct[i]`: relevant images among the best `i`.
    correct: Vec<usize>,
    /// Relevant images in all.
    relevant: usize,
}

impl Ranking {
    fn new(scores: Vec<f32>, truth: &[bool]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let mut correct = vec![0];
        for &i in &order {
            correct.push(correct.last().copied().unwrap_or(0) + usize::from(truth[i]));
        }
        Self { scores: order.iter().map(|&i| scores[i]).collect(), relevant: *correct.last().unwrap_or(&0), correct }
    }

    /// Images scoring at least `threshold`.
    fn judged(&self, threshold: f32) -> usize {
        self.scores.partition_point(|&s| s >= threshold)
    }

    /// Precision, recall and F1 of judging the images scoring at least `threshold` relevant (a
    /// query with nothing relevant: 1 when nothing is judged relevant, else 0).
    fn at(&self, threshold: f32) -> (f64, f64, f64) {
        self.top(self.judged(threshold))
    }

    /// Precision, recall and F1 of judging the best `judged` images relevant.
    fn top(&self, judged: usize) -> (f64, f64, f64) {
        let judged = judged.min(self.scores.len());
        let correct = self.correct[judged];
        let precision = if judged == 0 { 1.0 } else { correct as f64 / judged as f64 };
        let recall = if self.relevant == 0 { 1.0 } else { correct as f64 / self.relevant as f64 };
        let f1 = match (self.relevant, correct) {
            (0, _) => f64::from(u8::from(judged == 0)),
            (_, 0) => 0.0,
            _ => 2.0 * precision * recall / (precision + recall),
        };
        (precision, recall, f1)
    }

    /// The best F1 of any cutoff of this ranking.
    fn oracle(&self) -> f64 {
        if self.relevant == 0 {
            return 1.0;
        }
        (1..self.correct.len()).map(|n| 2.0 * self.correct[n] as f64 / (n + self.relevant) as f64).fold(0.0, f64::max)
    }

    /// Relevant images among the best `k`, over min(k, relevant); 1 when nothing is relevant.
    fn recall_at(&self, k: usize) -> f64 {
        if self.relevant == 0 {
            return 1.0;
        }
        self.correct[k.min(self.scores.len())] as f64 / self.relevant.min(k) as f64
    }
}

fn mean_cut(decisions: &[(f64, f64, f64)]) -> Cut {
    let n = decisions.len().max(1) as f64;
    Cut {
        threshold: None,
        precision: decisions.iter().map(|d| d.0).sum::<f64>() / n,
        recall: decisions.iter().map(|d| d.1).sum::<f64>() / n,
        f1: decisions.iter().map(|d| d.2).sum::<f64>() / n,
    }
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
    fn relevance_is_scored_against_a_fixed_threshold_and_the_oracle_on_the_odd_queries() {
        // Four images, two queries; each query's relevant images score high on its axis.
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "images": [{"file": "a", "caption": ""}, {"file": "b", "caption": ""}, {"file": "c", "caption": ""}, {"file": "d", "caption": ""}],
            "queries": [{"text": "x", "relevant": ["a", "b"]}, {"text": "y", "relevant": ["c"]}]
        }))
        .unwrap();
        let images = vec![e(&[1.0, 0.1]), e(&[0.9, 0.2]), e(&[0.1, 1.0]), e(&[0.5, 0.5])];
        let queries = vec![e(&[1.0, 0.0]), e(&[0.0, 1.0])];
        let r = relevance(&manifest, &images, &queries, &queries, Family::Clip).unwrap();
        assert_eq!(r.queries, 1, "the odd half: query y");
        assert_eq!(r.oracle_f1, 1.0, "c alone is a perfect cut");
        assert_eq!(r.known_count_f1, 1.0, "c is the best of one");
        assert!(r.per_query.f1 > 0.0 && r.per_query.f1 <= r.oracle_f1);
        assert_eq!(r.none_relevant, 0.0);
        assert_eq!(r.ensembling.queries, 2, "both one-word queries are ensembled for CLIP");
        assert!(relevance(&Manifest { queries: Vec::new(), ..manifest }, &images, &queries, &queries, Family::Clip).is_none());
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
