//! One BiLSTM layer's recurrence as a single candle op with a hand-written
//! backward pass, on CPU in f32.
//!
//! Why: written with tensor ops, every time step adds about fifteen small
//! nodes to the autograd graph (a matmul, narrows, sigmoids, the masked
//! state updates), and the backward pass walks, allocates and accumulates
//! each one. On a 2-core machine that bookkeeping, not arithmetic, was most
//! of the training time. Here the whole sequence is one node: the forward
//! pass loops over time in plain Rust with one `gemm` per step, keeps the
//! gate activations it needs, and the backward pass is back-propagation
//! through time over those, ending in a single `gemm` for the recurrent
//! weights' gradient. The two directions are independent, so they run on
//! two threads.
//!
//! The input projection `x W_ih + b` of every step stays outside, as one
//! ordinary matmul that autograd differentiates. The op takes:
//!
//! - `proj`: `(B, T, 8H)`, the forward direction's gate pre-activations in
//!   `[.., 0..4H]` and the backward direction's in `[.., 4H..8H]`, each in
//!   gate order `[input, forget, output, cell]`;
//! - `w_hh`: `(2, H, 4H)`, the recurrent weights of both directions;
//! - `mask`: `(B, T)`, 1 on real tokens and 0 on padding.
//!
//! It returns `(B, T, 2H)`: the forward states, then the backward states.
//! On padding the state is carried over unchanged (`h ← h + m (h' − h)`),
//! exactly as the tensor-op reference [`super::lstm::LstmDirection`] does;
//! the tests check both passes against it.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::error::Result;

/// What the backward pass needs from one direction's forward pass, indexed
/// by position (not processing order): each `(B, T, ·)`.
struct Trace {
    /// Gate activations `[i, f, o, g]` after their nonlinearities.
    gates: Vec<f32>,
    /// `tanh` of the cell before masking, `tanh(f c + i g)`.
    tanh_c_new: Vec<f32>,
    /// The carried cell and hidden states after the step.
    c: Vec<f32>,
    h: Vec<f32>,
}

pub(crate) struct BiLstmRecurrence {
    hidden: usize,
    /// Filled by the forward pass when a backward pass will follow. Behind
    /// a lock because candle hands ops around as `Arc<dyn CustomOp3>`; kept
    /// (not taken) because PCGrad back-propagates one graph several times.
    traces: Mutex<Option<Arc<[Trace; 2]>>>,
    keep_trace: bool,
}

/// `(B, T, 2H)` states of both directions. `proj`, `w_hh` and `mask` as in
/// the module docs. What the backward pass needs is kept only when an input
/// is part of an autograd graph (a parameter, or computed from one): a
/// bundle loaded for prediction holds plain tensors and keeps nothing.
pub(crate) fn bilstm(proj: &Tensor, w_hh: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let hidden = w_hh.dim(1)?;
    let tracked = proj.track_op() || w_hh.track_op();
    let op = BiLstmRecurrence {
        hidden,
        traces: Mutex::new(None),
        keep_trace: tracked,
    };
    let (proj, w_hh, mask) = (proj.contiguous()?, w_hh.contiguous()?, mask.contiguous()?);
    Ok(if tracked {
        proj.apply_op3_arc(&w_hh, &mask, Arc::new(Box::new(op)))?
    } else {
        proj.apply_op3_no_bwd(&w_hh, &mask, &op)?
    })
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("bilstm kernel: `{what}` must be f32");
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&v[start..end]),
        None => candle_core::bail!("bilstm kernel: `{what}` must be contiguous"),
    }
}

/// `eˣ` in plain arithmetic instead of libm's `expf`. `f32::round` is
/// still a libm call that keeps the loops scalar; rounding with an add
/// would vectorize them (measured in `bench/README.md`, not yet landed:
/// it moves the last bits of published runs). `x = n·ln2 + r`, `|r| ≤ ln2/2`;
/// `eʳ` by its Taylor series to `r⁶` (relative error below 2e-7); `2ⁿ`
/// written straight into the exponent bits. Inputs are clamped to where
/// `2ⁿ` is a normal f32, which saturates `sigmoid` and `tanh` correctly.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh` through one `exp`: glibc's `tanhf` goes through `expm1f` and was
/// a sixth of a training step's profile. Absolute error stays below 1e-6.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, each operand given by its
/// row and column strides, so transposes and strided rows cost nothing.
#[allow(clippy::too_many_arguments)]
fn gemm(
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    (m, k, n): (usize, usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    // The kernel reads exactly these extents; checking them here is what
    // makes the unsafe call below sound.
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(dst.len() > last(m, n, n, 1));
    if k > 0 {
        assert!(lhs.len() > last(m, k, lhs_rs, lhs_cs));
        assert!(rhs.len() > last(k, n, rhs_rs, rhs_cs));
    }
    // SAFETY: every index the kernel touches is within the slices (asserted
    // above), `dst` is borrowed mutably and does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Positions in processing order.
fn order(t: usize, reverse: bool) -> Vec<usize> {
    if reverse {
        (0..t).rev().collect()
    } else {
        (0..t).collect()
    }
}

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    h: usize,
}

/// Direction `d` (0 forward, 1 backward): its trace, whose `h` is its output.
fn forward_dir(proj: &[f32], w: &[f32], mask: &[f32], dims: Dims, d: usize) -> Trace {
    let Dims { b, t, h } = dims;
    let g4 = 4 * h;
    let mut tr = Trace {
        gates: vec![0.0; b * t * g4],
        tanh_c_new: vec![0.0; b * t * h],
        c: vec![0.0; b * t * h],
        h: vec![0.0; b * t * h],
    };
    let mut hs = vec![0f32; b * h];
    let mut cs = vec![0f32; b * h];
    let mut z = vec![0f32; b * g4];
    for s in order(t, d == 1) {
        for bi in 0..b {
            let from = (bi * t + s) * 2 * g4 + d * g4;
            z[bi * g4..(bi + 1) * g4].copy_from_slice(&proj[from..from + g4]);
        }
        gemm(&mut z, true, &hs, (h, 1), w, (g4, 1), (b, h, g4));
        for bi in 0..b {
            let m = mask[bi * t + s];
            let row = bi * t + s;
            // Activations in place, as straight loops over slices so that
            // they vectorize: `[i, f, o]` through the sigmoid, `g` tanh.
            let zr = &mut z[bi * g4..(bi + 1) * g4];
            let (sig, cell) = zr.split_at_mut(3 * h);
            sig.iter_mut().for_each(|v| *v = sigmoid(*v));
            cell.iter_mut().for_each(|v| *v = tanh(*v));
            tr.gates[row * g4..(row + 1) * g4].copy_from_slice(zr);
            let (i, rest) = zr.split_at(h);
            let (f, rest) = rest.split_at(h);
            let (o, g) = rest.split_at(h);
            let states = bi * h..(bi + 1) * h;
            let out = row * h..(row + 1) * h;
            let (cs, hs) = (&mut cs[states.clone()], &mut hs[states]);
            let tcn = &mut tr.tanh_c_new[out.clone()];
            for j in 0..h {
                let cn = f[j] * cs[j] + i[j] * g[j];
                let tc = tanh(cn);
                tcn[j] = tc;
                cs[j] += m * (cn - cs[j]);
                hs[j] += m * (o[j] * tc - hs[j]);
            }
            tr.c[out.clone()].copy_from_slice(cs);
            tr.h[out].copy_from_slice(hs);
        }
    }
    tr
}

/// Back-propagation through time for direction `d`: the gradient of its
/// gate pre-activations `(B, T, 4H)` and of its `w_hh` `(H, 4H)`.
fn backward_dir(
    tr: &Trace,
    w: &[f32],
    mask: &[f32],
    grad_out: &[f32],
    dims: Dims,
    d: usize,
) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, t, h } = dims;
    let g4 = 4 * h;
    let mut dz = vec![0f32; b * t * g4];
    // Row (b, s): the hidden state the step at `s` started from.
    let mut h_prev = vec![0f32; b * t * h];
    let mut dh = vec![0f32; b * h];
    let mut dc = vec![0f32; b * h];
    let steps = order(t, d == 1);
    for (n, &s) in steps.iter().enumerate().rev() {
        let prev = n.checked_sub(1).map(|p| steps[p]);
        for bi in 0..b {
            let m = mask[bi * t + s];
            let row = bi * t + s;
            let gr = &tr.gates[row * g4..(row + 1) * g4];
            let dzr = &mut dz[row * g4..(row + 1) * g4];
            for j in 0..h {
                let k = bi * h + j;
                let (cp, hp) = match prev {
                    Some(p) => (tr.c[(bi * t + p) * h + j], tr.h[(bi * t + p) * h + j]),
                    None => (0.0, 0.0),
                };
                h_prev[row * h + j] = hp;
                let dh_total = dh[k] + grad_out[row * 2 * h + d * h + j];
                // The masked update splits each gradient: `m` of it flows
                // into the new state, the rest straight to the old one.
                let dhn = m * dh_total;
                let (i, f, o, g) = (gr[j], gr[h + j], gr[2 * h + j], gr[3 * h + j]);
                let tc = tr.tanh_c_new[row * h + j];
                let dcn = m * dc[k] + dhn * o * (1.0 - tc * tc);
                dzr[j] = dcn * g * i * (1.0 - i);
                dzr[h + j] = dcn * cp * f * (1.0 - f);
                dzr[2 * h + j] = dhn * tc * o * (1.0 - o);
                dzr[3 * h + j] = dcn * i * (1.0 - g * g);
                dc[k] = (1.0 - m) * dc[k] + dcn * f;
                dh[k] = (1.0 - m) * dh_total;
            }
        }
        // dh += dz_s · w_hhᵀ; the rows of dz_s lie `T·4H` apart in `dz`.
        gemm(
            &mut dh,
            true,
            &dz[s * g4..],
            (t * g4, 1),
            w,
            (1, g4),
            (b, g4, h),
        );
    }
    // d w_hh = Σ_s h_prevᵀ dz_s, over every (b, s) row at once.
    let mut dw = vec![0f32; h * g4];
    gemm(
        &mut dw,
        false,
        &h_prev,
        (1, h),
        &dz,
        (g4, 1),
        (h, b * t, g4),
    );
    (dz, dw)
}

impl CustomOp3 for BiLstmRecurrence {
    fn name(&self) -> &'static str {
        "bilstm-recurrence"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let proj = slice(s1, l1, "proj")?;
        let w = slice(s2, l2, "w_hh")?;
        let mask = slice(s3, l3, "mask")?;
        let h = self.hidden;
        let (b, t, p) = l1.shape().dims3()?;
        if p != 8 * h || l2.shape().dims() != [2, h, 4 * h] || l3.shape().dims() != [b, t] {
            candle_core::bail!(
                "bilstm kernel: shapes proj {:?}, w_hh {:?}, mask {:?} do not fit hidden {h}",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let dims = Dims { b, t, h };
        let wsz = h * 4 * h;
        let (fwd, bwd) = std::thread::scope(|sc| {
            let back = sc.spawn(|| forward_dir(proj, &w[wsz..], mask, dims, 1));
            let fwd = forward_dir(proj, &w[..wsz], mask, dims, 0);
            (fwd, back.join())
        });
        let bwd =
            bwd.map_err(|_| candle_core::Error::Msg("bilstm kernel thread panicked".into()))?;
        let mut out = vec![0f32; b * t * 2 * h];
        for row in 0..b * t {
            out[row * 2 * h..row * 2 * h + h].copy_from_slice(&fwd.h[row * h..(row + 1) * h]);
            out[row * 2 * h + h..(row + 1) * 2 * h].copy_from_slice(&bwd.h[row * h..(row + 1) * h]);
        }
        if self.keep_trace {
            let mut saved = self
                .traces
                .lock()
                .map_err(|_| candle_core::Error::Msg("bilstm kernel: poisoned trace".into()))?;
            *saved = Some(Arc::new([fwd, bwd]));
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t, 2 * h))))
    }

    fn bwd(
        &self,
        proj: &Tensor,
        w_hh: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let traces = self
            .traces
            .lock()
            .map_err(|_| candle_core::Error::Msg("bilstm kernel: poisoned trace".into()))?
            .clone();
        let Some(traces) = traces else {
            candle_core::bail!(
                "bilstm kernel: backward pass over a forward pass that kept no trace"
            );
        };
        let (b, t, _) = proj.dims3()?;
        let h = self.hidden;
        let dims = Dims { b, t, h };
        let w = w_hh.flatten_all()?.to_vec1::<f32>()?;
        let mask = mask.flatten_all()?.to_vec1::<f32>()?;
        let grad_out = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let wsz = h * 4 * h;
        let ((dz_f, dw_f), back) = std::thread::scope(|sc| {
            let back = sc.spawn(|| backward_dir(&traces[1], &w[wsz..], &mask, &grad_out, dims, 1));
            let fwd = backward_dir(&traces[0], &w[..wsz], &mask, &grad_out, dims, 0);
            (fwd, back.join())
        });
        let (dz_b, dw_b) =
            back.map_err(|_| candle_core::Error::Msg("bilstm kernel thread panicked".into()))?;
        let g4 = 4 * h;
        let mut dproj = vec![0f32; b * t * 2 * g4];
        for row in 0..b * t {
            dproj[row * 2 * g4..row * 2 * g4 + g4].copy_from_slice(&dz_f[row * g4..(row + 1) * g4]);
            dproj[row * 2 * g4 + g4..(row + 1) * 2 * g4]
                .copy_from_slice(&dz_b[row * g4..(row + 1) * g4]);
        }
        let mut dw = dw_f;
        dw.extend_from_slice(&dw_b);
        let device = proj.device();
        Ok((
            Some(Tensor::from_vec(dproj, (b, t, 2 * g4), device)?),
            Some(Tensor::from_vec(dw, (2, h, g4), device)?),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::super::birnn::Recurrent;
    use super::super::lstm::LstmDirection;
    use crate::params::ParamStore;

    /// Both directions of a layer from 5 inputs to 3 states, and their
    /// parameters.
    fn layer(seed: u64, d: &Device) -> (LstmDirection, LstmDirection, Vec<Var>) {
        let mut p = ParamStore::new(seed, d);
        let fwd = p
            .scoped("f", |p| LstmDirection::new(p, 5, 3, false))
            .unwrap();
        let bwd = p
            .scoped("b", |p| LstmDirection::new(p, 5, 3, true))
            .unwrap();
        (fwd, bwd, p.into_varmap().all_vars())
    }

    /// Rows of lengths 6, 4, 1 and 0: padding at the end, as batches have it.
    fn inputs(d: &Device) -> (Var, candle_core::Tensor) {
        let xs = Var::randn(0f32, 1.0, (4, 6, 5), d).unwrap();
        let lens = [6usize, 4, 1, 0];
        let mask: Vec<f32> = lens
            .iter()
            .flat_map(|&l| (0..6).map(move |s| if s < l { 1.0 } else { 0.0 }))
            .collect();
        let mask = candle_core::Tensor::from_vec(mask, (4, 6, 1), d).unwrap();
        (xs, mask)
    }

    fn max_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
        a.sub(b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The kernel's `exp`, `sigmoid` and `tanh` against the standard
    /// library's over the whole useful range, saturation included.
    #[test]
    fn activations_match_the_standard_library() {
        for k in -20_000..=20_000 {
            let x = k as f32 * 0.005;
            let want = x.exp();
            // Outside [-87, 88] the input is clamped: only `sigmoid` and
            // `tanh` are checked there.
            if (-87.0..=88.0).contains(&x) {
                assert!((super::exp(x) - want).abs() <= 3e-7 * want, "exp({x})");
            }
            let want = 1.0 / (1.0 + (-x).exp());
            assert!((super::sigmoid(x) - want).abs() < 1e-6, "sigmoid({x})");
            assert!((super::tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
        }
        for x in [-1e30f32, -500.0, -90.0, 90.0, 500.0, 1e30] {
            let s = super::sigmoid(x);
            assert!(s.is_finite() && (s - if x > 0.0 { 1.0 } else { 0.0 }).abs() < 1e-30);
            assert_eq!(super::tanh(x), x.signum());
        }
    }

    /// The kernel's states and every gradient (inputs and all six
    /// parameters) equal those of the tensor-op reference, padding included.
    #[test]
    fn kernel_matches_the_tensor_op_reference_forward_and_backward() {
        let d = Device::Cpu;
        let (fwd, bwd, vars) = layer(11, &d);
        let (xs, mask) = inputs(&d);
        // A loss that weighs every output differently, so no gradient can
        // hide behind a symmetric sum.
        let weights = candle_core::Tensor::randn(0f32, 1.0, (4, 6, 6), &d).unwrap();
        let reference = candle_core::Tensor::cat(
            &[
                fwd.forward(xs.as_tensor(), &mask).unwrap(),
                bwd.forward(xs.as_tensor(), &mask).unwrap(),
            ],
            2,
        )
        .unwrap();
        let fused = LstmDirection::bidirectional(&fwd, &bwd, xs.as_tensor(), &mask).unwrap();
        assert_eq!(fused.dims(), &[4, 6, 6]);
        assert!(max_diff(&reference, &fused) < 1e-5);
        // Without any tracked input the op keeps no trace; same states.
        let (fwd_plain, bwd_plain) = (fwd.detached(), bwd.detached());
        let xs_plain = xs.as_tensor().detach();
        assert!(!xs_plain.track_op());
        let inference =
            LstmDirection::bidirectional(&fwd_plain, &bwd_plain, &xs_plain, &mask).unwrap();
        assert!(max_diff(&fused, &inference) == 0.0);

        let loss = |out: &candle_core::Tensor| out.mul(&weights).unwrap().sum_all().unwrap();
        let g_ref = loss(&reference).backward().unwrap();
        let g_fused = loss(&fused).backward().unwrap();
        let mut checked = 0;
        for v in vars.iter().chain(std::iter::once(&xs)) {
            let a = g_ref.get(v).expect("reference gradient");
            let b = g_fused.get(v).expect("kernel gradient");
            let scale = a.abs().unwrap().max_keepdim(0).unwrap().max_all().unwrap();
            let scale = scale.to_scalar::<f32>().unwrap().max(1e-3);
            assert!(scale > 1e-3, "a parameter got no gradient");
            assert!(
                max_diff(a, b) / scale < 1e-4,
                "gradient differs by {} (scale {scale})",
                max_diff(a, b)
            );
            checked += 1;
        }
        assert_eq!(checked, 7);
    }

    /// The all-padding row's states stay zero, and a row's states never
    /// depend on what sits in its padding.
    #[test]
    fn padding_neither_moves_the_state_nor_leaks_into_it() {
        let d = Device::Cpu;
        let (fwd, bwd, _) = layer(3, &d);
        let (xs, mask) = inputs(&d);
        let out = LstmDirection::bidirectional(&fwd, &bwd, xs.as_tensor(), &mask).unwrap();
        let empty = out.narrow(0, 3, 1).unwrap();
        assert_eq!(max_diff(&empty, &empty.zeros_like().unwrap()), 0.0);
        // Overwrite row 1's padding (positions 4 and 5) with other values.
        let noise = candle_core::Tensor::randn(0f32, 5.0, (4, 6, 5), &d).unwrap();
        let changed = xs
            .as_tensor()
            .add(
                &noise
                    .broadcast_mul(&mask.affine(-1.0, 1.0).unwrap())
                    .unwrap(),
            )
            .unwrap();
        let again = LstmDirection::bidirectional(&fwd, &bwd, &changed, &mask).unwrap();
        let real = |t: &candle_core::Tensor| t.narrow(0, 1, 1).unwrap().narrow(1, 0, 4).unwrap();
        assert!(max_diff(&real(&out), &real(&again)) < 1e-6);
    }
}
