#!/usr/bin/env bash
# Builds the NER sets data/ner/<corpus>/{train,dev,test}.jsonl from the pinned commits of the public
# corpora listed in assets/ner/corpora.json (sources, licences and label maps are documented there and
# in docs/ner.md).
#
# Snapshots are read from $R2R_SNAPSHOTS_DIR when set (bare mirrors named owner+name/repo, or
# checkouts owner/name); otherwise each repository is cloned once into
# ~/.cache/r2r-workbench/snapshots (this needs access to GitHub; nothing else downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${R2R_SNAPSHOTS_DIR:-}" ]; then
  dir="$R2R_SNAPSHOTS_DIR"
else
  dir="$HOME/.cache/r2r-workbench/snapshots"
  mkdir -p "$dir"
  for repo in $(grep -o '"repo": *"[^"]*"' assets/ner/corpora.json | sed 's/.*"\([^"]*\)"$/\1/' | sort -u); do
    target="$dir/${repo/\//+}/repo"
    if [ ! -d "$target" ]; then
      echo "cloning $repo into $target"
      git clone --quiet --bare --filter=blob:none "https://github.com/$repo.git" "$target"
    fi
  done
fi
cargo run --quiet -- ner build --snapshots "$dir" --out data/ner "$@"
