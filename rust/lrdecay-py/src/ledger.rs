//! Binding of the per-sample ledger (`lrdecay._native.LedgerCore`); the public API is
//! `lrdecay.Ledger` (python/lrdecay/ledger.py), which adds names, summaries and files.
//!
//! Input arrays are borrowed read-only from numpy (no copy) and the GIL is released for every pass over
//! them; outputs are moved into numpy arrays without a copy.

use crate::errors::IntoPyResult;
use lrdecay_core::ledger::{BitLike, IntLike, Ledger, NumpyBool};
use lrdecay_core::try_collect;
use numpy::ndarray::Array2;
use numpy::{
    PyArray1, PyArray2, PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be a C-contiguous 1-D array")))
}

/// Call `$body` with `$s: &[T]` bound to `$obj` viewed as a 1-D array of any integer dtype.
macro_rules! with_ints {
    ($obj:expr, $name:expr, |$s:ident| $body:expr) => {{
        let obj: &Bound<'_, PyAny> = $obj;
        with_ints!(@try obj, $name, $s, $body, i64, i32, u8, i8, i16, u16, u32, u64)
    }};
    (@try $obj:ident, $name:expr, $s:ident, $body:expr, $($t:ty),*) => {{
        $(
            if let Ok(a) = $obj.extract::<PyReadonlyArray1<'_, $t>>() {
                let $s: &[$t] = slice(&a, $name)?;
                return $body;
            }
        )*
        return Err(PyTypeError::new_err(format!(
            "{} must be a 1-D numpy array of an integer dtype", $name
        )));
    }};
}

/// The bytes of a 1-D numpy bool array, as a uint8 view (no copy), or `None` for another object.
///
/// Never extracted as `&[bool]`: numpy reads any nonzero byte as True (a uint8 buffer viewed as bool
/// holds any byte), and such bytes are not valid Rust `bool`s.
fn bool_bytes<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<PyReadonlyArray1<'py, u8>>> {
    let Ok(arr) = obj.cast::<PyUntypedArray>() else {
        return Ok(None);
    };
    if !arr.dtype().is_equiv_to(&numpy::dtype::<bool>(obj.py())) {
        return Ok(None);
    }
    let view = arr.call_method1("view", (numpy::dtype::<u8>(obj.py()),))?;
    Ok(view.extract::<PyReadonlyArray1<'py, u8>>().ok())
}

/// A 1-D numpy bool array (`flipped`) as bytes; TypeError for anything else.
fn bool_mask<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArray1<'py, u8>> {
    bool_bytes(obj)?.ok_or_else(|| {
        PyTypeError::new_err(format!("{name} must be a 1-D numpy array of dtype bool"))
    })
}

/// Call `$body` with `$s: &[B]` for a 1-D bool (as [`NumpyBool`]) or uint8 (0/1) array.
macro_rules! with_bits {
    ($obj:expr, $name:expr, |$s:ident| $body:expr) => {{
        let obj: &Bound<'_, PyAny> = $obj;
        if let Some(a) = bool_bytes(obj)? {
            let $s: &[NumpyBool] = NumpyBool::from_bytes(slice(&a, $name)?);
            return $body;
        }
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, u8>>() {
            let $s: &[u8] = slice(&a, $name)?;
            return $body;
        }
        return Err(PyTypeError::new_err(format!(
            "{} must be a 1-D numpy array of dtype bool or uint8",
            $name
        )));
    }};
}

/// The two packed history planes (correct, presented).
type WordPlanes<'py> = (Bound<'py, PyArray2<u64>>, Bound<'py, PyArray2<u64>>);

/// The native per-sample ledger. Use `lrdecay.Ledger`.
#[pyclass(module = "lrdecay._native", name = "LedgerCore")]
pub struct PyLedgerCore {
    inner: Ledger,
}

fn epoch_with_pred<B: BitLike>(
    py: Python<'_>,
    l: &mut Ledger,
    correct: &[B],
    pred: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    match pred {
        None => py
            .detach(|| l.record_epoch::<B, i64>(correct, None))
            .into_py_result(),
        Some(p) => with_ints!(p, "pred", |ps| py
            .detach(|| l.record_epoch(correct, Some(ps)))
            .into_py_result()),
    }
}

fn batch_with_pred<I: IntLike, B: BitLike>(
    py: Python<'_>,
    l: &mut Ledger,
    idx: &[I],
    correct: &[B],
    pred: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    match pred {
        None => py
            .detach(|| l.record_batch::<I, B, i64>(idx, correct, None))
            .into_py_result(),
        Some(p) => with_ints!(p, "pred", |ps| py
            .detach(|| l.record_batch(idx, correct, Some(ps)))
            .into_py_result()),
    }
}

fn batch_with_correct<I: IntLike>(
    py: Python<'_>,
    l: &mut Ledger,
    idx: &[I],
    correct: &Bound<'_, PyAny>,
    pred: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    with_bits!(correct, "correct", |cs| batch_with_pred(
        py, l, idx, cs, pred
    ))
}

fn ints_to_vec(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    with_ints!(obj, name, |s| try_collect(
        s.iter().map(|v| v.to_i64().unwrap_or(i64::MAX)),
        name
    )
    .into_py_result())
}

/// A copy of `s` as a new numpy array; MemoryError (not a panic) when it does not fit.
fn copy_out<'py, T: numpy::Element + Clone>(
    py: Python<'py>,
    s: &[T],
    what: &str,
) -> PyResult<Bound<'py, PyArray1<T>>> {
    let v = try_collect(s.iter().cloned(), what).into_py_result()?;
    Ok(PyArray1::from_vec(py, v))
}

/// A `rows` × `cols` copy of `s` as a new numpy array; MemoryError when it does not fit.
fn copy_matrix<'py, T: numpy::Element + Clone>(
    py: Python<'py>,
    s: &[T],
    rows: usize,
    cols: usize,
    what: &str,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    matrix(
        py,
        try_collect(s.iter().cloned(), what).into_py_result()?,
        rows,
        cols,
    )
}

fn matrix<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let a = Array2::from_shape_vec((rows, cols), v)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(PyArray2::from_owned_array(py, a))
}

#[pymethods]
impl PyLedgerCore {
    #[new]
    #[pyo3(signature = (n_samples, groups=None, n_groups=0, flipped=None))]
    fn new(
        n_samples: usize,
        groups: Option<&Bound<'_, PyAny>>,
        n_groups: usize,
        flipped: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let g = groups.map(|g| ints_to_vec(g, "groups")).transpose()?;
        let fa = flipped.map(|f| bool_mask(f, "flipped")).transpose()?;
        let f = match &fa {
            Some(a) => Some(NumpyBool::from_bytes(slice(a, "flipped")?)),
            None => None,
        };
        let inner = Ledger::new(n_samples, g.as_deref(), n_groups, f).into_py_result()?;
        Ok(PyLedgerCore { inner })
    }

    #[pyo3(signature = (correct, pred=None))]
    fn record_epoch(
        &mut self,
        py: Python<'_>,
        correct: &Bound<'_, PyAny>,
        pred: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let l = &mut self.inner;
        with_bits!(correct, "correct", |cs| epoch_with_pred(py, l, cs, pred))
    }

    #[pyo3(signature = (indices, correct, pred=None))]
    fn record_batch(
        &mut self,
        py: Python<'_>,
        indices: &Bound<'_, PyAny>,
        correct: &Bound<'_, PyAny>,
        pred: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let l = &mut self.inner;
        with_ints!(indices, "indices", |is| batch_with_correct(
            py, l, is, correct, pred
        ))
    }

    fn end_epoch(&mut self, py: Python<'_>) -> PyResult<()> {
        let l = &mut self.inner;
        py.detach(|| l.end_epoch()).into_py_result()
    }

    fn set_clean_labels(&mut self, y: &Bound<'_, PyAny>) -> PyResult<()> {
        let l = &mut self.inner;
        with_ints!(y, "y_clean", |ys| l.set_clean_labels(ys).into_py_result())
    }

    #[getter]
    fn n_samples(&self) -> usize {
        self.inner.n_samples()
    }
    #[getter]
    fn n_epochs(&self) -> usize {
        self.inner.n_epochs()
    }
    #[getter]
    fn n_groups(&self) -> usize {
        self.inner.n_groups()
    }
    #[getter]
    fn epoch_open(&self) -> bool {
        self.inner.epoch_open()
    }
    #[getter]
    fn history_nbytes(&self) -> usize {
        self.inner.history_nbytes()
    }

    fn times_correct<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let l = &self.inner;
        Ok(PyArray1::from_vec(
            py,
            py.detach(|| l.times_correct()).into_py_result()?,
        ))
    }
    fn presentations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let l = &self.inner;
        Ok(PyArray1::from_vec(
            py,
            py.detach(|| l.presentations()).into_py_result()?,
        ))
    }
    fn forgetting_events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let l = &self.inner;
        Ok(PyArray1::from_vec(
            py,
            py.detach(|| l.forgetting_events()).into_py_result()?,
        ))
    }
    fn first_learned<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let l = &self.inner;
        Ok(PyArray1::from_vec(
            py,
            py.detach(|| l.first_learned()).into_py_result()?,
        ))
    }
    fn learned_since<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let l = &self.inner;
        Ok(PyArray1::from_vec(
            py,
            py.detach(|| l.learned_since()).into_py_result()?,
        ))
    }
    fn never_learned<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let l = &self.inner;
        Ok(PyArray1::from_vec(
            py,
            py.detach(|| l.never_learned()).into_py_result()?,
        ))
    }
    fn last_pred<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<i32>>>> {
        self.inner
            .last_pred()
            .map(|p| copy_out(py, p, "last_pred"))
            .transpose()
    }
    fn clean_labels<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<i32>>>> {
        self.inner
            .clean_labels()
            .map(|p| copy_out(py, p, "clean_labels"))
            .transpose()
    }
    fn group_ids<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<i64>>>> {
        Ok(self
            .inner
            .group_ids()
            .into_py_result()?
            .map(|g| PyArray1::from_vec(py, g)))
    }
    fn flipped<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<bool>>>> {
        Ok(self
            .inner
            .flipped()
            .into_py_result()?
            .map(|f| PyArray1::from_vec(py, f)))
    }

    /// Per-epoch counts, epochs × (6 + 2·n_groups): presented, correct, presented_flipped,
    /// correct_flipped, flipped_pred_clean, flipped_with_pred (−1: not computable), then per group
    /// presented and per group correct.
    fn epoch_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let l = &self.inner;
        copy_matrix(
            py,
            l.epoch_counts(),
            l.n_epochs(),
            l.count_cols(),
            "the per-epoch counts",
        )
    }

    /// Correctness (or, with `presented=True`, presentation) history as bool, epochs × n_samples.
    #[pyo3(signature = (presented=false))]
    fn history<'py>(
        &self,
        py: Python<'py>,
        presented: bool,
    ) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let l = &self.inner;
        let v = py.detach(|| l.unpack_history(presented)).into_py_result()?;
        matrix(py, v, l.n_epochs(), l.n_samples())
    }

    /// The packed history planes (correct, presented), each epochs × words of uint64.
    fn history_words<'py>(&self, py: Python<'py>) -> PyResult<WordPlanes<'py>> {
        let l = &self.inner;
        let (c, p) = l.history_words();
        Ok((
            copy_matrix(py, c, l.n_epochs(), l.words(), "the history")?,
            copy_matrix(py, p, l.n_epochs(), l.words(), "the history")?,
        ))
    }

    /// Rebuild a core ledger from saved parts by replaying its history; ValueError when inconsistent.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (n_samples, groups, n_groups, flipped, hist_correct, hist_presented, n_epochs, pred_clean, last_pred, clean_labels))]
    fn from_parts(
        py: Python<'_>,
        n_samples: usize,
        groups: Option<PyReadonlyArray1<'_, i64>>,
        n_groups: usize,
        flipped: Option<&Bound<'_, PyAny>>,
        hist_correct: PyReadonlyArray1<'_, u64>,
        hist_presented: PyReadonlyArray1<'_, u64>,
        n_epochs: usize,
        pred_clean: PyReadonlyArray1<'_, i64>,
        last_pred: Option<PyReadonlyArray1<'_, i64>>,
        clean_labels: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Self> {
        let g = groups.as_ref().map(|a| slice(a, "groups")).transpose()?;
        let fa = flipped.map(|f| bool_mask(f, "flipped")).transpose()?;
        let f = fa
            .as_ref()
            .map(|a| slice(a, "flipped").map(NumpyBool::from_bytes))
            .transpose()?;
        let hc = slice(&hist_correct, "hist_correct")?;
        let hp = slice(&hist_presented, "hist_presented")?;
        let pc = slice(&pred_clean, "pred_clean")?;
        let lp = last_pred
            .as_ref()
            .map(|a| slice(a, "last_pred"))
            .transpose()?;
        let yc = clean_labels
            .as_ref()
            .map(|a| slice(a, "clean_labels"))
            .transpose()?;
        let inner = py
            .detach(|| Ledger::from_parts(n_samples, g, n_groups, f, hc, hp, n_epochs, pc, lp, yc))
            .into_py_result()?;
        Ok(PyLedgerCore { inner })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use lrdecay_core::ledger::{COUNT_COLUMNS, MAX_EPOCHS, MAX_GROUPS, MAX_LABEL, MAX_SAMPLES};
    m.add_class::<PyLedgerCore>()?;
    let limits = pyo3::types::PyDict::new(m.py());
    limits.set_item("max_samples", MAX_SAMPLES)?;
    limits.set_item("max_groups", MAX_GROUPS)?;
    limits.set_item("max_epochs", MAX_EPOCHS)?;
    limits.set_item("max_label", MAX_LABEL)?;
    m.add("LEDGER_LIMITS", limits)?;
    m.add(
        "LEDGER_COUNT_COLUMNS",
        pyo3::types::PyTuple::new(m.py(), COUNT_COLUMNS)?,
    )?;
    Ok(())
}
