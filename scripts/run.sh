#!/usr/bin/env bash
# The main job: set up, build, index a photo folder and serve it (web UI + REST API), picking up
# new, changed and deleted photos while it runs.
#   scripts/run.sh PHOTOS_DIR
# Model: --model/CLIPSIGHT_MODEL (a directory in Immich's layout or a pulled name); without one,
# ViT-B-32__openai is pulled from Hugging Face (HF_ENDPOINT) into ~/.cache/clipsight/models.
# Library: CLIPSIGHT_DATA (default ./clipsight-data). Address: CLIPSIGHT_BIND (default
# 127.0.0.1:8080; beyond loopback add a user first: see the README, *Privacy*). A read-write API
# token: CLIPSIGHT_TOKEN (then every route but health needs credentials). NVIDIA GPU: CLIPSIGHT_GPU=1 installs
# onnxruntime-gpu with its CUDA libraries and runs the model on CUDA (CPU when no GPU answers).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/run.sh PHOTOS_DIR" >&2; exit 2; }
PHOTOS=$(cd "$1" && pwd)
bash scripts/setup.sh $([ "${CLIPSIGHT_GPU:-0}" = 1 ] && echo --gpu)
source scripts/env.sh
cargo build --release -p clipsight
BIN="$CARGO_TARGET_DIR/release/clipsight"
if [ -z "${CLIPSIGHT_MODEL:-}" ]; then
  export CLIPSIGHT_MODEL=ViT-B-32__openai
  # `model info` succeeds only when the model is already in the cache.
  if ! "$BIN" model info ViT-B-32__openai >/dev/null 2>&1 && ! "$BIN" model pull ViT-B-32__openai; then
    echo "run.sh: no model to index with (see the line above); nothing was indexed" >&2
    exit 1
  fi
fi
# Index first with a progress bar, then serve and keep watching the folder.
"$BIN" index "$PHOTOS"
exec "$BIN" -v serve --bind "${CLIPSIGHT_BIND:-127.0.0.1:8080}" --watch "$PHOTOS"
