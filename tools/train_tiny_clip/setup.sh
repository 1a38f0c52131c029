#!/usr/bin/env bash
# Create tools/train_tiny_clip/.venv with the pinned requirements (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: $VENV up to date"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.txt
"$VENV/bin/python" -c "import torch, numpy, PIL, onnx, onnxruntime, tokenizers; print('setup: torch', torch.__version__, 'onnxruntime', onnxruntime.__version__)"
echo "$want" > "$STAMP"
