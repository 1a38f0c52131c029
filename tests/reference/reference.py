#!/usr/bin/env python3
"""The Python reference clipsight is checked against: open_clip's preprocessing (PIL resize +
torchvision-style center crop + numpy normalisation), Immich's tokenisation (Hugging Face
`tokenizers` padded/truncated to the context length with tokenizer_config.json's pad token), and
plain ONNX Runtime inference.

    reference.py tensor  --model DIR --out OUTDIR IMAGE...   # raw float32 CHW per image (i.bin)
    reference.py images  --model DIR IMAGE...                # {"embeddings": [[...], ...]}
    reference.py texts   --model DIR [--lang-code C] TEXT... # {"ids": [[...]], "masks": [[...]], "embeddings": [[...]]}
    reference.py classify --model DIR [--lang-code C] --image IMAGE LABEL...  # {"probs": [...], "scoring": "softmax"|"sigmoid"}

Texts are cleaned as Immich cleans them (whitespace collapsed; open_clip's `canonicalize` when
config.json's text_cfg.tokenizer_kwargs.clean asks), and for a tokenizer that holds FLORES-200
codes (NLLB) written after `--lang-code`. `classify` scores as the model was trained: a softmax
at config.json's logit_scale (100 when absent), or, for a config with a logit bias
(`logit_bias`, else `init_logit_bias`), the sigmoid of scale · cosine + bias with the scale from
`logit_scale` (10, SigLIP's initial value, when absent).

Only numpy, Pillow, tokenizers and onnxruntime are needed (scripts/requirements.txt).
"""
from __future__ import annotations

import argparse
import json
import string
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
    mode = cfg.get("resize_mode", "shortest")
    assert mode in ("shortest", "squash") and th == tw, "reference covers open_clip's shortest and squash transforms"
    interp = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST,
              "lanczos": Image.LANCZOS}[cfg.get("interpolation", "bicubic")]
    if mode == "squash":  # open_clip: Resize((h, w)), no crop
        im = im.resize((tw, th), interp)
        return normalise(im, cfg)
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
    return normalise(im, cfg)


def normalise(im: Image.Image, cfg: dict) -> np.ndarray:
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


def encode(tok, texts: list[str], model: Path, lang_code: str | None):
    """Immich's text input: whitespace collapsed (canonicalized when the config asks), the language
    code first for NLLB, the tokenizer's special tokens, fixed padding."""
    text_cfg = json.loads((model / "config.json").read_text()).get("text_cfg", {})
    canonicalize = (text_cfg.get("tokenizer_kwargs") or {}).get("clean") == "canonicalize"
    nllb = tok.token_to_id("eng_Latn") is not None
    out = []
    for t in texts:
        t = " ".join(t.split())
        if canonicalize:
            t = t.translate(str.maketrans("", "", string.punctuation)).lower()
        if nllb and lang_code:
            t = lang_code + t
        out.append(tok.encode(t))
    return out


def embed_texts(model: Path, texts: list[str], lang_code: str | None):
    tok = tokenizer(model)
    encodings = encode(tok, texts, model, lang_code)
    ids, masks = [e.ids for e in encodings], [e.attention_mask for e in encodings]
    sess = session(model / "textual/model.onnx")
    # Fed by name, as Immich does: `text` (OpenAI/open_clip) or `input_ids` + `attention_mask`
    # (M-CLIP), each in the type its graph declares.
    feeds = {}
    for inp in sess.get_inputs():
        rows = masks if inp.name == "attention_mask" else ids
        feeds[inp.name] = np.array(rows, dtype=np.int64 if inp.type == "tensor(int64)" else np.int32)
    return ids, masks, run_rows(sess, feeds)


def classify(model: Path, image: Path, labels: list[str], lang_code: str | None) -> dict:
    cfg = json.loads((model / "config.json").read_text())
    sess = session(model / "visual/model.onnx")
    img = run_rows(sess, preprocess(image, load_cfg(model))[None])[0]
    cos = embed_texts(model, labels, lang_code)[2] @ img
    bias = cfg.get("logit_bias", cfg.get("init_logit_bias"))
    if bias is None:
        logits = cfg.get("logit_scale", 100.0) * cos
        e = np.exp(logits - logits.max())
        return {"probs": (e / e.sum()).tolist(), "scoring": "softmax"}
    return {"probs": (1.0 / (1.0 + np.exp(-(cfg.get("logit_scale", 10.0) * cos + bias)))).tolist(), "scoring": "sigmoid"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["tensor", "images", "texts", "classify"])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--lang-code", help="FLORES-200 code written before each text (NLLB)")
    ap.add_argument("--image", type=Path, help="classify: the image")
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
    elif a.command == "classify":
        json.dump(classify(a.model, a.image, a.items, a.lang_code), sys.stdout)
    else:
        ids, masks, emb = embed_texts(a.model, a.items, a.lang_code)
        json.dump({"ids": ids, "masks": masks, "embeddings": emb.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
