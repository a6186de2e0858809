#!/usr/bin/env bash
# The Gemma 3 270M generalist end to end, resumable: fetch the base, fine-tune (rerun to resume; MINUTES
# bounds one call), then the held-out numbers beside BM25 and random order and the LSR on its query states.
#   scripts/gemma-generalist.sh             # all steps
#   STEP=eval scripts/gemma-generalist.sh   # only the evaluations (finetune | eval | lsr)
# Outputs: assets/gemma-generalist/ (the bundle), docs/results/gemma/*.json|txt (figures with date and machine).
set -euo pipefail
cd "$(dirname "$0")/.."
R2R=${R2R:-"cargo run --release --quiet --"}
STEP=${STEP:-all}
OUT=docs/results/gemma
mkdir -p "$OUT"
stamp() { echo "# $(date -u '+%F %H:%M UTC'), $(nproc) CPU cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"; }

if [ "$STEP" = all ] || [ "$STEP" = finetune ]; then
  $R2R model fetch gemma-3-270m
  $R2R backbone finetune --base gemma-3-270m --out assets/gemma-generalist ${MINUTES:+--minutes "$MINUTES"}
fi
if [ "$STEP" = all ] || [ "$STEP" = eval ]; then
  # 1) general_pretrain's held-out test groups (never trained on); 2) the real legal / medical / financial sets.
  { stamp; $R2R backbone eval --model assets/gemma-generalist --splits test --limit "${GENERAL_GROUPS:-40}" \
      --max-length 256 --json "$OUT/generalist-general.json"; } | tee "$OUT/generalist-general.txt"
  { stamp; $R2R backbone eval --model assets/gemma-generalist --data ../shared/realdata --splits test \
      --limit "${DOMAIN_GROUPS:-20}" --max-length 256 --json "$OUT/generalist-realdata.json"; } | tee "$OUT/generalist-realdata.txt"
fi
if [ "$STEP" = all ] || [ "$STEP" = lsr ]; then
  sed 's|^path = "auto"|path = "assets/gemma-generalist"|; s|^dir = .*|dir = "runs/lsr-realdata-gemma-generalist"|' \
    assets/configs/lsr-realdata.toml > /tmp/lsr-gemma-generalist.toml
  { stamp; $R2R train --config /tmp/lsr-gemma-generalist.toml --fresh; } 2>&1 | tee "$OUT/lsr-generalist.txt"
fi
