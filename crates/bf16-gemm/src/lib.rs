//! bf16 matrix products for the frozen base weights on the CPU: y = x·Wᵀ with W packed once into bf16
//! panels and x rounded to bf16 per call, products accumulated in f32 (what PyTorch's autocast and
//! QLoRA's bf16 compute do). On CPUs with AVX512-BF16 (`vdpbf16ps`: 32 bf16 products per instruction,
//! twice the f32 FMA rate) the kernel below runs; elsewhere a scalar loop over the same bf16 values gives
//! the same results to rounding, so the mode works (slowly) everywhere and is testable anywhere.
//!
//! Layout: W [n, k] becomes ⌈n/16⌉ panels of 16 output columns; panel p holds, for every k-pair j, 16
//! u32 words (lane c = bf16(W[16p+c, 2j]) | bf16(W[16p+c, 2j+1]) << 16) — one 512-bit load per pair.
//! Work is split over rayon's threads by output rows (or by column blocks when there are few rows);
//! each output element is one thread's sum in a fixed k order, so results do not depend on the number
//! of threads.
//!
//! A crate of its own so that it is compiled with optimisations in every profile (`Cargo.toml` sets
//! opt-level 3 for it): at the workspace's dev opt-level the register tiles are not unrolled and the
//! kernel runs at a third of its speed. Its tests live in the workbench (`src/model/bf16_matmul.rs`).

use rayon::prelude::*;
use std::sync::OnceLock;

/// Output columns per panel (one 512-bit register of f32).
const LANES: usize = 16;
/// Register tile of the kernel: MR rows × NR panels (6 × 4 × 16 accumulators, 24 of 32 zmm registers).
const MR: usize = 6;
const NR: usize = 4;
/// Rows per task: a task's bf16 rows (≤ 96 × 1024 pairs × 4 B) stay in L2 while it walks all columns.
const ROWS_PER_TASK: usize = MR * 16;

/// Round-to-nearest-even f32 → bf16 bits. NaN stays NaN for quiet NaNs (all NaNs computed here are quiet).
#[inline(always)]
pub fn bf16_bits(v: f32) -> u32 {
    let b = v.to_bits();
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1))) >> 16
}

#[inline(always)]
pub fn bf16_value(bits: u32) -> f32 {
    f32::from_bits(bits << 16)
}

/// A frozen weight W [n, k] in bf16 panels, for y = x·Wᵀ.
#[derive(Debug, Clone)]
pub struct PackedBf16 {
    /// Output columns (rows of W).
    pub n: usize,
    /// Inner dimension (columns of W).
    pub k: usize,
    /// k-pairs: ⌈k/2⌉ (an odd k is padded with a zero).
    pairs: usize,
    /// ⌈n/16⌉ panels × pairs × 16 words; columns past n are zero.
    data: Vec<u32>,
}

impl PackedBf16 {
    /// Packs W given as `w(row, col)` for row < n, col < k.
    fn pack_with(n: usize, k: usize, w: impl Fn(usize, usize) -> f32 + Sync) -> Self {
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(LANES);
        let mut data = vec![0u32; panels * pairs * LANES];
        data.par_chunks_mut(pairs * LANES).enumerate().for_each(|(p, panel)| {
            for c in 0..LANES {
                let row = p * LANES + c;
                if row >= n {
                    continue;
                }
                for j in 0..pairs {
                    let lo = bf16_bits(w(row, 2 * j));
                    let hi = if 2 * j + 1 < k { bf16_bits(w(row, 2 * j + 1)) } else { 0 };
                    panel[j * LANES + c] = lo | (hi << 16);
                }
            }
        });
        Self { n, k, pairs, data }
    }

    /// W [n, k] row-major, for y = x·Wᵀ.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight has {} values, expected {n} × {k}", w.len());
        Self::pack_with(n, k, |r, c| w[r * k + c])
    }

    /// W [n, k] row-major, packed for y = x·W (x has n columns, y has k): the backward of `pack`.
    pub fn pack_transposed(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight has {} values, expected {n} × {k}", w.len());
        Self::pack_with(k, n, |r, c| w[c * k + r])
    }

    /// Resident bytes of the packed weight.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }

    fn panel(&self, p: usize) -> &[u32] {
        &self.data[p * self.pairs * LANES..(p + 1) * self.pairs * LANES]
    }

    /// y = x·Wᵀ for x [m, k] row-major; returns y [m, n] row-major.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "input has {} values, expected {m} × {}", x.len(), self.k);
        let n = self.n;
        let mut y = vec![0f32; m * n];
        if m == 0 || n == 0 {
            return y;
        }
        let kernel = Kernel::detect();
        let threads = rayon::current_num_threads().max(1);
        if m >= ROWS_PER_TASK * threads || m >= 4 * ROWS_PER_TASK {
            // Row tasks: each converts its rows to bf16 once and walks every column block.
            y.par_chunks_mut(ROWS_PER_TASK * n).zip(x.par_chunks(ROWS_PER_TASK * self.k)).for_each(|(y, x)| {
                let rows = x.len() / self.k;
                let xb = self.to_pairs(x, rows);
                let blocks = self.n.div_ceil(LANES).div_ceil(NR);
                for block in 0..blocks {
                    self.block(kernel, &xb, rows, block, y);
                }
            });
        } else {
            // Few rows: split the column blocks instead; every task writes its own columns of y.
            let xb = self.to_pairs(x, m);
            let blocks = n.div_ceil(LANES).div_ceil(NR);
            let out = SharedOut(y.as_mut_ptr());
            (0..blocks).into_par_iter().for_each(|block| {
                let out = &out;
                // SAFETY: column blocks are disjoint, so tasks write disjoint elements of y.
                let y = unsafe { std::slice::from_raw_parts_mut(out.0, m * n) };
                self.block(kernel, &xb, m, block, y);
            });
        }
        y
    }

    /// Rows of x as bf16 pairs [rows, pairs].
    fn to_pairs(&self, x: &[f32], rows: usize) -> Vec<u32> {
        let (k, pairs) = (self.k, self.pairs);
        let mut xb = vec![0u32; rows * pairs];
        for (dst, src) in xb.chunks_exact_mut(pairs).zip(x.chunks_exact(k)) {
            for (j, d) in dst.iter_mut().enumerate().take(k / 2) {
                *d = bf16_bits(src[2 * j]) | (bf16_bits(src[2 * j + 1]) << 16);
            }
            if k % 2 == 1 {
                dst[pairs - 1] = bf16_bits(src[k - 1]);
            }
        }
        xb
    }

    /// Columns of block `block` (NR panels) for all `rows` rows of xb, into y [rows, n].
    fn block(&self, kernel: Kernel, xb: &[u32], rows: usize, block: usize, y: &mut [f32]) {
        let panels = self.n.div_ceil(LANES);
        let p0 = block * NR;
        let nr = NR.min(panels - p0);
        let col0 = p0 * LANES;
        let cols = (self.n - col0).min(nr * LANES);
        let mut r = 0;
        while r < rows {
            let mr = MR.min(rows - r);
            let x = &xb[r * self.pairs..(r + mr) * self.pairs];
            let out = &mut y[r * self.n + col0..];
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::Avx512Bf16` is only chosen when the CPU reports avx512f and avx512bf16;
                // x holds mr rows of `pairs` words, the panels p0..p0+nr exist, out holds mr rows of n
                // with at least `cols` columns from col0.
                Kernel::Avx512Bf16 => unsafe { avx512::tile(x, self.pairs, &self.data[p0 * self.pairs * LANES..], self.pairs * LANES, mr, nr, out, self.n, cols) },
                Kernel::Scalar => self.scalar_tile(x, mr, p0, nr, out, cols),
            }
            r += mr;
        }
    }

    fn scalar_tile(&self, x: &[u32], mr: usize, p0: usize, nr: usize, out: &mut [f32], cols: usize) {
        for i in 0..mr {
            let xi = &x[i * self.pairs..(i + 1) * self.pairs];
            for pj in 0..nr {
                let panel = self.panel(p0 + pj);
                for c in 0..LANES {
                    let col = pj * LANES + c;
                    if col >= cols {
                        break;
                    }
                    let mut acc = 0f32;
                    for (j, &xw) in xi.iter().enumerate() {
                        let w = panel[j * LANES + c];
                        acc += bf16_value(xw & 0xFFFF) * bf16_value(w & 0xFFFF) + bf16_value(xw >> 16) * bf16_value(w >> 16);
                    }
                    out[i * self.n + col] = acc;
                }
            }
        }
    }
}

struct SharedOut(*mut f32);
// SAFETY: only used to hand disjoint column ranges of one buffer to rayon tasks.
unsafe impl Sync for SharedOut {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16,
    Scalar,
}

impl Kernel {
    fn detect() -> Self {
        static KERNEL: OnceLock<Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if std::env::var_os("R2R_BF16_SCALAR").is_none() && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16") {
                return Kernel::Avx512Bf16;
            }
            Kernel::Scalar
        })
    }
}

/// Whether this CPU runs the bf16 kernel natively (AVX512-BF16); otherwise bf16 mode is a slow scalar loop.
pub fn native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Kernel::detect() == Kernel::Avx512Bf16
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// One register tile: rows 0..mr of x (bf16 pairs, `pairs` per row) × panels 0..nr (`panel_stride`
    /// words apart), written to out (row stride `ld`) for columns 0..cols.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile(x: &[u32], pairs: usize, w: &[u32], panel_stride: usize, mr: usize, nr: usize, out: &mut [f32], ld: usize, cols: usize) {
        macro_rules! dispatch {
            ($($m:literal),*) => {
                match (mr, nr) {
                    $(($m, 4) => tile_n::<$m, 4>(x, pairs, w, panel_stride, out, ld, cols),
                      ($m, 3) => tile_n::<$m, 3>(x, pairs, w, panel_stride, out, ld, cols),
                      ($m, 2) => tile_n::<$m, 2>(x, pairs, w, panel_stride, out, ld, cols),
                      ($m, 1) => tile_n::<$m, 1>(x, pairs, w, panel_stride, out, ld, cols),)*
                    _ => unreachable!("tile {mr} × {nr}"),
                }
            };
        }
        dispatch!(1, 2, 3, 4, 5, 6)
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn tile_n<const M: usize, const N: usize>(x: &[u32], pairs: usize, w: &[u32], panel_stride: usize, out: &mut [f32], ld: usize, cols: usize) {
        debug_assert!(x.len() >= M * pairs && w.len() >= (N - 1) * panel_stride + pairs * 16);
        let mut acc = [[_mm512_setzero_ps(); N]; M];
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        for j in 0..pairs {
            let mut wv = [_mm512_setzero_si512(); N];
            for (p, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(wp.add(p * panel_stride + j * 16) as *const __m512i);
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(*xp.add(i * pairs + j) as i32));
                for (a, v) in row.iter_mut().zip(&wv) {
                    *a = _mm512_dpbf16_ps(*a, xv, std::mem::transmute::<__m512i, __m512bh>(*v));
                }
            }
        }
        let op = out.as_mut_ptr();
        for (i, row) in acc.iter().enumerate() {
            for (p, a) in row.iter().enumerate() {
                let col = p * 16;
                if col + 16 <= cols {
                    debug_assert!(i * ld + col + 16 <= out.len());
                    _mm512_storeu_ps(op.add(i * ld + col), *a);
                } else if col < cols {
                    let mask: __mmask16 = (1u32 << (cols - col)) as u16 - 1;
                    _mm512_mask_storeu_ps(op.add(i * ld + col), mask, *a);
                }
            }
        }
    }
}


/// √(2/π), the gelu-tanh constant.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044_715;

/// e^x for x ≤ 0 (inputs below −87 give 0), relative error about 2e-7, in a form the compiler vectorises:
/// x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by its degree-6 Taylor polynomial, 2^n through the exponent bits.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    let x = x.max(-87.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// tanh(u) = sign(u) · (1 − e^{−2|u|}) / (1 + e^{−2|u|}).
#[inline(always)]
fn tanh_fast(u: f32) -> f32 {
    let e = exp_nonpositive(-2.0 * u.abs());
    ((1.0 - e) / (1.0 + e)).copysign(u)
}

/// gelu-tanh, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), over a slice (in place), on rayon's threads.
/// Agrees with the libm form to about 1e-6 relative; a NaN input gives NaN.
pub fn gelu_tanh_in_place(values: &mut [f32]) {
    values.par_chunks_mut(1 << 14).for_each(|chunk| {
        for v in chunk {
            let x = *v;
            let t = tanh_fast(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
            *v = 0.5 * x * (1.0 + t);
        }
    });
}

/// The gradient of gelu-tanh: grad · d gelu(x)/dx, elementwise (x and grad of equal length).
pub fn gelu_tanh_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), grad.len(), "gelu backward: {} inputs, {} gradients", x.len(), grad.len());
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(1 << 14).zip(x.par_chunks(1 << 14).zip(grad.par_chunks(1 << 14))).for_each(|(out, (x, grad))| {
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
            let t = tanh_fast(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
            let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x);
            *o = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
        }
    });
    out
}
