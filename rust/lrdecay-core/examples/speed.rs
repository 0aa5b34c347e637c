//! Quick single-thread speed check of the Gaussian paths:
//! `cargo run --release --example speed -- [scalar|row|rng]`.
use lrdecay_core::rng::{fill_gauss, fill_row_gauss, row_scalar_rng, StreamFamily, ZIGGURAT};
use std::time::Instant;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "row".into());
    let t = &*ZIGGURAT;
    let fam = StreamFamily::new(1, 1);
    let rows = 400_000u64;
    let d = 128;
    let values = rows as f64 * d as f64;
    let mut buf = vec![0f32; d];
    let t0 = Instant::now();
    let mut acc = 0f32;
    for i in 0..rows {
        match mode.as_str() {
            "scalar" => fill_gauss(&mut buf, 1.0, &mut fam.rng(i), t),
            "rng" => {
                let mut r = fam.rng(i);
                for v in buf.iter_mut() {
                    *v = r.next_u64() as u32 as f32;
                }
            }
            _ => {
                fill_row_gauss(&mut buf, &mut row_scalar_rng(fam.key(i)), t)
            }
        }
        acc += buf[5];
    }
    let dt = t0.elapsed().as_secs_f64();
    println!("{mode}: {:.2} ns/value ({acc})", dt * 1e9 / values);
}
