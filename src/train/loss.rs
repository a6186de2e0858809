//! The contrastive objective and the learning-rate schedule.
//!
//! InfoNCE over groups of one positive (column 0) and k negatives:
//! `L = −mean_g log softmax(s_g / τ)[0]`. The score `s` is either the paper's
//! reranker score `sigmoid(yes − no)` ∈ (0, 1) (default, for fidelity) or the
//! logit form `yes − no` (stronger gradients; see ../shared/NOTES.md).

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScoreForm {
    /// s = sigmoid(yes − no), as in the paper.
    #[default]
    Probability,
    /// s = yes − no.
    Logit,
}

/// Scores `[groups, 1 + k]` from yes/no logits `[groups, 1 + k, 2]` (yes first).
pub fn group_scores(yes_no: &Tensor, form: ScoreForm) -> candle_core::Result<Tensor> {
    let yes = yes_no.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
    let no = yes_no.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
    let margin = (yes - no)?;
    match form {
        ScoreForm::Logit => Ok(margin),
        ScoreForm::Probability => candle_nn::ops::sigmoid(&margin),
    }
}

/// InfoNCE with the positive in column 0 of `scores` `[groups, 1 + k]`.
pub fn info_nce(scores: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(&(scores / temperature)?, D::Minus1)?;
    log_probs.narrow(D::Minus1, 0, 1)?.mean_all()?.neg()
}

/// Linear warm-up to `peak`, then linear decay to `peak · final_fraction`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub final_fraction: f64,
}

impl LrSchedule {
    pub fn at(&self, step: usize) -> f64 {
        if self.warmup_steps > 0 && step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps.min(step)) as f64 / decay_steps as f64).min(1.0);
        self.peak * (1.0 - progress * (1.0 - self.final_fraction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn info_nce_matches_the_formula() {
        let scores = Tensor::new(&[[2.0f32, 0.0, 1.0], [0.5, 0.5, 0.5]], &Device::Cpu).unwrap();
        let loss = info_nce(&scores, 1.0).unwrap().to_scalar::<f32>().unwrap();
        let g0 = -(2.0f64 - (2.0f64.exp() + 1.0 + 1.0f64.exp()).ln());
        let g1 = (3.0f64).ln();
        assert!((f64::from(loss) - (g0 + g1) / 2.0).abs() < 1e-6, "{loss}");
        // Temperature sharpens: with τ = 0.5 the well-ranked group's loss falls.
        let sharp = info_nce(&scores.narrow(0, 0, 1).unwrap(), 0.5).unwrap().to_scalar::<f32>().unwrap();
        assert!(f64::from(sharp) < g0);
    }

    #[test]
    fn score_forms() {
        let yes_no = Tensor::new(&[[[3.0f32, 1.0], [0.0, 0.0]]], &Device::Cpu).unwrap();
        let logit = group_scores(&yes_no, ScoreForm::Logit).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(logit, vec![vec![2.0, 0.0]]);
        let prob = group_scores(&yes_no, ScoreForm::Probability).unwrap().to_vec2::<f32>().unwrap();
        assert!((prob[0][0] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6 && (prob[0][1] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let s = LrSchedule { peak: 1.0, warmup_steps: 4, total_steps: 14, final_fraction: 0.1 };
        assert_eq!(s.at(0), 0.25);
        assert_eq!(s.at(3), 1.0);
        assert_eq!(s.at(4), 1.0);
        assert!((s.at(9) - 0.55).abs() < 1e-12);
        assert!((s.at(14) - 0.1).abs() < 1e-12);
        assert!((s.at(100) - 0.1).abs() < 1e-12);
    }
}
