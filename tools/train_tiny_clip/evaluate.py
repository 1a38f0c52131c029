#!/usr/bin/env python3
"""Reference retrieval evaluation of an Immich-layout CLIP model (onnxruntime + PIL + numpy, no torch).

    python evaluate.py --model DIR --eval EVAL_DIR [--json]

EVAL_DIR/manifest.json comes from `python scenes.py --out EVAL_DIR --count N --seed S`.
Definitions (embeddings L2-normalised, similarity = cosine, ties broken by lower index):
  t2i recall@k: fraction of images i for which some image j with caption_j == caption_i is among
                the top k images ranked by cos(text(caption_i), image_j).
  i2t recall@k: fraction of images i for which some caption c_j with c_j == caption_i is among the
                top k of all N captions (one per image, duplicates kept) ranked by cos(image_i, text(c_j)).
  zero-shot accuracy for task T: over images whose labels contain T, fraction where argmax over
                the task's prompts of cos(image, text(prompt)) is the index of the true class.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer

SOT_ID, EOT_ID = 49406, 49407
KS = (1, 5, 10)


def preprocess(path: Path, cfg: dict) -> np.ndarray:
    """open_clip / torchvision: bicubic resize of the shortest side, centre crop, /255, mean/std, CHW."""
    size = cfg["size"][0] if isinstance(cfg["size"], list) else cfg["size"]
    img = Image.open(path).convert(cfg.get("mode", "RGB"))
    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(cfg["mean"], np.float32)) / np.array(cfg["std"], np.float32)
    return x.transpose(2, 0, 1).astype(np.float32)


class TextEncoder:
    def __init__(self, textual: Path, context_length: int):
        self.tok = Tokenizer.from_file(str(textual / "tokenizer.json"))
        pad = json.loads((textual / "tokenizer_config.json").read_text())["pad_token"]
        self.pad_id = self.tok.token_to_id(pad)
        self.n = context_length

    def __call__(self, text: str) -> np.ndarray:
        ids = self.tok.encode(re.sub(r"\s+", " ", text).strip()).ids  # <|startoftext|> ... <|endoftext|>
        if len(ids) > self.n:
            ids = ids[: self.n - 1] + [EOT_ID]
        out = np.full(self.n, self.pad_id, np.int32)
        out[: len(ids)] = ids
        return out


def run(sess, x: np.ndarray, batch: int = 64) -> np.ndarray:
    name = sess.get_inputs()[0].name
    out = np.concatenate([sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def topk(sim_row: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-sim_row, kind="stable")[:k]  # ties: lower index first


def evaluate(model: Path, eval_dir: Path) -> dict:
    manifest = json.loads((eval_dir / "manifest.json").read_text())
    config = json.loads((model / "config.json").read_text())
    pcfg = json.loads((model / "visual" / "preprocess_cfg.json").read_text())
    opts = ort.SessionOptions()
    vis = ort.InferenceSession(str(model / "visual" / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    txt = ort.InferenceSession(str(model / "textual" / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    enc = TextEncoder(model / "textual", config["text_cfg"]["context_length"])

    entries = manifest["images"]
    n = len(entries)
    captions = [e["caption"] for e in entries]
    img = run(vis, np.stack([preprocess(eval_dir / e["file"], pcfg) for e in entries]))
    cap = run(txt, np.stack([enc(c) for c in captions]))
    sim = cap @ img.T  # [caption i, image j]
    same = np.array([[ci == cj for cj in captions] for ci in captions])

    t2i = {f"r{k}": float(np.mean([same[i, topk(sim[i], k)].any() for i in range(n)])) for k in KS}
    simT = sim.T  # [image i, caption j]
    i2t = {f"r{k}": float(np.mean([same[i, topk(simT[i], k)].any() for i in range(n)])) for k in KS}

    zero_shot = {}
    for task, spec in manifest["zero_shot"].items():
        idx = [i for i, e in enumerate(entries) if task in e["labels"]]
        if not idx:
            continue
        p = run(txt, np.stack([enc(t) for t in spec["prompts"]]))
        pred = np.argmax(img[idx] @ p.T, axis=1)  # argmax: first max on ties
        truth = np.array([spec["classes"].index(entries[i]["labels"][task]) for i in idx])
        zero_shot[task] = float(np.mean(pred == truth))
    return {"images": n, "t2i": t2i, "i2t": i2t, "zero_shot": zero_shot}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--json", action="store_true", help="print compact one-line JSON")
    a = ap.parse_args(argv)
    r = evaluate(a.model, a.eval)
    print(json.dumps(r) if a.json else json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
