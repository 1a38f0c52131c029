#!/usr/bin/env bash
# setup -> generate data + train -> export -> evaluate, from scratch and seeded.
#   ./run_all.sh            reuses .cache/ (training data, tokenizer) if present
#   ./run_all.sh --clean    regenerates everything
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--clean" ]; then rm -rf .cache; fi
./setup.sh
PY=.venv/bin/python
MODEL=../../tests/fixtures/models/clipsight-tiny
mkdir -p .cache
time "$PY" train.py --seed 0 --count 20000 --captions 6 --partial 4 --positives own --steps 4000 --batch 128 \
  --hard-frac 0.6 --hard-groups colour,shape,position+size --pos-scale 0.15 --size-scale 0.35 \
  --canon-weight 0.25 --threads 2 --out .cache/tiny_clip.pt 2>&1 | tee .cache/train.log
"$PY" export.py --ckpt .cache/tiny_clip.pt --out "$MODEL" 2>&1 | grep -v -i warn | tee .cache/export.log
rm -rf .cache/eval500
"$PY" scenes.py --out .cache/eval500 --count 500 --seed 1000000
"$PY" evaluate.py --model "$MODEL" --eval .cache/eval500 | tee .cache/eval.json
"$PY" similarity_eval.py --model "$MODEL" --eval .cache/eval500 | tee .cache/similarity.json
