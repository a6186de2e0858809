//! Paired significance tests between two systems' per-query scores, as ranx
//! offers them: Fisher's randomization test (ranx's `"fisher"`) and the paired
//! Student t-test. Both are two-sided.
//!
//! The randomization test swaps the two systems' scores of each query with
//! probability ½ (`permutations` times, seeded through [`crate::util::seeded_rng`])
//! and reports the share of permutations whose absolute mean difference is at
//! least the observed one — ranx's `counter / n_permutations`, so identical
//! systems get p = 1.

use anyhow::{bail, ensure};
use rand::Rng;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{Evaluation, Metric};

/// Default number of permutations of the randomization test.
pub const DEFAULT_PERMUTATIONS: usize = 10_000;

/// The outcome of a paired test: the test statistic (mean difference `b − a` for
/// the randomization test, t for the t-test) and the two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}

fn check_paired(a: &[f64], b: &[f64]) -> anyhow::Result<()> {
    ensure!(a.len() == b.len(), "paired test needs as many scores for each system ({} vs {})", a.len(), b.len());
    ensure!(!a.is_empty(), "paired test needs at least one query");
    ensure!(a.iter().chain(b).all(|x| x.is_finite()), "paired test got a non-finite score");
    Ok(())
}

/// Two-sided paired randomization (permutation) test of `a` against `b`.
pub fn randomization_test(a: &[f64], b: &[f64], permutations: usize, seed: u64) -> anyhow::Result<TestResult> {
    check_paired(a, b)?;
    ensure!(permutations > 0, "randomization test needs at least one permutation");
    let differences: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let n = differences.len() as f64;
    let observed: f64 = differences.iter().sum::<f64>() / n;
    // Swapping a query's two scores flips the sign of its difference.
    let tolerance = 1e-12 * differences.iter().map(|d| d.abs()).sum::<f64>().max(1.0);
    let mut rng = crate::util::seeded_rng(seed, 0x5167);
    let mut at_least_as_extreme = 0usize;
    for _ in 0..permutations {
        let permuted: f64 = differences.iter().map(|&d| if rng.random_bool(0.5) { -d } else { d }).sum::<f64>() / n;
        if permuted.abs() >= observed.abs() - tolerance {
            at_least_as_extreme += 1;
        }
    }
    Ok(TestResult { statistic: observed, p_value: at_least_as_extreme as f64 / permutations as f64 })
}

/// Two-sided paired Student t-test of `a` against `b` (t = mean(b − a) / (sd / √n),
/// n − 1 degrees of freedom). Identical systems give t = 0, p = 1; a constant
/// nonzero difference gives t = ±∞, p = 0.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> anyhow::Result<TestResult> {
    check_paired(a, b)?;
    if a.len() < 2 {
        bail!("paired t-test needs at least two queries");
    }
    let differences: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let n = differences.len() as f64;
    let mean = differences.iter().sum::<f64>() / n;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let standard_error = (variance / n).sqrt();
    if standard_error == 0.0 {
        return Ok(if mean == 0.0 {
            TestResult { statistic: 0.0, p_value: 1.0 }
        } else {
            TestResult { statistic: mean.signum() * f64::INFINITY, p_value: 0.0 }
        });
    }
    let t = mean / standard_error;
    let distribution = StudentsT::new(0.0, 1.0, n - 1.0)?;
    let p_value = (2.0 * distribution.sf(t.abs())).min(1.0);
    Ok(TestResult { statistic: t, p_value })
}

/// One metric's per-query values of two evaluations, paired by query id; both
/// must cover the same queries (evaluate both runs against the same qrels).
pub fn paired_values(a: &Evaluation, b: &Evaluation, metric: Metric) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    ensure!(
        a.per_query.keys().eq(b.per_query.keys()),
        "the two evaluations cover different queries: evaluate both runs against the same qrels"
    );
    ensure!(a.mean.contains_key(&metric) && b.mean.contains_key(&metric), "metric {metric} was not computed for both runs");
    Ok((a.values(metric), b.values(metric)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_systems_give_p_one() {
        let a = [0.1, 0.5, 0.9, 0.3, 0.0, 0.7];
        let r = randomization_test(&a, &a, DEFAULT_PERMUTATIONS, 42).unwrap();
        assert_eq!((r.statistic, r.p_value), (0.0, 1.0));
        let t = paired_t_test(&a, &a).unwrap();
        assert_eq!((t.statistic, t.p_value), (0.0, 1.0));
    }

    #[test]
    fn clearly_different_systems_give_small_p_and_the_seed_fixes_the_result() {
        let a: Vec<f64> = (0..40).map(|i| 0.3 + 0.01 * (i % 7) as f64).collect();
        let b: Vec<f64> = a.iter().enumerate().map(|(i, x)| x + 0.2 + 0.02 * (i % 3) as f64).collect();
        let r = randomization_test(&a, &b, DEFAULT_PERMUTATIONS, 7).unwrap();
        // Every difference is positive: only the all-unswapped and all-swapped sign
        // patterns reach the observed mean, probability 2 / 2^40.
        assert!(r.p_value < 1e-3, "{r:?}");
        assert!(r.statistic > 0.2);
        assert_eq!(randomization_test(&a, &b, 500, 7).unwrap(), randomization_test(&a, &b, 500, 7).unwrap());
        assert!(paired_t_test(&a, &b).unwrap().p_value < 1e-10);
    }

    #[test]
    fn a_small_noisy_difference_is_not_significant() {
        let a = [0.5, 0.6, 0.4, 0.7, 0.3, 0.55, 0.45, 0.65];
        let b = [0.55, 0.55, 0.45, 0.65, 0.35, 0.5, 0.5, 0.6];
        let r = randomization_test(&a, &b, 2_000, 1).unwrap();
        assert!(r.p_value > 0.5, "{r:?}");
    }

    #[test]
    fn t_test_matches_scipy() {
        // Expected values computed independently with scipy 1.17.1:
        //   scipy.stats.ttest_rel(b, a) -> statistic 2.703465337712834, pvalue 0.02425565615354453
        let a = [0.2, 0.4, 0.35, 0.8, 0.55, 0.1, 0.6, 0.45, 0.7, 0.3];
        let b = [0.25, 0.5, 0.3, 0.9, 0.6, 0.2, 0.65, 0.4, 0.85, 0.35];
        let r = paired_t_test(&a, &b).unwrap();
        assert!((r.statistic - SCIPY_T).abs() < 1e-9, "{r:?}");
        assert!((r.p_value - SCIPY_P).abs() < 1e-9, "{r:?}");
        let reversed = paired_t_test(&b, &a).unwrap();
        assert!((reversed.statistic + SCIPY_T).abs() < 1e-9 && (reversed.p_value - SCIPY_P).abs() < 1e-12);
    }

    const SCIPY_T: f64 = 2.703465337712834;
    const SCIPY_P: f64 = 0.02425565615354453;

    #[test]
    fn mismatched_inputs_are_errors() {
        assert!(randomization_test(&[1.0], &[1.0, 2.0], 10, 0).is_err());
        assert!(paired_t_test(&[1.0], &[2.0]).is_err());
        assert!(paired_t_test(&[], &[]).is_err());
        assert!(randomization_test(&[f64::NAN], &[1.0], 10, 0).is_err());
    }
}
