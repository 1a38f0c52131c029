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
    },
}

impl Scoring {
    /// The probability of each candidate, in order.
    pub fn probabilities(&self, cosines: &[f32]) -> Vec<f32> {
        match *self {
            Scoring::Softmax { scale } => softmax(&cosines.iter().map(|c| scale * c).collect::<Vec<_>>()),
            Scoring::Sigmoid { scale, bias } => cosines.iter().map(|c| sigmoid(scale * c + bias)).collect(),
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
        let sig = Scoring::Sigmoid { scale: 10.0, bias: -2.0 }.probabilities(&cos);
        assert!((sig[0] - sigmoid(1.0)).abs() < 1e-7, "{sig:?}");
        // Adding a candidate changes no other sigmoid probability.
        let more = Scoring::Sigmoid { scale: 10.0, bias: -2.0 }.probabilities(&[0.30, 0.10, 0.28, 0.9]);
        assert_eq!(&more[..3], &sig[..]);
        assert!((sig.iter().sum::<f32>() - 1.0).abs() > 0.5, "independent: no need to sum to 1");
    }
}
