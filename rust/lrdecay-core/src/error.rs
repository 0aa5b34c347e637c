//! One error type for the whole core. The binding maps each variant to a Python exception class,
//! so every message must name the offending argument and what is accepted.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A value is outside its accepted range or inconsistent with another (Python `ValueError`).
    Value(String),
    /// A value has the wrong kind (Python `TypeError`).
    Type(String),
    /// An allocation failed (Python `MemoryError`): every allocation that grows with the input goes
    /// through [`try_vec`] / [`try_reserve`], so running out of memory is an error, not an abort.
    Memory(String),
}

impl CoreError {
    pub fn value(msg: impl Into<String>) -> Self {
        CoreError::Value(msg.into())
    }
    pub fn type_(msg: impl Into<String>) -> Self {
        CoreError::Type(msg.into())
    }
    /// Out of memory while allocating `len` elements of `T` for `what`.
    pub fn memory<T>(len: usize, what: &str) -> Self {
        let bytes = (len as u128) * (std::mem::size_of::<T>() as u128);
        CoreError::Memory(format!(
            "out of memory: could not allocate {bytes} bytes for {what}"
        ))
    }
}

/// `len` copies of `value`, or [`CoreError::Memory`] when the allocation fails.
pub fn try_vec<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    try_reserve(&mut v, len, what)?;
    v.resize(len, value);
    Ok(v)
}

/// The items of an iterator of known length, or [`CoreError::Memory`] when the allocation fails.
pub fn try_collect<T>(items: impl ExactSizeIterator<Item = T>, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    try_reserve(&mut v, items.len(), what)?;
    v.extend(items);
    Ok(v)
}

/// Reserve room for `extra` more elements, or [`CoreError::Memory`].
pub fn try_reserve<T>(v: &mut Vec<T>, extra: usize, what: &str) -> Result<()> {
    v.try_reserve_exact(extra)
        .map_err(|_| CoreError::memory::<T>(extra, what))
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Value(m) | CoreError::Type(m) | CoreError::Memory(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CoreError {}

pub type Result<T> = std::result::Result<T, CoreError>;
