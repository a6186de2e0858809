#!/usr/bin/env python3
"""Writes a Hugging Face directory (config.json, model.safetensors in f32, tokenizer.json) for a GGUF model, as
transformers reads it (dequantised), so that PyTorch benchmarks run the same weights as the workbench.

  export-gguf-hf.py MODEL.gguf OUT_DIR        (needs torch, transformers, gguf, safetensors)
"""
import os, sys
import torch
from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer

src, out = sys.argv[1], sys.argv[2]
folder, name = os.path.dirname(os.path.abspath(src)), os.path.basename(src)
tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
os.makedirs(out, exist_ok=True)
# save_pretrained refuses models loaded from GGUF; the dequantised tensors are plain f32.
save_model(model, os.path.join(out, "model.safetensors"))
config = model.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
config.save_pretrained(out)
tokenizer.save_pretrained(out)
print(out)
