#!/usr/bin/env python3
"""`clipsight model quantize`: dynamic int8 quantization of a model's MatMuls (and Gemms) with
ONNX Runtime's own tooling; weights become int8, activations are quantized on the fly.

    quantize.py SRC_MODEL_DIR DST_MODEL_DIR

Copies the Immich layout (config.json, preprocess_cfg.json, tokenizer files) and writes
visual/model.onnx and textual/model.onnx quantized.
"""
import shutil
import sys
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic


def main():
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    if dst.exists():
        sys.exit(f"{dst} exists; remove it or choose another destination")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.onnx", "*.onnx_data", "*.onnx.data"))
    for part in ("visual", "textual"):
        quantize_dynamic(
            str(src / part / "model.onnx"),
            str(dst / part / "model.onnx"),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
        print(f"{part}: {(src / part / 'model.onnx').stat().st_size >> 20} MiB -> {(dst / part / 'model.onnx').stat().st_size >> 20} MiB")


if __name__ == "__main__":
    main()
