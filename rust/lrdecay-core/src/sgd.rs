//! The SGD-momentum update of `torch.optim.SGD`, one pass over each parameter (CPU).
//!
//! torch applies the update as several whole-tensor ops (`grad + wd*p`, `buf*mu`, `buf + (1-d)*grad`,
//! `p + (-lr)*d`), each a separate sweep over memory; this does the same arithmetic element by element
//! in one sweep. Each `a + alpha*b` is one fused multiply-add, as torch's vectorized CPU kernels compute
//! it, and every coefficient is rounded to f32 as torch rounds its Python-float scalars, so the result
//! equals torch's update bit for bit.

/// Hyperparameters of one step (already validated by the caller).
#[derive(Clone, Copy, Debug)]
pub struct SgdStep {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
    /// First step with momentum: the buffer is set to the (modified) gradient.
    pub first_step: bool,
}

#[derive(Clone, Copy)]
struct Coeffs {
    neg_lr: f32,
    mu: f32,
    one_minus_d: f32,
    wd: f32,
}

impl SgdStep {
    fn coeffs(&self) -> Coeffs {
        Coeffs {
            neg_lr: (-self.lr) as f32,
            mu: self.momentum as f32,
            one_minus_d: (1.0 - self.dampening) as f32,
            wd: self.weight_decay as f32,
        }
    }
}

/// Apply one step to `p` (in place) from gradient `g`, with momentum buffer `m` when `momentum != 0`.
///
/// Returns an error message (nothing written) when the lengths differ or a buffer is missing.
pub fn sgd_step_f32(p: &mut [f32], g: &[f32], m: Option<&mut [f32]>, s: &SgdStep) -> Result<(), String> {
    if g.len() != p.len() {
        return Err(format!("gradient length {} != parameter length {}", g.len(), p.len()));
    }
    if let Some(m) = &m {
        if m.len() != p.len() {
            return Err(format!("momentum buffer length {} != parameter length {}", m.len(), p.len()));
        }
    } else if s.momentum != 0.0 {
        return Err("momentum != 0 needs a momentum buffer".into());
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the features the function is compiled for.
            unsafe { step_avx2(p, g, m, s) };
            return Ok(());
        }
    }
    step_generic(p, g, m, s);
    Ok(())
}

/// A parameter, its gradient and (with momentum) its momentum buffer.
pub type ParamSlices<'a> = (&'a mut [f32], &'a [f32], Option<&'a mut [f32]>);

/// Elements per rayon task: large enough to amortize scheduling, small enough to balance two cores.
const CHUNK: usize = 1 << 15;

/// One step over many parameters at once: `(p, g, m)` triples (`m` None iff `momentum == 0`), split into
/// chunks run on the rayon pool. Elementwise, so the result does not depend on the thread count.
/// Every length is checked before anything is written.
pub fn sgd_step_f32_many(
    items: Vec<ParamSlices<'_>>,
    s: &SgdStep,
) -> Result<(), String> {
    for (i, (p, g, m)) in items.iter().enumerate() {
        let bad_m = match m {
            Some(m) => m.len() != p.len(),
            None => s.momentum != 0.0,
        };
        if g.len() != p.len() || bad_m {
            return Err(format!("parameter {i}: gradient / momentum buffer missing or of another length"));
        }
    }
    let mut tasks: Vec<ParamSlices<'_>> = Vec::new();
    for (p, g, m) in items {
        match m {
            Some(m) => {
                for ((pc, gc), mc) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)).zip(m.chunks_mut(CHUNK)) {
                    tasks.push((pc, gc, Some(mc)));
                }
            }
            None => {
                for (pc, gc) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)) {
                    tasks.push((pc, gc, None));
                }
            }
        }
    }
    use rayon::prelude::*;
    tasks.into_par_iter().try_for_each(|(p, g, m)| sgd_step_f32(p, g, m, s))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2(p: &mut [f32], g: &[f32], m: Option<&mut [f32]>, s: &SgdStep) {
    // Same body; compiled with FMA so `mul_add` is one instruction and the loop vectorizes.
    step_generic(p, g, m, s)
}

#[inline(always)]
fn step_generic(p: &mut [f32], g: &[f32], m: Option<&mut [f32]>, s: &SgdStep) {
    let c = s.coeffs();
    let has_wd = s.weight_decay != 0.0;
    match m {
        None => {
            for (pi, &gi) in p.iter_mut().zip(g) {
                let mut d = if s.maximize { -gi } else { gi };
                if has_wd {
                    d = pi.mul_add(c.wd, d);
                }
                *pi = d.mul_add(c.neg_lr, *pi);
            }
        }
        Some(m) => {
            for ((pi, &gi), mi) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                let mut d = if s.maximize { -gi } else { gi };
                if has_wd {
                    d = pi.mul_add(c.wd, d);
                }
                let buf = if s.first_step { d } else { d.mul_add(c.one_minus_d, *mi * c.mu) };
                *mi = buf;
                let step = if s.nesterov { buf.mul_add(c.mu, d) } else { buf };
                *pi = step.mul_add(c.neg_lr, *pi);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(p: &mut [f32], g: &[f32], m: &mut [f32], s: &SgdStep) {
        // torch's op sequence, op by op, each `a + alpha*b` as an explicit fma.
        let c = s.coeffs();
        let mut d: Vec<f32> = g.iter().map(|&x| if s.maximize { -x } else { x }).collect();
        if s.weight_decay != 0.0 {
            for (di, &pi) in d.iter_mut().zip(p.iter()) {
                *di = pi.mul_add(c.wd, *di);
            }
        }
        if s.momentum != 0.0 {
            for (mi, &di) in m.iter_mut().zip(&d) {
                *mi = if s.first_step { di } else { di.mul_add(c.one_minus_d, *mi * c.mu) };
            }
            for (di, &mi) in d.iter_mut().zip(m.iter()) {
                *di = if s.nesterov { mi.mul_add(c.mu, *di) } else { mi };
            }
        }
        for (pi, &di) in p.iter_mut().zip(&d) {
            *pi = di.mul_add(c.neg_lr, *pi);
        }
    }

    #[test]
    fn one_pass_equals_op_by_op() {
        let mut state = 12345u64;
        let mut rnd = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for &n in &[1usize, 7, 33, 1000] {
            for nesterov in [false, true] {
                for maximize in [false, true] {
                    for first_step in [false, true] {
                        let s = SgdStep {
                            lr: 0.1,
                            momentum: 0.9,
                            dampening: if nesterov { 0.0 } else { 0.3 },
                            weight_decay: 5e-4,
                            nesterov,
                            maximize,
                            first_step,
                        };
                        let p0: Vec<f32> = (0..n).map(|_| rnd()).collect();
                        let g: Vec<f32> = (0..n).map(|_| rnd()).collect();
                        let m0: Vec<f32> = (0..n).map(|_| rnd()).collect();
                        let (mut p1, mut m1) = (p0.clone(), m0.clone());
                        let (mut p2, mut m2) = (p0.clone(), m0.clone());
                        sgd_step_f32(&mut p1, &g, Some(&mut m1), &s).unwrap();
                        reference(&mut p2, &g, &mut m2, &s);
                        assert_eq!(p1, p2);
                        assert_eq!(m1, m2);
                    }
                }
            }
        }
    }

    #[test]
    fn many_equals_one_by_one_across_chunks() {
        let s = SgdStep { lr: 0.05, momentum: 0.9, dampening: 0.1, weight_decay: 1e-3, nesterov: false, maximize: false, first_step: false };
        let sizes = [1usize, CHUNK + 3, 2 * CHUNK, 17];
        let mk = |n: usize, k: f32| (0..n).map(|i| ((i as f32) * 0.37 + k).sin()).collect::<Vec<f32>>();
        let mut ps: Vec<Vec<f32>> = sizes.iter().map(|&n| mk(n, 1.0)).collect();
        let gs: Vec<Vec<f32>> = sizes.iter().map(|&n| mk(n, 2.0)).collect();
        let mut ms: Vec<Vec<f32>> = sizes.iter().map(|&n| mk(n, 3.0)).collect();
        let (mut ps2, mut ms2) = (ps.clone(), ms.clone());
        let items = ps.iter_mut().zip(&gs).zip(ms.iter_mut()).map(|((p, g), m)| (&mut p[..], &g[..], Some(&mut m[..]))).collect();
        sgd_step_f32_many(items, &s).unwrap();
        for ((p, g), m) in ps2.iter_mut().zip(&gs).zip(ms2.iter_mut()) {
            sgd_step_f32(p, g, Some(m), &s).unwrap();
        }
        assert_eq!(ps, ps2);
        assert_eq!(ms, ms2);
    }

    #[test]
    fn length_mismatch_writes_nothing() {
        let mut p = vec![1.0f32; 3];
        let s = SgdStep { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, maximize: false, first_step: false };
        assert!(sgd_step_f32(&mut p, &[1.0; 2], None, &s).is_err());
        assert_eq!(p, vec![1.0; 3]);
        let s = SgdStep { momentum: 0.9, ..s };
        assert!(sgd_step_f32(&mut p, &[1.0; 3], None, &s).is_err());
        assert_eq!(p, vec![1.0; 3]);
    }
}
