//! Loading a local Hugging Face model directory: locating config / weights / tokenizer, reading
//! (sharded) safetensors with clear errors, refusing PyTorch pickle checkpoints and tensors that
//! hold NaN or infinite values (checked once, on the raw bytes, as each file is read).

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Extensions of PyTorch pickle checkpoints, refused because unpickling can execute code.
const PICKLE_EXTENSIONS: [&str; 5] = ["bin", "pt", "pth", "ckpt", "pkl"];

/// How a model is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// config.json + safetensors + tokenizer.json.
    HuggingFace,
    /// One GGUF file holding config, (quantised) weights and tokenizer.
    Gguf,
}

/// The files of a model directory. For a GGUF model `config`, `weights[0]` and `tokenizer` are the
/// GGUF file and `dir` the folder holding it (where `r2r_prompt.json` may sit).
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub weights: Vec<PathBuf>,
    pub tokenizer: PathBuf,
    pub format: ModelFormat,
    /// A backbone bundle's LoRA adapter, merged into the base weights at load (see [`BACKBONE_FILE`]).
    pub merge_adapter: Option<PathBuf>,
}

/// A backbone bundle: a folder with this file names a base model (a model-store name such as
/// `gemma-3-270m`, or a path relative to the folder) and a PEFT adapter folder merged into it at load
/// (W + (α/r)·B·A), so a small fine-tune ships without the base weights. `r2r_prompt.json` beside it
/// sets the prompt.
pub const BACKBONE_FILE: &str = "r2r_backbone.json";

/// The contents of [`BACKBONE_FILE`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneBundle {
    pub format_version: u32,
    /// Model-store name or a path relative to the bundle folder.
    pub base: String,
    /// SHA-256 of the base model file the adapter was trained on (checked by `r2r model verify`).
    #[serde(default)]
    pub base_sha256: Option<String>,
    /// Adapter folder, relative to the bundle folder.
    pub adapter: String,
    #[serde(default)]
    pub description: String,
}

fn locate_bundle(dir: &Path) -> Result<ModelFiles> {
    let path = dir.join(BACKBONE_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let bundle: BackboneBundle = serde_json::from_str(&text).with_context(|| format!("invalid backbone bundle {}", path.display()))?;
    if bundle.format_version != 1 {
        bail!("{}: format_version {} is not supported (this build reads 1)", path.display(), bundle.format_version);
    }
    let base = match crate::model::store::known(&bundle.base) {
        Ok(model) => crate::model::store::installed_path(model.name).with_context(|| {
            format!("{} is built on {}, which is not installed: run `r2r model fetch {}`", dir.display(), model.name, model.name)
        })?,
        Err(_) => dir.join(&bundle.base),
    };
    if base.join(BACKBONE_FILE).exists() {
        bail!("{}: the base {} is itself a bundle (nesting is not supported)", path.display(), base.display());
    }
    let mut files = locate(&base).with_context(|| format!("base model of {}", path.display()))?;
    let adapter = dir.join(&bundle.adapter);
    if !adapter.join("adapter_model.safetensors").is_file() {
        bail!("{}: adapter folder {} has no adapter_model.safetensors", path.display(), adapter.display());
    }
    files.dir = dir.to_path_buf();
    files.merge_adapter = Some(adapter);
    Ok(files)
}

fn is_gguf(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

fn gguf_files(path: &Path) -> ModelFiles {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    ModelFiles { dir, config: path.to_path_buf(), weights: vec![path.to_path_buf()], tokenizer: path.to_path_buf(), format: ModelFormat::Gguf, merge_adapter: None }
}

fn is_pickle_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| PICKLE_EXTENSIONS.contains(&e))
}

/// The error for a PyTorch pickle file.
pub fn pickle_refusal(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "refusing to load PyTorch pickle checkpoint {}: unpickling can execute arbitrary code; convert it to safetensors \
         (e.g. with transformers' `save_pretrained(..., safe_serialization=True)`)",
        path.display()
    )
}

/// Finds config.json, the safetensors weights (single file or sharded index) and tokenizer.json in `dir`;
/// or a GGUF model: `dir` is a `.gguf` file, or a folder without config.json holding exactly one.
pub fn locate(dir: &Path) -> Result<ModelFiles> {
    if dir.is_file() {
        if is_gguf(dir) {
            return Ok(gguf_files(dir));
        }
        bail!("model path {} is a file; expected a Hugging Face model directory (config.json, model.safetensors, tokenizer.json) or a .gguf file", dir.display());
    }
    if !dir.is_dir() {
        bail!("model directory {} does not exist", dir.display());
    }
    if dir.join(BACKBONE_FILE).is_file() {
        return locate_bundle(dir);
    }
    let config = dir.join("config.json");
    if !config.is_file() {
        let mut ggufs: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list model directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_gguf(p))
            .collect();
        ggufs.sort();
        match ggufs.len() {
            1 => return Ok(gguf_files(&ggufs[0])),
            0 => bail!("missing {} (a Hugging Face model directory needs config.json; a GGUF model needs one .gguf file)", config.display()),
            n => bail!("model directory {} holds {n} .gguf files and no config.json: name the file to load", dir.display()),
        }
    }
    let index = dir.join("model.safetensors.index.json");
    let single = dir.join("model.safetensors");
    let weights = if index.is_file() {
        let text = std::fs::read_to_string(&index).with_context(|| format!("cannot read {}", index.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("invalid JSON in {}", index.display()))?;
        let map = json.get("weight_map").and_then(|m| m.as_object()).with_context(|| format!("{}: field weight_map is missing", index.display()))?;
        let mut shards: Vec<PathBuf> = map
            .values()
            .map(|v| v.as_str().map(|s| dir.join(s)).with_context(|| format!("{}: weight_map values must be file names", index.display())))
            .collect::<Result<_>>()?;
        shards.sort();
        shards.dedup();
        for shard in &shards {
            if is_pickle_name(shard) {
                return Err(pickle_refusal(shard));
            }
            if !shard.is_file() {
                bail!("shard {} listed in {} is missing", shard.display(), index.display());
            }
        }
        shards
    } else if single.is_file() {
        vec![single]
    } else {
        let mut pickles: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_pickle_name(p)).collect();
        pickles.sort();
        if let Some(p) = pickles.first() {
            return Err(pickle_refusal(p));
        }
        bail!("missing weights in {}: expected model.safetensors or model.safetensors.index.json", dir.display());
    };
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        bail!("missing {} (the reranker needs a Hugging Face tokenizers file)", tokenizer.display());
    }
    Ok(ModelFiles { dir: dir.to_path_buf(), config, weights, tokenizer, format: ModelFormat::HuggingFace, merge_adapter: None })
}

/// Named tensors read from one or more safetensors files, remembering which file each came from.
pub struct Weights {
    tensors: BTreeMap<String, (Tensor, usize)>,
    files: Vec<PathBuf>,
    /// Gemma norm weights already hold 1 + w (llama.cpp's GGUF convention) rather than w (Hugging Face's).
    norms_include_one: bool,
}

impl Weights {
    /// Reads every tensor of the given safetensors files, converted to `dtype` on `device`.
    pub fn load(files: &[PathBuf], dtype: DType, device: &Device) -> Result<Self> {
        let mut tensors = BTreeMap::new();
        for (index, path) in files.iter().enumerate() {
            for (name, tensor) in read_safetensors(path, dtype, device)? {
                tensors.insert(name, (tensor, index));
            }
        }
        Ok(Self { tensors, files: files.to_vec(), norms_include_one: false })
    }

    /// Wraps tensors already in memory (e.g. for tests); `origin` names them in errors.
    pub fn from_map(map: BTreeMap<String, Tensor>, origin: &Path) -> Self {
        Self { tensors: map.into_iter().map(|(k, v)| (k, (v, 0))).collect(), files: vec![origin.to_path_buf()], norms_include_one: false }
    }

    /// Marks the norm weights as holding 1 + w already (GGUF files of Gemma).
    pub fn with_norms_including_one(mut self) -> Self {
        self.norms_include_one = true;
        self
    }

    pub fn norms_include_one(&self) -> bool {
        self.norms_include_one
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn origin(&self) -> String {
        self.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let (tensor, file) = self.tensors.get(name).with_context(|| format!("tensor {name} is missing from {}", self.origin()))?;
        if tensor.dims() != shape {
            bail!("tensor {name} in {} has shape {:?}, expected {:?} from config.json", self.files[*file].display(), tensor.dims(), shape);
        }
        Ok(tensor.clone())
    }
}

/// Reads a safetensors file into named tensors; refuses pickles and names the file in every error.
pub fn read_safetensors(path: &Path, dtype: DType, device: &Device) -> Result<Vec<(String, Tensor)>> {
    if is_pickle_name(path) {
        return Err(pickle_refusal(path));
    }
    crate::util::check_regular_file(path).with_context(|| format!("cannot read weights file {}", path.display()))?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read weights file {}", path.display()))?;
    // torch.save writes a zip archive (PK..) or a raw pickle (0x80 protocol byte). A safetensors file can
    // also start with 0x80 (the low byte of its header length), so that byte alone only counts when the
    // file is not valid safetensors.
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(pickle_refusal(path));
    }
    let st = match safetensors::SafeTensors::deserialize(&bytes) {
        Ok(st) => st,
        Err(_) if bytes.first() == Some(&0x80) => return Err(pickle_refusal(path)),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("{} is not a valid safetensors file (truncated or corrupted?)", path.display()))),
    };
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let src_dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::F64 => DType::F64,
            other => bail!("tensor {name} in {} has unsupported dtype {other:?}", path.display()),
        };
        if let Some(index) = first_non_finite(view.data(), view.dtype()) {
            bail!("tensor {name} in {} holds a non-finite value (NaN or infinity) at element {index}; refusing to use it", path.display());
        }
        let tensor = Tensor::from_raw_buffer(view.data(), src_dtype, view.shape(), &Device::Cpu)
            .and_then(|t| t.to_dtype(dtype))
            .and_then(|t| t.to_device(device))
            .with_context(|| format!("cannot load tensor {name} from {}", path.display()))?;
        out.push((name, tensor));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The index of the first NaN or infinite element of raw little-endian float data, if any.
pub fn first_non_finite(data: &[u8], dtype: safetensors::Dtype) -> Option<usize> {
    match dtype {
        safetensors::Dtype::F32 => data.chunks_exact(4).position(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
        safetensors::Dtype::F64 => data.chunks_exact(8).position(|b| !f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite()),
        safetensors::Dtype::F16 => data.chunks_exact(2).position(|b| !half::f16::from_le_bytes([b[0], b[1]]).is_finite()),
        safetensors::Dtype::BF16 => data.chunks_exact(2).position(|b| !half::bf16::from_le_bytes([b[0], b[1]]).is_finite()),
        _ => None,
    }
}

/// Writes named tensors as a safetensors file through `util::atomic_write`.
pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, Tensor>, metadata: Option<std::collections::HashMap<String, String>>) -> Result<()> {
    let mut buffers: Vec<(String, Vec<u8>, Vec<usize>, safetensors::Dtype)> = Vec::new();
    for (name, t) in tensors {
        let t = t.to_device(&Device::Cpu)?.contiguous()?;
        let (bytes, dt) = match t.dtype() {
            DType::F32 => (t.flatten_all()?.to_vec1::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect(), safetensors::Dtype::F32),
            DType::BF16 => (t.flatten_all()?.to_vec1::<half::bf16>()?.iter().flat_map(|v| v.to_le_bytes()).collect(), safetensors::Dtype::BF16),
            DType::F16 => (t.flatten_all()?.to_vec1::<half::f16>()?.iter().flat_map(|v| v.to_le_bytes()).collect(), safetensors::Dtype::F16),
            other => bail!("cannot save tensor {name} of dtype {other:?}"),
        };
        buffers.push((name.clone(), bytes, t.dims().to_vec(), dt));
    }
    let views = buffers
        .iter()
        .map(|(n, b, s, d)| Ok((n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, metadata).with_context(|| format!("cannot serialise {}", path.display()))?;
    crate::util::atomic_write(path, &data).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_pickles_and_names_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("pytorch_model.bin"), b"\x80\x02junk").unwrap();
        let err = locate(dir.path()).unwrap_err().to_string();
        assert!(err.contains("pytorch_model.bin") && err.contains("pickle"), "{err}");
        std::fs::write(dir.path().join("model.safetensors"), b"PK\x03\x04zip").unwrap();
        let err = read_safetensors(&dir.path().join("model.safetensors"), DType::F32, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("pickle"), "{err}");
    }

    #[test]
    fn non_finite_tensors_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        for (bad, dtype) in [(f32::NAN, DType::F32), (f32::INFINITY, DType::F32), (f32::NEG_INFINITY, DType::BF16), (f32::NAN, DType::F16)] {
            let mut map = BTreeMap::new();
            map.insert("fine".to_string(), Tensor::zeros((2, 2), dtype, &Device::Cpu).unwrap());
            let values = Tensor::new(&[1f32, 2., bad, 4.], &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            map.insert("layers.0.bad".to_string(), values);
            write_safetensors(&path, &map, None).unwrap();
            let err = format!("{:#}", read_safetensors(&path, DType::F32, &Device::Cpu).unwrap_err());
            assert!(err.contains("layers.0.bad") && err.contains("w.safetensors") && err.contains("element 2"), "{err}");
        }
    }

    #[test]
    fn a_model_path_that_is_a_file_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.safetensors");
        std::fs::write(&file, b"x").unwrap();
        let err = locate(&file).unwrap_err().to_string();
        assert!(err.contains("is a file"), "{err}");
    }

    #[test]
    fn truncated_safetensors_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let mut map = BTreeMap::new();
        map.insert("a".to_string(), Tensor::arange(0f32, 12., &Device::Cpu).unwrap().reshape((3, 4)).unwrap());
        write_safetensors(&path, &map, None).unwrap();
        let back = read_safetensors(&path, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(back[0].1.to_vec2::<f32>().unwrap()[2], vec![8., 9., 10., 11.]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = format!("{:#}", read_safetensors(&path, DType::F32, &Device::Cpu).unwrap_err());
        assert!(err.contains("w.safetensors") && err.contains("truncated"), "{err}");
    }
}
