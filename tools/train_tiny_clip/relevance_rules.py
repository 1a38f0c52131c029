#!/usr/bin/env python3
"""Per-query relevance cutoffs compared on labelled scene folders (the research behind
src/search/relevance.rs; numpy + onnxruntime, no torch).

    python relevance_rules.py --model DIR --tune EVAL_A --report EVAL_B

EVAL_A and EVAL_B come from `python scenes.py --out DIR --count 1500 --seed S` (their manifests
list the relevance queries and the files relevant to each). Each rule's parameters are chosen on
EVAL_A's even queries and its mean F1 reported on EVAL_B's odd queries, as `clipsight eval` splits
them; the oracle is each query's best cut in hindsight. Queries are embedded as typed (the
per-query rules only read scores, so ensembling is left to `clipsight eval`).
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

import evaluate as ev

KINDS = {"colour": range(0, 8), "shape": range(8, 16), "colour+shape": range(16, 80),
         "size+colour+shape": range(80, 208), "colour+shape+position": range(208, 528)}


def scores(model: Path, folder: Path):
    """[query, image] cosines and the ground truth of a scene folder."""
    m = json.loads((folder / "manifest.json").read_text())
    cfg = json.loads((model / "config.json").read_text())
    pre = json.loads((model / "visual" / "preprocess_cfg.json").read_text())
    vis = ort.InferenceSession(str(model / "visual" / "model.onnx"), providers=["CPUExecutionProvider"])
    txt = ort.InferenceSession(str(model / "textual" / "model.onnx"), providers=["CPUExecutionProvider"])
    enc = ev.TextEncoder(model / "textual", cfg["text_cfg"]["context_length"])
    images = ev.run(vis, np.stack([ev.preprocess(folder / e["file"], pre) for e in m["images"]]))
    queries = ev.run(txt, np.stack([enc(q["text"]) for q in m["queries"]]))
    index = {e["file"]: i for i, e in enumerate(m["images"])}
    truth = np.zeros((len(queries), len(images)), bool)
    for k, q in enumerate(m["queries"]):
        truth[k, [index[f] for f in q["relevant"]]] = True
    return queries @ images.T, truth


def f1(judged: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per query F1 of boolean decisions (nothing relevant: 1 when nothing is judged relevant)."""
    tp, n_judged, n_true = (judged & truth).sum(1), judged.sum(1), truth.sum(1)
    precision = np.where(n_judged > 0, tp / np.maximum(n_judged, 1), 1.0)
    recall = np.where(n_true > 0, tp / np.maximum(n_true, 1), 1.0)
    out = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-9), 0.0)
    return np.where(n_true == 0, (n_judged == 0).astype(float), out)


def oracle(S: np.ndarray, truth: np.ndarray) -> np.ndarray:
    out = []
    for s, t in zip(S, truth):
        correct = np.cumsum(t[np.argsort(-s, kind="stable")])
        out.append((2 * correct / (np.arange(1, len(s) + 1) + t.sum())).max() if t.any() else 1.0)
    return np.array(out)


def kittler_illingworth(s: np.ndarray) -> float:
    """Minimum-error split of the scores into two normal populations, the upper one holding at most
    half of them (as relevance.rs's two_populations, unweighted)."""
    x = np.sort(s)[::-1]
    n, c, c2 = len(x), np.cumsum(x), np.cumsum(x * x)
    best, threshold = np.inf, x[0]
    for k in range(1, n // 2 + 1):
        m1, m2 = c[k - 1] / k, (c[-1] - c[k - 1]) / (n - k)
        v1, v2 = c2[k - 1] / k - m1 * m1, (c2[-1] - c2[k - 1]) / (n - k) - m2 * m2
        if v1 <= 1e-12 or v2 <= 1e-12 or x[k - 1] == x[k]:
            continue
        p1 = k / n
        error = p1 * np.log(np.sqrt(v1)) + (1 - p1) * np.log(np.sqrt(v2)) - p1 * np.log(p1) - (1 - p1) * np.log(1 - p1)
        if error < best:
            best, threshold = error, (x[k - 1] + x[k]) / 2
    return threshold


def fraction(s, f):
    return s.mean() + f * (s.max() - s.mean())


RULES = {
    "fixed threshold": ([(t,) for t in np.linspace(-0.3, 0.95, 251)], lambda s, a: a[0]),
    "fraction of the way to the best hit": ([(f,) for f in np.linspace(0.3, 1.0, 71)], lambda s, a: fraction(s, a[0])),
    "z-score": ([(z,) for z in np.linspace(0, 6, 121)], lambda s, a: s.mean() + a[0] * s.std()),
    "two populations (Kittler-Illingworth)": ([()], lambda s, a: kittler_illingworth(s)),
    "min(two populations, fraction) [shipped]": ([(f,) for f in np.linspace(0.7, 1.0, 31)], lambda s, a: min(kittler_illingworth(s), fraction(s, a[0]))),
    "best hit - delta (absolute cosine)": ([(d,) for d in np.linspace(0, 0.4, 81)], lambda s, a: s.max() - a[0]),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--tune", type=Path, required=True)
    ap.add_argument("--report", type=Path, required=True)
    a = ap.parse_args(argv)
    (SA, TA), (SB, TB) = scores(a.model, a.tune), scores(a.model, a.report)
    even, odd = np.arange(len(SA)) % 2 == 0, np.arange(len(SB)) % 2 == 1
    odd_ids = np.flatnonzero(odd)
    print(f"oracle: {oracle(SB[odd], TB[odd]).mean():.3f}")
    for name, (grid, rule) in RULES.items():
        def judged(S, params):
            return S >= np.array([rule(s, params) for s in S])[:, None]
        params = max(grid, key=lambda p: f1(judged(SA[even], p), TA[even]).mean())
        F = f1(judged(SB[odd], params), TB[odd])
        kinds = ", ".join(f"{k} {F[np.isin(odd_ids, list(r))].mean():.2f}" for k, r in KINDS.items())
        print(f"{name:42s} {F.mean():.3f}  (params {tuple(round(float(p), 3) for p in params)}; {kinds})")


if __name__ == "__main__":
    main()
