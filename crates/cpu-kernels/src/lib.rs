//! CPU kernels of R2R Workbench, in a crate of their own so that they are compiled with optimisations in every
//! profile (`Cargo.toml` sets opt-level 3 for it; at the workspace's dev opt-level the register tiles are not
//! unrolled and the bf16 kernel runs at a third of its speed, and the element-wise loops are not vectorised):
//! the fused element-wise ops of training steps (module `fused`: RoPE, RMSNorm, softmax, GeGLU, each with its
//! backward, dropout masks and a tiled transpose) and, here, bf16 matrix products for the frozen base weights.
//! Its tests live in the workbench (`src/model/bf16_matmul.rs`, `fused_ops.rs`, `transformer.rs`, `lora.rs`).
//!
//! The bf16 products: y = x·Wᵀ with W packed once into bf16 panels and x rounded to bf16 per call, products
//! accumulated in f32 (what PyTorch's autocast and QLoRA's bf16 compute do). Three kernels compute the same
//! sums over the same bf16 values, in the same k order (pair by pair), and differ only in f32 rounding:
//! - **AMX** (`tdpbf16ps`, Intel Sapphire Rapids and later): 16 × 16 × 32 products per instruction, in
//!   tile registers, through inline assembly (stable Rust has no AMX intrinsics). Linux only, because the
//!   process must ask the kernel for the tile state first (`arch_prctl(ARCH_REQ_XCOMP_PERM)`).
//! - **AVX512-BF16** (`vdpbf16ps`: 32 bf16 products per instruction, twice the f32 FMA rate).
//! - **scalar**: the same bf16 values in a plain loop, so bf16 mode works (slowly) everywhere and every
//!   kernel is testable against it.
//!
//! The best one the CPU has is used; `R2R_BF16_KERNEL=amx|avx512|scalar` picks one (for A/B timings and
//! to reproduce a run made on another CPU; one that the CPU lacks falls back to the best available).
//!
//! Layout: W [n, k] becomes ⌈n/16⌉ panels of 16 output columns; panel p holds, for every k-pair j, 16
//! u32 words (lane c = bf16(W[16p+c, 2j]) | bf16(W[16p+c, 2j+1]) << 16) — one 512-bit load per pair,
//! and 16 consecutive pairs are exactly one AMX B tile (the "VNNI" layout). Pairs are padded with zeros
//! to a multiple of 16 so that the AMX k loop has no tail. Work is split over rayon's threads by output
//! rows (or by column blocks when there are few rows); each output element is one thread's sum in a fixed
//! k order, so results do not depend on the number of threads.

use rayon::prelude::*;
use std::sync::OnceLock;

mod fused;
pub use fused::{dropout_mask, geglu_tanh, geglu_tanh_backward, rms_norm, rms_norm_backward, rope, softmax_rows, softmax_rows_backward, transpose_last_two};

/// A buffer of `len` f32 for an output that is about to be written in full, without first filling it
/// with zeros (a memset of every activation, on one thread, before the parallel work starts: about a
/// tenth of a LoRA training step). candle allocates its op outputs the same way (`alloc_uninit`).
///
/// # Safety
/// Every element must be written before any is read.
#[allow(clippy::uninit_vec)]
pub unsafe fn output_buffer(len: usize) -> Vec<f32> {
    let mut buffer = Vec::with_capacity(len);
    buffer.set_len(len);
    buffer
}

/// Output columns per panel (one 512-bit register of f32, one AMX tile's width).
const LANES: usize = 16;
/// k-pairs per AMX step (one tile row of 64 bytes); the packed pairs are padded to a multiple of it.
const PAIR_BLOCK: usize = 16;
/// Register tile of the AVX512 kernel: MR rows × NR panels (6 × 4 × 16 accumulators, 24 of 32 zmm registers).
const MR: usize = 6;
const NR: usize = 4;
/// Rows per task: a task's bf16 rows (≤ 96 × 1024 pairs × 4 B) stay in L2 while it walks all columns.
/// A multiple of the AMX block (32 rows).
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

/// The kernels (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Amx,
    Avx512Bf16,
    Scalar,
}

impl Kernel {
    /// Short name, as `R2R_BF16_KERNEL` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "amx",
            Kernel::Avx512Bf16 => "avx512",
            Kernel::Scalar => "scalar",
        }
    }

    /// The kernels this CPU (and OS) can run, fastest first; `Scalar` always.
    pub fn available() -> &'static [Kernel] {
        static AVAILABLE: OnceLock<Vec<Kernel>> = OnceLock::new();
        AVAILABLE.get_or_init(|| {
            let mut kernels = Vec::new();
            #[cfg(target_arch = "x86_64")]
            {
                if amx::enable() {
                    kernels.push(Kernel::Amx);
                }
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16") {
                    kernels.push(Kernel::Avx512Bf16);
                }
            }
            kernels.push(Kernel::Scalar);
            kernels
        })
    }

    /// The kernel `matmul` uses: `R2R_BF16_KERNEL` if set and available (`R2R_BF16_SCALAR` set: scalar),
    /// else the fastest available.
    pub fn selected() -> Kernel {
        static SELECTED: OnceLock<Kernel> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let available = Kernel::available();
            let wanted = match std::env::var("R2R_BF16_KERNEL") {
                Ok(name) => available.iter().copied().find(|k| k.name() == name.trim().to_ascii_lowercase()),
                Err(_) if std::env::var_os("R2R_BF16_SCALAR").is_some() => Some(Kernel::Scalar),
                Err(_) => None,
            };
            wanted.unwrap_or(available[0])
        })
    }
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
    /// Pairs stored per panel row and per input row: `pairs` rounded up to a multiple of 16, zeros past it.
    stride: usize,
    /// ⌈n/16⌉ panels × stride × 16 words; columns past n are zero.
    data: Vec<u32>,
}

impl PackedBf16 {
    /// Packs W given as `w(row, col)` for row < n, col < k.
    fn pack_with(n: usize, k: usize, w: impl Fn(usize, usize) -> f32 + Sync) -> Self {
        let pairs = k.div_ceil(2);
        let stride = pairs.div_ceil(PAIR_BLOCK) * PAIR_BLOCK;
        let panels = n.div_ceil(LANES);
        let mut data = vec![0u32; panels * stride * LANES];
        data.par_chunks_mut(stride * LANES).enumerate().for_each(|(p, panel)| {
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
        Self { n, k, pairs, stride, data }
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
        &self.data[p * self.stride * LANES..(p + 1) * self.stride * LANES]
    }

    /// y = x·Wᵀ for x [m, k] row-major; returns y [m, n] row-major. Uses [`Kernel::selected`].
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_with(Kernel::selected(), x, m)
    }

    /// y = x·Wᵀ through the given kernel. Panics if the kernel is not in [`Kernel::available`].
    pub fn matmul_with(&self, kernel: Kernel, x: &[f32], m: usize) -> Vec<f32> {
        // SAFETY: matmul_into_with writes every element of y (each kernel stores every row and column of
        // every block it is given, and the blocks cover y).
        let mut y = unsafe { output_buffer(m * self.n) };
        self.matmul_into_with(kernel, x, m, &mut y);
        y
    }

    /// y = x·Wᵀ written into y [m, n] (every element is overwritten). Uses [`Kernel::selected`].
    pub fn matmul_into(&self, x: &[f32], m: usize, y: &mut [f32]) {
        self.matmul_into_with(Kernel::selected(), x, m, y)
    }

    /// [`Self::matmul_into`] through the given kernel. Panics if the kernel is not in [`Kernel::available`].
    pub fn matmul_into_with(&self, kernel: Kernel, x: &[f32], m: usize, y: &mut [f32]) {
        assert!(Kernel::available().contains(&kernel), "the {} bf16 kernel is not available on this CPU", kernel.name());
        assert_eq!(x.len(), m * self.k, "input has {} values, expected {m} × {}", x.len(), self.k);
        let n = self.n;
        assert_eq!(y.len(), m * n, "output has {} values, expected {m} × {n}", y.len());
        if m == 0 || n == 0 {
            return;
        }
        let threads = rayon::current_num_threads().max(1);
        let panels_per_block = if kernel == Kernel::Amx { 2 } else { NR };
        let blocks = n.div_ceil(LANES).div_ceil(panels_per_block);
        if m >= ROWS_PER_TASK * threads || m >= 4 * ROWS_PER_TASK {
            // Row tasks: each converts its rows to bf16 once and walks every column block.
            y.par_chunks_mut(ROWS_PER_TASK * n).zip(x.par_chunks(ROWS_PER_TASK * self.k)).for_each(|(y, x)| {
                let rows = x.len() / self.k;
                let xb = self.to_pairs(kernel, x, rows);
                self.blocks(kernel, &xb, rows, 0..blocks, y);
            });
        } else {
            // Few rows: split the column blocks instead; every task writes its own columns of y.
            let xb = self.to_pairs(kernel, x, m);
            let out = SharedOut(y.as_mut_ptr());
            let tasks = blocks.min(4 * threads);
            (0..tasks).into_par_iter().for_each(|task| {
                let out = &out;
                // SAFETY: tasks take disjoint ranges of column blocks, so they write disjoint elements of y.
                let y = unsafe { std::slice::from_raw_parts_mut(out.0, m * n) };
                self.blocks(kernel, &xb, m, task * blocks / tasks..(task + 1) * blocks / tasks, y);
            });
        }
    }

    /// Rows of x as bf16 pairs [rows rounded up to 16, stride], zeros past k and past the last row.
    fn to_pairs(&self, kernel: Kernel, x: &[f32], rows: usize) -> Vec<u32> {
        let (k, stride) = (self.k, self.stride);
        let mut xb = vec![0u32; rows.div_ceil(16) * 16 * stride];
        #[cfg(target_arch = "x86_64")]
        if kernel != Kernel::Scalar && fast_convert() {
            for (dst, src) in xb.chunks_exact_mut(stride).zip(x.chunks_exact(k)) {
                // SAFETY: the CPU has AVX512-BF16 (checked by fast_convert); dst holds ⌈k/2⌉ ≤ stride words.
                unsafe { avx512::to_bf16_pairs(src, dst) };
            }
            return xb;
        }
        for (dst, src) in xb.chunks_exact_mut(stride).zip(x.chunks_exact(k)) {
            for (j, d) in dst.iter_mut().enumerate().take(k / 2) {
                *d = bf16_bits(src[2 * j]) | (bf16_bits(src[2 * j + 1]) << 16);
            }
            if k % 2 == 1 {
                dst[self.pairs - 1] = bf16_bits(src[k - 1]);
            }
        }
        xb
    }

    /// Column blocks `blocks` for all `rows` rows of xb, into y [rows, n].
    fn blocks(&self, kernel: Kernel, xb: &[u32], rows: usize, blocks: std::ops::Range<usize>, y: &mut [f32]) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Amx` is only available when the CPU reports AMX-BF16 and the OS granted the
            // tile state; xb holds rows rounded up to 16 of `stride` words, y holds rows × n.
            Kernel::Amx => unsafe { amx::blocks(&self.data, self.stride, self.n, xb, rows, blocks, y) },
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Amx => unreachable!("AMX is x86-64 only"),
            _ => {
                for block in blocks {
                    self.block(kernel, xb, rows, block, y);
                }
            }
        }
    }

    /// Columns of block `block` (NR panels) for all `rows` rows of xb, into y [rows, n] (AVX512, scalar).
    fn block(&self, kernel: Kernel, xb: &[u32], rows: usize, block: usize, y: &mut [f32]) {
        let panels = self.n.div_ceil(LANES);
        let p0 = block * NR;
        let nr = NR.min(panels - p0);
        let col0 = p0 * LANES;
        let cols = (self.n - col0).min(nr * LANES);
        let mut r = 0;
        while r < rows {
            let mr = MR.min(rows - r);
            let x = &xb[r * self.stride..(r + mr) * self.stride];
            let out = &mut y[r * self.n + col0..];
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::Avx512Bf16` is only available when the CPU reports avx512f and avx512bf16;
                // x holds mr rows of `stride` words, the panels p0..p0+nr exist, out holds mr rows of n
                // with at least `cols` columns from col0.
                Kernel::Avx512Bf16 => unsafe { avx512::tile(x, self.pairs, self.stride, &self.data[p0 * self.stride * LANES..], self.stride * LANES, mr, nr, out, self.n, cols) },
                _ => self.scalar_tile(x, mr, p0, nr, out, cols),
            }
            r += mr;
        }
    }

    fn scalar_tile(&self, x: &[u32], mr: usize, p0: usize, nr: usize, out: &mut [f32], cols: usize) {
        for i in 0..mr {
            let xi = &x[i * self.stride..i * self.stride + self.pairs];
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

/// Whether the native kernels may round rows to bf16 with `vcvtne2ps2bf16` (AVX512-BF16, which every AMX CPU has).
/// It rounds to nearest even like [`bf16_bits`] and gives the same bits except for f32 denormals, which it
/// flushes to zero; the dot-product instructions of both native kernels treat bf16 denormals as zero
/// anyway, so the products are the same.
#[cfg(target_arch = "x86_64")]
fn fast_convert() -> bool {
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16"))
}

struct SharedOut(*mut f32);
// SAFETY: only used to hand disjoint column ranges of one buffer to rayon tasks.
unsafe impl Sync for SharedOut {}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// One register tile: rows 0..mr of x (bf16 pairs, `pairs` used of `stride` per row) × panels 0..nr
    /// (`panel_stride` words apart), written to out (row stride `ld`) for columns 0..cols.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile(x: &[u32], pairs: usize, stride: usize, w: &[u32], panel_stride: usize, mr: usize, nr: usize, out: &mut [f32], ld: usize, cols: usize) {
        macro_rules! dispatch {
            ($($m:literal),*) => {
                match (mr, nr) {
                    $(($m, 4) => tile_n::<$m, 4>(x, pairs, stride, w, panel_stride, out, ld, cols),
                      ($m, 3) => tile_n::<$m, 3>(x, pairs, stride, w, panel_stride, out, ld, cols),
                      ($m, 2) => tile_n::<$m, 2>(x, pairs, stride, w, panel_stride, out, ld, cols),
                      ($m, 1) => tile_n::<$m, 1>(x, pairs, stride, w, panel_stride, out, ld, cols),)*
                    _ => unreachable!("tile {mr} × {nr}"),
                }
            };
        }
        dispatch!(1, 2, 3, 4, 5, 6)
    }

    /// dst[j] = bf16(src[2j]) | bf16(src[2j + 1]) << 16 for j < ⌈len/2⌉ (an odd tail pairs with zero):
    /// 32 values per `vcvtne2ps2bf16`, whose 32 bf16 results sit in memory order.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn to_bf16_pairs(src: &[f32], dst: &mut [u32]) {
        debug_assert!(dst.len() >= src.len().div_ceil(2));
        let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
        let full = src.len() / 32;
        for c in 0..full {
            let lo = _mm512_loadu_ps(sp.add(32 * c));
            let hi = _mm512_loadu_ps(sp.add(32 * c + 16));
            let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(dp.add(16 * c) as *mut __m512i, packed);
        }
        let done = full * 32;
        let rest = src.len() - done;
        if rest > 0 {
            // The tail through masked loads (zeros past the end, which round to zero).
            let lo_mask: __mmask16 = if rest >= 16 { 0xFFFF } else { ((1u32 << rest) - 1) as u16 };
            let hi_mask: __mmask16 = if rest > 16 { ((1u32 << (rest - 16)) - 1) as u16 } else { 0 };
            let lo = _mm512_maskz_loadu_ps(lo_mask, sp.add(done));
            let hi = _mm512_maskz_loadu_ps(hi_mask, sp.wrapping_add(done + 16));
            let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            let words = rest.div_ceil(2);
            let word_mask: __mmask16 = if words >= 16 { 0xFFFF } else { ((1u32 << words) - 1) as u16 };
            _mm512_mask_storeu_epi32(dp.add(16 * full) as *mut i32, word_mask, packed);
        }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_n<const M: usize, const N: usize>(x: &[u32], pairs: usize, stride: usize, w: &[u32], panel_stride: usize, out: &mut [f32], ld: usize, cols: usize) {
        debug_assert!(x.len() >= (M - 1) * stride + pairs && w.len() >= (N - 1) * panel_stride + pairs * 16);
        let mut acc = [[_mm512_setzero_ps(); N]; M];
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        for j in 0..pairs {
            let mut wv = [_mm512_setzero_si512(); N];
            for (p, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(wp.add(p * panel_stride + j * 16) as *const __m512i);
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(*xp.add(i * stride + j) as i32));
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

/// The AMX kernel. Tile registers: tmm0–tmm3 accumulate a 32 × 32 block of y (2 × 2 tiles of 16 × 16
/// f32), tmm4/tmm5 hold 16 rows × 16 pairs of x each, tmm6/tmm7 16 pairs × 16 columns of a panel each.
/// The compiler never uses tile registers itself (no AMX target feature is enabled for Rust code), so
/// their contents survive between the `asm!` blocks of one function.
#[cfg(target_arch = "x86_64")]
mod amx {
    use std::arch::asm;

    use super::{LANES, PAIR_BLOCK};

    /// Whether the CPU has AMX-BF16 and the OS granted this process the tile state (Linux 5.16+).
    pub fn enable() -> bool {
        // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
        let max_leaf = std::arch::x86_64::__cpuid(0).eax;
        if max_leaf < 7 {
            return false;
        }
        let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
        if (edx >> 22) & 1 == 0 || (edx >> 24) & 1 == 0 {
            return false;
        }
        request_tile_state()
    }

    #[cfg(target_os = "linux")]
    fn request_tile_state() -> bool {
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        // SAFETY: arch_prctl with these arguments only changes which xsave features the process may use.
        unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
    }

    #[cfg(not(target_os = "linux"))]
    fn request_tile_state() -> bool {
        false
    }

    /// Palette 1, all eight tiles 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const CONFIG: TileConfig = {
        let mut bytes = [0u8; 64];
        bytes[0] = 1;
        let mut t = 0;
        while t < 8 {
            bytes[16 + 2 * t] = 64;
            bytes[48 + t] = 16;
            t += 1;
        }
        TileConfig(bytes)
    };

    /// y[rows, n] for the panels of column blocks `blocks` (2 panels each) of the packed weight `data`
    /// (`stride` pairs per panel row) and the bf16 rows xb (`rows` rounded up to 16, `stride` words each).
    ///
    /// # Safety
    /// AMX must be available (`enable()` returned true); the buffers must have the sizes above.
    pub unsafe fn blocks(data: &[u32], stride: usize, n: usize, xb: &[u32], rows: usize, blocks: std::ops::Range<usize>, y: &mut [f32]) {
        let panels = n.div_ceil(LANES);
        let row_tiles = rows.div_ceil(16);
        debug_assert!(xb.len() >= row_tiles * 16 * stride && data.len() >= panels * stride * LANES && y.len() >= rows * n);
        let config = CONFIG;
        asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
        // A 32 × 32 staging block for the edges (rows past `rows`, columns past n).
        let mut edge = [0f32; 32 * 32];
        for block in blocks {
            let p0 = 2 * block;
            let two_panels = p0 + 1 < panels;
            let w = data.as_ptr().add(p0 * stride * LANES);
            let mut rt = 0;
            while rt < row_tiles {
                let two_rows = rt + 1 < row_tiles;
                let x = xb.as_ptr().add(rt * 16 * stride);
                match (two_rows, two_panels) {
                    (true, true) => product::<true, true>(x, stride, w, stride * LANES),
                    (true, false) => product::<true, false>(x, stride, w, stride * LANES),
                    (false, true) => product::<false, true>(x, stride, w, stride * LANES),
                    (false, false) => product::<false, false>(x, stride, w, stride * LANES),
                }
                let (r0, c0) = (rt * 16, p0 * LANES);
                let block_rows = if two_rows { 32 } else { 16 };
                let block_cols = if two_panels { 32 } else { 16 };
                let (valid_rows, valid_cols) = ((rows - r0).min(block_rows), (n - c0).min(block_cols));
                if valid_rows == block_rows && valid_cols == block_cols {
                    store(y.as_mut_ptr().add(r0 * n + c0), n * 4, two_rows, two_panels);
                } else {
                    store(edge.as_mut_ptr(), 32 * 4, two_rows, two_panels);
                    for r in 0..valid_rows {
                        y[(r0 + r) * n + c0..(r0 + r) * n + c0 + valid_cols].copy_from_slice(&edge[r * 32..r * 32 + valid_cols]);
                    }
                }
                rt += if two_rows { 2 } else { 1 };
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }

    /// Accumulates into tmm0 (rows 0–15 × panel 0), tmm1 (rows 0–15 × panel 1), tmm2 (rows 16–31 ×
    /// panel 0), tmm3 (rows 16–31 × panel 1) the products of x (`stride` words per row) and the two panels
    /// at w and w + panel_stride, over all `stride` pairs in steps of 16.
    #[inline(always)]
    unsafe fn product<const TWO_ROWS: bool, const TWO_PANELS: bool>(x: *const u32, stride: usize, w: *const u32, panel_stride: usize) {
        let x_bytes = stride * 4;
        asm!("tilezero tmm0", options(nostack, nomem));
        if TWO_PANELS {
            asm!("tilezero tmm1", options(nostack, nomem));
        }
        if TWO_ROWS {
            asm!("tilezero tmm2", options(nostack, nomem));
        }
        if TWO_ROWS && TWO_PANELS {
            asm!("tilezero tmm3", options(nostack, nomem));
        }
        let mut j = 0;
        while j < stride {
            asm!("tileloadd tmm4, [{p} + {s}*1]", p = in(reg) x.add(j), s = in(reg) x_bytes, options(nostack, readonly));
            asm!("tileloadd tmm6, [{p} + {s}*1]", p = in(reg) w.add(j * LANES), s = in(reg) 64usize, options(nostack, readonly));
            if TWO_PANELS {
                asm!("tileloadd tmm7, [{p} + {s}*1]", p = in(reg) w.add(panel_stride + j * LANES), s = in(reg) 64usize, options(nostack, readonly));
            }
            asm!("tdpbf16ps tmm0, tmm4, tmm6", options(nostack, nomem));
            if TWO_PANELS {
                asm!("tdpbf16ps tmm1, tmm4, tmm7", options(nostack, nomem));
            }
            if TWO_ROWS {
                asm!("tileloadd tmm5, [{p} + {s}*1]", p = in(reg) x.add(16 * stride + j), s = in(reg) x_bytes, options(nostack, readonly));
                asm!("tdpbf16ps tmm2, tmm5, tmm6", options(nostack, nomem));
                if TWO_PANELS {
                    asm!("tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
                }
            }
            j += PAIR_BLOCK;
        }
    }

    /// Writes the accumulators to out (`ld_bytes` per row): tmm0 at (0, 0), tmm1 at (0, 16), tmm2 at
    /// (16, 0), tmm3 at (16, 16).
    #[inline(always)]
    unsafe fn store(out: *mut f32, ld_bytes: usize, two_rows: bool, two_panels: bool) {
        let row16 = out.wrapping_byte_add(16 * ld_bytes);
        asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) out, s = in(reg) ld_bytes, options(nostack));
        if two_panels {
            asm!("tilestored [{p} + {s}*1], tmm1", p = in(reg) out.add(16), s = in(reg) ld_bytes, options(nostack));
        }
        if two_rows {
            asm!("tilestored [{p} + {s}*1], tmm2", p = in(reg) row16, s = in(reg) ld_bytes, options(nostack));
            if two_panels {
                asm!("tilestored [{p} + {s}*1], tmm3", p = in(reg) row16.add(16), s = in(reg) ld_bytes, options(nostack));
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

/// gelu-tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) and its slope d gelu/dx, the one form every
/// gelu kernel here uses (callers that need only the value let the compiler drop the slope).
#[inline(always)]
pub(crate) fn gelu_tanh_parts(x: f32) -> (f32, f32) {
    let t = tanh_fast(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x);
    (0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
}

/// gelu-tanh over a slice (in place), on rayon's threads. Agrees with the libm form to about 1e-6 relative;
/// a NaN input gives NaN.
pub fn gelu_tanh_in_place(values: &mut [f32]) {
    values.par_chunks_mut(1 << 14).for_each(|chunk| {
        for v in chunk {
            *v = gelu_tanh_parts(*v).0;
        }
    });
}

/// The gradient of gelu-tanh: grad · d gelu(x)/dx, elementwise (x and grad of equal length).
pub fn gelu_tanh_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), grad.len(), "gelu backward: {} inputs, {} gradients", x.len(), grad.len());
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(1 << 14).zip(x.par_chunks(1 << 14).zip(grad.par_chunks(1 << 14))).for_each(|(out, (x, grad))| {
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
            *o = g * gelu_tanh_parts(x).1;
        }
    });
    out
}

