#!/usr/bin/env python3
"""Random-weight text towers the size of Immich's models, one per model family, in each family's
export layout, to measure what a query costs (`clipsight bench query --text-models ...`); their
answers mean nothing.

    python make_text_tower.py FAMILY OUT_DIR

FAMILY            the size of                        layout (inputs)                  fixture completing it
xlmr-large        XLM-Roberta-Large-Vit-B-32 (M-CLIP) input_ids + attention_mask int32  clipsight-tiny-multilingual
nllb-base         nllb-clip-base-siglip__v1           text int32, FLORES-200 codes     clipsight-tiny-nllb
siglip-b16        ViT-B-16-SigLIP__webli              text int32 [batch, 64]           clipsight-tiny-siglip

Each is train_mclip.py's `MultilingualText` (bidirectional pre-LN transformer, masked mean, a
linear map) at the family's shape: XLM-R Large (vocabulary 250,002, 514 positions, 24 layers of
width 1024, 16 heads, MLP 4096), NLLB-200-distilled-600M's encoder (vocabulary 256,206, 12 layers
of width 1024, 16 heads, MLP 4096), SigLIP B/16's text tower (vocabulary 32,000, 64 positions, 12
layers of width 768, 12 heads, MLP 3072). The map goes to the fixture's 64 dimensions (one
width×d matrix, a negligible share of the cost) so the fixture's image tower, config and tokenizer
complete the directory. Weights are stored beside the graph as ONNX external data.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent.parent / "tests/fixtures/models"
sys.path.insert(0, str(HERE.parent / "train_tiny_clip"))
from train_mclip import PAD_ID, Export, MultilingualText, NllbExport  # noqa: E402

# family: (fixture, vocabulary, positions, width, layers, heads, context, inputs)
FAMILIES = {
    "xlmr-large": ("clipsight-tiny-multilingual", 250_002, 514, 1024, 24, 16, 77, "mask"),
    "nllb-base": ("clipsight-tiny-nllb", 256_206, 77, 1024, 12, 16, 77, "ids"),
    "siglip-b16": ("clipsight-tiny-siglip", 32_000, 64, 768, 12, 12, 64, "ids"),
}


class IdsOnly(nn.Module):
    """SigLIP's contract: ids alone, every position attended (its text is padded to 64). The ids are
    taken modulo the vocabulary: the fixture's tokenizer is CLIP's BPE, 49,408 ids against SigLIP's
    32,000 (one integer op; the lookup costs the same)."""

    def __init__(self, m, vocab):
        super().__init__()
        self.m = m
        self.vocab = vocab

    def forward(self, text):
        ids = torch.remainder(text, self.vocab)
        return F.normalize(self.m(ids, torch.ones_like(ids)), dim=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family", choices=sorted(FAMILIES))
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    fixture_name, vocab, positions, width, layers, heads, context, inputs = FAMILIES[a.family]
    fixture = FIXTURES / fixture_name
    torch.manual_seed(0)
    if a.out.exists():
        shutil.rmtree(a.out)
    shutil.copytree(fixture, a.out, ignore=shutil.ignore_patterns("model.onnx", "README.md"))
    shutil.copy(fixture / "visual/model.onnx", a.out / "visual/model.onnx")
    text = MultilingualText(vocab, width, layers, heads, embed_dim=64, positions=positions)
    ids = torch.full((1, context), PAD_ID, dtype=torch.int32)
    if inputs == "mask":
        model, dummy, names = Export(text).eval(), (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"]
    elif a.family.startswith("nllb"):
        model, dummy, names = NllbExport(text).eval(), (ids,), ["text"]
    else:
        model, dummy, names = IdsOnly(text, vocab).eval(), (ids,), ["text"]
    print("text tower parameters:", sum(p.numel() for p in model.parameters()), flush=True)
    with torch.no_grad():
        torch.onnx.export(model, dummy, str(a.out / "textual/model.onnx"), input_names=names, output_names=["embedding"],
                          opset_version=17, do_constant_folding=True, dynamo=False,
                          dynamic_axes={**{n: {0: "batch_size"} for n in names}, "embedding": {0: "batch_size"}})
    files = [p for p in a.out.rglob("*") if p.is_file()]
    print(f"{len(files)} files (the text tower's weights as external data), {sum(p.stat().st_size for p in files):,} bytes")


if __name__ == "__main__":
    main()
