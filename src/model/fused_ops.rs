//! Fused CPU ops with their own backward, for training steps on contiguous f32 CPU tensors: RoPE, RMSNorm
//! (with a frozen weight) and softmax. Composed from candle's element-wise ops, each of them takes several
//! passes over the activations, each pass allocating a fresh tensor, and as many again backward; a LoRA step
//! over Gemma 3 runs six norms, two RoPEs and a softmax per layer. These take one pass each way.
//! candle-nn's fused versions have no backward, so the workbench used them only when no gradient was needed.
//!
//! RoPE gives the same bits as the op-by-op form (same products, same order, no FMA); RMSNorm's sum of squares
//! and softmax's sum run in row order, so they differ from candle's reductions by f32 rounding.
//!
//! The loops are in `crates/cpu-kernels` (optimised in every profile); this module wraps them as candle ops
//! and tests them against candle's op-by-op forms.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use r2r_cpu_kernels as kernels;

/// The values of a contiguous f32 CPU tensor's storage (custom ops make their inputs contiguous first).
pub(crate) fn f32_slice<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(values), Some((start, end))) => Ok(&values[start..end]),
        _ => Err(candle_core::Error::Msg(format!("{op}: the input must be a contiguous f32 CPU tensor"))),
    }
}

fn tensor_values(op: &str, t: &Tensor) -> candle_core::Result<Vec<f32>> {
    if t.dtype() != candle_core::DType::F32 || !t.device().is_cpu() {
        return Err(candle_core::Error::Msg(format!("{op}: tables must be f32 CPU tensors")));
    }
    t.flatten_all()?.to_vec1::<f32>()
}

/// Whether the fused ops apply: an f32 tensor on the CPU.
pub fn applies(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

/// rotate_half RoPE of x [b, heads, t, d] with cos/sin [b, 1, t, d/2]: (x1, x2) → (x1·c − x2·s, x2·c + x1·s).
/// Its gradient is the same rotation by −angle, so the backward is this op with `sign` flipped.
struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// +1 forward, −1 for the gradient.
    sign: f32,
    /// (b, t, half) of the tables.
    dims: (usize, usize, usize),
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "fused-rope"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let (b, t, half) = self.dims;
        let &[xb, heads, xt, d] = layout.shape().dims() else {
            return Err(candle_core::Error::Msg(format!("fused-rope: input {:?} is not [b, heads, t, d]", layout.shape())));
        };
        if xb != b || xt != t || d != 2 * half {
            return Err(candle_core::Error::Msg(format!("fused-rope: input {:?} does not fit tables [{b}, 1, {t}, {half}]", layout.shape())));
        }
        let out = kernels::rope(x, &self.cos, &self.sin, self.sign, b, heads, t, half);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let inverse = Rope { cos: self.cos.clone(), sin: self.sin.clone(), sign: -self.sign, dims: self.dims };
        Ok(Some(grad.contiguous()?.apply_op1(inverse)?))
    }
}

/// RoPE of x [b, heads, t, d] (contiguous f32 CPU) with tables cos/sin [b, 1, t, d/2].
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let (b, _, t, half) = cos.dims4()?;
    let op = Rope { cos: tensor_values("fused-rope", cos)?, sin: tensor_values("fused-rope", sin)?, sign: 1.0, dims: (b, t, half) };
    x.contiguous()?.apply_op1(op)
}

/// y = x · rsqrt(mean(x²) + eps) · w over the last dimension, w frozen (no gradient).
struct RmsNorm {
    weight: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn check(&self, op: &str, layout: &Layout) -> candle_core::Result<()> {
        let n = layout.shape().dims().last().copied().unwrap_or(0);
        if n != self.weight.len() || n == 0 {
            return Err(candle_core::Error::Msg(format!("{op}: input {:?} does not end in the weight's {}", layout.shape(), self.weight.len())));
        }
        Ok(())
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        self.check(self.name(), layout)?;
        let out = kernels::rms_norm(x, &self.weight, self.eps);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let backward = RmsNormBackward { norm: RmsNorm { weight: self.weight.clone(), eps: self.eps } };
        Ok(Some(arg.contiguous()?.apply_op2_no_bwd(&grad.contiguous()?, &backward)?))
    }
}

/// dx of [`RmsNorm`] from (x, g): with u = g·w and r = rsqrt(mean(x²) + eps), dx = r·u − x·r³·(u·x)/n.
struct RmsNormBackward {
    norm: RmsNorm,
}

impl CustomOp2 for RmsNormBackward {
    fn name(&self) -> &'static str {
        "fused-rms-norm-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(self.name(), s1, l1)?, f32_slice(self.name(), s2, l2)?);
        self.norm.check(self.name(), l1)?;
        if l1.shape() != l2.shape() {
            return Err(candle_core::Error::Msg(format!("{}: input {:?} and gradient {:?} differ", self.name(), l1.shape(), l2.shape())));
        }
        let out = kernels::rms_norm_backward(x, g, &self.norm.weight, self.norm.eps);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// RMSNorm of x (f32 CPU) over its last dimension with a frozen weight; the gradient reaches x only.
pub fn rms_norm_frozen(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let op = RmsNorm { weight: tensor_values("fused-rms-norm", weight)?, eps: eps as f32 };
    x.contiguous()?.apply_op1(op)
}

/// softmax over the last dimension; the backward (a second op on the result and the gradient) is
/// dx = y ⊙ (g − Σ g ⊙ y). Rows of all −∞ (fully masked) would give NaN, as candle's softmax does.
struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let out = kernels::softmax_rows(x, layout.shape().dims().last().copied().unwrap_or(0));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(res.contiguous()?.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBackward)?))
    }
}

struct SoftmaxBackward;

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "fused-softmax-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, g) = (f32_slice(self.name(), s1, l1)?, f32_slice(self.name(), s2, l2)?);
        if l1.shape() != l2.shape() {
            return Err(candle_core::Error::Msg(format!("{}: result {:?} and gradient {:?} differ", self.name(), l1.shape(), l2.shape())));
        }
        let out = kernels::softmax_rows_backward(y, g, l1.shape().dims().last().copied().unwrap_or(0));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// softmax of x (f32 CPU) over its last dimension, with a backward.
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

/// x [.., rows, cols] (contiguous f32 CPU) with its last two dimensions swapped, materialised, without a
/// backward (used inside backward passes). candle's `transpose(..).contiguous()` copies such a tensor
/// element by element through a strided index; this copies 32 × 32 tiles on rayon's threads.
pub fn transpose_last_two(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&TransposeLastTwo)
}

struct TransposeLastTwo;

impl CustomOp1 for TransposeLastTwo {
    fn name(&self) -> &'static str {
        "transpose-last-two"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let mut dims = layout.shape().dims().to_vec();
        let rank = dims.len();
        if rank < 2 {
            return Err(candle_core::Error::Msg(format!("{}: needs two dimensions, got {dims:?}", self.name())));
        }
        let (rows, cols) = (dims[rank - 2], dims[rank - 1]);
        let batch = dims[..rank - 2].iter().product();
        dims.swap(rank - 2, rank - 1);
        Ok((CpuStorage::F32(kernels::transpose_last_two(x, batch, rows, cols)), Shape::from(dims)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var, D};

    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn grads_close(name: &str, a: &Tensor, e: &Tensor, tol: f32) {
        let (a, e) = (a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), e.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let worst = a.iter().zip(&e).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
        assert!(worst <= tol, "{name}: fused gradient differs from the op-by-op one by {worst}");
        assert!(a.iter().any(|v| *v != 0.0), "{name}: gradient is all zero");
    }

    #[test]
    fn fused_rope_matches_the_op_by_op_form_and_its_gradient() {
        let dev = Device::Cpu;
        let (b, h, t, d) = (2, 3, 5, 8);
        let x = Var::from_tensor(&Tensor::from_vec(values(b * h * t * d, 1), (b, h, t, d), &dev).unwrap()).unwrap();
        let cos = Tensor::from_vec(values(b * t * d / 2, 2), (b, 1, t, d / 2), &dev).unwrap();
        let sin = Tensor::from_vec(values(b * t * d / 2, 3), (b, 1, t, d / 2), &dev).unwrap();
        let weights = Tensor::from_vec(values(b * h * t * d, 4), (b, h, t, d), &dev).unwrap();
        let plain = {
            let (x1, x2) = (x.as_tensor().narrow(D::Minus1, 0, d / 2).unwrap(), x.as_tensor().narrow(D::Minus1, d / 2, d / 2).unwrap());
            let o1 = (x1.broadcast_mul(&cos).unwrap() - x2.broadcast_mul(&sin).unwrap()).unwrap();
            let o2 = (x2.broadcast_mul(&cos).unwrap() + x1.broadcast_mul(&sin).unwrap()).unwrap();
            Tensor::cat(&[o1, o2], D::Minus1).unwrap()
        };
        let fused = rope(x.as_tensor(), &cos, &sin).unwrap();
        assert_eq!(fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(), plain.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let gf = (fused * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let gp = (plain * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        grads_close("rope dx", gf.get(x.as_tensor()).unwrap(), gp.get(x.as_tensor()).unwrap(), 1e-6);
        // Tables of another length are an error, not a panic.
        let short = cos.narrow(2, 0, t - 1).unwrap();
        assert!(rope(x.as_tensor(), &short, &short).is_err());
    }

    #[test]
    fn fused_rms_norm_matches_the_op_by_op_form_and_its_gradient() {
        let dev = Device::Cpu;
        let (rows, n) = (37, 24);
        let x = Var::from_tensor(&Tensor::from_vec(values(rows * n, 5), (rows, n), &dev).unwrap()).unwrap();
        let w = Tensor::from_vec(values(n, 6), n, &dev).unwrap();
        let weights = Tensor::from_vec(values(rows * n, 7), (rows, n), &dev).unwrap();
        let eps = 1e-6;
        let plain = {
            let inv = (x.as_tensor().sqr().unwrap().mean_keepdim(D::Minus1).unwrap() + eps).unwrap().sqrt().unwrap().recip().unwrap();
            x.as_tensor().broadcast_mul(&inv).unwrap().broadcast_mul(&w).unwrap()
        };
        let fused = rms_norm_frozen(x.as_tensor(), &w, eps).unwrap();
        let (a, e) = (fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(), plain.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let worst = a.iter().zip(&e).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "rms norm differs by {worst}");
        let gf = (fused * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let gp = (plain * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        grads_close("rms norm dx", gf.get(x.as_tensor()).unwrap(), gp.get(x.as_tensor()).unwrap(), 1e-5);
        assert!(rms_norm_frozen(x.as_tensor(), &w.narrow(0, 0, n - 1).unwrap(), eps).is_err());
    }

    #[test]
    fn fused_softmax_matches_candles_and_its_gradient() {
        let dev = Device::Cpu;
        let (rows, n) = (19, 13);
        let mut v = values(rows * n, 8).iter().map(|v| v * 6.0).collect::<Vec<_>>();
        v[3] = f32::NEG_INFINITY; // a masked key
        let x = Var::from_tensor(&Tensor::from_vec(v, (rows, n), &dev).unwrap()).unwrap();
        let weights = Tensor::from_vec(values(rows * n, 9), (rows, n), &dev).unwrap();
        let plain = candle_nn::ops::softmax(x.as_tensor(), D::Minus1).unwrap();
        let fused = softmax_last_dim(x.as_tensor()).unwrap();
        let (a, e) = (fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(), plain.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let worst = a.iter().zip(&e).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6 && a[3] == 0.0, "softmax differs by {worst}");
        let gf = (fused * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let gp = (plain * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        grads_close("softmax dx", gf.get(x.as_tensor()).unwrap(), gp.get(x.as_tensor()).unwrap(), 1e-6);
    }

    #[test]
    fn tiled_transpose_swaps_the_last_two_dimensions() {
        let dev = Device::Cpu;
        // Ragged against the 32 × 32 tiles, a batch of 2 × 3, and the 1-row / 1-column edges.
        for (batch, rows, cols) in [((2, 3), 45, 70), ((1, 1), 1, 33), ((2, 1), 64, 1), ((1, 2), 32, 32)] {
            let x = Tensor::from_vec(values(batch.0 * batch.1 * rows * cols, 11), (batch.0, batch.1, rows, cols), &dev).unwrap();
            let fast = transpose_last_two(&x).unwrap();
            let plain = x.transpose(2, 3).unwrap().contiguous().unwrap();
            assert_eq!(fast.dims(), plain.dims());
            assert_eq!(fast.flatten_all().unwrap().to_vec1::<f32>().unwrap(), plain.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "{batch:?} {rows}×{cols}");
        }
        assert!(transpose_last_two(&Tensor::new(&[1f32, 2.0], &dev).unwrap()).is_err());
    }

    /// The vendored candle-core stores the first gradient reaching a tensor instead of adding it into zeros
    /// (crates/candle-core/PATCHED.md): tensors reached along several paths must still get the sum, through
    /// adds, subtractions (negated first gradients), products and a matmul, and the gradients are contiguous.
    #[test]
    fn backprop_sums_every_path_with_the_patched_gradient_store() {
        let dev = Device::Cpu;
        let x = Var::new(&[[1.0f32, -2.0], [3.0, 0.5]], &dev).unwrap();
        let w = Var::new(&[[0.5f32, 1.0], [-1.0, 2.0]], &dev).unwrap();
        let xt = x.as_tensor();
        // f = Σ (x·w) + Σ x² − Σ (w − x)ᵀ·3 + Σ neg(x)  (x reached along four paths, w along two)
        let f = (xt.matmul(w.as_tensor()).unwrap().sum_all().unwrap() + xt.sqr().unwrap().sum_all().unwrap()).unwrap();
        let f = (f - ((w.as_tensor() - xt).unwrap().t().unwrap() * 3.0).unwrap().sum_all().unwrap()).unwrap();
        let f = (f + xt.neg().unwrap().sum_all().unwrap()).unwrap();
        let grads = f.backward().unwrap();
        let (gx, gw) = (grads.get(xt).unwrap(), grads.get(w.as_tensor()).unwrap());
        assert!(gx.is_contiguous() && gw.is_contiguous());
        // df/dx[i][k] = Σ_j w[k][j] + 2 x[i][k] + 3 − 1; df/dw[k][j] = Σ_i x[i][k] − 3.
        let (xv, wv) = (x.as_tensor().to_vec2::<f32>().unwrap(), w.as_tensor().to_vec2::<f32>().unwrap());
        let expected_x: Vec<Vec<f32>> = (0..2).map(|i| (0..2).map(|k| wv[k][0] + wv[k][1] + 2.0 * xv[i][k] + 2.0).collect()).collect();
        let expected_w: Vec<Vec<f32>> = (0..2).map(|k| (0..2).map(|_| xv[0][k] + xv[1][k] - 3.0).collect()).collect();
        assert_eq!(gx.to_vec2::<f32>().unwrap(), expected_x);
        assert_eq!(gw.to_vec2::<f32>().unwrap(), expected_w);
    }
}
