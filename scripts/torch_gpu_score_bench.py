#!/usr/bin/env python3
"""GPU counterpart of ../shared/tools/torch_score_bench.py (which runs on the CPU only): the same prompts,
words, seed and shapes (1 query x N candidates in one left-padded batch, the model card's prompt), with
Hugging Face transformers on CUDA in bf16/f16/f32, timed with torch.cuda.synchronize. Prints one JSON line.

Usage: torch_gpu_score_bench.py TORCH_SCORE_BENCH_PY MODEL_DIR [--candidates 32] [--doc-words 128] [--vary]
                                [--keep-last] [--dtype bf16] [--repeats 5]
"""
import argparse, importlib.util, json, random, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference_script", help="path of torch_score_bench.py (prompt, words and instruction come from it)")
    ap.add_argument("model_dir")
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--doc-words", type=int, default=100)
    ap.add_argument("--keep-last", action="store_true")
    ap.add_argument("--vary", action="store_true")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("torch_score_bench", a.reference_script)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[a.dtype]
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{a.model_dir}/tokenizer.json")
    tok.pad_token = "<|endoftext|>"
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=dtype, attn_implementation="sdpa").to("cuda").eval()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    rng = random.Random(a.seed)
    query = " ".join(rng.choice(ref.WORDS) for _ in range(12))
    lens = [rng.randint(int(0.3 * a.doc_words), int(1.7 * a.doc_words)) if a.vary else a.doc_words for _ in range(a.candidates)]
    docs = [" ".join(rng.choice(ref.WORDS) for _ in range(n)) for n in lens]
    texts = [ref.PREFIX + f"<Instruct>: {ref.INSTR}\n<Query>: {query}\n<Document>: {d}" + ref.SUFFIX for d in docs]
    enc = tok(texts, padding=True, return_tensors="pt").to("cuda")
    n_tokens = int(enc["attention_mask"].sum())
    times = []
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            model(**enc)
        torch.cuda.synchronize()
        for _ in range(a.repeats):
            t = time.perf_counter()
            logits = (model(**enc, logits_to_keep=1) if a.keep_last else model(**enc)).logits[:, -1, :]
            scores = torch.softmax(torch.stack([logits[:, no], logits[:, yes]], 1).float(), 1)[:, 1].cpu()
            times.append(time.perf_counter() - t)
    best = min(times)
    print(json.dumps({"tool": "transformers " + __import__("transformers").__version__ + " / torch " + torch.__version__,
                      "device": torch.cuda.get_device_name(), "dtype": a.dtype,
                      "candidates": a.candidates, "keep_last": a.keep_last, "vary": a.vary, "tokens_per_step": n_tokens,
                      "best_s": best, "median_s": sorted(times)[len(times) // 2],
                      "pairs_per_s": a.candidates / best, "tokens_per_s": n_tokens / best,
                      "mean_score": float(scores.mean())}))


if __name__ == "__main__":
    main()
