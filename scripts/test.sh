#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (scripts/setup.sh), builds,
# and runs every test of the workspace. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "test: CARGO_TARGET_DIR=$CARGO_TARGET_DIR ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-unset}" >&2
cargo test --workspace --no-fail-fast "$@"
