#!/usr/bin/env bash
# Builds what tools/gpu/device_check.sh carries to a lent GPU machine, which has no network, a
# Python with PyTorch's CUDA 13 libraries, and a 64 MiB limit on what one call carries:
#   .devcarry/a  onnxruntime-gpu's CUDA provider, pruned to sm_90 (H100/H200) — ~52 MB, its own call
#   .devcarry/b  clipsight (release, stripped), the Debian libraries it links that the machine
#                lacks, onnxruntime-gpu's Python package without that provider (for the Python
#                peer), make_clip_model.py and the BPE vocabulary it would otherwise download.
# Then: device `run` "bash tools/gpu/device_check.sh stage" carrying .devcarry/a, and at once
# (the machine stays warm 30 s) "bash tools/gpu/device_check.sh run" carrying .devcarry/b.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
ORT_GPU=1.31.1   # CUDA 13 build, the CUDA the machine's PyTorch libraries are
OUT=.devcarry
grep -qx "/$OUT/" .git/info/exclude 2>/dev/null || echo "/$OUT/" >>.git/info/exclude
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

.venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 "onnxruntime-gpu==$ORT_GPU" -d "$W"
(cd "$W" && unzip -q onnxruntime_gpu-*.whl 'onnxruntime/*')
rm -rf "$OUT" && mkdir -p "$OUT/a" "$OUT/b/lib"
CAPI="$W/onnxruntime/capi"
python3 tools/gpu/prune_fatbin.py "$CAPI/libonnxruntime_providers_cuda.so" --keep 90
xz -9 -T0 -c "$CAPI/libonnxruntime_providers_cuda.so" >"$OUT/a/provider_cuda.so.xz"
rm "$CAPI/libonnxruntime_providers_cuda.so" "$CAPI/libonnxruntime_providers_tensorrt.so"
tar -C "$W" -cf - onnxruntime | xz -9 -T0 >"$OUT/b/onnxruntime-site.tar.xz"

cargo build --release -p clipsight
BIN="$CARGO_TARGET_DIR/release/clipsight"
strip -o "$W/clipsight" "$BIN" && xz -9 -T0 -c "$W/clipsight" >"$OUT/b/clipsight.xz"
for lib in $(ldd "$BIN" | awk '/libturbojpeg|libgflags|libsnappy/ {print $3}'); do cp -L "$lib" "$OUT/b/lib/"; done
xz -9 -T0 -c "$(ldd "$BIN" | awk '/librocksdb/ {print $3}')" >"$OUT/b/lib/librocksdb.so.7.8.xz"

cp ../shared/tools/make_clip_model.py "$OUT/b/"
WHEEL=$(ls ~/.cache/make_clip_model/open_clip_torch-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$WHEEL" ]; then
  .venv/bin/pip download -q --no-deps open_clip_torch==3.3.0 -d "$W" && WHEEL=$(ls "$W"/open_clip_torch-*.whl)
fi
unzip -q -j "$WHEEL" '*/bpe_simple_vocab_16e6.txt.gz' -d "$OUT/b/"
du -sh "$OUT/a" "$OUT/b"
