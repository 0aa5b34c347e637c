//! One error type for the whole core. The binding maps each variant to a Python exception class,
//! so every message must name the offending argument and what is accepted.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A value is outside its accepted range or inconsistent with another (Python `ValueError`).
    Value(String),
    /// A value has the wrong kind (Python `TypeError`).
    Type(String),
}

impl CoreError {
    pub fn value(msg: impl Into<String>) -> Self {
        CoreError::Value(msg.into())
    }
    pub fn type_(msg: impl Into<String>) -> Self {
        CoreError::Type(msg.into())
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Value(m) | CoreError::Type(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CoreError {}

pub type Result<T> = std::result::Result<T, CoreError>;
