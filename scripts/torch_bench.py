#!/usr/bin/env python3
"""The transformers / PyTorch + PEFT side of `scripts/bench-vs-transformers.sh`, on exactly the token ids
the workbench's own bench used (`r2r bench score|train --dump-ids FILE`), so both sides run the same prompts.

  torch_bench.py score MODEL_DIR IDS.json [--threads 2] [--repeats 3] [--dtype float32|bfloat16]
      one query's candidates as one left-padded batch (each prompt = shared + candidate), logits for the
      last position only (logits_to_keep=1), softmax over the yes/no logits: pairs/s and tokens/s.
  torch_bench.py train MODEL_DIR IDS.json [--threads 2] [--steps 3] [--rank 32]
      one optimiser step of LoRA r (alpha 2r, dropout 0) on q,k,v,o with PEFT: InfoNCE (tau 1) over the
      group's yes - no logits (first candidate positive), backward, AdamW (lr 1e-4); seconds per step.

Prints one JSON line. Needs torch, transformers and (train) peft; MODEL_DIR is a Hugging Face directory
(`scripts/export-gguf-hf.py` writes one for a GGUF model).
"""
import argparse, json, time


def batch(ids, torch):
    rows = [ids["shared"] + c for c in ids["candidates"]]
    t = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), t), ids["pad_id"], dtype=torch.long)
    mask = torch.zeros((len(rows), t), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, t - len(r):] = torch.tensor(r)
        mask[i, t - len(r):] = 1
    return input_ids, mask, sum(len(r) for r in rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["score", "train"])
    ap.add_argument("model_dir")
    ap.add_argument("ids")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    a = ap.parse_args()
    import torch, transformers
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ids = json.load(open(a.ids))
    input_ids, mask, tokens = batch(ids, torch)
    dtype = getattr(torch, a.dtype)
    model = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=dtype, attn_implementation="sdpa")
    yes, no = ids["yes_id"], ids["no_id"]
    out = {"tool": f"transformers {transformers.__version__} / torch {torch.__version__}", "mode": a.mode, "dtype": a.dtype,
           "threads": a.threads, "candidates": len(ids["candidates"]), "tokens": tokens}
    if a.mode == "score":
        model.eval()
        times = []
        with torch.inference_mode():
            model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1)  # warm-up
            for _ in range(a.repeats):
                t = time.perf_counter()
                logits = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, :]
                torch.softmax(torch.stack([logits[:, no], logits[:, yes]], 1).float(), 1)[:, 1]
                times.append(time.perf_counter() - t)
        best = min(times)
        out.update(best_s=best, median_s=sorted(times)[len(times) // 2], pairs_per_s=len(ids["candidates"]) / best, tokens_per_s=tokens / best)
    else:
        import peft
        config = peft.LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        model = peft.get_peft_model(model, config)
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        times, losses = [], []
        for step in range(a.steps + 1):
            t = time.perf_counter()
            logits = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, :].float()
            margin = logits[:, yes] - logits[:, no]
            loss = torch.nn.functional.cross_entropy(margin.unsqueeze(0), torch.zeros(1, dtype=torch.long))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if step > 0:
                times.append(time.perf_counter() - t)
        best = min(times)
        out.update(peft=peft.__version__, best_s=best, median_s=sorted(times)[len(times) // 2], tokens_per_s=tokens / best, losses=losses)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
