//! The optimizer and its schedule: AdamW with one learning rate per
//! parameter group (the encoder, the heads, the learned loss weights),
//! global-norm gradient clipping, and linear or cosine decay after a linear
//! warmup.
//!
//! The AdamW update is candle's (decoupled weight decay, bias-corrected
//! moments), re-implemented so that the moments can be saved in a
//! checkpoint and each group can have its own rate. A group whose rate is 0
//! is frozen: its parameters and moments are left untouched.

use std::collections::HashMap;

use candle_core::{Tensor, Var};
use mtl_core::config::Schedule;

use crate::error::Result;

/// Gradients aligned with [`AdamW::params`]; `None` = no gradient.
pub type Grads = Vec<Option<Tensor>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `encoder.*`: embeddings and the shared encoder.
    Encoder,
    /// `heads.*`: one head per task.
    Heads,
    /// Uncertainty weighting's log-variances (no weight decay).
    LossWeights,
}

impl Group {
    /// The group of a model parameter, by its `VarMap` name.
    pub fn of(name: &str) -> Group {
        if name.starts_with("encoder.") {
            Group::Encoder
        } else {
            Group::Heads
        }
    }
}

pub struct Param {
    pub name: String,
    pub var: Var,
    pub group: Group,
}

pub struct AdamW {
    params: Vec<Param>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step_t: usize,
    weight_decay: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    pub fn new(params: Vec<Param>, weight_decay: f64) -> Result<Self> {
        let zeros = |p: &Param| p.var.as_tensor().zeros_like();
        let m = params
            .iter()
            .map(zeros)
            .collect::<candle_core::Result<_>>()?;
        let v = params
            .iter()
            .map(zeros)
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            params,
            m,
            v,
            step_t: 0,
            weight_decay,
        })
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Updates taken so far.
    pub fn steps(&self) -> usize {
        self.step_t
    }

    /// One update with the rate `lr(group)` for each group.
    pub fn step(&mut self, grads: &Grads, lr: impl Fn(Group) -> f64) -> Result<()> {
        self.step_with(grads, lr, true)
    }

    /// [`AdamW::step`], with the in-place CPU form allowed or not.
    fn step_with(
        &mut self,
        grads: &Grads,
        lr: impl Fn(Group) -> f64,
        allow_fused: bool,
    ) -> Result<()> {
        self.step_t += 1;
        let t = self.step_t as i32;
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        for (i, p) in self.params.iter().enumerate() {
            let lr = lr(p.group);
            let Some(g) = grads.get(i).and_then(Option::as_ref) else {
                continue;
            };
            if lr == 0.0 {
                continue;
            }
            let decay = if p.group == Group::LossWeights {
                0.0
            } else {
                self.weight_decay
            };
            if allow_fused && fused::applies(p.var.as_tensor(), g, &self.m[i], &self.v[i]) {
                let g = g.contiguous()?;
                self.m[i].inplace_op2(&g, &fused::Moment::first())?;
                self.v[i].inplace_op2(&g, &fused::Moment::second())?;
                p.var.inplace_op3(
                    &self.m[i],
                    &self.v[i],
                    &fused::Update {
                        lr: lr as f32,
                        decay: decay as f32,
                        scale_m: scale_m as f32,
                        scale_v: scale_v as f32,
                    },
                )?;
                continue;
            }
            let next_m = ((&self.m[i] * BETA1)? + (g * (1.0 - BETA1))?)?;
            let next_v = ((&self.v[i] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let theta = (p.var.as_tensor() * (1.0 - lr * decay))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + EPS)?)?;
            p.var.set(&(theta - (adjusted * lr)?)?)?;
            // Gradients carry the step's graph; detached moments do not
            // keep every past graph alive.
            self.m[i] = next_m.detach();
            self.v[i] = next_v.detach();
        }
        Ok(())
    }

    /// The moments, named `adam.m.<param>` and `adam.v.<param>`. They share
    /// storage with the optimizer's own, which the next step overwrites:
    /// write them out before stepping again.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, p) in self.params.iter().enumerate() {
            out.insert(format!("adam.m.{}", p.name), self.m[i].clone());
            out.insert(format!("adam.v.{}", p.name), self.v[i].clone());
        }
        out
    }

    /// Restores the moments saved by [`AdamW::state_tensors`] and the step
    /// count; every parameter must be there with its shape.
    pub fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        steps: usize,
    ) -> Result<(), String> {
        for (i, p) in self.params.iter().enumerate() {
            for (kind, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("adam.{kind}.{}", p.name);
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| format!("no `{key}` in the optimizer state"))?;
                if t.dims() != p.var.dims() {
                    return Err(format!(
                        "`{key}` has shape {:?}, the parameter {:?}",
                        t.dims(),
                        p.var.dims()
                    ));
                }
                // A copy: the fused update rewrites the moments in place,
                // and `tensors` may share storage with another optimizer.
                *slot = t.copy().map_err(|e| format!("`{key}`: {e}"))?;
            }
        }
        self.step_t = steps;
        Ok(())
    }
}

/// The global L2 norm of `grads` (summed in parameter order, so it is the
/// same bits in every run).
pub fn grad_norm(grads: &Grads) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.iter().flatten() {
        sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(sq.sqrt())
}

/// Scales all gradients so their global L2 norm is at most `max_norm`.
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Grads, max_norm: f64) -> Result<f64> {
    let norm = grad_norm(grads)?;
    if norm > max_norm && norm.is_finite() {
        let scale = max_norm / norm;
        for g in grads.iter_mut().flatten() {
            *g = g.affine(scale, 0.0)?;
        }
    }
    Ok(norm)
}

/// Multiplier of the base learning rate at `step` (0-based) of `total`:
/// linear warmup over the first `warmup` share of the steps (at least one
/// step when `warmup > 0`), then linear or cosine decay to zero.
pub fn lr_factor(schedule: Schedule, warmup: f64, step: usize, total: usize) -> f64 {
    let total = total.max(1);
    let warm = if warmup > 0.0 {
        ((warmup * total as f64).round() as usize).clamp(1, total)
    } else {
        0
    };
    if step < warm {
        return (step + 1) as f64 / warm as f64;
    }
    let rest = (total - warm).max(1) as f64;
    let progress = ((step - warm) as f64 / rest).clamp(0.0, 1.0);
    match schedule {
        Schedule::Linear => 1.0 - progress,
        Schedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    }
}

/// The CPU form of the update: the moments and the parameter rewritten in
/// place, three passes over memory and no allocation. Why: as tensor ops
/// the update allocates about a dozen parameter-sized tensors per step,
/// which for a model whose embedding table is most of its weights cost as
/// much as a fifth of a BiLSTM training step. Same arithmetic, in the same
/// order, as the tensor-op form below it, which other devices use.
mod fused {
    use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor};

    use super::{BETA1, BETA2, EPS};

    /// All four on the CPU in f32 and laid out alike, contiguous.
    pub fn applies(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor) -> bool {
        [p, g, m, v]
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.dims() == p.dims())
            && [p, m, v].iter().all(|t| t.is_contiguous())
    }

    fn values<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
        match (s, l.contiguous_offsets()) {
            (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
            _ => candle_core::bail!("fused AdamW: expected a contiguous f32 tensor"),
        }
    }

    fn values_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
        match (s, l.contiguous_offsets()) {
            (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
            _ => candle_core::bail!("fused AdamW: expected a contiguous f32 tensor"),
        }
    }

    /// `m ← β m + (1 − β) g`, or with `g²` for the second moment.
    pub struct Moment {
        beta: f32,
        square: bool,
    }

    impl Moment {
        pub fn first() -> Self {
            Self {
                beta: BETA1 as f32,
                square: false,
            }
        }

        pub fn second() -> Self {
            Self {
                beta: BETA2 as f32,
                square: true,
            }
        }
    }

    impl InplaceOp2 for Moment {
        fn name(&self) -> &'static str {
            "adamw-moment"
        }

        fn cpu_fwd(
            &self,
            s1: &mut CpuStorage,
            l1: &Layout,
            s2: &CpuStorage,
            l2: &Layout,
        ) -> candle_core::Result<()> {
            let g = values(s2, l2)?;
            let m = values_mut(s1, l1)?;
            let keep = 1.0 - self.beta;
            if self.square {
                m.iter_mut()
                    .zip(g)
                    .for_each(|(m, &g)| *m = *m * self.beta + g * g * keep);
            } else {
                m.iter_mut()
                    .zip(g)
                    .for_each(|(m, &g)| *m = *m * self.beta + g * keep);
            }
            Ok(())
        }
    }

    /// `θ ← θ (1 − lr·decay) − lr · m̂ / (√v̂ + ε)`.
    pub struct Update {
        pub lr: f32,
        pub decay: f32,
        pub scale_m: f32,
        pub scale_v: f32,
    }

    impl InplaceOp3 for Update {
        fn name(&self) -> &'static str {
            "adamw-update"
        }

        fn cpu_fwd(
            &self,
            s1: &mut CpuStorage,
            l1: &Layout,
            s2: &CpuStorage,
            l2: &Layout,
            s3: &CpuStorage,
            l3: &Layout,
        ) -> candle_core::Result<()> {
            let m = values(s2, l2)?;
            let v = values(s3, l3)?;
            let p = values_mut(s1, l1)?;
            let shrink = 1.0 - self.lr * self.decay;
            let eps = EPS as f32;
            for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                let step = (m * self.scale_m) / ((v * self.scale_v).sqrt() + eps);
                *p = *p * shrink - step * self.lr;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn linear_schedule_warms_up_then_decays() {
        let f = |s| lr_factor(Schedule::Linear, 0.1, s, 100);
        assert!((f(0) - 0.1).abs() < 1e-12);
        assert!((f(9) - 1.0).abs() < 1e-12);
        assert!((f(10) - 1.0).abs() < 1e-12);
        // 45 of 90 decay steps done.
        assert!((f(55) - 0.5).abs() < 1e-12);
        assert!(f(99) < 0.02);
        // No warmup: starts at the full rate.
        assert_eq!(lr_factor(Schedule::Linear, 0.0, 0, 100), 1.0);
    }

    #[test]
    fn cosine_schedule_follows_half_a_cosine() {
        let f = |s| lr_factor(Schedule::Cosine, 0.2, s, 100);
        assert!((f(0) - 0.05).abs() < 1e-12);
        assert!((f(20) - 1.0).abs() < 1e-12);
        // Halfway through the decay: ½(1 + cos(π/2)) = ½.
        assert!((f(60) - 0.5).abs() < 1e-12);
        // A quarter in: ½(1 + cos(π/4)).
        let q = 0.5 * (1.0 + std::f64::consts::FRAC_PI_4.cos());
        assert!((f(40) - q).abs() < 1e-12);
        // Above the linear decay in the first half, below in the second.
        let lin = |s| lr_factor(Schedule::Linear, 0.2, s, 100);
        assert!(f(30) > lin(30) && f(90) < lin(90));
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let v = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap()).unwrap();
        let loss = v
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .affine(10.0, 0.0)
            .unwrap();
        let store = loss.backward().unwrap();
        let mut grads: Grads = vec![store.get(v.as_tensor()).cloned(), None];
        let before = clip_grad_norm(&mut grads, 1.0).unwrap();
        assert!((before - (20f64.powi(2) + 40f64.powi(2)).sqrt()).abs() < 1e-3);
        assert!((grad_norm(&grads).unwrap() - 1.0).abs() < 1e-5);
    }

    /// The in-place CPU update and the tensor-op form agree step for step,
    /// weight decay and both groups included.
    #[test]
    fn the_fused_update_is_the_tensor_op_update() {
        let init = [0.5f32, -1.5, 2.0, 0.0, 3.25];
        let make = || {
            AdamW::new(
                vec![
                    param("encoder.w", &init, Group::Encoder),
                    param("heads.w", &init[..3], Group::Heads),
                ],
                0.01,
            )
            .unwrap()
        };
        let (mut fused, mut plain) = (make(), make());
        for step in 0..5 {
            let g = |n: usize, k: f32| {
                let v: Vec<f32> = (0..n).map(|i| (i as f32 - 2.0) * k + step as f32).collect();
                Some(Tensor::new(v.as_slice(), &Device::Cpu).unwrap())
            };
            let grads: Grads = vec![g(5, 0.7), g(3, -1.3)];
            let lr = |grp: Group| if grp == Group::Encoder { 0.01 } else { 0.1 };
            fused.step_with(&grads, lr, true).unwrap();
            plain.step_with(&grads, lr, false).unwrap();
            for (a, b) in fused.params().iter().zip(plain.params()) {
                let (a, b) = (values(a), values(b));
                assert_ne!(a, init[..a.len()].to_vec(), "no update at step {step}");
                for (x, y) in a.iter().zip(&b) {
                    // f32 rounding only: candle rounds its scalar factors
                    // differently.
                    assert!(
                        (x - y).abs() < 1e-5 * y.abs().max(1.0),
                        "step {step}: {a:?} vs {b:?}"
                    );
                }
            }
        }
    }

    fn param(name: &str, values: &[f32], group: Group) -> Param {
        Param {
            name: name.into(),
            var: Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap(),
            group,
        }
    }

    fn values(p: &Param) -> Vec<f32> {
        p.var.as_tensor().to_vec1().unwrap()
    }

    #[test]
    fn adamw_matches_the_hand_computed_first_step_and_freezes_a_zero_rate_group() {
        let mut opt = AdamW::new(
            vec![
                param("encoder.w", &[1.0, -1.0], Group::Encoder),
                param("heads.w", &[1.0, -1.0], Group::Heads),
                param("s", &[0.5], Group::LossWeights),
            ],
            0.1,
        )
        .unwrap();
        let g = |v: &[f32]| Some(Tensor::new(v, &Device::Cpu).unwrap());
        let grads: Grads = vec![g(&[0.5, 2.0]), g(&[0.5, -2.0]), g(&[1.0])];
        opt.step(&grads, |grp| if grp == Group::Encoder { 0.0 } else { 0.1 })
            .unwrap();
        // Step 1: m̂ = g, v̂ = g², so the update is lr · sign(g) (plus decay).
        assert_eq!(values(&opt.params()[0]), [1.0, -1.0]);
        let h = values(&opt.params()[1]);
        assert!((h[0] - (1.0 * (1.0 - 0.01) - 0.1)).abs() < 1e-6, "{h:?}");
        assert!((h[1] - (-(1.0 - 0.01) + 0.1)).abs() < 1e-6, "{h:?}");
        // No weight decay on the loss weights.
        assert!((values(&opt.params()[2])[0] - 0.4).abs() < 1e-6);
        // The frozen group's moments stay zero.
        let state = opt.state_tensors();
        let m: Vec<f32> = state["adam.m.encoder.w"].to_vec1().unwrap();
        assert_eq!(m, [0.0, 0.0]);
        assert_eq!(opt.steps(), 1);
    }

    #[test]
    fn optimizer_state_round_trips() {
        let make = || AdamW::new(vec![param("heads.w", &[1.0, -1.0], Group::Heads)], 0.01).unwrap();
        let g = || vec![Some(Tensor::new(&[0.3f32, -0.7], &Device::Cpu).unwrap())];
        let mut a = make();
        a.step(&g(), |_| 0.05).unwrap();
        let mut b = make();
        b.params()[0]
            .var
            .set(a.params()[0].var.as_tensor())
            .unwrap();
        b.load_state(&a.state_tensors(), a.steps()).unwrap();
        a.step(&g(), |_| 0.05).unwrap();
        b.step(&g(), |_| 0.05).unwrap();
        assert_eq!(values(&a.params()[0]), values(&b.params()[0]));
        let mut c = make();
        assert!(c.load_state(&HashMap::new(), 1).is_err());
    }
}
