#!/usr/bin/env python3
"""Regenerates tests/fixtures/tokenizer_ids.json: the token ids the Python reference (Hugging Face
`tokenizers` configured as Immich does) gives for a list of texts, with the fixture model's
tokenizer.json. The Rust test compares clipsight's tokenizer with this file.

    .venv/bin/python tests/reference/make_token_fixture.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from reference import encode_ids, tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests/fixtures/models/clipsight-tiny"
TEXTS = [
    "a red circle",
    "A photo of a DOG.",
    "  lots   of\twhitespace\n here ",
    "punctuation: commas, periods. (parens) & 'quotes' \"double\"!?",
    "unicode: café, naïve, Straße, 東京, Привет",
    "emoji 🐶🐱 🎉",
    "",
    "it's they're we've I'm you'll he'd",
    "numbers 12345 and 3.14159",
    " ".join(f"word{i % 17}" for i in range(200)),
]

tok = tokenizer(MODEL)
cases = [{"text": t, "ids": ids} for t, ids in zip(TEXTS, encode_ids(tok, TEXTS))]
out = ROOT / "tests/fixtures/tokenizer_ids.json"
out.write_text(json.dumps({"generator": "tests/reference/make_token_fixture.py", "cases": cases}, ensure_ascii=False) + "\n")
print(f"wrote {len(cases)} cases to {out}")
