#!/usr/bin/env python3
"""A random-weight text tower the size of Immich's `XLM-Roberta-Large-Vit-B-32` (M-CLIP), in M-CLIP's
export layout, to measure what a multilingual query costs (`clipsight bench query` with this
model); its answers mean nothing.

    python make_xlmr_large.py OUT_DIR [--fixture ../../tests/fixtures/models/clipsight-tiny-multilingual]

The multilingual fixture's text tower (train_mclip.py's `MultilingualText`: M-CLIP's masked mean
and linear map) at XLM-R Large's shape: token embedding 250,002×1024, 514 positions, 24
transformer layers of width 1024 with 16 heads and a 4096-wide MLP (GELU). The map
goes to the fixture's 64 dimensions (not B-32's 512: one 1024×d matrix, a negligible share of the
cost) so the fixture's image tower, config and tokenizer complete the directory. The graph takes
`input_ids` and `attention_mask` (int32 [batch, 77]) as Immich's export does; its 2.2 GB of
weights are stored beside it as ONNX external data.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "train_tiny_clip"))
from train_mclip import Export, MultilingualText  # noqa: E402

VOCAB, POSITIONS, WIDTH, LAYERS, HEADS, CONTEXT = 250_002, 514, 1024, 24, 16, 77


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--fixture", type=Path, default=HERE.parent.parent / "tests/fixtures/models/clipsight-tiny-multilingual")
    a = ap.parse_args()
    torch.manual_seed(0)
    if a.out.exists():
        shutil.rmtree(a.out)
    shutil.copytree(a.fixture, a.out, ignore=shutil.ignore_patterns("model.onnx", "README.md"))
    shutil.copy(a.fixture / "visual/model.onnx", a.out / "visual/model.onnx")
    model = Export(MultilingualText(VOCAB, WIDTH, LAYERS, HEADS, embed_dim=64, positions=POSITIONS)).eval()
    print("text tower parameters:", sum(p.numel() for p in model.parameters()), flush=True)
    dummy = (torch.ones(1, CONTEXT, dtype=torch.int32), torch.ones(1, CONTEXT, dtype=torch.int32))
    with torch.no_grad():
        torch.onnx.export(model, dummy, str(a.out / "textual/model.onnx"), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17, do_constant_folding=True, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch_size"}, "attention_mask": {0: "batch_size"}, "embedding": {0: "batch_size"}})
    files = [p for p in a.out.rglob("*") if p.is_file()]
    print(f"{len(files)} files (the text tower's weights as external data), {sum(p.stat().st_size for p in files):,} bytes")


if __name__ == "__main__":
    main()
