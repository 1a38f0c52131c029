# Sourced by the scripts: where the build goes and where ONNX Runtime is.
# The target dir lives outside the checkout so repeated runs (and CI on the same machine) reuse
# the compiled dependencies; a fresh machine builds them once (~10 min on 2 cores).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clipsight-target}"
export ROCKSDB_LIB_DIR="${ROCKSDB_LIB_DIR:-$(dirname "$(find /usr/lib /usr/lib64 -name 'librocksdb.so' 2>/dev/null | head -n1)")}"
ORT_LIB="$(find "$ROOT/.venv" -name 'libonnxruntime.so*' -path '*onnxruntime/capi*' 2>/dev/null | sort | tail -n1)"
[ -n "$ORT_LIB" ] && export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ORT_LIB}"
export CLIPSIGHT_PYTHON="${CLIPSIGHT_PYTHON:-$ROOT/.venv/bin/python}"
