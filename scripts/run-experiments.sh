#!/usr/bin/env bash
# Regenerates the README's results tables: the default experiment on the sample data and the same settings on
# the real legal / medical / financial sets of ../shared/realdata (general Wikipedia groups as out-of-domain).
#
#   scripts/run-experiments.sh [OUT_DIR]        (default OUT_DIR: runs/)
#
# Each run writes OUT_DIR/<name>/{results.json,report.md,*.csv,runs/*.trec,training/}; the README's tables are
# copied from the report.md files. Same seed => same numbers (timings differ).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
cargo build --quiet --bin r2r
R2R=${CARGO_TARGET_DIR:-target}/debug/r2r
"$R2R" experiment --config assets/configs/experiment.toml --out "$OUT/experiment-sample"
if [ -d ../shared/realdata ]; then
    "$R2R" experiment --config assets/configs/experiment-realdata.toml --out "$OUT/experiment-realdata"
else
    echo "note: ../shared/realdata is absent: real-data experiment skipped"
fi
for report in "$OUT"/experiment-*/report.md; do echo "== $report"; done
