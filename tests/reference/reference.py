#!/usr/bin/env python3
"""The Python reference clipsight is checked against: open_clip's preprocessing (PIL resize +
torchvision-style center crop + numpy normalisation), Immich's tokenisation (Hugging Face
`tokenizers` padded/truncated to the context length with tokenizer_config.json's pad token), and
plain ONNX Runtime inference.

    reference.py tensor  --model DIR --out OUTDIR IMAGE...   # raw float32 CHW per image (i.bin)
    reference.py images  --model DIR IMAGE...                # {"embeddings": [[...], ...]}
    reference.py texts   --model DIR TEXT...                 # {"ids": [[...]], "masks": [[...]], "embeddings": [[...]]}

Only numpy, Pillow, tokenizers and onnxruntime are needed (scripts/requirements.txt).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def load_cfg(model: Path) -> dict:
    return json.loads((model / "visual/preprocess_cfg.json").read_text())


def to_rgb(im: Image.Image, fill) -> Image.Image:
    """Any mode → RGB: 16-bit scaled to 8 bits, alpha composited over the fill colour."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "RGB" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, tuple(fill) + (255,))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return im.convert("RGB")


def preprocess(path: Path, cfg: dict) -> np.ndarray:
    """open_clip's transform for resize_mode 'shortest' (OpenAI CLIP): returns float32 [3, H, W]."""
    size = cfg["size"]
    th, tw = (size, size) if isinstance(size, int) else tuple(size)
    fill = cfg.get("fill_color", 0)
    fill = [fill] * 3 if isinstance(fill, int) else fill
    im = Image.open(path)
    im = ImageOps.exif_transpose(im)
    im = to_rgb(im, fill)
    assert cfg.get("resize_mode", "shortest") == "shortest" and th == tw, "reference covers the OpenAI transform"
    interp = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST,
              "lanczos": Image.LANCZOS}[cfg.get("interpolation", "bicubic")]
    w, h = im.size
    # torchvision Resize(int): shorter side -> size, longer -> int(size * long / short)
    if w <= h:
        nw, nh = tw, int(tw * h / w)
    else:
        nw, nh = int(th * w / h), th
    im = im.resize((nw, nh), interp)
    # torchvision CenterCrop
    top = int(round((nh - th) / 2.0))
    left = int(round((nw - tw) / 2.0))
    im = im.crop((left, top, left + tw, top + th))
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - np.array(cfg["mean"], dtype=np.float32)) / np.array(cfg["std"], dtype=np.float32)
    return x.transpose(2, 0, 1).astype(np.float32)


def session(path: Path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_rows(sess, x) -> np.ndarray:
    """Output 0 of `sess`, L2-normalised rows, for `x`: one array (the graph's one input) or a
    dict of arrays by input name."""
    feeds = x if isinstance(x, dict) else {sess.get_inputs()[0].name: x}
    n = len(next(iter(feeds.values())))
    if sess.get_inputs()[0].shape[0] == 1 and n > 1:  # fixed batch of 1
        out = np.concatenate([sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()})[0] for i in range(n)])
    else:
        out = sess.run(None, feeds)[0]
    out = out.astype(np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def tokenizer(model: Path):
    from tokenizers import Tokenizer
    cfg = json.loads((model / "config.json").read_text())
    ctx = cfg.get("text_cfg", {}).get("context_length", 77)
    tok_cfg_path = model / "textual/tokenizer_config.json"
    pad = "<|endoftext|>"
    if tok_cfg_path.exists():
        p = json.loads(tok_cfg_path.read_text()).get("pad_token", pad)
        pad = p["content"] if isinstance(p, dict) else p
    tok = Tokenizer.from_file(str(model / "textual/tokenizer.json"))
    tok.enable_padding(length=ctx, pad_token=pad, pad_id=tok.token_to_id(pad))
    tok.enable_truncation(max_length=ctx)
    return tok


def encode(tok, texts: list[str]):
    """Immich's text input: whitespace collapsed, the tokenizer's special tokens, fixed padding."""
    return [tok.encode(" ".join(t.split())) for t in texts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["tensor", "images", "texts"])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    ap.add_argument("items", nargs="*")
    a = ap.parse_intermixed_args()
    if a.command == "tensor":
        cfg = load_cfg(a.model)
        a.out.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(a.items):
            preprocess(Path(p), cfg).astype("<f4").tofile(a.out / f"{i}.bin")
    elif a.command == "images":
        cfg = load_cfg(a.model)
        sess = session(a.model / "visual/model.onnx")
        x = np.stack([preprocess(Path(p), cfg) for p in a.items])
        if sess.get_inputs()[0].type == "tensor(uint8)":
            raise SystemExit("reference covers float32 NCHW image inputs")
        json.dump({"embeddings": run_rows(sess, x).tolist()}, sys.stdout)
    else:
        tok = tokenizer(a.model)
        encodings = encode(tok, a.items)
        ids, masks = [e.ids for e in encodings], [e.attention_mask for e in encodings]
        sess = session(a.model / "textual/model.onnx")
        # Fed by name, as Immich does: `text` (OpenAI/open_clip) or `input_ids` + `attention_mask`
        # (M-CLIP), each in the type its graph declares.
        feeds = {}
        for inp in sess.get_inputs():
            rows = masks if inp.name == "attention_mask" else ids
            feeds[inp.name] = np.array(rows, dtype=np.int64 if inp.type == "tensor(int64)" else np.int32)
        emb = run_rows(sess, feeds)
        json.dump({"ids": ids, "masks": masks, "embeddings": emb.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
