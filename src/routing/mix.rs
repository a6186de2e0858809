//! Turning routing probabilities into reranking scores. Hard routing (the paper) takes the score
//! of the most probable expert; soft routing (an option beyond the paper) mixes every expert's
//! score by the router's probabilities, `s(q, c) = Σ_e p(e | q) · s_e(q, c)`.

use serde::{Deserialize, Serialize};

use super::router::argmax;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    /// The top expert's scores.
    #[default]
    Hard,
    /// Probability-weighted mixture of all experts' scores.
    Soft,
}

/// Candidate scores of one query from the per-expert scores `expert_scores[e][c]` (same label
/// order as `probabilities`).
pub fn routed_scores(probabilities: &[f32], expert_scores: &[Vec<f32>], mode: RoutingMode) -> anyhow::Result<Vec<f32>> {
    anyhow::ensure!(
        probabilities.len() == expert_scores.len() && !expert_scores.is_empty(),
        "{} routing probabilities for {} experts",
        probabilities.len(),
        expert_scores.len()
    );
    let n = expert_scores[0].len();
    anyhow::ensure!(expert_scores.iter().all(|s| s.len() == n), "experts scored different numbers of candidates");
    Ok(match mode {
        RoutingMode::Hard => expert_scores[argmax(probabilities)].clone(),
        RoutingMode::Soft => (0..n).map(|c| probabilities.iter().zip(expert_scores).map(|(p, s)| p * s[c]).sum()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_picks_the_top_expert_and_soft_mixes() {
        let experts = vec![vec![0.9, 0.1], vec![0.2, 0.6]];
        assert_eq!(routed_scores(&[0.3, 0.7], &experts, RoutingMode::Hard).unwrap(), vec![0.2, 0.6]);
        let soft = routed_scores(&[0.3, 0.7], &experts, RoutingMode::Soft).unwrap();
        assert!((soft[0] - (0.27 + 0.14)).abs() < 1e-6 && (soft[1] - (0.03 + 0.42)).abs() < 1e-6);
        // With a one-hot router, soft equals hard.
        assert_eq!(routed_scores(&[0.0, 1.0], &experts, RoutingMode::Soft).unwrap(), routed_scores(&[0.0, 1.0], &experts, RoutingMode::Hard).unwrap());
        assert!(routed_scores(&[1.0], &experts, RoutingMode::Hard).is_err());
    }
}
