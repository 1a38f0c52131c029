#!/usr/bin/env bash
# The main job: set up, build, index a photo folder, then search it.
#   scripts/run.sh PHOTOS_DIR ["a text query"]
# Model: --model/CLIPSIGHT_MODEL (a directory in Immich's layout or a pulled name); without one,
# ViT-B-32__openai is pulled from Hugging Face (HF_ENDPOINT) into ~/.cache/clipsight/models.
# Library: CLIPSIGHT_DATA (default ./clipsight-data).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/run.sh PHOTOS_DIR [\"query\"]" >&2; exit 2; }
PHOTOS=$(cd "$1" && pwd)
QUERY=${2:-}
bash scripts/setup.sh
source scripts/env.sh
cargo build --release -p clipsight
BIN="$CARGO_TARGET_DIR/release/clipsight"
if [ -z "${CLIPSIGHT_MODEL:-}" ]; then
  export CLIPSIGHT_MODEL=ViT-B-32__openai
  # `model info` succeeds only when the model is already in the cache.
  "$BIN" model info ViT-B-32__openai >/dev/null 2>&1 || "$BIN" model pull ViT-B-32__openai
fi
"$BIN" index "$PHOTOS"
if [ -n "$QUERY" ]; then
  "$BIN" search "$QUERY"
else
  echo "indexed. search with: $BIN search \"a dog on the beach\"   (model: $CLIPSIGHT_MODEL)"
fi
