//! Binding of `lrdecay_core::noise`: writes a noisy copy of a label array into caller buffers.

use lrdecay_core::noise::{corrupt_labels as core_corrupt, NoiseMode};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;
use lrdecay_core::try_collect;

/// Fill `out` (int64) and `flipped` (bool) with noisy labels of `y` (int64); see
/// `lrdecay.noise.corrupt_labels`. The GIL is released during the work.
#[pyfunction]
#[pyo3(signature = (y, out, flipped, *, n_classes, rate, mode, exact, matrix, seed))]
#[allow(clippy::too_many_arguments)]
fn corrupt_labels_into(
    py: Python<'_>,
    y: PyReadonlyArray1<'_, i64>,
    mut out: PyReadwriteArray1<'_, i64>,
    mut flipped: PyReadwriteArray1<'_, bool>,
    n_classes: usize,
    rate: f64,
    mode: &str,
    exact: bool,
    matrix: Option<PyReadonlyArray2<'_, f64>>,
    seed: u64,
) -> PyResult<()> {
    let mode = match (mode, matrix) {
        ("symmetric", None) => NoiseMode::Symmetric,
        ("uniform", None) => NoiseMode::Uniform,
        ("pairflip", None) => NoiseMode::PairFlip,
        ("matrix", Some(m)) => {
            let shape = m.as_array().shape().to_vec();
            if shape != [n_classes, n_classes] {
                return Err(PyValueError::new_err(format!(
                    "matrix: expected shape ({n_classes}, {n_classes}), got {shape:?}"
                )));
            }
            let view = m.as_array();
            NoiseMode::Matrix(
                try_collect(view.iter().copied(), "the transition matrix").into_py_result()?,
            )
        }
        ("matrix", None) => {
            return Err(PyValueError::new_err("matrix: required when mode='matrix'"))
        }
        (other, _) => return Err(PyValueError::new_err(format!(
            "mode must be one of 'symmetric', 'uniform', 'pairflip', 'matrix' (matrix only with \
                 mode='matrix'), got {other:?}"
        ))),
    };
    let y = y
        .as_slice()
        .map_err(|_| PyValueError::new_err("y must be C-contiguous"))?;
    let out = out
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("out must be C-contiguous"))?;
    let flipped = flipped
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("flipped must be C-contiguous"))?;
    py.detach(|| core_corrupt(y, n_classes, rate, &mode, exact, seed, out, flipped))
        .into_py_result()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(corrupt_labels_into, m)?)?;
    let limits = pyo3::types::PyDict::new(m.py());
    limits.set_item("max_classes", lrdecay_core::noise::MAX_CLASSES)?;
    limits.set_item("max_seed", u64::MAX)?;
    m.add("NOISE_LIMITS", limits)?;
    Ok(())
}
