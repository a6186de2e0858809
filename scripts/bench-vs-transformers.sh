#!/usr/bin/env bash
# Scoring speed of this project's candle reranker beside Hugging Face transformers, in one run, on the same model
# directories and shapes: a 4-layer Qwen3-0.6B-shaped random checkpoint and the bundled backbone.
#
#   scripts/bench-vs-transformers.sh [OUT_DIR]      (default OUT_DIR: target/bench-vs-transformers)
#
# Needs `pip install torch transformers` for the transformers side (skipped with a note when missing) and
# ../shared/tools/torch_score_bench.py. Every figure is printed and saved as JSON lines in OUT_DIR/results.jsonl.
# Runs each side alternately, twice, so drift of a shared machine shows up as a spread rather than a bias.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/bench-vs-transformers}
mkdir -p "$OUT"
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS
TORCH_BENCH=../shared/tools/torch_score_bench.py

cargo build --quiet --release --bin r2r   # benchmarks measure the release build
R2R=${CARGO_TARGET_DIR:-target}/release/r2r

HAVE_TORCH=1
if [ ! -f "$TORCH_BENCH" ] || ! python3 -c "import torch, transformers" 2>/dev/null; then
    echo "note: transformers side skipped (needs $TORCH_BENCH and 'pip install torch transformers')"
    HAVE_TORCH=0
fi

BIG="$OUT/qwen3-0.6b-4layers"
[ -f "$BIG/model.safetensors" ] || "$R2R" bench make-model --like qwen3-0.6b --layers 4 --out "$BIG"

RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS" | tee "$OUT/machine.txt"

ours() { # model doc_words extra-args...
    local model=$1 words=$2; shift 2
    "$R2R" bench score --model "$model" --candidates 32 --doc-tokens "$words" --repeats 3 --max-length 1024 "$@" \
        | tail -n 1 | python3 -c "import json,sys; d=json.load(sys.stdin); d['side']='candle'; d['model']='$model'; print(json.dumps(d))" \
        | tee -a "$RESULTS"
}
theirs() { # model doc_words extra-args...
    local model=$1 words=$2; shift 2
    [ "$HAVE_TORCH" = 1 ] || return 0
    python3 "$TORCH_BENCH" "$model" --candidates 32 --doc-words "$words" --repeats 3 --threads "$THREADS" "$@" \
        | python3 -c "import json,sys; d=json.load(sys.stdin); d['side']='transformers'; d['model']='$model'; print(json.dumps(d))" \
        | tee -a "$RESULTS"
}

for round in 1 2; do
    echo "== round $round: 0.6B-shaped, 4 layers, 32 candidates x 128 words"
    ours "$BIG" 128 $([ "$round" = 1 ] || echo --skip-naive)
    theirs "$BIG" 128 --keep-last
    [ "$round" = 1 ] && theirs "$BIG" 128
    echo "== round $round: bundled backbone, 32 candidates x 100 words (no truncation on either side)"
    ours assets/backbone 100
    theirs assets/backbone 100 --keep-last
    theirs assets/backbone 100
done

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def name(m): return "bundled backbone" if m.endswith("assets/backbone") else "0.6B-shaped (4 layers)"
print("\n| model | path | seconds per query (best of 3, each round) | pairs/s |")
print("|---|---|---|---|")
table = {}
for r in rows:
    if r["side"] == "candle":
        for p in r["paths"]:
            key = (name(r["model"]), "candle: " + p["name"].split(" (")[0])
            table.setdefault(key, []).append((p["best_s"], p["pairs_per_s"]))
    else:
        key = (name(r["model"]), "transformers: " + ("logits_to_keep=1" if r["keep_last"] else "model card (all positions)"))
        table.setdefault(key, []).append((r["best_s"], r["pairs_per_s"]))
for (m, p), v in sorted(table.items()):
    print(f"| {m} | {p} | {'; '.join(f'{s:.3f}' for s, _ in v)} | {'; '.join(f'{x:.1f}' for _, x in v)} |")
EOF
