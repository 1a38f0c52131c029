#!/usr/bin/env bash
# Installs everything clipsight needs to build, run and test on Debian/Ubuntu, idempotently:
#   - system packages: a C toolchain, libclang (bindgen), Debian's librocksdb (linked instead of
#     compiling RocksDB's C++), libjpeg-turbo (scaled JPEG decoding), libheif (HEIC, AVIF) and FFmpeg (videos: ffprobe
#     and ffmpeg run as subprocesses); with --browser, what the test suite's real servers need:
#     Chromium + ChromeDriver for the UI tests, nginx (installed without starting its service),
#     openssl and curl for the reverse-proxy test, and a Milvus standalone server unpacked from
#     its PyPI wheel into .milvus/ (scripts/milvus.py);
#   - a Rust toolchain if cargo is missing (rustup, from crates.io's mirror is not possible: rustup);
#   - .venv: ONNX Runtime (the shared library ort loads) and the Python reference for the tests;
#     with --gpu, onnxruntime-gpu and the CUDA 13 + cuDNN 9 libraries from pip (NVIDIA driver ≥ 580
#     needed) instead of the CPU-only onnxruntime.
#   setup.sh [--browser] [--gpu]
# Prints the environment variables the other scripts export.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=0; gpu=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    --gpu) gpu=1 ;;
    *) echo "usage: setup.sh [--browser] [--gpu]" >&2; exit 2 ;;
  esac
done

need_apt=()
for pkg in build-essential pkg-config libclang-dev librocksdb-dev libturbojpeg0-dev libheif-dev ffmpeg python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ "$browser" = 1 ]; then
  for pkg in chromium chromium-driver nginx openssl curl libimage-exiftool-perl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
  done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # The tests start nginx themselves, on loopback: keep Debian's package from starting its own
  # service on port 80 (a policy-rc.d that forbids starting services, for this install only).
  policy=/usr/sbin/policy-rc.d
  if [[ " ${need_apt[*]} " == *" nginx "* ]] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  [ "$(trap -p EXIT)" ] && { $SUDO rm -f "$policy"; trap - EXIT; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust from https://rustup.rs (1.89 or newer)" >&2
  exit 1
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import onnxruntime, numpy, PIL, tokenizers" 2>/dev/null \
   || ! cmp -s scripts/requirements.txt .venv/.requirements.installed; then
  echo "setup: installing Python packages into .venv" >&2
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt .venv/.requirements.installed
fi

# The tests' Milvus server (--browser: the suite's real servers): Milvus 2.3.5 standalone,
# unpacked from its PyPI wheel into .milvus/ (see scripts/milvus.py).
if [ "$browser" = 1 ]; then
  python3 scripts/milvus.py install >/dev/null
fi

# The GPU wheel and the CPU wheel install the same `onnxruntime` package: keep exactly one.
ORT_GPU="onnxruntime-gpu[cuda,cudnn]==1.31.1"
if [ "$gpu" = 1 ] && ! .venv/bin/python -c "import onnxruntime, sys; sys.exit('CUDAExecutionProvider' not in onnxruntime.get_available_providers())" 2>/dev/null; then
  echo "setup: installing $ORT_GPU into .venv" >&2
  .venv/bin/pip uninstall -q -y onnxruntime onnxruntime-gpu >/dev/null 2>&1 || true
  .venv/bin/pip install -q --disable-pip-version-check "$ORT_GPU"
fi
