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


def known_count(S: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each ranking cut at its true number of relevant images (a cutoff that knew how many, but
    not which): where it stays below the oracle, the oracle's lead is hindsight about the order."""
    n = np.maximum(truth.sum(1), 1)
    return S >= (-np.sort(-S, 1))[np.arange(len(S)), n - 1][:, None]


def hit_features(S: np.ndarray) -> np.ndarray:
    """Per (query, image): the score's z-score against the query's scores, its distance below the
    best hit, its log rank, and the query's upper quantiles (all in the query's own z units, so no
    absolute cosine), with products and squares: [query, image, feature]."""
    m, sd = S.mean(1, keepdims=True), S.std(1, keepdims=True)
    z, top = (S - m) / sd, (S.max(1, keepdims=True) - m) / sd
    q = (np.quantile(S, [0.99, 0.95, 0.9, 0.5], axis=1).T - m) / sd
    lr = np.log(np.argsort(np.argsort(-S, 1), 1) + 1)
    cols = [np.ones_like(z), z, z ** 2, top - z, (top - z) ** 2, lr, lr ** 2, z * lr, np.broadcast_to(top, z.shape), z * top]
    for j in range(q.shape[1]):
        cols += [np.broadcast_to(q[:, j:j + 1], z.shape), z * q[:, j:j + 1]]
    return np.stack(cols, -1)


def logistic(X: np.ndarray, y: np.ndarray, ridge: float = 1e-3, steps: int = 30):
    """P(relevant | features) by Newton's method on standardised features."""
    mu, sg = X.mean(0), X.std(0) + 1e-9
    mu[0], sg[0] = 0.0, 1.0
    Xn, w = (X - mu) / sg, np.zeros(X.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-Xn @ w))
        H = (Xn * (p * (1 - p))[:, None]).T @ Xn + ridge * np.eye(len(w))
        w -= np.linalg.solve(H, Xn.T @ (p - y) + ridge * w)
    return lambda X: 1 / (1 + np.exp(-((X - mu) / sg) @ w))


def expected_f1_cut(S: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Each query's best hits up to the count that maximises the expected F1 under P."""
    out = np.zeros_like(S, bool)
    for i, (s, p) in enumerate(zip(S, P)):
        order = np.argsort(-s)
        k = (2 * np.cumsum(p[order]) / (np.arange(1, len(s) + 1) + p.sum())).argmax()
        out[i, order[:k + 1]] = True
    return out


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
    def line(name, F, params=""):
        kinds = ", ".join(f"{k} {F[np.isin(odd_ids, list(r))].mean():.2f}" for k, r in KINDS.items())
        print(f"{name:42s} {F.mean():.3f}  ({params}{kinds})")

    line("oracle (hindsight, the bound of any cutoff)", oracle(SB[odd], TB[odd]))
    line("cut at the true count (knows how many)", f1(known_count(SB[odd], TB[odd]), TB[odd]))
    # The third suggestion: a calibration learned on labelled scenes (A's even queries).
    XA, XB = hit_features(SA[even]), hit_features(SB[odd])
    calibrated = logistic(XA.reshape(-1, XA.shape[-1]), TA[even].reshape(-1).astype(float))
    P = calibrated(XB.reshape(-1, XB.shape[-1])).reshape(SB[odd].shape)
    line("learned calibration, expected-F1 cut", f1(expected_f1_cut(SB[odd], P), TB[odd]))
    for name, (grid, rule) in RULES.items():
        def judged(S, params):
            return S >= np.array([rule(s, params) for s in S])[:, None]
        params = max(grid, key=lambda p: f1(judged(SA[even], p), TA[even]).mean())
        line(name, f1(judged(SB[odd], params), TB[odd]), f"params {tuple(round(float(p), 3) for p in params)}; ")


if __name__ == "__main__":
    main()
