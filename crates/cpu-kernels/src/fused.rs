//! The element-wise and row-wise kernels of the fused training ops (`src/model/fused_ops.rs` and the
//! GeGLU / attention ops of `src/model/transformer.rs` wrap them as candle ops): RoPE, RMSNorm with a frozen
//! weight, softmax over rows, gelu-tanh ⊙ up, each with its backward, and a tiled transpose. Plain slices in,
//! a fresh output out; rows spread over rayon's threads, each output element computed by one thread in a
//! fixed order, so results do not depend on the thread count. They live here, not in the workbench, so that
//! they are optimised in every profile (at the workbench's dev opt-level the loops are not vectorised).

use rayon::prelude::*;

use crate::{gelu_tanh_parts, output_buffer};

/// rotate_half RoPE of x [b, heads, t, 2·half] with tables cos/sin [b, t, half]: (x1, x2) → (x1·c − x2·s',
/// x2·c + x1·s') with s' = sign·s (sign −1 rotates back: the gradient).
#[allow(clippy::too_many_arguments)]
pub fn rope(x: &[f32], cos: &[f32], sin: &[f32], sign: f32, b: usize, heads: usize, t: usize, half: usize) -> Vec<f32> {
    let d = 2 * half;
    assert!(x.len() == b * heads * t * d && cos.len() == b * t * half && sin.len() == cos.len(), "rope: sizes do not fit [{b}, {heads}, {t}, {d}]");
    // SAFETY: the (batch, head) chunks cover out; each writes every position of both halves.
    let mut out = unsafe { output_buffer(x.len()) };
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(t * d).zip(x.par_chunks(t * d)).enumerate().for_each(|(bh, (out, x))| {
        let bi = bh / heads;
        for ti in 0..t {
            let table = (bi * t + ti) * half;
            let (c, s) = (&cos[table..table + half], &sin[table..table + half]);
            let (x1, x2) = x[ti * d..(ti + 1) * d].split_at(half);
            let (o1, o2) = out[ti * d..(ti + 1) * d].split_at_mut(half);
            for j in 0..half {
                let sj = sign * s[j];
                o1[j] = x1[j] * c[j] - x2[j] * sj;
                o2[j] = x2[j] * c[j] + x1[j] * sj;
            }
        }
    });
    out
}

fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let sum: f32 = x.iter().map(|v| v * v).sum();
    1.0 / (sum / x.len() as f32 + eps).sqrt()
}

/// y = x · rsqrt(mean(x²) + eps) · w over rows of w's length.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let n = weight.len();
    assert!(n > 0 && x.len() % n == 0, "rms norm: {} values are not rows of {n}", x.len());
    // SAFETY: the row chunks cover out and every element of every row is written.
    let mut out = unsafe { output_buffer(x.len()) };
    out.par_chunks_mut(n * 16).zip(x.par_chunks(n * 16)).for_each(|(out, x)| {
        for (out, x) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
            let r = inv_rms(x, eps);
            for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
                *o = v * r * w;
            }
        }
    });
    out
}

/// dx of [`rms_norm`] from (x, g): with u = g·w and r = rsqrt(mean(x²) + eps), dx = r·u − x·r³·(u·x)/n.
pub fn rms_norm_backward(x: &[f32], g: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let n = weight.len();
    assert!(n > 0 && x.len() % n == 0 && g.len() == x.len(), "rms norm backward: {} values, {} gradients, rows of {n}", x.len(), g.len());
    // SAFETY: the row chunks cover out and every element of every row is written.
    let mut out = unsafe { output_buffer(x.len()) };
    out.par_chunks_mut(n * 16).zip(x.par_chunks(n * 16).zip(g.par_chunks(n * 16))).for_each(|(out, (x, g))| {
        for ((out, x), g) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(g.chunks_exact(n)) {
            let r = inv_rms(x, eps);
            let dot: f32 = x.iter().zip(g).zip(weight).map(|((x, g), w)| g * w * x).sum();
            let k = r * r * r * dot / n as f32;
            for (((o, x), g), w) in out.iter_mut().zip(x).zip(g).zip(weight) {
                *o = r * g * w - x * k;
            }
        }
    });
    out
}

/// softmax over rows of n values. Rows of all −∞ give NaN, as candle's softmax does.
pub fn softmax_rows(x: &[f32], n: usize) -> Vec<f32> {
    let n = n.max(1);
    assert!(x.len() % n == 0, "softmax: {} values are not rows of {n}", x.len());
    // SAFETY: the row chunks cover out and every element of every row is written.
    let mut out = unsafe { output_buffer(x.len()) };
    out.par_chunks_mut(n * 16).zip(x.par_chunks(n * 16)).for_each(|(out, x)| {
        for (out, x) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (o, v) in out.iter_mut().zip(x) {
                *o = (v - max).exp();
                sum += *o;
            }
            for o in out.iter_mut() {
                *o /= sum;
            }
        }
    });
    out
}

/// dx of [`softmax_rows`] from its result y and the gradient g: dx = y ⊙ (g − Σ g ⊙ y) per row.
pub fn softmax_rows_backward(y: &[f32], g: &[f32], n: usize) -> Vec<f32> {
    let n = n.max(1);
    assert!(y.len() % n == 0 && g.len() == y.len(), "softmax backward: {} values, {} gradients, rows of {n}", y.len(), g.len());
    // SAFETY: the row chunks cover out and every element of every row is written.
    let mut out = unsafe { output_buffer(y.len()) };
    out.par_chunks_mut(n * 16).zip(y.par_chunks(n * 16).zip(g.par_chunks(n * 16))).for_each(|(out, (y, g))| {
        for ((out, y), g) in out.chunks_exact_mut(n).zip(y.chunks_exact(n)).zip(g.chunks_exact(n)) {
            let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
            for ((o, y), g) in out.iter_mut().zip(y).zip(g) {
                *o = y * (g - dot);
            }
        }
    });
    out
}
/// gelu-tanh(a) ⊙ b, elementwise: Gemma's gated MLP in one pass (the same bits as [`gelu_tanh_in_place`]
/// followed by the product).
pub fn geglu_tanh(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "geglu: {} gate values, {} up values", a.len(), b.len());
    // SAFETY: the chunks below cover out and every element is written.
    let mut out = unsafe { output_buffer(a.len()) };
    out.par_chunks_mut(1 << 14).zip(a.par_chunks(1 << 14).zip(b.par_chunks(1 << 14))).for_each(|(out, (a, b))| {
        for ((o, &x), &u) in out.iter_mut().zip(a).zip(b) {
            *o = gelu_tanh_parts(x).0 * u;
        }
    });
    out
}

/// Both gradients of [`geglu_tanh`] from (a, b, g) in one pass, as one buffer: da (g ⊙ b ⊙ gelu'(a)) then
/// db (g ⊙ gelu(a)), each of a's length. The products are taken in the order the op-by-op backward takes
/// them (g·b, then the gelu derivative), so the bits are the same.
pub fn geglu_tanh_backward(a: &[f32], b: &[f32], g: &[f32]) -> Vec<f32> {
    let n = a.len();
    assert!(b.len() == n && g.len() == n, "geglu backward: {n} gate values, {} up values, {} gradients", b.len(), g.len());
    // SAFETY: da and db are covered by the chunks below and every element is written.
    let mut out = unsafe { output_buffer(2 * n) };
    let (da, db) = out.split_at_mut(n);
    const CHUNK: usize = 1 << 14;
    da.par_chunks_mut(CHUNK).zip(db.par_chunks_mut(CHUNK)).zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)).zip(g.par_chunks(CHUNK))).for_each(
        |((da, db), ((a, b), g))| {
            for ((((da, db), &x), &u), &g) in da.iter_mut().zip(db.iter_mut()).zip(a).zip(b).zip(g) {
                let (gelu, slope) = gelu_tanh_parts(x);
                *da = (g * u) * slope;
                *db = g * gelu;
            }
        },
    );
    out
}

/// x [batch, rows, cols] (row-major) → [batch, cols, rows], in 32 × 32 tiles, batches and row blocks spread
/// over rayon's threads. candle's strided copy walks such a transpose element by element.
pub fn transpose_last_two(x: &[f32], batch: usize, rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(x.len(), batch * rows * cols, "transpose: {} values for {batch} × {rows} × {cols}", x.len());
    const TILE: usize = 32;
    // SAFETY: every output row block is a task; each writes all rows × its columns, so every element.
    let mut out = unsafe { output_buffer(x.len()) };
    if x.is_empty() {
        return out;
    }
    // Tasks own column blocks of the input = row blocks of the output (contiguous in out).
    let per_batch = rows * cols;
    out.par_chunks_mut(per_batch).zip(x.par_chunks(per_batch)).for_each(|(out, x)| {
        out.par_chunks_mut(TILE * rows).enumerate().for_each(|(cb, out)| {
            let c0 = cb * TILE;
            let c1 = (c0 + TILE).min(cols);
            for r0 in (0..rows).step_by(TILE) {
                let r1 = (r0 + TILE).min(rows);
                for c in c0..c1 {
                    let dst = &mut out[(c - c0) * rows..(c - c0) * rows + rows];
                    for r in r0..r1 {
                        dst[r] = x[r * cols + c];
                    }
                }
            }
        });
    });
    out
}

/// Inverted-dropout multipliers from uniform words: element i is dropped (0) when the float the `rand` crate
/// makes of word i — its top 24 bits × 2⁻²⁴, a uniform value in [0, 1) — is below `p`, else kept and scaled
/// by 1 / (1 − p). The same decisions as drawing `rng.random::<f32>()` per element from the same words, in
/// parallel and without per-element calls into the generator.
pub fn dropout_mask(words: &[u32], p: f32) -> Vec<f32> {
    let keep = 1.0 / (1.0 - p);
    let scale = 1.0 / (1u32 << 24) as f32;
    // SAFETY: the chunks cover out and every element is written.
    let mut out = unsafe { output_buffer(words.len()) };
    out.par_chunks_mut(1 << 14).zip(words.par_chunks(1 << 14)).for_each(|(out, words)| {
        for (o, &w) in out.iter_mut().zip(words) {
            *o = if ((w >> 8) as f32) * scale < p { 0.0 } else { keep };
        }
    });
    out
}
