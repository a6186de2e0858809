#!/usr/bin/env bash
# Gemma 3 270M on the CPU, this project beside transformers / PyTorch + PEFT, in one run, on the same token ids:
#   scoring: 1 query × 32 candidates × 128 words, last position only (transformers: logits_to_keep=1);
#   training: one optimiser step of LoRA r32 α64 on q,k,v,o over one group of 1 positive + 7 negatives,
#             128-word documents, InfoNCE over yes − no, AdamW.
# The workbench runs in f32 and in bf16 mode (`--dtype bf16`: frozen projections through the CPU bf16 kernel);
# PyTorch in float32 and bfloat16. Sides alternate, ROUNDS times (default 2), so drift of a shared machine shows as spread.
#
#   scripts/bench-gemma-vs-torch.sh [OUT_DIR]     (default OUT_DIR: target/bench-gemma)
#
# Needs the fetched model (`r2r model fetch gemma-3-270m`) and, for the PyTorch side, a Python with torch,
# transformers, peft, gguf and safetensors (PYTHON=..., default python3); without it only our side runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/bench-gemma}
mkdir -p "$OUT"
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-python3}
export RAYON_NUM_THREADS=$THREADS
cargo build --quiet --release --bin r2r   # benchmarks measure the release build
R2R=${CARGO_TARGET_DIR:-target}/release/r2r
STORE=${R2R_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/r2r-workbench/models}
GGUF=$(ls "$STORE"/gemma-3-270m/*.gguf 2>/dev/null | head -n 1)
[ -n "$GGUF" ] || { echo "Gemma 3 270M is not installed in $STORE: run r2r model fetch gemma-3-270m" >&2; exit 1; }
HF="$OUT/gemma-3-270m-hf"
HAVE_TORCH=1
if ! "$PYTHON" -c "import torch, transformers, peft, gguf, safetensors" 2>/dev/null; then
    echo "note: PyTorch side skipped (set PYTHON to a Python with torch, transformers, peft, gguf, safetensors)"
    HAVE_TORCH=0
elif [ ! -f "$HF/model.safetensors" ]; then
    "$PYTHON" scripts/export-gguf-hf.py "$GGUF" "$HF" >/dev/null
fi
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS, $(date -u +%FT%TZ)" | tee "$OUT/machine.txt"
tag() { "$PYTHON" -c "import json,sys; d=json.loads(sys.stdin.readlines()[-1]); d.update(json.loads(sys.argv[1])); print(json.dumps(d))" "$1" | tee -a "$RESULTS"; }
for round in $(seq 1 "${ROUNDS:-2}"); do
    echo "== round $round (load $(cut -d' ' -f1 /proc/loadavg))"
    for dtype in f32 bf16; do
        "$R2R" bench score --model gemma-3-270m --dtype $dtype --fast-only --candidates 32 --doc-tokens 128 --repeats 3 --gemm-size 1024 --dump-ids "$OUT/score-ids.json" 2>/dev/null | tag "{\"side\":\"workbench\",\"mode\":\"score\",\"dtype\":\"$dtype\",\"round\":$round}"
        "$R2R" bench train --step --model gemma-3-270m --dtype $dtype --steps 3 --dump-ids "$OUT/train-ids.json" 2>/dev/null | tag "{\"side\":\"workbench\",\"mode\":\"train\",\"dtype\":\"$dtype\",\"round\":$round}"
    done
    if [ "$HAVE_TORCH" = 1 ]; then
        for dtype in float32 bfloat16; do
            "$PYTHON" scripts/torch_bench.py score "$HF" "$OUT/score-ids.json" --threads "$THREADS" --repeats 3 --dtype $dtype 2>/dev/null | tag "{\"side\":\"torch\",\"round\":$round}"
            "$PYTHON" scripts/torch_bench.py train "$HF" "$OUT/train-ids.json" --threads "$THREADS" --steps 3 --dtype $dtype 2>/dev/null | tag "{\"side\":\"torch\",\"round\":$round}"
        done
    fi
done
"$PYTHON" - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def best(side, mode, dtype):
    v = [r["best_s"] if "best_s" in r else r["paths"][-1]["best_s"] for r in rows if r["side"] == side and r["mode"] == mode and r["dtype"] == dtype]
    return v
print("\n| mode | side | precision | best seconds per round | ratio vs PyTorch float32 (best of rounds) |")
print("|---|---|---|---|---|")
for mode in ["score", "train"]:
    ref = best("torch", mode, "float32")
    for side, dtype in [("workbench", "f32"), ("workbench", "bf16"), ("torch", "float32"), ("torch", "bfloat16")]:
        v = best(side, mode, dtype)
        if not v: continue
        ratio = f"{min(ref) / min(v):.2f}x" if ref else "n/a"
        print(f"| {mode} | {side} | {dtype} | {'; '.join(f'{s:.2f}' for s in v)} | {ratio} |")
PY
