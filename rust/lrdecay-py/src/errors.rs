//! Mapping of core errors to Python exceptions.

use lrdecay_core::CoreError;
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::PyErr;

/// Convert a core error into the matching Python exception (`ValueError`, `TypeError`, `MemoryError`).
pub fn to_py(err: CoreError) -> PyErr {
    match err {
        CoreError::Value(m) => PyValueError::new_err(m),
        CoreError::Type(m) => PyTypeError::new_err(m),
        CoreError::Memory(m) => PyMemoryError::new_err(m),
    }
}

/// `Result<T, CoreError>` → `PyResult<T>`, for `?` at the binding boundary.
pub trait IntoPyResult<T> {
    fn into_py_result(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for lrdecay_core::Result<T> {
    fn into_py_result(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
