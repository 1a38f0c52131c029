#!/usr/bin/env python3
"""Export a trained tiny CLIP checkpoint to ONNX in Immich's model-repository layout.

    python export.py [--ckpt .cache/tiny_clip.pt] [--out ../../tests/fixtures/models/clipsight-tiny]
    python export.py --ckpt .cache/tiny_siglip.pt --out ../../tests/fixtures/models/clipsight-tiny-siglip

A checkpoint trained with the sigmoid loss (`train.py --loss sigmoid`) is written in SigLIP's
layout: config.json with open_clip's `init_logit_bias` (-10), the trained `logit_scale` and
`logit_bias` (which Immich's own exports lack), a 64-token context and
`tokenizer_kwargs.clean = "canonicalize"`; preprocess_cfg.json with mean/std 0.5 and `squash`.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

import scenes
from model import TextualExport, TinyClip, TinyClipConfig, VisualExport
from tokenizer import ClipTextEncoder, write_tokenizer_files

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent.parent / "tests" / "fixtures" / "models" / "clipsight-tiny"
OPSET = 17


def open_clip_config(cfg: TinyClipConfig, logit_scale: float, logit_bias: float | None = None) -> dict:
    if cfg.loss == "sigmoid":
        return {
            "embed_dim": cfg.embed_dim,
            "init_logit_bias": -10,
            "vision_cfg": {"image_size": cfg.image_size, "type": "tiny_cnn", "widths": list(cfg.cnn_widths),
                           "head_channels": cfg.cnn_head_channels, "hidden": cfg.cnn_hidden},
            "text_cfg": {"context_length": cfg.context_length, "vocab_size": cfg.vocab_size,
                         "tokenizer_kwargs": {"clean": "canonicalize"},
                         "width": cfg.text_width, "heads": cfg.text_heads, "layers": cfg.text_layers,
                         "token_embedding_dim": cfg.token_dim, "mlp_ratio": cfg.mlp_ratio},
            "logit_scale": logit_scale,
            "logit_bias": logit_bias,
        }
    return {
        "embed_dim": cfg.embed_dim,
        "vision_cfg": {"image_size": cfg.image_size, "type": "tiny_cnn", "widths": list(cfg.cnn_widths),
                       "head_channels": cfg.cnn_head_channels, "hidden": cfg.cnn_hidden},
        "text_cfg": {"context_length": cfg.context_length, "vocab_size": cfg.vocab_size,
                     "width": cfg.text_width, "heads": cfg.text_heads, "layers": cfg.text_layers,
                     "token_embedding_dim": cfg.token_dim, "mlp_ratio": cfg.mlp_ratio},
        "logit_scale": logit_scale,
    }


def preprocess_cfg(cfg: TinyClipConfig) -> dict:
    if cfg.loss == "sigmoid":
        return {"size": [cfg.image_size, cfg.image_size], "mode": "RGB", "mean": scenes.SIGLIP_MEAN,
                "std": scenes.SIGLIP_STD, "interpolation": "bicubic", "resize_mode": "squash", "fill_color": 0}
    return {"size": [cfg.image_size, cfg.image_size], "mode": "RGB", "mean": scenes.MEAN, "std": scenes.STD,
            "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0}


def export_one(module, dummy, path: Path, in_name: str, out_name: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, (dummy,), str(path), input_names=[in_name], output_names=[out_name],
                      dynamic_axes={in_name: {0: "batch_size"}, out_name: {0: "batch_size"}},
                      opset_version=OPSET, do_constant_folding=True, dynamo=False)
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)


def max_diff(module, sess, inputs) -> float:
    with torch.no_grad():
        ref = module(torch.from_numpy(inputs)).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: inputs})[0]
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.abs(got - ref).max())


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, default=HERE / ".cache" / "tiny_clip.pt")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    c = dict(ck["config"])
    c["cnn_widths"] = tuple(c["cnn_widths"])
    cfg = TinyClipConfig(**c)
    model = TinyClip(cfg)
    model.load_state_dict(ck["state_dict"])
    model.eval()
    out = a.out
    (out / "visual").mkdir(parents=True, exist_ok=True)
    (out / "textual").mkdir(parents=True, exist_ok=True)
    scale = float(math.exp(model.logit_scale.item()))
    bias = round(float(model.logit_bias.item()), 4) if cfg.loss == "sigmoid" else None
    (out / "config.json").write_text(json.dumps(open_clip_config(cfg, round(scale, 4), bias), indent=2) + "\n")
    (out / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess_cfg(cfg)) + "\n")
    write_tokenizer_files(out / "textual", context_length=cfg.context_length)

    vis, txt = VisualExport(model).eval(), TextualExport(model).eval()
    export_one(vis, torch.zeros(2, 3, cfg.image_size, cfg.image_size), out / "visual" / "model.onnx",
               "image", "image_embedding")
    export_one(txt, torch.full((2, cfg.context_length), 49407, dtype=torch.int32), out / "textual" / "model.onnx",
               "text", "text_embedding")

    # Check against PyTorch on real inputs, batch sizes 1, 7 and 16
    so = ort.SessionOptions()
    vs = ort.InferenceSession(str(out / "visual" / "model.onnx"), so, providers=["CPUExecutionProvider"])
    ts = ort.InferenceSession(str(out / "textual" / "model.onnx"), so, providers=["CPUExecutionProvider"])
    assert [i.name for i in vs.get_inputs()] == ["image"] and vs.get_outputs()[0].name == "image_embedding"
    assert [i.name for i in ts.get_inputs()] == ["text"] and ts.get_outputs()[0].name == "text_embedding"
    assert ts.get_inputs()[0].type == "tensor(int32)" and vs.get_inputs()[0].type == "tensor(float)"
    print("visual input", vs.get_inputs()[0].shape, "output", vs.get_outputs()[0].shape)
    print("textual input", ts.get_inputs()[0].shape, "output", ts.get_outputs()[0].shape)
    enc = ClipTextEncoder(out / "textual" / "tokenizer.json", out / "textual" / "tokenizer_config.json",
                          context_length=cfg.context_length)
    caps, imgs = [], []
    for i in range(16):
        img, spec = scenes.scene(424242, i)
        imgs.append(scenes.resize_crop(img, cfg.image_size))
        caps.append(scenes.canonical_caption(spec))
    pcfg = preprocess_cfg(cfg)
    x = ((np.stack(imgs).astype(np.float32) / 255.0 - np.array(pcfg["mean"], np.float32)) / np.array(pcfg["std"], np.float32))
    x = np.moveaxis(x, -1, -3).astype(np.float32)
    ids = enc.encode_batch(caps + ["a photo of a cat", "x " * 100])
    diffs = {}
    for b in (1, 7, 16):
        diffs[f"visual_b{b}"] = max_diff(vis, vs, x[:b])
        diffs[f"textual_b{b}"] = max_diff(txt, ts, ids[:b])
    diffs["textual_b18"] = max_diff(txt, ts, ids)
    print("max abs diff onnxruntime vs torch:", json.dumps(diffs))
    assert max(diffs.values()) < 1e-4, diffs
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    print(json.dumps(sizes, indent=1))
    print("total bytes", sum(sizes.values()))
    (HERE / ".cache" / "export_report.json").write_text(json.dumps({"max_abs_diff": diffs, "sizes": sizes,
                                                                    "logit_scale": scale, "logit_bias": bias}, indent=2))


if __name__ == "__main__":
    main()
