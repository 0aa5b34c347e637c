//! Binding of the one-pass CPU SGD step (`lrdecay._native.sgd_step_f32_ptrs`), used by
//! `lrdecay.optim.FusedSGD`'s torch backend for float32 CPU parameters.
//!
//! It takes raw addresses (`tensor.data_ptr()`) rather than numpy arrays: turning each torch tensor into
//! a numpy array costs ~6 µs, which for a ResNet's 167 parameters (×3 tensors) is more than the step.
//! The caller (FusedSGD) guarantees each address is a live, contiguous float32 CPU buffer of the given
//! length, not aliased by another argument.

use lrdecay_core::sgd::{sgd_step_f32_many, SgdStep};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// One SGD-momentum step over contiguous float32 CPU buffers given by address, in place, GIL released.
///
/// `params[i]`, `grads[i]` and (when `momentum != 0`) `bufs[i]` are addresses of `numels[i]` floats.
/// Private to lrdecay: the addresses are trusted (see the module docs); lengths of the lists are checked.
#[pyfunction]
#[pyo3(signature = (params, grads, bufs, numels, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step))]
#[allow(clippy::too_many_arguments)]
fn sgd_step_f32_ptrs(
    py: Python<'_>,
    params: Vec<usize>,
    grads: Vec<usize>,
    bufs: Option<Vec<usize>>,
    numels: Vec<usize>,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
) -> PyResult<()> {
    let n = params.len();
    if grads.len() != n || numels.len() != n {
        return Err(PyValueError::new_err(format!(
            "params, grads and numels must have equal lengths, got {}, {} and {}",
            n,
            grads.len(),
            numels.len()
        )));
    }
    match &bufs {
        Some(b) if b.len() != n => {
            return Err(PyValueError::new_err(format!("bufs must have {n} addresses, got {}", b.len())))
        }
        None if momentum != 0.0 => return Err(PyValueError::new_err("bufs are required when momentum != 0")),
        _ => {}
    }
    // A tensor with no elements has no storage (its data_ptr() is 0): nothing to check or touch.
    let bad = |a: usize| a == 0 || a % std::mem::align_of::<f32>() != 0;
    let mut used = (0..n).filter(|&i| numels[i] > 0);
    if used.any(|i| bad(params[i]) || bad(grads[i]) || bufs.as_ref().is_some_and(|b| bad(b[i]))) {
        return Err(PyValueError::new_err(
            "every address of a non-empty tensor must be a non-null, 4-byte aligned float32 buffer",
        ));
    }
    let step = SgdStep { lr, momentum, dampening, weight_decay, nesterov, maximize, first_step };
    py.detach(move || {
        // SAFETY: the caller guarantees live, unaliased, contiguous float32 buffers of `numels[i]`
        // elements at these addresses for the duration of the call (module docs).
        let items = (0..n)
            .filter(|&i| numels[i] > 0)
            .map(|i| unsafe {
                let p = std::slice::from_raw_parts_mut(params[i] as *mut f32, numels[i]);
                let g = std::slice::from_raw_parts(grads[i] as *const f32, numels[i]);
                let m = if momentum != 0.0 {
                    bufs.as_ref().map(|b| std::slice::from_raw_parts_mut(b[i] as *mut f32, numels[i]))
                } else {
                    None
                };
                (p, g, m)
            })
            .collect();
        sgd_step_f32_many(items, &step)
    })
    .map_err(PyRuntimeError::new_err)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sgd_step_f32_ptrs, m)?)
}
