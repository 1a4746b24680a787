//! Parameter creation with a seeded generator. candle's CPU backend cannot be
//! seeded, so initial weights are drawn here and registered in a `VarMap`:
//! the same seed gives the same model, bit for bit.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;

pub struct ParamStore {
    varmap: VarMap,
    rng: StdRng,
    device: Device,
    prefix: Vec<String>,
}

impl ParamStore {
    pub fn new(seed: u64, device: &Device) -> Self {
        Self {
            varmap: VarMap::new(),
            rng: StdRng::seed_from_u64(seed),
            device: device.clone(),
            prefix: Vec::new(),
        }
    }

    /// Runs `f` with `name.` prepended to every parameter it creates.
    pub fn scoped<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.prefix.push(name.to_string());
        let out = f(self);
        self.prefix.pop();
        out
    }

    fn full_name(&self, name: &str) -> String {
        let mut parts = self.prefix.clone();
        parts.push(name.to_string());
        parts.join(".")
    }

    /// Uniform in `[-bound, bound]`.
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f64) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| self.rng.random_range(-bound..=bound) as f32)
            .collect();
        self.register(name, Tensor::from_vec(data, shape, &self.device)?)
    }

    /// Normal with mean 0 and standard deviation `std` (Box-Muller).
    pub fn normal(&mut self, name: &str, shape: &[usize], std: f64) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = self.rng.random();
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * std) as f32
            })
            .collect();
        self.register(name, Tensor::from_vec(data, shape, &self.device)?)
    }

    pub fn zeros(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.register(name, Tensor::zeros(shape, DType::F32, &self.device)?)
    }

    /// All ones: the scale of a layer norm in the form checkpoints store.
    pub fn ones(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.register(name, Tensor::ones(shape, DType::F32, &self.device)?)
    }

    fn register(&mut self, name: &str, init: Tensor) -> Result<Tensor> {
        let full = self.full_name(name);
        let var = Var::from_tensor(&init)?;
        let t = var.as_tensor().clone();
        let mut data = self.varmap.data().lock().expect("varmap lock poisoned");
        if data.insert(full.clone(), var).is_some() {
            return Err(crate::Error::Invalid(format!(
                "parameter `{full}` defined twice"
            )));
        }
        Ok(t)
    }

    pub fn into_varmap(self) -> VarMap {
        self.varmap
    }
}
