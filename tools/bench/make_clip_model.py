#!/usr/bin/env python3
"""A random-weight CLIP of the true ViT-B/32 size in Immich's layout, for the benches: it costs
what `ViT-B-32__openai` costs (same shapes, same operators), and its answers mean nothing.

    python make_clip_model.py OUT_DIR [--tokenizer tests/fixtures/models/clipsight-tiny/textual]

Built with `onnx.helper` and numpy alone (no torch: the project's .venv has what it needs), in
OpenAI CLIP's architecture:
- image tower (87.8 M parameters): `image` float32 [batch, 3, 224, 224] → 32×32 patch convolution
  to width 768, class token, 50 learned positions, pre-LayerNorm, 12 residual attention blocks
  (12 heads, MLP 3072, QuickGELU), LayerNorm of the class token, projection to 512, L2-normalised;
- text tower (63.2 M): `text` int32 [batch, 77] → token embedding 49,408 × 512, 77 positions, 12
  causal blocks (8 heads, MLP 2048, QuickGELU), final LayerNorm, the features at argmax(ids) (the
  first end-of-text), projection 512 × 512, L2-normalised.
The tokenizer (CLIP's BPE, the one ViT-B/32 uses) is copied from the English fixture;
preprocess_cfg.json is OpenAI's (224, bicubic, shortest side, OpenAI mean/std). Weights are drawn
from N(0, 0.02²) with a fixed seed, LayerNorms start at 1/0, so activations stay finite.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent.parent
OPSET = 17


class Graph:
    """Nodes and initializers of one graph, with fresh names."""

    def __init__(self, rng: np.random.Generator):
        self.nodes, self.inits, self.rng, self.n = [], [], rng, 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, array: np.ndarray, hint: str = "c") -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, *shape: int, hint: str = "w") -> str:
        return self.const((self.rng.standard_normal(shape) * 0.02).astype(np.float32), hint)

    def op(self, kind: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def ints(self, *values: int) -> str:
        return self.const(np.array(values, np.int64), "shape")

    def layer_norm(self, x: str, width: int) -> str:
        return self.op("LayerNormalization", [x, self.const(np.ones(width, np.float32)), self.const(np.zeros(width, np.float32))], axis=-1, epsilon=1e-5)

    def linear(self, x: str, fan_in: int, fan_out: int, bias: bool = True) -> str:
        y = self.op("MatMul", [x, self.weight(fan_in, fan_out)])
        return self.op("Add", [y, self.const(np.zeros(fan_out, np.float32))]) if bias else y

    def quick_gelu(self, x: str) -> str:
        s = self.op("Sigmoid", [self.op("Mul", [x, self.const(np.array(1.702, np.float32))])])
        return self.op("Mul", [x, s])

    def block(self, x: str, width: int, heads: int, mask: str | None) -> str:
        """x + attention(LN(x)); then x + MLP(LN(x)); x is [N, L, width]."""
        qkv = self.linear(self.layer_norm(x, width), width, 3 * width)
        qkv = self.op("Reshape", [qkv, self.ints(0, 0, 3, heads, width // heads)])
        qkv = self.op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])  # [3, N, H, L, d]
        # A scalar index drops the axis: q, k, v are [N, H, L, d].
        q, k, v = (self.op("Gather", [qkv, self.const(np.array(i, np.int64))], axis=0) for i in range(3))
        scores = self.op("MatMul", [q, self.op("Transpose", [k], perm=[0, 1, 3, 2])])
        scores = self.op("Mul", [scores, self.const(np.array(1.0 / np.sqrt(width // heads), np.float32))])
        if mask is not None:
            scores = self.op("Add", [scores, mask])
        attended = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), v])  # [N, H, L, d]
        attended = self.op("Reshape", [self.op("Transpose", [attended], perm=[0, 2, 1, 3]), self.ints(0, 0, width)])
        x = self.op("Add", [x, self.linear(attended, width, width)])
        hidden = self.quick_gelu(self.linear(self.layer_norm(x, width), width, 4 * width))
        return self.op("Add", [x, self.linear(hidden, 4 * width, width)])

    def normalize(self, x: str) -> str:
        return self.op("Div", [x, self.op("ReduceL2", [x], axes=[1], keepdims=1)])

    def model(self, input_: onnx.ValueInfoProto, output: str, dim: int) -> onnx.ModelProto:
        out = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch_size", dim])
        graph = helper.make_graph(self.nodes, "clip", [input_], [out], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="clipsight make_clip_model.py")
        onnx.checker.check_model(m)
        return m


def visual(rng, size=224, patch=32, width=768, layers=12, heads=12, dim=512) -> onnx.ModelProto:
    g = Graph(rng)
    grid = size // patch
    x = g.op("Conv", ["image", g.weight(width, 3, patch, patch)], strides=[patch, patch])  # [N, W, g, g]
    x = g.op("Transpose", [g.op("Reshape", [x, g.ints(0, width, grid * grid)])], perm=[0, 2, 1])  # [N, g², W]
    first = g.op("Slice", [x, g.ints(0), g.ints(1), g.ints(1)])  # [N, 1, W]: the batch's shape for the class token
    cls = g.op("Add", [g.op("Mul", [first, g.const(np.array(0.0, np.float32))]), g.weight(1, 1, width)])
    x = g.op("Add", [g.op("Concat", [cls, x], axis=1), g.weight(grid * grid + 1, width)])
    x = g.layer_norm(x, width)
    for _ in range(layers):
        x = g.block(x, width, heads, None)
    x = g.layer_norm(g.op("Gather", [x, g.const(np.array(0, np.int64))], axis=1), width)
    y = g.normalize(g.op("MatMul", [x, g.weight(width, dim)], hint="embedding"))
    return g.model(helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch_size", 3, size, size]), y, dim)


def textual(rng, vocab=49408, context=77, width=512, layers=12, heads=8, dim=512) -> onnx.ModelProto:
    g = Graph(rng)
    ids = g.op("Cast", ["text"], to=TensorProto.INT64)
    x = g.op("Add", [g.op("Gather", [g.weight(vocab, width), ids], axis=0), g.weight(context, width)])
    mask = g.const(np.triu(np.full((context, context), -1e9, np.float32), 1), "causal_mask")
    for _ in range(layers):
        x = g.block(x, width, heads, mask)
    x = g.layer_norm(x, width)
    # The features at argmax(ids), the first end-of-text: a one-hot row times the sequence.
    ids_f = g.op("Cast", ["text"], to=TensorProto.FLOAT)  # ids < 2^24: exact; ArgMax on floats is everywhere
    eot = g.op("OneHot", [g.op("ArgMax", [ids_f], axis=1, keepdims=0), g.const(np.array(context, np.int64)), g.const(np.array([0, 1], np.float32))], axis=-1)
    pooled = g.op("Squeeze", [g.op("MatMul", [g.op("Unsqueeze", [eot, g.ints(1)]), x]), g.ints(1)])
    y = g.normalize(g.op("MatMul", [pooled, g.weight(width, dim)]))
    return g.model(helper.make_tensor_value_info("text", TensorProto.INT32, ["batch_size", context]), y, dim)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokenizer", type=Path, default=ROOT / "tests/fixtures/models/clipsight-tiny/textual")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    (a.out / "visual").mkdir(parents=True, exist_ok=True)
    (a.out / "textual").mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(a.tokenizer / name, a.out / "textual" / name)
    config = {"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12},
              "logit_scale": 100.0}
    (a.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (a.out / "visual" / "preprocess_cfg.json").write_text(json.dumps(
        {"size": [224, 224], "mode": "RGB", "mean": [0.48145466, 0.4578275, 0.40821073],
         "std": [0.26862954, 0.26130258, 0.27577711], "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0}) + "\n")
    for tower, build in (("visual", visual), ("textual", textual)):
        m = build(rng)
        params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
        onnx.save(m, str(a.out / tower / "model.onnx"))
        print(f"{tower}: {params:,} parameters, {(a.out / tower / 'model.onnx').stat().st_size:,} bytes", flush=True)


if __name__ == "__main__":
    main()
