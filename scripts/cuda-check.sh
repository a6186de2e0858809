#!/usr/bin/env bash
# Device-side checks of the `cuda` feature: a CUDA build of `r2r` scores the qwen3-tiny fixture on the GPU
# (f32, bf16, f16; base and with the fixture's PEFT adapter; fast and naive padded paths) and is compared with
# the same binary's CPU scores and with transformers' expected.json; then `r2r bench score --cuda` runs on a
# 4-layer qwen3-0.6b-shaped random checkpoint.
#
#   scripts/cuda-check.sh pack DIR     (here, after a CUDA build) copy the stripped, xz-compressed binary,
#                                      the fixture and this script into DIR (e.g. .devcarry/cuda; needs ../shared)
#   DIR/cuda-check.sh run DIR [OUT]    (on the GPU machine) run the checks; logs and JSON land in OUT
#
# Build without a system CUDA toolkit: scripts/cuda-toolkit-from-pypi.sh DIR makes a CUDA 13.0 root from
# NVIDIA's PyPI wheels and prints the build command.
set -uo pipefail

mode=${1:-}
case "$mode" in
pack)
    dest=${2:?usage: cuda-check.sh pack DIR}
    root=$(cd "$(dirname "$0")/.." && pwd)
    bin=${R2R_CUDA_BIN:-$root/target-cuda/release/r2r}
    fixture=$root/../shared/fixtures/qwen3-tiny
    [ -x "$bin" ] || { echo "no CUDA build at $bin" >&2; exit 1; }
    [ -d "$fixture" ] || { echo "fixture $fixture is missing" >&2; exit 1; }
    rm -rf "$dest" && mkdir -p "$dest/qwen3-tiny"
    # Stripped, the binary is ~60 MB (candle's PTX kernels as text); xz keeps the carried folder small.
    strip -o "$dest/r2r" "$bin" && xz -T0 -6 "$dest/r2r"
    cp -r "$fixture/model" "$fixture/adapter" "$fixture/pairs.jsonl" "$fixture/expected.json" "$dest/qwen3-tiny/"
    chmod -R u+w "$dest/qwen3-tiny"
    cp "$0" "$dest/cuda-check.sh"
    cp "$root/scripts/torch_gpu_score_bench.py" "$root/../shared/tools/torch_score_bench.py" "$dest/" 2>/dev/null || true
    du -sh "$dest"
    exit 0
    ;;
run) ;;
*) echo "usage: cuda-check.sh pack DIR | run DIR [OUT]" >&2; exit 2 ;;
esac

dir=$(cd "${2:?usage: cuda-check.sh run DIR [OUT]}" && pwd)
out=${3:-${OUT:-/tmp/cuda-check}}
mkdir -p "$out"
bin=/tmp/r2r-cuda
python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$dir/r2r.xz" $bin && chmod +x $bin
fix=$dir/qwen3-tiny
log=$out/cuda-check.log
exec > >(tee "$log") 2>&1
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0

# The binary links libcuda (driver), cudart, cublas(Lt), curand and nvrtc dynamically: find them (CUDA
# toolkit or PyTorch's nvidia-* wheels).
libdirs=$(python3 - <<'EOF'
import glob, os, sys
want = ["libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libnvrtc.so.13"]
roots = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"] + sys.path
found = []
for lib in want:
    for root in roots:
        hits = glob.glob(os.path.join(root, lib)) + glob.glob(os.path.join(root, "nvidia", "**", lib), recursive=True)
        if hits:
            d = os.path.dirname(os.path.realpath(hits[0]))
            if d not in found:
                found.append(d)
            break
    else:
        print(f"cannot find {lib}", file=sys.stderr)
print(":".join(found))
EOF
)
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if ldd "$bin" | grep "not found"; then echo "missing libraries"; exit 1; fi

fail=0
score() { # name args...
    local name=$1; shift
    local start=$(date +%s%N)
    if "$bin" score --pairs "$fix/pairs.jsonl" --hidden "$@" > "$out/$name.jsonl" 2> "$out/$name.err"; then
        printf '%-28s ok   %d ms\n' "$name" $((($(date +%s%N) - start) / 1000000))
    else
        echo "$name FAILED:"; cat "$out/$name.err"; fail=1
    fi
}
echo "== scoring the fixture"
for variant in base adapter; do
    extra=(); [ $variant = adapter ] && extra=(--adapter "$fix/adapter")
    score "cpu-$variant" --model "$fix/model" "${extra[@]}"
    for dtype in f32 bf16 f16; do
        score "cuda-$dtype-$variant" --model "$fix/model" "${extra[@]}" --cuda --dtype $dtype
    done
    score "cuda-f32-naive4-$variant" --model "$fix/model" "${extra[@]}" --cuda --dtype f32 --naive --batch 4
    score "cuda-bf16-naive4-$variant" --model "$fix/model" "${extra[@]}" --cuda --dtype bf16 --naive --batch 4
done

echo "== max |diff| (logits, score, hidden) against the CPU run and against transformers (expected.json)"
python3 - "$out" "$fix/expected.json" <<'EOF' | tee "$out/compare.json" || fail=1
import json, os, sys
out, expected = sys.argv[1], json.load(open(sys.argv[2]))
ref = {p["id"]: p for p in expected["pairs"]}
def load(name):
    path = os.path.join(out, name + ".jsonl")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) and os.path.getsize(path) else None
def diffs(rows, against):
    d = {"logit": 0.0, "score": 0.0, "hidden": 0.0}
    for r in rows:
        o = against(r)
        d["logit"] = max(d["logit"], abs(r["yes_logit"] - o["yes_logit"]), abs(r["no_logit"] - o["no_logit"]))
        d["score"] = max(d["score"], abs(r["score"] - o["score"]))
        d["hidden"] = max(d["hidden"], max(abs(a - b) for a, b in zip(r["hidden"], o.get("hidden") or o["last_hidden"])))
    return d
tolerance = {"f32": 1e-4, "bf16": None, "f16": None}
results, ok = [], True
for variant in ["base", "adapter"]:
    cpu = load(f"cpu-{variant}")
    for name in [f"cpu-{variant}", f"cuda-f32-{variant}", f"cuda-bf16-{variant}", f"cuda-f16-{variant}", f"cuda-f32-naive4-{variant}", f"cuda-bf16-naive4-{variant}"]:
        rows = load(name)
        if rows is None or cpu is None:
            results.append({"run": name, "error": "no output"}); ok = False; continue
        by_id = {r["id"]: r for r in cpu}
        vs_cpu = diffs(rows, lambda r: by_id[r["id"]])
        vs_hf = diffs(rows, lambda r: ref[r["id"]][variant])
        dtype = name.split("-")[1] if name.startswith("cuda") else "f32"
        tol = tolerance[dtype]
        passed = tol is None or (vs_cpu["logit"] <= tol and vs_hf["logit"] <= tol)
        ok &= passed
        results.append({"run": name, "pairs": len(rows), "vs_cpu": vs_cpu, "vs_transformers": vs_hf, "tolerance": tol, "pass": passed})
for r in results:
    print(json.dumps(r))
sys.exit(0 if ok else 1)
EOF

echo "== bench score on a 4-layer qwen3-0.6b-shaped random checkpoint"
model=/tmp/qwen3-0.6b-4layers
"$bin" bench make-model --like qwen3-0.6b --layers 4 --out $model || fail=1
bench() { # name args...
    local name=$1; shift
    echo "-- $name: $*"
    "$bin" bench score --model $model "$@" > "$out/bench-$name.txt" 2> "$out/bench-$name.err" || { cat "$out/bench-$name.err"; fail=1; }
    cat "$out/bench-$name.txt"
}
bench bf16-c32 --cuda --dtype bf16 --candidates 32 --doc-tokens 128 --repeats 5
bench bf16-c32-vary --cuda --dtype bf16 --candidates 32 --doc-tokens 128 --vary --repeats 5
bench bf16-c256 --cuda --dtype bf16 --candidates 256 --doc-tokens 128 --repeats 5 --skip-naive
bench f32-c32 --cuda --dtype f32 --candidates 32 --doc-tokens 128 --repeats 5
bench cpu-c32 --candidates 32 --doc-tokens 128 --repeats 1 --fast-only

# transformers on the same GPU, checkpoint and shapes (1 query x 32 candidates of 128 words), when carried.
if [ -f "$dir/torch_gpu_score_bench.py" ] && [ -f "$dir/torch_score_bench.py" ] && python3 -c "import torch, transformers" 2>/dev/null; then
    echo "== transformers on the GPU (scripts/torch_gpu_score_bench.py, prompts and words of torch_score_bench.py)"
    for args in "--dtype bf16 --keep-last" "--dtype bf16" "--dtype bf16 --keep-last --vary" "--dtype bf16 --keep-last --candidates 256" "--dtype f32 --keep-last"; do
        python3 "$dir/torch_gpu_score_bench.py" "$dir/torch_score_bench.py" $model --candidates 32 --doc-words 128 --repeats 5 $args 2>"$out/torch.err" \
            | tee -a "$out/torch.jsonl" || { tail -5 "$out/torch.err"; fail=1; }
    done
else
    echo "== transformers side skipped (needs torch_gpu_score_bench.py and torch_score_bench.py in $dir, and torch + transformers)"
fi
echo "== done, fail=$fail"
exit $fail
