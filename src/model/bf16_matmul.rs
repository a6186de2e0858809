//! The CPU bf16 matmul of the frozen base weights lives in the `r2r-cpu-kernels` crate (`crates/cpu-kernels`,
//! compiled with optimisations in every profile), with the vectorised gelu-tanh / GeGLU that bf16 mode uses;
//! this module re-exports them and tests them.

pub use r2r_cpu_kernels::{geglu_tanh, geglu_tanh_backward, gelu_tanh_backward, gelu_tanh_in_place, output_buffer, Kernel as Bf16Kernel, PackedBf16};

#[cfg(test)]
mod tests {
    use r2r_cpu_kernels::{bf16_bits, bf16_value};

    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// y = x·Wᵀ over the bf16-rounded values, in f64.
    fn reference(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let r = |v: f32| bf16_value(bf16_bits(v)) as f64;
        (0..m).flat_map(|i| (0..n).map(move |j| (0..k).map(|l| r(x[i * k + l]) * r(w[j * k + l])).sum::<f64>() as f32)).collect()
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to the even 1.0.
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3F80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3F82);
        assert_eq!(bf16_bits(-2.5), 0xC020);
        assert!(bf16_value(bf16_bits(f32::NAN)).is_nan());
    }

    #[test]
    fn every_available_kernel_matches_the_bf16_reference_on_ragged_shapes() {
        // Shapes that exercise every edge: odd k, k not a multiple of 32 (padded AMX steps), partial panels
        // and blocks, row tiles of 1..6 (AVX512) and 16/32-row blocks with tails (AMX), both parallel
        // splits (few rows: column blocks; many rows: row tasks).
        let kernels = Bf16Kernel::available();
        assert_eq!(kernels.last(), Some(&Bf16Kernel::Scalar));
        eprintln!("bf16 kernels on this CPU: {:?}", kernels);
        for &kernel in kernels {
            for &(m, n, k) in &[(1, 1, 1), (5, 17, 3), (7, 70, 33), (13, 100, 64), (400, 37, 19), (97, 130, 48), (33, 48, 96), (16, 32, 64), (600, 80, 70)] {
                let (x, w) = (values(m * k, 1 + m as u64), values(n * k, 2 + n as u64));
                let packed = PackedBf16::pack(&w, n, k);
                let got = packed.matmul_with(kernel, &x, m);
                let want = reference(&x, &w, m, n, k);
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{kernel:?} m {m} n {n} k {k}: element {i}: {g} vs {e}");
                }
                // The transposed packing multiplies by W itself: x2 [m, n] · W [n, k].
                let x2 = values(m * n, 3);
                let packed_t = PackedBf16::pack_transposed(&w, n, k);
                let got_t = packed_t.matmul_with(kernel, &x2, m);
                let wt: Vec<f32> = (0..k).flat_map(|c| (0..n).map({ let w = &w; move |r| w[r * k + c] })).collect();
                let want_t = reference(&x2, &wt, m, k, n);
                for (g, e) in got_t.iter().zip(&want_t) {
                    assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{kernel:?} transposed m {m} n {n} k {k}: {g} vs {e}");
                }
            }
        }
    }

    #[test]
    fn kernels_agree_to_f32_rounding_and_nan_propagates() {
        let (m, n, k) = (70, 50, 640);
        let (mut x, w) = (values(m * k, 11), values(n * k, 12));
        let packed = PackedBf16::pack(&w, n, k);
        let scalar = packed.matmul_with(Bf16Kernel::Scalar, &x, m);
        x[5 * k + 7] = f32::NAN;
        for &kernel in Bf16Kernel::available() {
            let got = PackedBf16::pack(&w, n, k).matmul_with(kernel, &values(m * k, 11), m);
            let worst = got.iter().zip(&scalar).map(|(g, s)| (g - s).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-4, "{kernel:?} differs from the scalar kernel by {worst}");
            let with_nan = packed.matmul_with(kernel, &x, m);
            assert!(with_nan[5 * n..6 * n].iter().all(|v| v.is_nan()), "{kernel:?}: a NaN input must make its row NaN");
            assert!(with_nan[4 * n..5 * n].iter().all(|v| v.is_finite()), "{kernel:?}: other rows stay finite");
        }
    }

    #[test]
    fn close_to_f32_and_independent_of_the_thread_count() {
        let (m, n, k) = (300, 96, 640);
        let (x, w) = (values(m * k, 5), values(n * k, 6));
        let packed = PackedBf16::pack(&w, n, k);
        let got = packed.matmul(&x, m);
        let exact: Vec<f32> = (0..m).flat_map(|i| (0..n).map({ let (x, w) = (&x, &w); move |j| (0..k).map(|l| x[i * k + l] * w[j * k + l]).sum::<f32>() })).collect();
        let worst = got.iter().zip(&exact).map(|(g, e)| (g - e).abs()).fold(0f32, f32::max);
        // Inputs in [-1, 1], k = 640: sums spread about 8.4; bf16 rounding (2^-9 relative per factor) adds
        // about 0.03 per sum (one sigma), so the worst of 28,800 sums stays below 0.25.
        assert!(worst < 0.25, "bf16 product is {worst} from f32");
        assert!(worst > 0.0, "bf16 rounding must show somewhere");
        for &kernel in Bf16Kernel::available() {
            let all = packed.matmul_with(kernel, &x, m);
            let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| packed.matmul_with(kernel, &x, m));
            let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap().install(|| packed.matmul_with(kernel, &x, m));
            assert_eq!(one, all, "{kernel:?}");
            assert_eq!(three, all, "{kernel:?}");
        }
    }

    #[test]
    fn fast_gelu_tanh_matches_the_libm_form_and_its_gradient() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 100.0).chain([-100.0, 100.0, 1e-8, -1e-8, 0.0]).collect();
        let exact = |x: f32| 0.5 * x as f64 * (1.0 + (0.797_884_560_802_865_4 * (x as f64 + 0.044715 * (x as f64).powi(3))).tanh());
        let mut got = xs.clone();
        gelu_tanh_in_place(&mut got);
        for (&x, &g) in xs.iter().zip(&got) {
            let e = exact(x);
            assert!((g as f64 - e).abs() <= 2e-6 * (1.0 + e.abs()), "gelu({x}) = {g}, expected {e}");
        }
        let ones = vec![1f32; xs.len()];
        let grad = gelu_tanh_backward(&xs, &ones);
        for (&x, &g) in xs.iter().zip(&grad) {
            let h = 1e-3;
            let numeric = (exact(x + h) - exact(x - h)) / (2.0 * h as f64);
            assert!((g as f64 - numeric).abs() <= 1e-3, "gelu'({x}) = {g}, numeric {numeric}");
        }
        let mut nan = vec![f32::NAN];
        gelu_tanh_in_place(&mut nan);
        assert!(nan[0].is_nan());
    }
}
