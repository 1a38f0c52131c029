//! How a model turns cosines into probabilities (zero-shot labels, automatic tags), as it was
//! trained: CLIP's contrastive loss makes a softmax over the candidates at the model's logit
//! scale (probabilities that sum to 1, "which of these"); SigLIP's sigmoid loss makes each
//! candidate an independent yes/no, `sigmoid(scale · cos + bias)` ("is this one true").

use crate::embedding::softmax;

/// A model's scoring of image-text cosines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// `softmax(scale · cos)` over the candidates.
    Softmax {
        /// The logit scale (exponentiated temperature).
        scale: f32,
    },
    /// `sigmoid(scale · cos + bias)`, each candidate on its own.
    Sigmoid {
        /// The logit scale.
        scale: f32,
        /// The learned bias.
        bias: f32,
        /// Whether scale and bias are the trained values (else SigLIP's initial ones: the
        /// ranking holds, the probabilities are far too small).
        calibrated: bool,
    },
}

impl Scoring {
    /// The probability of each candidate, in order.
    pub fn probabilities(&self, cosines: &[f32]) -> Vec<f32> {
        match *self {
            Scoring::Softmax { scale } => softmax(&cosines.iter().map(|c| scale * c).collect::<Vec<_>>()),
            Scoring::Sigmoid { scale, bias, .. } => cosines.iter().map(|c| sigmoid(scale * c + bias)).collect(),
        }
    }

    /// The scoring that picks automatic tags: this one, except that an uncalibrated sigmoid
    /// (Immich's SigLIP exports lack the trained values) would keep no tag at its threshold, so
    /// its tags are ranked by a softmax over the vocabulary at `fallback_scale` instead.
    pub fn for_tags(self, fallback_scale: f32) -> Scoring {
        match self {
            Scoring::Sigmoid { calibrated: false, .. } => Scoring::Softmax { scale: fallback_scale },
            other => other,
        }
    }

    /// The multiplier of cosines (also the temperature of an InfoNCE loss over them).
    pub fn scale(&self) -> f32 {
        match *self {
            Scoring::Softmax { scale } | Scoring::Sigmoid { scale, .. } => scale,
        }
    }

    /// `softmax` or `sigmoid`, as the API names it.
    pub fn name(&self) -> &'static str {
        match self {
            Scoring::Softmax { .. } => "softmax",
            Scoring::Sigmoid { .. } => "sigmoid",
        }
    }

    /// Whether the probabilities of several candidates sum to 1 (they compete).
    pub fn exclusive(&self) -> bool {
        matches!(self, Scoring::Softmax { .. })
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_candidates_compete_and_sigmoid_ones_do_not() {
        let cos = [0.30, 0.10, 0.28];
        let soft = Scoring::Softmax { scale: 100.0 }.probabilities(&cos);
        assert!((soft.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let sig = Scoring::Sigmoid { scale: 10.0, bias: -2.0, calibrated: true }.probabilities(&cos);
        assert!((sig[0] - sigmoid(1.0)).abs() < 1e-7, "{sig:?}");
        // Adding a candidate changes no other sigmoid probability.
        let more = Scoring::Sigmoid { scale: 10.0, bias: -2.0, calibrated: true }.probabilities(&[0.30, 0.10, 0.28, 0.9]);
        assert_eq!(&more[..3], &sig[..]);
        assert!((sig.iter().sum::<f32>() - 1.0).abs() > 0.5, "independent: no need to sum to 1");
    }

    #[test]
    fn tags_of_an_uncalibrated_sigmoid_fall_back_to_a_softmax() {
        let initial = Scoring::Sigmoid { scale: 10.0, bias: -10.0, calibrated: false };
        assert!(initial.probabilities(&[0.3]).iter().all(|p| *p < 0.001), "SigLIP's initial values: no tag would pass 0.5");
        assert_eq!(initial.for_tags(100.0), Scoring::Softmax { scale: 100.0 });
        let trained = Scoring::Sigmoid { scale: 36.9, bias: -22.8, calibrated: true };
        assert_eq!(trained.for_tags(100.0), trained);
        assert_eq!(Scoring::Softmax { scale: 25.0 }.for_tags(100.0), Scoring::Softmax { scale: 25.0 });
    }
}
