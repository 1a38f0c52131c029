#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (scripts/setup.sh), builds,
# and runs every test of the workspace. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
source scripts/env.sh
echo "test: CARGO_TARGET_DIR=$CARGO_TARGET_DIR ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-unset}" >&2
if [ ! -f ../shared/tools/make_clip_model.py ]; then
  # libtest hides a passing test's output, so say it here too.
  echo "SKIPPED: the model-variant parity tests (uint8 NHWC, fixed batch 1, int64 ids, ViT-B/32 size) need ../shared/tools/make_clip_model.py, which is absent; they pass without checking anything" >&2
fi
cargo test --workspace --no-fail-fast "$@"
