//! Label-noise injection.
//!
//! A noise model has two parts: *which* samples get a redrawn label (`rate`: exactly
//! `round(rate · n)` of them chosen without replacement when `exact`, or each independently with
//! probability `rate`), and *how* a chosen sample's label is redrawn (the [`NoiseMode`]):
//!
//! - `Symmetric`: a uniformly chosen *other* class (so every chosen sample is flipped);
//! - `Uniform`: a uniformly chosen class out of all K (it may keep its class; the realised flip
//!   rate is `rate · (K − 1) / K`);
//! - `PairFlip`: class k → (k + 1) mod K;
//! - `Matrix(T)`: class j with probability `T[i, j]` = P(noisy = j | clean = i), T row-stochastic.
//!   With `rate = 1` every sample is redrawn, so the realised transition matrix is T itself.
//!
//! The selection and each sample's redraw come from separate counter-based streams, so the output
//! is the same for any number of threads.

use rayon::prelude::*;

use crate::rng::{domain, purpose, StreamFamily};
use crate::{try_vec, CoreError, Result};

/// Rows of this many samples are handled by one rayon task.
const CHUNK: usize = 1 << 14;

/// How a chosen sample's label is redrawn (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub enum NoiseMode {
    Symmetric,
    Uniform,
    PairFlip,
    /// Row-major K × K row-stochastic matrix, `T[i * K + j]` = P(noisy = j | clean = i).
    Matrix(Vec<f64>),
}

/// Most classes a label array may have (labels are int64).
pub const MAX_CLASSES: usize = i64::MAX as usize;

/// Tolerance on the row sums of a transition matrix.
pub const MATRIX_ROW_TOL: f64 = 1e-6;

/// Check that `matrix` is a K × K row-stochastic matrix (finite, ≥ 0, rows sum to 1 within 1e-6).
pub fn validate_matrix(matrix: &[f64], n_classes: usize) -> Result<()> {
    let need = n_classes.checked_mul(n_classes).ok_or_else(|| {
        CoreError::value(format!("matrix: n_classes={n_classes} is too large for a transition matrix"))
    })?;
    if matrix.len() != need {
        return Err(CoreError::value(format!(
            "matrix: expected {n_classes} x {n_classes} = {need} entries, got {}",
            matrix.len()
        )));
    }
    for (i, row) in matrix.chunks_exact(n_classes).enumerate() {
        if let Some(j) = row.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(CoreError::value(format!(
                "matrix: entries must be finite and >= 0, got matrix[{i}, {j}] = {}",
                row[j]
            )));
        }
        let s: f64 = row.iter().sum();
        if (s - 1.0).abs() > MATRIX_ROW_TOL {
            return Err(CoreError::value(format!(
                "matrix: each row must sum to 1 (within {MATRIX_ROW_TOL:e}), row {i} sums to {s}"
            )));
        }
    }
    Ok(())
}

/// Number of samples an exact noise model redraws: `round(rate · n)`, halves rounded up.
pub fn exact_count(rate: f64, n: usize) -> usize {
    let k = (rate * n as f64 + 0.5).floor();
    if k <= 0.0 {
        0
    } else if k >= n as f64 {
        n
    } else {
        k as usize
    }
}

fn check_args(y: &[i64], n_classes: usize, rate: f64, mode: &NoiseMode) -> Result<()> {
    if !(2..=MAX_CLASSES).contains(&n_classes) {
        return Err(CoreError::value(format!(
            "n_classes must be an integer in [2, {MAX_CLASSES}], got {n_classes}"
        )));
    }
    if !(0.0..=1.0).contains(&rate) {
        return Err(CoreError::value(format!("rate must be in [0, 1], got {rate}")));
    }
    if let NoiseMode::Matrix(m) = mode {
        validate_matrix(m, n_classes)?;
    }
    let k = n_classes as i64;
    let bad = y
        .par_chunks(CHUNK)
        .map(|c| c.iter().copied().find(|&v| v < 0 || v >= k))
        .find_any(|v| v.is_some())
        .flatten();
    if let Some(v) = bad {
        return Err(CoreError::value(format!(
            "y: labels must be in [0, n_classes) = [0, {n_classes}), found {v}"
        )));
    }
    Ok(())
}

/// Write a noisy copy of `y` into `out` and the mask of changed labels into `flipped`.
///
/// Validates everything first (lengths, `n_classes ≥ 2`, `rate ∈ [0, 1]`, labels in range, the
/// matrix) and writes nothing on error.
pub fn corrupt_labels(
    y: &[i64],
    n_classes: usize,
    rate: f64,
    mode: &NoiseMode,
    exact: bool,
    seed: u64,
    out: &mut [i64],
    flipped: &mut [bool],
) -> Result<()> {
    if out.len() != y.len() || flipped.len() != y.len() {
        return Err(CoreError::value(format!(
            "output buffers must have the length of y ({}), got {} and {}",
            y.len(),
            out.len(),
            flipped.len()
        )));
    }
    check_args(y, n_classes, rate, mode)?;
    corrupt_unchecked(y, n_classes, rate, mode, exact, seed, out, flipped)
}

/// The work of [`corrupt_labels`] on validated arguments; fails only when memory runs out, before
/// writing anything.
pub(crate) fn corrupt_unchecked(
    y: &[i64],
    n_classes: usize,
    rate: f64,
    mode: &NoiseMode,
    exact: bool,
    seed: u64,
    out: &mut [i64],
    flipped: &mut [bool],
) -> Result<()> {
    let n = y.len();
    let k = n_classes as u64;
    let draw = StreamFamily::new(seed, domain(0xff, purpose::NOISE_DRAW));
    // Cumulative rows of the matrix; `last[i]` is the last class with non-zero probability, the
    // fallback when rounding leaves the uniform draw above the final cumulative sum.
    let (cum, last) = match mode {
        NoiseMode::Matrix(m) => {
            let mut cum = try_vec(m.len(), 0f64, "the transition matrix")?;
            let mut last = try_vec(n_classes, 0usize, "the transition matrix")?;
            for i in 0..n_classes {
                let mut acc = 0.0;
                for j in 0..n_classes {
                    let p = m[i * n_classes + j];
                    acc += p;
                    cum[i * n_classes + j] = acc;
                    if p > 0.0 {
                        last[i] = j;
                    }
                }
            }
            (cum, last)
        }
        _ => (Vec::new(), Vec::new()),
    };

    // Pass 1 (exact only): which samples are chosen, by sequential selection sampling
    // (Knuth's Algorithm S), written into `flipped` as the selection mask.
    if exact {
        let want = exact_count(rate, n);
        let mut sel = StreamFamily::new(seed, domain(0xff, purpose::NOISE_SELECT)).rng(0);
        let mut chosen = 0usize;
        for (i, f) in flipped.iter_mut().enumerate() {
            let left = (n - i) as u64;
            let pick = chosen < want && sel.below(left) < (want - chosen) as u64;
            *f = pick;
            chosen += pick as usize;
        }
    }

    // Pass 2: redraw the chosen labels, each from its own stream.
    out.par_chunks_mut(CHUNK)
        .zip(flipped.par_chunks_mut(CHUNK))
        .zip(y.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, ((o, f), yc))| {
            for (j, ((oi, fi), &yi)) in o.iter_mut().zip(f.iter_mut()).zip(yc).enumerate() {
                let idx = (c * CHUNK + j) as u64;
                let mut r = draw.rng(idx);
                let chosen = if exact { *fi } else { r.uniform() < rate };
                let new = if !chosen {
                    yi
                } else {
                    let yu = yi as u64;
                    let v = match mode {
                        NoiseMode::Symmetric => (yu + 1 + r.below(k - 1)) % k,
                        NoiseMode::Uniform => r.below(k),
                        NoiseMode::PairFlip => (yu + 1) % k,
                        NoiseMode::Matrix(_) => {
                            let row = &cum[yi as usize * n_classes..(yi as usize + 1) * n_classes];
                            let u = r.uniform() * row[n_classes - 1];
                            let j = row.partition_point(|&c| c <= u);
                            if j < n_classes {
                                j as u64
                            } else {
                                last[yi as usize] as u64
                            }
                        }
                    };
                    v as i64
                };
                *oi = new;
                *fi = new != yi;
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize, k: usize) -> Vec<i64> {
        (0..n).map(|i| ((i * 7 + 3) % k) as i64).collect()
    }

    fn run(y: &[i64], k: usize, rate: f64, mode: NoiseMode, exact: bool, seed: u64) -> (Vec<i64>, Vec<bool>) {
        let mut o = vec![0; y.len()];
        let mut f = vec![false; y.len()];
        corrupt_labels(y, k, rate, &mode, exact, seed, &mut o, &mut f).unwrap();
        (o, f)
    }

    #[test]
    fn symmetric_exact_flips_exactly_round_rate_n() {
        let y = labels(1001, 10);
        for rate in [0.0, 0.1, 0.2005, 0.5, 1.0] {
            let (o, f) = run(&y, 10, rate, NoiseMode::Symmetric, true, 3);
            let want = (rate * 1001.0 + 0.5).floor() as usize;
            assert_eq!(f.iter().filter(|&&b| b).count(), want);
            for i in 0..y.len() {
                assert_eq!(f[i], o[i] != y[i]);
                assert!((0..10).contains(&o[i]));
            }
        }
    }

    #[test]
    fn pairflip_moves_to_next_class() {
        let y = labels(500, 4);
        let (o, f) = run(&y, 4, 0.3, NoiseMode::PairFlip, true, 1);
        assert_eq!(f.iter().filter(|&&b| b).count(), 150);
        for i in 0..y.len() {
            if f[i] {
                assert_eq!(o[i], (y[i] + 1) % 4);
            } else {
                assert_eq!(o[i], y[i]);
            }
        }
    }

    #[test]
    fn matrix_identity_changes_nothing_and_permutation_is_followed() {
        let y = labels(300, 3);
        let eye = vec![1., 0., 0., 0., 1., 0., 0., 0., 1.];
        let (o, f) = run(&y, 3, 1.0, NoiseMode::Matrix(eye), false, 5);
        assert_eq!(o, y);
        assert!(f.iter().all(|&b| !b));
        let perm = vec![0., 0., 1., 1., 0., 0., 0., 1., 0.];
        let (o, _) = run(&y, 3, 1.0, NoiseMode::Matrix(perm), true, 5);
        for i in 0..y.len() {
            assert_eq!(o[i], [2, 0, 1][y[i] as usize]);
        }
    }

    #[test]
    fn bad_input_is_rejected_and_writes_nothing() {
        let y = vec![0i64, 1, 5];
        let mut o = vec![-7; 3];
        let mut f = vec![true; 3];
        let e = corrupt_labels(&y, 4, 0.5, &NoiseMode::Symmetric, true, 0, &mut o, &mut f);
        assert!(matches!(e, Err(CoreError::Value(ref m)) if m.contains("y:")));
        assert_eq!(o, vec![-7; 3]);
        assert_eq!(f, vec![true; 3]);
        assert!(corrupt_labels(&y, 1, 0.5, &NoiseMode::Symmetric, true, 0, &mut o, &mut f).is_err());
        assert!(corrupt_labels(&y, 6, 1.5, &NoiseMode::Symmetric, true, 0, &mut o, &mut f).is_err());
        assert!(corrupt_labels(&y, 6, f64::NAN, &NoiseMode::Symmetric, true, 0, &mut o, &mut f).is_err());
        let bad = NoiseMode::Matrix(vec![0.5; 4]);
        assert!(corrupt_labels(&[0, 1], 2, 0.5, &bad, true, 0, &mut o[..2], &mut f[..2]).is_ok());
        let bad = NoiseMode::Matrix(vec![0.6, 0.4, 0.5, 0.6]);
        assert!(corrupt_labels(&[0, 1], 2, 0.5, &bad, true, 0, &mut o[..2], &mut f[..2]).is_err());
        let bad = NoiseMode::Matrix(vec![1.5, -0.5, 0.5, 0.5]);
        assert!(corrupt_labels(&[0, 1], 2, 0.5, &bad, true, 0, &mut o[..2], &mut f[..2]).is_err());
        let bad = NoiseMode::Matrix(vec![1.0, 0.0, 0.5]);
        assert!(corrupt_labels(&[0, 1], 2, 0.5, &bad, true, 0, &mut o[..2], &mut f[..2]).is_err());
    }

    #[test]
    fn same_seed_same_output_different_seed_different_output() {
        let y = labels(10_000, 10);
        let a = run(&y, 10, 0.3, NoiseMode::Symmetric, false, 11);
        let b = run(&y, 10, 0.3, NoiseMode::Symmetric, false, 11);
        let c = run(&y, 10, 0.3, NoiseMode::Symmetric, false, 12);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn exact_count_rounds_half_up() {
        assert_eq!(exact_count(0.5, 3), 2);
        assert_eq!(exact_count(0.2, 1000), 200);
        assert_eq!(exact_count(1.0, 7), 7);
        assert_eq!(exact_count(0.0, 7), 0);
    }
}
