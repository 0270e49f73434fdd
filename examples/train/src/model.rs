//! The MLP classifier and its optimiser (Adam, written here so that its
//! state can be checkpointed: tch's C++ optimisers cannot save theirs).

use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::nn::{self, Init, VarStore};
use tch::{Device, Kind, Tensor};

/// Linear layers with ReLU between them; standardisation of the input is
/// part of the model (non-trained buffers saved with it).
pub struct Mlp {
    pub vs: VarStore,
    layers: Vec<(Tensor, Tensor)>,
    mean: Tensor,
    std: Tensor,
}

impl Mlp {
    /// `inputs -> hidden... -> classes`, weights from tch's Kaiming init
    /// (seeded by the caller through `tch::manual_seed`).
    pub fn new(
        device: Device,
        inputs: i64,
        hidden: &[i64],
        classes: i64,
        mean: &[f64],
        std: &[f64],
    ) -> Result<Self> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let mut layers = Vec::new();
        let mut width = inputs;
        for (i, &out) in hidden.iter().chain(std::iter::once(&classes)).enumerate() {
            let bound = 1.0 / (width as f64).sqrt();
            let w = root.f_var(
                &format!("w{i}"),
                &[width, out],
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?;
            let b = root.f_var(&format!("b{i}"), &[out], Init::Const(0.0))?;
            layers.push((w, b));
            width = out;
        }
        let mut mean = root.f_var_copy(
            "input_mean",
            &Tensor::f_from_slice(mean)?.f_to_kind(Kind::Float)?,
        )?;
        let mut std = root.f_var_copy(
            "input_std",
            &Tensor::f_from_slice(std)?.f_to_kind(Kind::Float)?,
        )?;
        let _ = mean.f_requires_grad_(false)?;
        let _ = std.f_requires_grad_(false)?;
        Ok(Mlp {
            vs,
            layers,
            mean,
            std,
        })
    }

    /// Logits `[B, classes]` for features `[B, inputs]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = crate::data::standardise(x, &self.mean, &self.std)?;
        let last = self.layers.len() - 1;
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.f_matmul(w)?.f_add(b)?;
            if i < last {
                h = h.f_relu()?;
            }
        }
        Ok(h)
    }

    /// The trainable tensors by name, in name order (stable across runs).
    pub fn trainable(&self) -> Vec<(String, Tensor)> {
        let mut vars: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }
}

/// Adam (Kingma & Ba) with bias correction.
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i64,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    pub fn new(params: Vec<(String, Tensor)>, lr: f64) -> Result<Self> {
        let m = params
            .iter()
            .map(|(_, p)| p.f_zeros_like())
            .collect::<Result<Vec<_>, _>>()?;
        let v = params
            .iter()
            .map(|(_, p)| p.f_zeros_like())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            params,
            m,
            v,
        })
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the current gradients.
    pub fn step(&mut self) -> Result<()> {
        self.step += 1;
        let c1 = 1.0 - self.beta1.powi(self.step as i32);
        let c2 = 1.0 - self.beta2.powi(self.step as i32);
        let _guard = tch::no_grad_guard();
        for ((_, p), (m, v)) in self
            .params
            .iter_mut()
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            let g = p.f_grad()?;
            if !g.defined() {
                continue;
            }
            *m = m
                .f_mul_scalar(self.beta1)?
                .f_add(&g.f_mul_scalar(1.0 - self.beta1)?)?;
            *v = v
                .f_mul_scalar(self.beta2)?
                .f_add(&g.f_square()?.f_mul_scalar(1.0 - self.beta2)?)?;
            let denom = v.f_div_scalar(c2)?.f_sqrt()?.f_add_scalar(self.eps)?;
            let update = m.f_div_scalar(c1)?.f_div(&denom)?.f_mul_scalar(self.lr)?;
            let _ = p.f_sub_(&update)?;
        }
        Ok(())
    }

    /// Saves the moments and the step count (`Tensor::save_multi`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let step = Tensor::f_from_slice(&[self.step])?;
        let mut named: Vec<(String, &Tensor)> = vec![("step".to_string(), &step)];
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            named.push((format!("m.{name}"), m));
            named.push((format!("v.{name}"), v));
        }
        Tensor::save_multi(&named, path).with_context(|| format!("saving {}", path.display()))
    }

    /// Loads what [`Adam::save`] wrote, for the same parameters.
    pub fn load(&mut self, path: &Path, device: Device) -> Result<()> {
        let loaded = Tensor::load_multi_with_device(path, device)
            .with_context(|| format!("loading {}", path.display()))?;
        let get = |key: &str| {
            loaded
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, t)| t.shallow_clone())
                .with_context(|| format!("{} has no {key}", path.display()))
        };
        self.step = get("step")?.f_int64_value(&[0])?;
        for (i, (name, p)) in self.params.iter().enumerate() {
            let (m, v) = (get(&format!("m.{name}"))?, get(&format!("v.{name}"))?);
            if m.size() != p.size() || v.size() != p.size() {
                bail!(
                    "{}: optimiser state for {name} has the wrong shape",
                    path.display()
                );
            }
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// Loads weights saved by `VarStore::save` into `vs`.
pub fn load_weights(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    vs.load(path)
        .with_context(|| format!("loading model weights {}", path.display()))
}
