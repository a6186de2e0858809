//! The optimiser step of LoRA training: gradient accumulation, global-norm clipping and AdamW.
//!
//! `AdamW` performs exactly candle-nn's update (same formula, same tensor operations, checked
//! bit for bit by a test), but keeps its moments in the open so that a checkpoint can save and
//! restore them: a resumed job then continues as if it had never stopped.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::ParamsAdamW;

/// Sums of gradients over micro-batches, one slot per variable (in the optimiser's order).
pub struct GradAccumulator {
    sums: Vec<Option<Tensor>>,
}

impl GradAccumulator {
    pub fn new(vars: usize) -> Self {
        GradAccumulator { sums: vec![None; vars] }
    }

    /// Adds this micro-batch's gradients; a variable without a gradient adds nothing.
    pub fn add(&mut self, vars: &[Var], grads: &GradStore) -> Result<()> {
        for (slot, var) in self.sums.iter_mut().zip(vars) {
            if let Some(g) = grads.get(var.as_tensor()) {
                let g = g.detach();
                *slot = Some(match slot.take() {
                    Some(sum) => (sum + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// How many variables received a gradient so far.
    pub fn filled(&self) -> usize {
        self.sums.iter().filter(|g| g.is_some()).count()
    }

    /// The sums (zeros for variables that never got a gradient), emptying the accumulator.
    pub fn take(&mut self, vars: &[Var]) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(vars.len());
        for (slot, var) in self.sums.iter_mut().zip(vars) {
            out.push(match slot.take() {
                Some(g) => g,
                None => var.as_tensor().zeros_like()?,
            });
        }
        Ok(out)
    }
}

/// The global L2 norm of a list of gradients (summed in a fixed order, in f64).
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    let mut total = 0f64;
    for g in grads {
        total += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    }
    Ok(total.sqrt())
}

/// Scales the gradients so their global norm is at most `max_norm` (0 = no clipping).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = global_norm(grads)?;
    if max_norm > 0.0 && norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g = (&*g * scale)?;
        }
    }
    Ok(norm)
}

/// AdamW with decoupled weight decay (Loshchilov & Hutter), as candle-nn implements it.
pub struct AdamW {
    vars: Vec<Var>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    pub step_t: usize,
    pub params: ParamsAdamW,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let first = vars.iter().map(|v| v.as_tensor().zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        let second = first.clone();
        Ok(AdamW { vars, first, second, step_t: 0, params })
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// One update with `grads[i]` for `vars[i]`.
    pub fn step(&mut self, grads: &[Tensor]) -> Result<()> {
        if grads.len() != self.vars.len() {
            bail!("{} gradients for {} variables", grads.len(), self.vars.len());
        }
        self.step_t += 1;
        let p = &self.params;
        let (lr, beta1, beta2) = (p.lr, p.beta1, p.beta2);
        let scale_m = 1f64 / (1f64 - beta1.powi(self.step_t as i32));
        let scale_v = 1f64 / (1f64 - beta2.powi(self.step_t as i32));
        for (((theta, g), m), v) in self.vars.iter().zip(grads).zip(self.first.iter_mut()).zip(self.second.iter_mut()) {
            let next_m = ((&*m * beta1)? + (g * (1.0 - beta1))?)?;
            let next_v = ((&*v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let next_theta = (theta.as_tensor() * (1f64 - lr * p.weight_decay))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
            theta.set(&(next_theta - (adjusted * lr)?)?)?;
            *m = next_m;
            *v = next_v;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.{i}`, `v.{i}`) for a checkpoint.
    pub fn state_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (i, (m, v)) in self.first.iter().zip(&self.second).enumerate() {
            out.insert(format!("m.{i:05}"), m.clone());
            out.insert(format!("v.{i:05}"), v.clone());
        }
        out
    }

    /// Restores moments written by `state_tensors` and the step count.
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, step_t: usize) -> Result<()> {
        for i in 0..self.vars.len() {
            let shape = self.vars[i].dims().to_vec();
            for (name, slot) in [(format!("m.{i:05}"), &mut self.first[i]), (format!("v.{i:05}"), &mut self.second[i])] {
                let t = tensors.get(&name).with_context(|| format!("optimiser state: tensor {name} missing"))?;
                if t.dims() != shape.as_slice() {
                    bail!("optimiser state: tensor {name} has shape {:?}, expected {:?}", t.dims(), shape);
                }
                *slot = t.to_device(self.vars[i].device())?.to_dtype(self.vars[i].dtype())?;
            }
        }
        self.step_t = step_t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::Optimizer;

    fn quadratic_loss(w: &Var, target: &Tensor) -> Tensor {
        (w.as_tensor() - target).unwrap().sqr().unwrap().sum_all().unwrap()
    }

    #[test]
    fn matches_candle_nn_adamw_bit_for_bit_and_resumes_exactly() {
        let device = Device::Cpu;
        let init = Tensor::new(&[[0.5f32, -1.0, 2.0], [0.1, 0.0, -0.3]], &device).unwrap();
        let target = Tensor::new(&[[1.0f32, 1.0, -1.0], [0.0, 2.0, 0.5]], &device).unwrap();
        let params = ParamsAdamW { lr: 0.05, weight_decay: 0.01, ..Default::default() };
        let (w_ref, w_ours) = (Var::from_tensor(&init).unwrap(), Var::from_tensor(&init).unwrap());
        let mut reference = candle_nn::AdamW::new(vec![w_ref.clone()], params.clone()).unwrap();
        let mut ours = AdamW::new(vec![w_ours.clone()], params.clone()).unwrap();
        for _ in 0..5 {
            reference.backward_step(&quadratic_loss(&w_ref, &target)).unwrap();
            let grads = quadratic_loss(&w_ours, &target).backward().unwrap();
            let g = grads.get(w_ours.as_tensor()).unwrap().clone();
            ours.step(&[g]).unwrap();
        }
        assert_eq!(w_ref.to_vec2::<f32>().unwrap(), w_ours.to_vec2::<f32>().unwrap());

        // Save after 5 steps, continue 3 more; a fresh optimiser loaded from the state must agree.
        let state = ours.state_tensors();
        let w_resumed = Var::from_tensor(w_ours.as_tensor()).unwrap();
        let mut resumed = AdamW::new(vec![w_resumed.clone()], params).unwrap();
        resumed.load_state(&state, ours.step_t).unwrap();
        for _ in 0..3 {
            for (opt, w) in [(&mut ours, &w_ours), (&mut resumed, &w_resumed)] {
                let grads = quadratic_loss(w, &target).backward().unwrap();
                let g = grads.get(w.as_tensor()).unwrap().clone();
                opt.step(&[g]).unwrap();
            }
        }
        assert_eq!(w_ours.to_vec2::<f32>().unwrap(), w_resumed.to_vec2::<f32>().unwrap());
        let mut bad = state.clone();
        bad.insert("m.00000".into(), Tensor::zeros(4, DType::F32, &device).unwrap());
        assert!(resumed.load_state(&bad, 1).unwrap_err().to_string().contains("shape"));
    }

    #[test]
    fn clipping_scales_to_the_threshold_and_accumulation_sums() {
        let device = Device::Cpu;
        let mut grads = vec![Tensor::new(&[3.0f32, 0.0], &device).unwrap(), Tensor::new(&[4.0f32], &device).unwrap()];
        let norm = clip_grad_norm(&mut grads, 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-9);
        assert!((global_norm(&grads).unwrap() - 1.0).abs() < 1e-5);
        let before = grads.clone();
        clip_grad_norm(&mut grads, 0.0).unwrap();
        assert_eq!(before[0].to_vec1::<f32>().unwrap(), grads[0].to_vec1::<f32>().unwrap());

        let w = Var::new(&[1.0f32, 2.0], &device).unwrap();
        let unused = Var::new(&[0.0f32], &device).unwrap();
        let vars = vec![w.clone(), unused];
        let mut acc = GradAccumulator::new(2);
        for _ in 0..2 {
            let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
            acc.add(&vars, &loss.backward().unwrap()).unwrap();
        }
        assert_eq!(acc.filled(), 1);
        let sums = acc.take(&vars).unwrap();
        assert_eq!(sums[0].to_vec1::<f32>().unwrap(), vec![4.0, 8.0]);
        assert_eq!(sums[1].to_vec1::<f32>().unwrap(), vec![0.0]);
    }
}
