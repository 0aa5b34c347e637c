//! Pattern datasets with tractable complexity.
//!
//! A dataset has K classes and a list of *patterns*; pattern p owns a block of `dim` input columns
//! and `clusters_per_class` (m) cluster centres per class, drawn once on the sphere of radius
//! `radius`. A sample of class k that *carries* pattern p has, in block p, one of class k's m
//! centres (chosen at random) plus isotropic Gaussian noise of scale `spread`; a block whose pattern
//! the sample does not carry is "blank" (the same noise around the origin). Which patterns a sample
//! carries is set by its *group*; a group that carries none is a noise group (only memorization can
//! fit its labels). Every sample's label is a uniformly random class.
//!
//! Randomness is counter-based ([`crate::rng`]): row i's label, cluster choices and noise come from
//! stream `(seed, split, rows, i)`; the centres of pattern p from `(center_seed_p, centres, p)`
//! (independent of the split); the assignment of rows to groups is a seeded shuffle with exact group
//! sizes. The output is therefore byte-identical for any number of threads.

use rayon::prelude::*;

use crate::noise::{corrupt_unchecked, NoiseMode};
use crate::rng::{domain, fill_gauss, fill_row_gauss, purpose, row_scalar_rng, StreamFamily, ZIGGURAT};
use crate::{try_collect, try_vec, CoreError, Result};

/// Upper limits that keep a request sane (and every product below inside `usize`).
pub const MAX_N: usize = (1 << 31) - 1;
pub const MAX_CLASSES: usize = 1 << 16;
pub const MAX_DIM: usize = 1 << 16;
pub const MAX_CLUSTERS: usize = 1 << 16;
pub const MAX_PATTERNS: usize = 1 << 10;
pub const MAX_GROUPS: usize = 1 << 16;
/// Most centre coordinates one pattern may hold (K · m · dim).
pub const MAX_CENTRE_VALUES: usize = 1 << 28;

/// One pattern: its block width, complexity and geometry.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub dim: usize,
    pub clusters_per_class: usize,
    pub radius: f64,
    pub spread: f64,
    /// Seed of this pattern's centre stream (the dataset seed unless overridden).
    pub center_seed: u64,
}

/// One group of the dataset: which patterns carry the label of its samples, and its weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The id written into the `group` column (an index into the caller's full list of groups).
    pub id: i32,
    /// Indices of the patterns this group carries; empty for a noise group.
    pub patterns: Vec<usize>,
    pub weight: f64,
}

/// Everything that determines a dataset except its size.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    pub n_classes: usize,
    pub patterns: Vec<Pattern>,
    pub groups: Vec<Group>,
    pub seed: u64,
    /// 0 = train, 1 = test: independent sample streams over the same centres.
    pub split: u8,
    /// Symmetric exact label-flip rate in [0, 1] (0 = none).
    pub label_noise: f64,
}

/// The caller-allocated output buffers, filled in place.
pub struct DatasetOut<'a> {
    /// n × D, row-major.
    pub x: &'a mut [f32],
    pub y: &'a mut [i64],
    pub y_clean: &'a mut [i64],
    pub group: &'a mut [i32],
    pub flipped: &'a mut [bool],
}

impl DatasetSpec {
    /// Total input dimension D (sum of the pattern blocks).
    pub fn total_dim(&self) -> usize {
        self.patterns.iter().map(|p| p.dim).sum()
    }

    /// Check every field; the messages name the field and the accepted range.
    pub fn validate(&self) -> Result<()> {
        let k = self.n_classes;
        if !(2..=MAX_CLASSES).contains(&k) {
            return Err(CoreError::value(format!(
                "n_classes must be in [2, {MAX_CLASSES}], got {k}"
            )));
        }
        if self.patterns.is_empty() || self.patterns.len() > MAX_PATTERNS {
            return Err(CoreError::value(format!(
                "patterns: need between 1 and {MAX_PATTERNS} patterns, got {}",
                self.patterns.len()
            )));
        }
        for (i, p) in self.patterns.iter().enumerate() {
            if !(1..=MAX_DIM).contains(&p.dim) {
                return Err(CoreError::value(format!(
                    "patterns[{i}].dim must be in [1, {MAX_DIM}], got {}",
                    p.dim
                )));
            }
            if !(1..=MAX_CLUSTERS).contains(&p.clusters_per_class) {
                return Err(CoreError::value(format!(
                    "patterns[{i}].clusters_per_class must be in [1, {MAX_CLUSTERS}], got {}",
                    p.clusters_per_class
                )));
            }
            if k * p.clusters_per_class * p.dim > MAX_CENTRE_VALUES {
                return Err(CoreError::value(format!(
                    "patterns[{i}]: n_classes * clusters_per_class * dim must be <= {MAX_CENTRE_VALUES}, got {}",
                    k * p.clusters_per_class * p.dim
                )));
            }
            for (name, v) in [("radius", p.radius), ("spread", p.spread)] {
                if !(v.is_finite() && v >= 0.0 && v <= 1e6) {
                    return Err(CoreError::value(format!(
                        "patterns[{i}].{name} must be a finite number in [0, 1e6], got {v}"
                    )));
                }
            }
        }
        if self.groups.is_empty() || self.groups.len() > MAX_GROUPS {
            return Err(CoreError::value(format!(
                "groups: need between 1 and {MAX_GROUPS} groups, got {}",
                self.groups.len()
            )));
        }
        for (i, g) in self.groups.iter().enumerate() {
            if !(g.weight.is_finite() && g.weight > 0.0) {
                return Err(CoreError::value(format!(
                    "groups[{i}].weight must be a finite number > 0, got {}",
                    g.weight
                )));
            }
            if let Some(&p) = g.patterns.iter().find(|&&p| p >= self.patterns.len()) {
                return Err(CoreError::value(format!(
                    "groups[{i}].patterns: pattern index {p} out of range [0, {})",
                    self.patterns.len()
                )));
            }
        }
        if self.split > 1 {
            return Err(CoreError::value(format!("split must be 0 (train) or 1 (test), got {}", self.split)));
        }
        if !(0.0..=1.0).contains(&self.label_noise) {
            return Err(CoreError::value(format!(
                "label_noise must be in [0, 1], got {}",
                self.label_noise
            )));
        }
        Ok(())
    }

    /// The exact size of each group for `n` samples (see [`group_counts`]).
    pub fn group_counts(&self, n: usize) -> Vec<usize> {
        let w: Vec<f64> = self.groups.iter().map(|g| g.weight).collect();
        group_counts(&w, n)
    }
}

/// Largest-remainder apportionment of `n` samples to groups with the given (positive) weights:
/// each group gets `floor(w_g / W · n)`, and the samples left over go one each to the groups with
/// the largest fractional parts (ties to the earlier group).
pub fn group_counts(weights: &[f64], n: usize) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let quotas: Vec<f64> = weights.iter().map(|w| w / total * n as f64).collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| (q.floor() as usize).min(n)).collect();
    let assigned: usize = counts.iter().sum();
    let mut left = n.saturating_sub(assigned);
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Stable sort keeps earlier groups first among equal remainders.
    order.sort_by(|&a, &b| {
        let ra = quotas[a] - quotas[a].floor();
        let rb = quotas[b] - quotas[b].floor();
        rb.partial_cmp(&ra).unwrap_or(std::cmp::Ordering::Equal)
    });
    // Floating error could in principle leave more than one sample per group over; loop round.
    while left > 0 {
        for &g in &order {
            if left == 0 {
                break;
            }
            counts[g] += 1;
            left -= 1;
        }
    }
    counts
}

/// The K · m centres of one pattern, row-major (class k, cluster j) → row `k * m + j`, each on the
/// sphere of radius `radius`. Stream `(center_seed, centres, pattern_index)`. [`CoreError::Memory`]
/// when they do not fit in memory.
pub fn centres(p: &Pattern, pattern_index: usize, n_classes: usize) -> Result<Vec<f32>> {
    let t = &*ZIGGURAT;
    let fam = StreamFamily::new(p.center_seed, domain(0xff, purpose::CENTRES));
    let mut rng = fam.rng(pattern_index as u64);
    let rows = n_classes * p.clusters_per_class;
    let mut out = try_vec(rows * p.dim, 0f32, "the pattern centres")?;
    for row in out.chunks_exact_mut(p.dim) {
        loop {
            fill_gauss(row, 1.0, &mut rng, t);
            let norm = row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
            if norm > 0.0 {
                let s = p.radius / norm;
                for v in row.iter_mut() {
                    *v = (*v as f64 * s) as f32;
                }
                break;
            }
        }
    }
    Ok(out)
}

/// Rows per rayon task (128 KiB of output at D = 128).
const ROWS_PER_TASK: usize = 256;

/// Fill `out` with the dataset `spec` of `n = out.y.len()` samples. Validates first; on error nothing
/// is written.
pub fn generate(spec: &DatasetSpec, out: DatasetOut<'_>) -> Result<()> {
    spec.validate()?;
    let n = out.y.len();
    if n == 0 || n > MAX_N {
        return Err(CoreError::value(format!("n must be in [1, {MAX_N}], got {n}")));
    }
    let d = spec.total_dim();
    if out.x.len() != n.checked_mul(d).unwrap_or(usize::MAX)
        || out.y_clean.len() != n
        || out.group.len() != n
        || out.flipped.len() != n
    {
        return Err(CoreError::value(format!(
            "output buffers: expected x of {n} x {d} and label arrays of length {n}"
        )));
    }
    let k = spec.n_classes;
    let split = spec.split as u64;

    // Group assignment: exact counts laid out in order, then a seeded Fisher–Yates shuffle.
    // Local group indices first; the row pass replaces them with the caller's ids.
    let counts = spec.group_counts(n);
    let mut pos = 0;
    for (g, &c) in counts.iter().enumerate() {
        out.group[pos..pos + c].fill(g as i32);
        pos += c;
    }
    let mut shuf = StreamFamily::new(spec.seed, domain(split, purpose::GROUPS)).rng(0);
    for i in (1..n).rev() {
        let j = shuf.below(i as u64 + 1) as usize;
        out.group.swap(i, j);
    }

    let all_centres: Vec<Vec<f32>> = try_collect(
        spec.patterns.iter().enumerate().map(|(i, p)| centres(p, i, k)),
        "the pattern centres",
    )?
    .into_iter()
    .collect::<Result<_>>()?;
    let np = spec.patterns.len();
    let mut carries = try_vec(spec.groups.len() * np, false, "the group table")?;
    for (g, grp) in spec.groups.iter().enumerate() {
        for &p in &grp.patterns {
            carries[g * np + p] = true;
        }
    }
    let ids: Vec<i32> = spec.groups.iter().map(|g| g.id).collect();
    let offsets: Vec<usize> = spec
        .patterns
        .iter()
        .scan(0, |acc, p| {
            let o = *acc;
            *acc += p.dim;
            Some(o)
        })
        .collect();
    let rows = StreamFamily::new(spec.seed, domain(split, purpose::ROWS));
    let t = &*ZIGGURAT;

    out.x
        .par_chunks_mut(ROWS_PER_TASK * d)
        .zip(out.y_clean.par_chunks_mut(ROWS_PER_TASK))
        .zip(out.group.par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(c, ((xc, yc), gc))| {
            let mut cluster = vec![0usize; np];
            for (r, ((xrow, yi), gi)) in xc.chunks_exact_mut(d).zip(yc.iter_mut()).zip(gc.iter_mut()).enumerate() {
                let mut scalar = row_scalar_rng(rows.key((c * ROWS_PER_TASK + r) as u64));
                // Label and cluster choices come first from the row's stream; cluster choices are drawn
                // for every pattern, carried or not, so a row's noise does not depend on its group.
                let label = scalar.below(k as u64) as usize;
                for (p, pat) in spec.patterns.iter().enumerate() {
                    cluster[p] = scalar.below(pat.clusters_per_class as u64) as usize;
                }
                fill_row_gauss(xrow, &mut scalar, t);
                let g = *gi as usize;
                for (p, pat) in spec.patterns.iter().enumerate() {
                    let block = &mut xrow[offsets[p]..offsets[p] + pat.dim];
                    let s = pat.spread as f32;
                    if carries[g * np + p] {
                        let ci = label * pat.clusters_per_class + cluster[p];
                        let centre = &all_centres[p][ci * pat.dim..(ci + 1) * pat.dim];
                        for (v, &cv) in block.iter_mut().zip(centre) {
                            *v = *v * s + cv;
                        }
                    } else {
                        for v in block.iter_mut() {
                            *v *= s;
                        }
                    }
                }
                *yi = label as i64;
                *gi = ids[g];
            }
        });

    if spec.label_noise > 0.0 {
        let seed = StreamFamily::new(spec.seed, domain(split, purpose::LABEL_NOISE)).key(0);
        corrupt_unchecked(
            out.y_clean,
            k,
            spec.label_noise,
            &NoiseMode::Symmetric,
            true,
            seed,
            out.y,
            out.flipped,
        )?;
    } else {
        out.y.copy_from_slice(out.y_clean);
        out.flipped.fill(false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64, split: u8, noise: f64) -> DatasetSpec {
        DatasetSpec {
            n_classes: 10,
            patterns: vec![
                Pattern { dim: 7, clusters_per_class: 1, radius: 4.0, spread: 1.0, center_seed: seed },
                Pattern { dim: 5, clusters_per_class: 3, radius: 0.5, spread: 0.05, center_seed: seed },
            ],
            groups: vec![
                Group { id: 0, patterns: vec![0], weight: 0.45 },
                Group { id: 1, patterns: vec![1], weight: 0.45 },
                Group { id: 2, patterns: vec![], weight: 0.10 },
            ],
            seed,
            split,
            label_noise: noise,
        }
    }

    struct Owned {
        x: Vec<f32>,
        y: Vec<i64>,
        y_clean: Vec<i64>,
        group: Vec<i32>,
        flipped: Vec<bool>,
    }

    fn make(s: &DatasetSpec, n: usize) -> Owned {
        let d = s.total_dim();
        let mut o = Owned {
            x: vec![0.0; n * d],
            y: vec![0; n],
            y_clean: vec![0; n],
            group: vec![0; n],
            flipped: vec![false; n],
        };
        generate(
            s,
            DatasetOut {
                x: &mut o.x,
                y: &mut o.y,
                y_clean: &mut o.y_clean,
                group: &mut o.group,
                flipped: &mut o.flipped,
            },
        )
        .unwrap();
        o
    }

    #[test]
    fn group_counts_are_exact_largest_remainder() {
        assert_eq!(group_counts(&[0.45, 0.45, 0.1], 1001), vec![451, 450, 100]);
        assert_eq!(group_counts(&[1.0, 1.0, 1.0], 10), vec![4, 3, 3]);
        assert_eq!(group_counts(&[1.0], 5), vec![5]);
        assert_eq!(group_counts(&[2.0, 1.0], 1), vec![1, 0]);
        for n in [1usize, 2, 3, 17, 1000, 99_999] {
            let c = group_counts(&[0.3, 0.3, 0.3, 0.1], n);
            assert_eq!(c.iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn centres_lie_on_the_sphere() {
        let p = Pattern { dim: 9, clusters_per_class: 4, radius: 2.5, spread: 0.1, center_seed: 3 };
        let c = centres(&p, 1, 10).unwrap();
        assert_eq!(c.len(), 10 * 4 * 9);
        for row in c.chunks_exact(9) {
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            assert!((norm - 2.5).abs() < 1e-5, "{norm}");
        }
        assert_ne!(c, centres(&p, 0, 10).unwrap());
    }

    #[test]
    fn generate_is_deterministic_and_group_counts_hold() {
        let s = spec(5, 0, 0.2);
        let a = make(&s, 1003);
        let b = make(&s, 1003);
        assert_eq!(a.x, b.x);
        assert_eq!(a.y, b.y);
        assert_eq!(a.group, b.group);
        let counts = s.group_counts(1003);
        for g in 0..3 {
            assert_eq!(a.group.iter().filter(|&&v| v == g as i32).count(), counts[g]);
        }
        assert_eq!(a.flipped.iter().filter(|&&f| f).count(), 201);
        for i in 0..1003 {
            assert_eq!(a.flipped[i], a.y[i] != a.y_clean[i]);
        }
    }

    #[test]
    fn test_split_is_a_different_sample_of_the_same_centres() {
        let a = make(&spec(5, 0, 0.0), 200);
        let b = make(&spec(5, 1, 0.0), 200);
        assert_ne!(a.x, b.x);
        assert!(b.flipped.iter().all(|&f| !f));
        // The easy block of an easy-group sample is its class centre plus unit noise.
        let c = centres(&spec(5, 0, 0.0).patterns[0], 0, 10).unwrap();
        for o in [&a, &b] {
            let mut err = 0f64;
            let mut cnt = 0;
            for i in 0..200 {
                if o.group[i] == 0 {
                    let k = o.y[i] as usize;
                    for j in 0..7 {
                        err += (o.x[i * 12 + j] - c[k * 7 + j]) as f64;
                        cnt += 1;
                    }
                }
            }
            assert!((err / cnt as f64).abs() < 0.2);
        }
    }

    #[test]
    fn bad_specs_are_rejected_before_writing() {
        let mut s = spec(1, 0, 0.0);
        s.n_classes = 1;
        assert!(s.validate().is_err());
        let mut s = spec(1, 0, 0.0);
        s.patterns[0].dim = 0;
        assert!(s.validate().is_err());
        let mut s = spec(1, 0, 0.0);
        s.patterns[1].radius = f64::NAN;
        assert!(s.validate().is_err());
        let mut s = spec(1, 0, 0.0);
        s.groups[1].patterns = vec![2];
        assert!(s.validate().is_err());
        let mut s = spec(1, 0, 0.0);
        s.groups[0].weight = 0.0;
        assert!(s.validate().is_err());
        let mut s = spec(1, 0, 0.0);
        s.label_noise = 1.5;
        assert!(s.validate().is_err());
        let s = spec(1, 0, 0.0);
        let mut x = vec![9f32; 12 * 3];
        let (mut y, mut yc, mut g, mut f) = (vec![9i64; 3], vec![9i64; 3], vec![9i32; 3], vec![true; 3]);
        let e = generate(
            &s,
            DatasetOut { x: &mut x[..30], y: &mut y, y_clean: &mut yc, group: &mut g, flipped: &mut f },
        );
        assert!(e.is_err());
        assert!(x.iter().all(|&v| v == 9.0) && g.iter().all(|&v| v == 9));
    }
}
