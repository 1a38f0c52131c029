#!/usr/bin/env python3
"""The peer baseline for `clipsight bench index`: the plain Python pipeline rclip and Immich use —
PIL decode, PIL bicubic resize + centre crop, numpy normalise, ONNX Runtime in batches — one
process, files in order, on the same model and photos.

    peer_index.py --model DIR --photos DIR [--batch 32] [--threads N] [--device cpu|cuda]

With --device cuda it runs on ONNX Runtime's CUDA provider (onnxruntime-gpu), as clipsight does
when it indexes on a GPU, so the two are compared on the same device.

Prints {"images", "seconds", "images_per_s", "peak_rss_mb"} as JSON.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def preprocess(path, size, mean, std):
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        scale = size / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
        x = np.asarray(im, np.float32) / 255.0
    return ((x - mean) / std).transpose(2, 0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = ap.parse_args()
    model = Path(a.model)
    cfg = json.loads((model / "visual" / "preprocess_cfg.json").read_text())
    size = cfg["size"][0] if isinstance(cfg["size"], list) else cfg["size"]
    mean = np.array(cfg["mean"], np.float32)
    std = np.array(cfg["std"], np.float32)
    opts = ort.SessionOptions()
    if a.threads:
        opts.intra_op_num_threads = a.threads
    providers = ["CPUExecutionProvider"]
    if a.device == "cuda":
        ort.preload_dlls()
        providers.insert(0, "CUDAExecutionProvider")
    sess = ort.InferenceSession(str(model / "visual" / "model.onnx"), opts, providers=providers)
    if sess.get_providers()[0] != providers[0]:
        raise SystemExit(f"{providers[0]} is unavailable (session providers: {sess.get_providers()})")
    inp = sess.get_inputs()[0]
    files = sorted(p for p in Path(a.photos).rglob("*") if p.suffix.lower() in EXTS)
    started = time.perf_counter()
    batch = []
    done = 0
    fixed = isinstance(inp.shape[0], int)
    for p in files:
        batch.append(preprocess(p, size, mean, std))
        if len(batch) == a.batch or p == files[-1]:
            x = np.stack(batch)
            outs = [sess.run(None, {inp.name: x[i : i + 1]})[0] for i in range(len(x))] if fixed else [sess.run(None, {inp.name: x})[0]]
            e = np.concatenate(outs)
            e /= np.linalg.norm(e, axis=1, keepdims=True)
            done += len(batch)
            batch = []
    seconds = time.perf_counter() - started
    # VmHWM of this process image (ru_maxrss would include the parent's, kept across execve).
    status = Path("/proc/self/status").read_text()
    rss = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:")) / 1024
    print(json.dumps({"images": done, "seconds": seconds, "images_per_s": done / seconds, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
