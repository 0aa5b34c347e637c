//! Binding of `lrdecay_core::data`: fills caller-allocated numpy buffers with a pattern dataset.
//!
//! The boundary is named: Python passes the dataset as one dict, [`SpecIn`] (the keys are the field
//! names below), and the limits the core enforces are exported as `DATA_LIMITS`, so `lrdecay.data`
//! validates against the same numbers instead of copies.

use lrdecay_core::data::{
    generate, group_counts, DatasetOut, DatasetSpec, Group, Pattern, MAX_CENTRE_VALUES,
    MAX_CLASSES, MAX_CLUSTERS, MAX_DIM, MAX_GROUPS, MAX_N, MAX_PATTERNS,
};
use numpy::{PyReadwriteArray1, PyReadwriteArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::IntoPyResult;

/// One pattern: `{"dim", "clusters_per_class", "radius", "spread", "center_seed"}`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct PatternIn {
    dim: usize,
    clusters_per_class: usize,
    radius: f64,
    spread: f64,
    center_seed: u64,
}

/// One generated group: `{"id", "patterns", "weight"}`; `id` is written into the `group` column,
/// `patterns` are indices into the spec's pattern list.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct GroupIn {
    id: i32,
    patterns: Vec<usize>,
    weight: f64,
}

/// The whole dataset: `{"n_classes", "patterns", "groups", "seed", "split", "label_noise"}`
/// (`split`: 0 train, 1 test).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct SpecIn {
    n_classes: usize,
    patterns: Vec<PatternIn>,
    groups: Vec<GroupIn>,
    seed: u64,
    split: u8,
    label_noise: f64,
}

impl From<SpecIn> for DatasetSpec {
    fn from(s: SpecIn) -> Self {
        DatasetSpec {
            n_classes: s.n_classes,
            patterns: s
                .patterns
                .into_iter()
                .map(|p| Pattern {
                    dim: p.dim,
                    clusters_per_class: p.clusters_per_class,
                    radius: p.radius,
                    spread: p.spread,
                    center_seed: p.center_seed,
                })
                .collect(),
            groups: s
                .groups
                .into_iter()
                .map(|g| Group {
                    id: g.id,
                    patterns: g.patterns,
                    weight: g.weight,
                })
                .collect(),
            seed: s.seed,
            split: s.split,
            label_noise: s.label_noise,
        }
    }
}

fn contiguous<'a, T>(
    r: Result<&'a mut [T], numpy::AsSliceError>,
    name: &str,
) -> PyResult<&'a mut [T]> {
    r.map_err(|_| PyValueError::new_err(format!("{name} must be a C-contiguous, writeable array")))
}

/// Fill `x`, `y`, `y_clean`, `group`, `flipped` (length n; `x` is n × D) with the dataset `spec`
/// describes (see [`SpecIn`]). The GIL is released while the buffers are filled.
#[pyfunction]
#[pyo3(signature = (x, y, y_clean, group, flipped, *, spec))]
fn pattern_fill(
    py: Python<'_>,
    mut x: PyReadwriteArray2<'_, f32>,
    mut y: PyReadwriteArray1<'_, i64>,
    mut y_clean: PyReadwriteArray1<'_, i64>,
    mut group: PyReadwriteArray1<'_, i32>,
    mut flipped: PyReadwriteArray1<'_, bool>,
    spec: SpecIn,
) -> PyResult<()> {
    let spec = DatasetSpec::from(spec);
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
        return Err(PyValueError::new_err(
            "weights must be a non-empty list of finite numbers > 0",
        ));
    }
    Ok(group_counts(&weights, n))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pattern_fill, m)?)?;
    m.add_function(wrap_pyfunction!(group_sizes, m)?)?;
    let limits = PyDict::new(m.py());
    limits.set_item("max_n", MAX_N)?;
    limits.set_item("max_classes", MAX_CLASSES)?;
    limits.set_item("max_dim", MAX_DIM)?;
    limits.set_item("max_clusters", MAX_CLUSTERS)?;
    limits.set_item("max_patterns", MAX_PATTERNS)?;
    limits.set_item("max_groups", MAX_GROUPS)?;
    limits.set_item("max_centre_values", MAX_CENTRE_VALUES)?;
    limits.set_item("max_seed", u64::MAX)?;
    m.add("DATA_LIMITS", limits)?;
    Ok(())
}
