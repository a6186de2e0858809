//! Margin calibration: moves a reranker's yes − no margin by a constant so that the paper's probability
//! score sigmoid(yes − no) works in its sensitive range, without changing how the model ranks.
//!
//! A model trained with a shift-invariant listwise loss (like the bundled backbone) can put every margin far
//! below zero: sigmoid then sits near 0 for all candidates, its slope σ(1 − σ) near 0, and InfoNCE on the
//! probability score gets almost no gradient. The margin is m = h · (e_yes − e_no), h the final-norm hidden
//! state at the last position. We look for a vector δ with h · δ ≈ −c for every h (c the mean margin on
//! calibration pairs): among the δ with h̄ · δ = −c, the one of least variance of h · δ over the pairs,
//! δ = −c Σ⁻¹h̄ / (h̄ᵀ Σ⁻¹ h̄) with Σ the (ridge-regularised) covariance of h. Adding δ to the "yes" row of the
//! LM head (half to "yes", minus half to "no") then shifts every margin by about −c. With tied embeddings that row is also the input embedding
//! of "yes" (it occurs in the system prompt), so the effect is measured afterwards rather than assumed:
//! the report gives the margins before and after, the spread of the shift, and how many within-group
//! candidate orders changed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::data::QueryGroup;
use crate::model::{LoadOptions, Reranker, ScoreOptions, ScoreRequest};

/// Summary of margins yes − no over the calibration pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MarginStats {
    pub pairs: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Mean over pairs of the slope σ'(m) = σ(m)(1 − σ(m)) of the probability score (0.25 at m = 0).
    pub mean_sigmoid_slope: f64,
}

impl MarginStats {
    pub fn of(margins: &[f64]) -> MarginStats {
        let n = margins.len().max(1) as f64;
        let mean = margins.iter().sum::<f64>() / n;
        let std = (margins.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / n).sqrt();
        let slope = |m: f64| {
            let s = 1.0 / (1.0 + (-m).exp());
            s * (1.0 - s)
        };
        MarginStats {
            pairs: margins.len(),
            mean,
            std,
            min: margins.iter().cloned().fold(f64::INFINITY, f64::min),
            max: margins.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            mean_sigmoid_slope: margins.iter().map(|&m| slope(m)).sum::<f64>() / n,
        }
    }
}

/// What calibration did, measured on the calibration pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationReport {
    pub groups: usize,
    pub target_mean: f64,
    pub before: MarginStats,
    pub after: MarginStats,
    /// Standard deviation over pairs of (margin after − margin before): 0 for a perfect constant shift.
    pub shift_std: f64,
    /// Share of within-group candidate pairs (with different margins before) whose order is unchanged.
    pub pair_order_kept: f64,
    /// Euclidean norm of δ against the norm of the "yes" row it was added to.
    pub delta_norm: f64,
    pub yes_row_norm: f64,
    /// The weight that was changed (`lm_head.weight` or, with tied embeddings, `model.embed_tokens.weight`).
    pub tensor: String,
}

/// Final hidden states and margins of every candidate of `groups` (pair order: group by group).
pub fn hidden_and_margins(reranker: &Reranker, groups: &[QueryGroup]) -> Result<(Vec<Vec<f32>>, Vec<f64>, Vec<usize>)> {
    let options = ScoreOptions { want_hidden: true, ..Default::default() };
    let (mut hidden, mut margins, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for group in groups {
        let requests: Vec<ScoreRequest> = group.candidates.iter().map(|c| ScoreRequest { instruction: None, query: group.query.clone(), document: c.text.clone() }).collect();
        for s in reranker.score(&requests, None, &options)? {
            hidden.push(s.hidden.context("the scorer returned no hidden state")?);
            margins.push(f64::from(s.yes_logit - s.no_logit));
        }
        sizes.push(group.candidates.len());
    }
    Ok((hidden, margins, sizes))
}

/// δ of least variance of h · δ over `hidden` with mean(h) · δ = `shift` (see the module doc).
pub fn least_variance_shift(hidden: &[Vec<f32>], shift: f64, ridge: f64) -> Result<Vec<f64>> {
    ensure!(hidden.len() >= 2, "calibration needs at least two pairs");
    let d = hidden[0].len();
    let n = hidden.len() as f64;
    let mut mean = vec![0f64; d];
    for h in hidden {
        ensure!(h.len() == d, "hidden states of different sizes");
        for (m, &x) in mean.iter_mut().zip(h) {
            *m += f64::from(x) / n;
        }
    }
    let mut cov = vec![vec![0f64; d]; d];
    for h in hidden {
        let centred: Vec<f64> = h.iter().zip(&mean).map(|(&x, m)| f64::from(x) - m).collect();
        for i in 0..d {
            for j in 0..=i {
                cov[i][j] += centred[i] * centred[j] / n;
            }
        }
    }
    let trace: f64 = (0..d).map(|i| cov[i][i]).sum();
    for i in 0..d {
        for j in 0..i {
            cov[j][i] = cov[i][j];
        }
        cov[i][i] += ridge * trace / d as f64 + 1e-12;
    }
    let x = solve_spd(cov, &mean)?;
    let denominator: f64 = mean.iter().zip(&x).map(|(a, b)| a * b).sum();
    ensure!(denominator.abs() > 1e-12, "the mean hidden state is degenerate");
    Ok(x.iter().map(|v| shift * v / denominator).collect())
}

/// Solves A x = b for a symmetric positive definite A (Cholesky).
fn solve_spd(mut a: Vec<Vec<f64>>, b: &[f64]) -> Result<Vec<f64>> {
    let n = b.len();
    for j in 0..n {
        let diagonal = a[j][j] - (0..j).map(|k| a[j][k] * a[j][k]).sum::<f64>();
        ensure!(diagonal > 0.0, "covariance is not positive definite (raise the ridge)");
        a[j][j] = diagonal.sqrt();
        for i in j + 1..n {
            a[i][j] = (a[i][j] - (0..j).map(|k| a[i][k] * a[j][k]).sum::<f64>()) / a[j][j];
        }
    }
    let mut y = vec![0f64; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| a[i][k] * y[k]).sum::<f64>()) / a[i][i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| a[k][i] * x[k]).sum::<f64>()) / a[i][i];
    }
    Ok(x)
}

/// Copies the model directory `from` to `to` with δ/2 added to the LM-head row of `yes` and subtracted from
/// the row of `no` (the embedding rows when the embeddings are tied), so yes − no moves by h · δ while each
/// token's input embedding moves only half as far. Returns the tensor name and the "yes" row's old norm.
fn write_shifted_model(from: &Path, to: &Path, yes: u32, no: u32, delta: &[f64]) -> Result<(String, f64)> {
    let weights = from.join("model.safetensors");
    ensure!(weights.is_file(), "{}: calibration needs a single model.safetensors file", weights.display());
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let path = entry?.path();
        if path.is_file() && path.file_name().is_some_and(|n| n != "model.safetensors") {
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            crate::util::atomic_write(&to.join(path.file_name().expect("a file name")), &bytes)?;
        }
    }
    let mut tensors: BTreeMap<String, Tensor> = candle_core::safetensors::load(&weights, &Device::Cpu)
        .with_context(|| format!("cannot read {}", weights.display()))?
        .into_iter()
        .collect();
    let name = if tensors.contains_key("lm_head.weight") { "lm_head.weight" } else { "model.embed_tokens.weight" };
    let table = tensors.get(name).with_context(|| format!("{}: no tensor {name}", weights.display()))?;
    let (rows, cols) = table.dims2()?;
    ensure!((yes.max(no) as usize) < rows && cols == delta.len(), "{}: {name} is [{rows}, {cols}], cannot shift rows {yes} and {no} by a {}-vector", weights.display(), delta.len());
    let mut values = table.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
    let old_norm = values[yes as usize].iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    for (token, sign) in [(yes, 0.5), (no, -0.5)] {
        for (v, d) in values[token as usize].iter_mut().zip(delta) {
            *v += (sign * d) as f32;
        }
    }
    let dtype = table.dtype();
    let shifted = Tensor::new(values, &Device::Cpu)?.to_dtype(dtype)?;
    tensors.insert(name.to_string(), shifted);
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    crate::model::checkpoint::write_safetensors(&to.join("model.safetensors"), &tensors, Some(metadata))?;
    Ok((name.to_string(), old_norm))
}

/// Calibrates the model in `from` on `groups` and writes the calibrated model to `to` (may equal `from`:
/// every file is replaced atomically). `target_mean` is the wanted mean margin (0: sigmoid 0.5 on average).
pub fn calibrate(from: &Path, to: &Path, groups: &[QueryGroup], target_mean: f64, ridge: f64) -> Result<CalibrationReport> {
    if groups.is_empty() {
        bail!("calibration needs query groups");
    }
    let reranker = Reranker::load(from, &LoadOptions::default())?;
    let (hidden, before, sizes) = hidden_and_margins(&reranker, groups)?;
    let before_stats = MarginStats::of(&before);
    let delta = least_variance_shift(&hidden, target_mean - before_stats.mean, ridge)?;
    let (yes, no) = (reranker.prompt.yes_id, reranker.prompt.no_id);
    drop(reranker);
    let scratch = tempfile::tempdir()?;
    let (tensor, yes_row_norm) = write_shifted_model(from, scratch.path(), yes, no, &delta)?;
    let calibrated = Reranker::load(scratch.path(), &LoadOptions::default())?;
    let (_, after, _) = hidden_and_margins(&calibrated, groups)?;
    drop(calibrated);
    let shifts: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let (mut kept, mut compared, mut start) = (0usize, 0usize, 0usize);
    for size in sizes {
        for i in start..start + size {
            for j in i + 1..start + size {
                if before[i] != before[j] {
                    compared += 1;
                    kept += usize::from((before[i] < before[j]) == (after[i] < after[j]));
                }
            }
        }
        start += size;
    }
    for entry in std::fs::read_dir(scratch.path())? {
        let path = entry?.path();
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        crate::util::atomic_write(&to.join(path.file_name().expect("a file name")), &bytes)?;
    }
    Ok(CalibrationReport {
        groups: groups.len(),
        target_mean,
        before: before_stats,
        after: MarginStats::of(&after),
        shift_std: MarginStats::of(&shifts).std,
        pair_order_kept: if compared == 0 { 1.0 } else { kept as f64 / compared as f64 },
        delta_norm: delta.iter().map(|d| d * d).sum::<f64>().sqrt(),
        yes_row_norm,
        tensor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_variance_shift_is_exact_on_an_affine_family() {
        // h = (1, t, 0.5 t): the first coordinate is constant, so δ can shift every h · δ by exactly −3.
        let hidden: Vec<Vec<f32>> = (0..20).map(|i| vec![1.0, i as f32 * 0.1, i as f32 * 0.05]).collect();
        let delta = least_variance_shift(&hidden, -3.0, 1e-9).unwrap();
        for h in &hidden {
            let shift: f64 = h.iter().zip(&delta).map(|(&x, d)| f64::from(x) * d).sum();
            assert!((shift + 3.0).abs() < 1e-4, "shift {shift}");
        }
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        let a = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let x = solve_spd(a, &[2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        assert!(solve_spd(vec![vec![-1.0]], &[1.0]).is_err());
    }

    #[test]
    fn margin_stats_by_hand() {
        let s = MarginStats::of(&[-1.0, 1.0]);
        assert_eq!((s.mean, s.std, s.min, s.max), (0.0, 1.0, -1.0, 1.0));
        assert!((s.mean_sigmoid_slope - 0.19661193).abs() < 1e-6);
    }
}
