#!/usr/bin/env python3
"""Image->image similarity of an Immich-layout CLIP model: do neighbours share colour and shape?

    python similarity_eval.py --model DIR --eval EVAL_DIR [--json] [--k 5]

EVAL_DIR/manifest.json comes from `python scenes.py --out EVAL_DIR --count N --seed S`; single-object
images carry labels {"colour", "shape"}, and every image's canonical caption
("a|an <size> <colour> <shape> <position phrase>" for one object) gives its size and position.
Images are embedded with evaluate.py's preprocessing and onnxruntime session helper.

Definitions (embeddings L2-normalised, similarity = cosine, ties broken by lower index). Each
single-object image is a query; its neighbours are ALL other eval images (one- and two-object),
the query itself excluded:
  precision@k: mean over queries of the fraction of its top k neighbours that are single-object
               images with the query's colour AND shape.
  top1:        fraction of queries whose nearest neighbour is a single-object image with the query's
               colour and shape.
Diagnostics (same top k, among single-object neighbours counted over all k): fraction sharing colour,
shape, size, position; and `ceiling@k`, the best achievable precision@k given how many other images
of each (colour, shape) exist.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from evaluate import preprocess, run, topk


def single_attrs(entry: dict):
    """(colour, shape, size, position) of a single-object manifest entry, else None."""
    lab = entry.get("labels") or {}
    if "colour" not in lab or "shape" not in lab:
        return None
    words = entry["caption"].split()  # a|an size colour shape <position phrase>
    size, pos = words[1], words[-1]
    assert words[2] == lab["colour"] and words[3] == lab["shape"], entry
    return lab["colour"], lab["shape"], size, pos


def embed_images(model: Path, eval_dir: Path, entries) -> np.ndarray:
    pcfg = json.loads((model / "visual" / "preprocess_cfg.json").read_text())
    vis = ort.InferenceSession(str(model / "visual" / "model.onnx"), ort.SessionOptions(),
                               providers=["CPUExecutionProvider"])
    return run(vis, np.stack([preprocess(eval_dir / e["file"], pcfg) for e in entries]))


def similarity_eval(model: Path, eval_dir: Path, k: int = 5) -> dict:
    entries = json.loads((eval_dir / "manifest.json").read_text())["images"]
    attrs = [single_attrs(e) for e in entries]
    img = embed_images(model, eval_dir, entries)
    sim = img @ img.T
    n = len(entries)
    queries = [i for i in range(n) if attrs[i] is not None]
    prec, top1, ceil = [], [], []
    share = {"colour": [], "shape": [], "size": [], "position": []}
    for q in queries:
        order = [j for j in topk(sim[q], k + 1) if j != q][:k]  # the query is (almost surely) its own top 1
        if len(order) < k:
            order = [j for j in np.argsort(-sim[q], kind="stable") if j != q][:k]
        same = [attrs[j] is not None and attrs[j][:2] == attrs[q][:2] for j in order]
        prec.append(np.mean(same))
        top1.append(same[0])
        n_same = sum(1 for j in queries if j != q and attrs[j][:2] == attrs[q][:2])
        ceil.append(min(n_same, k) / k)
        for a, name in enumerate(share):
            share[name].append(np.mean([attrs[j] is not None and attrs[j][a] == attrs[q][a] for j in order]))
    return {"images": n, "queries": len(queries), "k": k,
            f"precision@{k}": float(np.mean(prec)), "top1": float(np.mean(top1)),
            f"ceiling@{k}": float(np.mean(ceil)),
            f"share@{k}": {name: float(np.mean(v)) for name, v in share.items()}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print compact one-line JSON")
    a = ap.parse_args(argv)
    r = similarity_eval(a.model, a.eval, a.k)
    print(json.dumps(r) if a.json else json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
