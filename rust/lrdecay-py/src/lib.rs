//! `lrdecay._native`: the thin PyO3 binding over `lrdecay-core`.
//!
//! Each submodule validates its Python arguments, releases the GIL (`py.detach`) around real work,
//! and maps `CoreError` to `ValueError` / `TypeError` through [`errors`]. Nothing here may panic.

use pyo3::prelude::*;

mod data;
mod errors;
mod ledger;
mod noise;
mod sgd;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    data::register(m)?;
    noise::register(m)?;
    ledger::register(m)?;
    sgd::register(m)?;
    Ok(())
}
