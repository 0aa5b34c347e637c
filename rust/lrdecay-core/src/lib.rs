//! Pure-Rust core of lrdecay. No Python here: `cargo test` runs without an interpreter.
//!
//! - [`rng`]: counter-based random streams, so every sample depends only on (seed, stream, index).
//! - [`data`]: pattern datasets with tractable complexity.
//! - [`noise`]: label-noise injection.
//! - [`ledger`]: the per-sample learned / forgotten / memorized ledger.
//! - [`sgd`]: a one-pass CPU SGD-momentum step, bit-equal to torch.optim.SGD.

pub mod data;
pub mod error;
pub mod ledger;
pub mod noise;
pub mod rng;
pub mod sgd;

pub use error::{try_collect, try_reserve, try_vec, CoreError, Result};
