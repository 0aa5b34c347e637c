//! Binding of `lrdecay_core::data`: fills caller-allocated numpy buffers with a pattern dataset.

use lrdecay_core::data::{centres, generate, group_counts, DatasetOut, DatasetSpec, Group, Pattern};
use numpy::{PyArray2, PyReadwriteArray1, PyReadwriteArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;

fn contiguous<'a, T>(r: Result<&'a mut [T], numpy::AsSliceError>, name: &str) -> PyResult<&'a mut [T]> {
    r.map_err(|_| PyValueError::new_err(format!("{name} must be a C-contiguous, writeable array")))
}

/// Fill `x`, `y`, `y_clean`, `group`, `flipped` (length n; `x` is n × D) with a pattern dataset.
/// The GIL is released while the buffers are filled.
#[pyfunction]
#[pyo3(signature = (x, y, y_clean, group, flipped, *, n_classes, dims, clusters_per_class, radii,
                    spreads, center_seeds, group_ids, group_patterns, group_weights, seed, split,
                    label_noise))]
#[allow(clippy::too_many_arguments)]
fn pattern_fill(
    py: Python<'_>,
    mut x: PyReadwriteArray2<'_, f32>,
    mut y: PyReadwriteArray1<'_, i64>,
    mut y_clean: PyReadwriteArray1<'_, i64>,
    mut group: PyReadwriteArray1<'_, i32>,
    mut flipped: PyReadwriteArray1<'_, bool>,
    n_classes: usize,
    dims: Vec<usize>,
    clusters_per_class: Vec<usize>,
    radii: Vec<f64>,
    spreads: Vec<f64>,
    center_seeds: Vec<u64>,
    group_ids: Vec<i32>,
    group_patterns: Vec<Vec<usize>>,
    group_weights: Vec<f64>,
    seed: u64,
    split: u8,
    label_noise: f64,
) -> PyResult<()> {
    let np = dims.len();
    if clusters_per_class.len() != np || radii.len() != np || spreads.len() != np || center_seeds.len() != np {
        return Err(PyValueError::new_err("patterns: per-pattern lists must have equal lengths"));
    }
    let ng = group_ids.len();
    if group_patterns.len() != ng || group_weights.len() != ng {
        return Err(PyValueError::new_err("groups: per-group lists must have equal lengths"));
    }
    let patterns = (0..np)
        .map(|i| Pattern {
            dim: dims[i],
            clusters_per_class: clusters_per_class[i],
            radius: radii[i],
            spread: spreads[i],
            center_seed: center_seeds[i],
        })
        .collect();
    let groups = (0..ng)
        .map(|i| Group { id: group_ids[i], patterns: group_patterns[i].clone(), weight: group_weights[i] })
        .collect();
    let spec = DatasetSpec { n_classes, patterns, groups, seed, split, label_noise };
    let out = DatasetOut {
        x: contiguous(x.as_slice_mut(), "x")?,
        y: contiguous(y.as_slice_mut(), "y")?,
        y_clean: contiguous(y_clean.as_slice_mut(), "y_clean")?,
        group: contiguous(group.as_slice_mut(), "group")?,
        flipped: contiguous(flipped.as_slice_mut(), "flipped")?,
    };
    py.detach(|| generate(&spec, out)).into_py_result()
}

/// Exact group sizes for `n` samples by largest-remainder rounding of the weights.
#[pyfunction]
fn group_sizes(weights: Vec<f64>, n: usize) -> PyResult<Vec<usize>> {
    if weights.is_empty() || weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(PyValueError::new_err("weights must be a non-empty list of finite numbers > 0"));
    }
    Ok(group_counts(&weights, n))
}

/// The `n_classes * clusters_per_class` centres of one pattern as a float32 array (row `k*m + j` is
/// class k's cluster j).
#[pyfunction]
fn pattern_centres<'py>(
    py: Python<'py>,
    dim: usize,
    clusters_per_class: usize,
    radius: f64,
    center_seed: u64,
    pattern_index: usize,
    n_classes: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let p = Pattern { dim, clusters_per_class, radius, spread: 0.0, center_seed };
    // Reuse the dataset validation so the limits are the same.
    DatasetSpec {
        n_classes,
        patterns: vec![p.clone()],
        groups: vec![Group { id: 0, patterns: vec![], weight: 1.0 }],
        seed: 0,
        split: 0,
        label_noise: 0.0,
    }
    .validate()
    .into_py_result()?;
    let c = py.detach(|| centres(&p, pattern_index, n_classes));
    let rows: Vec<Vec<f32>> = c.chunks_exact(dim).map(|r| r.to_vec()).collect();
    Ok(PyArray2::from_vec2(py, &rows)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pattern_fill, m)?)?;
    m.add_function(wrap_pyfunction!(group_sizes, m)?)?;
    m.add_function(wrap_pyfunction!(pattern_centres, m)?)?;
    Ok(())
}
