//! PEFT-format adapter files: `adapter_config.json` + `adapter_model.safetensors` with PEFT's key names
//! (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`, A [r, in], B [out, r]), so
//! adapters move between this app, Hugging Face PEFT and vLLM.

use super::checkpoint::{read_safetensors, write_safetensors};
use super::config::ModelConfig;
use super::lora::{LoraAdapter, LoraConfig, LoraPair};
use super::transformer::Proj;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::BTreeMap;
use std::path::Path;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
const KEY_PREFIX: &str = "base_model.model.";

/// PEFT key of one LoRA matrix.
pub fn peft_key(layer: usize, proj: Proj, matrix: char) -> String {
    format!("{KEY_PREFIX}{}.lora_{matrix}.weight", proj.path(layer))
}

/// Saves an adapter as PEFT would (inference-mode LoRA for a causal LM), in f32.
pub fn save_adapter(adapter: &LoraAdapter, dir: &Path, base_model_name: &str) -> Result<()> {
    save_adapter_as(adapter, dir, base_model_name, DType::F32)
}

/// Saves an adapter as PEFT would, its tensors in `dtype` (f32, f16 or bf16).
pub fn save_adapter_as(adapter: &LoraAdapter, dir: &Path, base_model_name: &str, dtype: DType) -> Result<()> {
    let c = &adapter.config;
    let mut targets: Vec<&str> = c.target_modules.iter().map(|p| p.name()).collect();
    targets.sort();
    let config = serde_json::json!({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model_name,
        "r": c.r, "lora_alpha": c.alpha, "lora_dropout": c.dropout, "target_modules": targets,
        "use_rslora": c.use_rslora, "use_dora": false, "bias": "none", "fan_in_fan_out": false,
        "inference_mode": true, "init_lora_weights": true, "modules_to_save": null, "layers_to_transform": null,
        "layers_pattern": null, "rank_pattern": {}, "alpha_pattern": {}, "revision": null,
    });
    let mut tensors = BTreeMap::new();
    for (layer, modules) in adapter.layers.iter().enumerate() {
        for (&proj, pair) in modules {
            tensors.insert(peft_key(layer, proj, 'A'), pair.a.as_tensor().to_dtype(dtype)?);
            tensors.insert(peft_key(layer, proj, 'B'), pair.b.as_tensor().to_dtype(dtype)?);
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create adapter directory {}", dir.display()))?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    write_safetensors(&dir.join(WEIGHTS_FILE), &tensors, Some(meta))?;
    crate::util::atomic_write_json(&dir.join(CONFIG_FILE), &config)
}

/// Parses `...model.layers.{i}.{block}.{proj}.lora_{A|B}[.adapter_name].weight`.
fn parse_key(key: &str) -> Option<(usize, Proj, char)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let rest = rest.strip_prefix("model.").unwrap_or(rest).strip_prefix("layers.")?;
    let parts: Vec<&str> = rest.split('.').collect();
    let (layer, block, name, lora) = (parts.first()?.parse().ok()?, *parts.get(1)?, *parts.get(2)?, *parts.get(3)?);
    let proj = Proj::from_name(name).filter(|p| p.block() == block)?;
    let matrix = match lora {
        "lora_A" => 'A',
        "lora_B" => 'B',
        _ => return None,
    };
    match &parts[4..] {
        ["weight"] | [_, "weight"] => Some((layer, proj, matrix)),
        _ => None,
    }
}

/// Loads a PEFT adapter and checks it fits `base`; every error names the offending file.
pub fn load_adapter(dir: &Path, base: &ModelConfig, device: &Device) -> Result<LoraAdapter> {
    let config_path = dir.join(CONFIG_FILE);
    let text = crate::util::read_text_limited(&config_path, crate::util::MAX_CONFIG_FILE_BYTES).with_context(|| format!("cannot read adapter config {}", config_path.display()))?;
    let cfg: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("invalid JSON in {}", config_path.display()))?;
    let (config, layer_subset) = parse_config(&cfg, base).with_context(|| format!("unsupported adapter config {}", config_path.display()))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    if !weights_path.is_file() {
        let bin = dir.join("adapter_model.bin");
        if bin.is_file() {
            return Err(super::checkpoint::pickle_refusal(&bin));
        }
        bail!("missing adapter weights {}", weights_path.display());
    }
    let tensors = read_safetensors(&weights_path, DType::F32, device)?;
    let ctx = |msg: String| anyhow::anyhow!("adapter {} does not fit the base model: {msg}", weights_path.display());
    let mut found: BTreeMap<(usize, Proj), (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
    for (key, tensor) in tensors {
        let (layer, proj, matrix) = parse_key(&key).ok_or_else(|| ctx(format!("unsupported tensor {key} (only LoRA A/B of q/k/v/o/gate/up/down projections)")))?;
        if layer >= base.num_layers {
            return Err(ctx(format!("tensor {key} is for layer {layer}, the base has {} layers", base.num_layers)));
        }
        if !config.target_modules.contains(&proj) {
            return Err(ctx(format!("tensor {key} is for {}, which is not in target_modules of {}", proj.name(), config_path.display())));
        }
        let entry = found.entry((layer, proj)).or_default();
        if matrix == 'A' { entry.0 = Some(tensor) } else { entry.1 = Some(tensor) }
    }
    let mut layers: Vec<BTreeMap<Proj, LoraPair>> = vec![BTreeMap::new(); base.num_layers];
    for layer in 0..base.num_layers {
        if layer_subset.as_ref().is_some_and(|s| !s.contains(&layer)) {
            continue;
        }
        for &proj in &config.target_modules {
            let (Some(a), Some(b)) = found.remove(&(layer, proj)).unwrap_or_default() else {
                return Err(ctx(format!("LoRA A/B for {} missing", proj.path(layer))));
            };
            let (fan_in, fan_out) = base.proj_shape(proj);
            if a.dims() != [config.r, fan_in] || b.dims() != [fan_out, config.r] {
                return Err(ctx(format!("{}: A {:?} / B {:?}, expected A [{}, {fan_in}] / B [{fan_out}, {}]", proj.path(layer), a.dims(), b.dims(), config.r, config.r)));
            }
            layers[layer].insert(proj, LoraPair { a: Var::from_tensor(&a)?, b: Var::from_tensor(&b)? });
        }
    }
    if let Some(((layer, proj), _)) = found.into_iter().next() {
        return Err(ctx(format!("{} is adapted but not in layers_to_transform", proj.path(layer))));
    }
    let adapter = LoraAdapter { config, layers };
    adapter.check_fits(base).map_err(|e| ctx(e.to_string()))?;
    Ok(adapter)
}

fn parse_config(cfg: &serde_json::Value, _base: &ModelConfig) -> Result<(LoraConfig, Option<Vec<usize>>)> {
    let get = |k: &str| cfg.get(k).filter(|v| !v.is_null());
    if let Some(t) = get("peft_type").and_then(|v| v.as_str()) {
        if t != "LORA" {
            bail!("peft_type {t:?} is not LORA");
        }
    }
    let r = get("r").and_then(|v| v.as_u64()).context("field r is missing or not an integer")? as usize;
    let alpha = get("lora_alpha").and_then(|v| v.as_f64()).context("field lora_alpha is missing or not a number")?;
    if r == 0 {
        bail!("field r must be positive, found 0");
    }
    if !(alpha.is_finite() && alpha > 0.0) {
        bail!("field lora_alpha must be a positive finite number, found {alpha}");
    }
    let dropout = get("lora_dropout").and_then(|v| v.as_f64()).unwrap_or(0.0) as f32;
    let flag = |k: &str| get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    if flag("use_dora") {
        bail!("use_dora = true (DoRA) is not supported");
    }
    if flag("fan_in_fan_out") {
        bail!("fan_in_fan_out = true is not supported");
    }
    if let Some(bias) = get("bias").and_then(|v| v.as_str()) {
        if bias != "none" {
            bail!("bias = {bias:?} is not supported (only \"none\")");
        }
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if get(key).and_then(|v| v.as_object()).is_some_and(|m| !m.is_empty()) {
            bail!("a non-empty {key} is not supported");
        }
    }
    if get("modules_to_save").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty()) {
        bail!("modules_to_save is not supported (the backbone stays frozen)");
    }
    let target_modules = match get("target_modules") {
        Some(serde_json::Value::Array(items)) => {
            let mut projs = Vec::new();
            for item in items {
                let name = item.as_str().context("target_modules entries must be strings")?;
                let last = name.rsplit('.').next().unwrap_or(name);
                let proj = Proj::from_name(last).with_context(|| format!("target module {name:?} is not a linear layer of this backbone (q/k/v/o/gate/up/down_proj)"))?;
                if !projs.contains(&proj) {
                    projs.push(proj);
                }
            }
            projs.sort();
            projs
        }
        Some(serde_json::Value::String(s)) if s == "all-linear" => Proj::ALL.to_vec(),
        Some(serde_json::Value::String(pattern)) => {
            let re = regex::Regex::new(&format!("^(?:{pattern})$")).with_context(|| format!("target_modules regex {pattern:?} is invalid"))?;
            Proj::ALL.into_iter().filter(|p| re.is_match(&p.path(0))).collect()
        }
        _ => bail!("field target_modules is missing"),
    };
    if target_modules.is_empty() {
        bail!("target_modules selects no linear layer of this backbone");
    }
    let layers = get("layers_to_transform").map(|v| match v {
        serde_json::Value::Number(n) => n.as_u64().map(|n| vec![n as usize]).context("layers_to_transform must be integers"),
        serde_json::Value::Array(a) => a.iter().map(|n| n.as_u64().map(|n| n as usize).context("layers_to_transform must be integers")).collect(),
        _ => bail!("layers_to_transform must be an integer or a list"),
    }).transpose()?;
    let config = LoraConfig { r, alpha, dropout, target_modules, use_rslora: flag("use_rslora") };
    Ok((config, layers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_peft_keys() {
        assert_eq!(parse_key("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"), Some((3, Proj::Q, 'A')));
        assert_eq!(parse_key("base_model.model.model.layers.0.mlp.down_proj.lora_B.default.weight"), Some((0, Proj::Down, 'B')));
        assert_eq!(parse_key("base_model.model.model.layers.0.mlp.q_proj.lora_B.weight"), None);
        assert_eq!(parse_key("base_model.model.lm_head.lora_A.weight"), None);
        assert_eq!(peft_key(1, Proj::Up, 'B'), "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
    }
}
