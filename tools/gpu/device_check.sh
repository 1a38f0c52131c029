#!/usr/bin/env bash
# The GPU figures of issue 6, on a lent device machine (no network there; tools/gpu/pack.sh
# builds the .devcarry/ folders this unpacks, and says how the two calls carry them):
#   device_check.sh stage   unpack .devcarry/a (onnxruntime-gpu's CUDA provider, pruned to sm_90)
#   device_check.sh run     unpack .devcarry/b (clipsight, its libraries, onnxruntime-gpu's Python
#                           package), make the vit-b-32 model, then bench index on CUDA (batch
#                           1/32/256, end to end, the Python peer on CUDA), on the 16 CPU cores,
#                           and check the fall-back to CPU when no GPU is visible.
#   device_check.sh quick   the same unpacking, then only the CUDA model-only figures at batch
#                           1/32/64/128/256, end to end on 100 photos, and the fall-back.
# Figures go to $OUT (JSON) and the end of the output.
set -uo pipefail
W=/tmp/clipsight-gpu
CAPI=$W/site/onnxruntime/capi
fallback() {
  step "fall-back: --device cuda with no visible GPU"
  CUDA_VISIBLE_DEVICES= "$BIN" --device cuda --model "$W/m" bench index --photos "$W/photos_small" --large 2 --batch 8 --no-peer 2>&1 | grep -E "WARN|on cpu|on cuda"
}
unxz() { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }
step() { echo "== $(date +%T) $*"; }

case "${1:-}" in
stage)
  mkdir -p "$CAPI"
  unxz .devcarry/a/provider_cuda.so.xz "$CAPI/libonnxruntime_providers_cuda.so"
  ls -la "$CAPI"
  ;;
run|quick)
  [ -s "$CAPI/libonnxruntime_providers_cuda.so" ] || { echo "not staged: run 'stage' first on this machine"; exit 3; }
  step unpack
  python3 -c 'import lzma, tarfile, sys; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' .devcarry/b/onnxruntime-site.tar.xz "$W/site"
  mkdir -p "$W/lib" && cp .devcarry/b/lib/*.so* "$W/lib/" && unxz .devcarry/b/lib/librocksdb.so.7.8.xz "$W/lib/librocksdb.so.7.8"
  unxz .devcarry/b/clipsight.xz "$W/clipsight" && chmod +x "$W/clipsight"
  BIN="$W/clipsight"
  PYENV=$(python3 -c 'import sys; print(sys.prefix)')
  export LD_LIBRARY_PATH="$W/lib" ORT_DYLIB_PATH="$CAPI/libonnxruntime.so.1.31.1"
  # The CUDA 13 + cuDNN libraries come from the pip packages of the machine's Python
  # (nvidia-cublas, nvidia-cudnn-cu13, ...), found by clipsight as in a user's .venv.
  export VIRTUAL_ENV="$PYENV" PYTHONPATH="$W/site" CLIPSIGHT_PYTHON=python3
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nproc; ls -d "$PYENV"/lib/python3*/site-packages/nvidia/*/lib
  python3 -c 'import onnxruntime as o; print("python onnxruntime", o.__version__, o.get_available_providers())'

  step model
  python3 .devcarry/b/make_clip_model.py --out "$W/m" --preset vit-b-32 --bpe .devcarry/b/bpe_simple_vocab_16e6.txt.gz >/dev/null || exit 4
  if [ "$1" = quick ]; then
    step "cuda: model only at batch 1/32/64/128/256, end to end"
    "$BIN" --device cuda --model "$W/m" bench index --photos "$W/photos" --large 100 --batch 1,32,64,128,256 --no-peer
    fallback
    exit
  fi
  step "cuda: model only at batch 1/32/256"
  "$BIN" -v --device cuda --model "$W/m" bench index --photos "$W/photos" --large 300 --batch 1,32,256 --no-peer --json >"$OUT/gpu_batches.json" || exit 5
  step "cuda: end to end and the Python peer, batch 64"
  "$BIN" --device cuda --model "$W/m" bench index --photos "$W/photos" --large 300 --batch 64 --json >"$OUT/gpu_e2e.json" || exit 6
  step "cpu (16 cores): model only and end to end, batch 32"
  "$BIN" --device cpu --model "$W/m" bench index --photos "$W/photos" --large 300 --batch 32 --no-peer --json >"$OUT/cpu16.json" || exit 7
  fallback
  step done
  for f in gpu_batches gpu_e2e cpu16; do echo "$f: $(cat "$OUT/$f.json")"; done
  ;;
*) echo "usage: device_check.sh stage|run|quick" >&2; exit 2 ;;
esac
