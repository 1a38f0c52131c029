#!/usr/bin/env bash
# The performance benches in one command, on the model given by CLIPSIGHT_MODEL / --model, or —
# when there is none — a random-weight CLIP of the true ViT-B/32 size and cost, made once by
# tools/bench/make_clip_model.py (numpy + onnx from .venv). Prints figures; every target is a ratio against a
# baseline measured in the same run. Add --json for machine-readable output.
#   benches/run.sh [--json] [index|query|ann|quantize|all|million|gpu]
# `gpu` installs onnxruntime-gpu into .venv (scripts/setup.sh --gpu) and runs the index bench on
# CUDA at batch 1, 32 and 256 (the Python peer on CUDA too).
# `million` runs the ann and query benches at 1,000,000 vectors, the query bench warm, cold, and cold with the
# disk throttled to 500 and 200 MB/s (root; two graph builds: about 1.5 hours
# on 2 cores; the query bench keeps its library and graph in $TMPDIR for reruns).
set -euo pipefail
cd "$(dirname "$0")/.."
JSON=""
if [ "${1:-}" = "--json" ]; then JSON="--json"; shift; fi
WHAT=${1:-all}
bash scripts/setup.sh $([ "$WHAT" = gpu ] && echo --gpu)
source scripts/env.sh
cargo build --release -p clipsight
BIN="$CARGO_TARGET_DIR/release/clipsight"
if [ -z "${CLIPSIGHT_MODEL:-}" ]; then
  export CLIPSIGHT_MODEL="$HOME/.cache/clipsight/bench-models/vit-b-32-random"
  [ -f "$CLIPSIGHT_MODEL/textual/model.onnx" ] || "$CLIPSIGHT_PYTHON" tools/bench/make_clip_model.py "$CLIPSIGHT_MODEL"
fi
PHOTOS="$HOME/.cache/clipsight/bench-photos"
case "$WHAT" in
  index) "$BIN" $JSON bench index --photos "$PHOTOS" ;;
  query) "$BIN" $JSON bench query ;;
  ann) "$BIN" $JSON bench ann --n 100000 ;;
  quantize) rm -rf /tmp/clipsight-int8 && "$BIN" $JSON model quantize /tmp/clipsight-int8 ;;
  gpu) "$BIN" --device cuda $JSON bench index --photos "$PHOTOS" --batch 1,32,256 ;;
  million)
    "$BIN" $JSON bench ann --n 1000000 --ef 32,64,128,256
    "$BIN" $JSON bench ann --n 1000000 --power-law 0.5 --no-graph --queries 100
    "$BIN" $JSON bench query --n 1000000 --samples 50 --seconds 10
    "$BIN" $JSON bench query --n 1000000 --samples 20 --seconds 5 --cold
    "$BIN" $JSON bench query --n 1000000 --samples 20 --seconds 5 --disk-mbps 500
    "$BIN" $JSON bench query --n 1000000 --samples 20 --seconds 5 --disk-mbps 200
    ;;
  all)
    "$BIN" $JSON bench index --photos "$PHOTOS"
    "$BIN" $JSON bench query
    "$BIN" $JSON bench ann --n 100000
    ;;
  *) echo "usage: benches/run.sh [--json] [index|query|ann|quantize|all|million|gpu]" >&2; exit 2 ;;
esac
