#!/usr/bin/env python3
"""Camera-RAW test media, for tests/integration/media.rs: DNGs written by PiDNG (a maintained DNG
writer) from the pixels of PNG scenes, as a camera's sensor would have seen them.

    python make_raw.py SRC_DIR OUT_DIR REF_DIR

For each PNG in SRC_DIR: OUT_DIR/NAME.dng, a 12-bit RGGB Bayer mosaic of the picture (linear
light, no preview inside: the decoder must demosaic it) whose camera is "Fixture RawCam", taken
2023-04-05 06:07:08; and REF_DIR/NAME.dng.png, the same file developed by LibRaw (rawpy), the
reference a decode is compared with. Also OUT_DIR/broken.dng: the first 2 kB of a DNG.
"""
import sys
from pathlib import Path

import numpy as np
import rawpy
from PIL import Image
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, Orientation, PhotometricInterpretation

BITS = 12
WHITE = (1 << BITS) - 1
# XYZ (D65) -> linear sRGB: the camera's colour matrix when its sensor records linear sRGB.
XYZ_TO_SRGB = [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]


def mosaic(picture: Image.Image) -> np.ndarray:
    """The RGGB Bayer samples a sensor recording the picture's linear light would read."""
    srgb = np.asarray(picture.convert("RGB"), dtype=np.float64) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    h, w = linear.shape[0] & ~1, linear.shape[1] & ~1
    linear = linear[:h, :w]
    raw = np.empty((h, w), dtype=np.float64)
    raw[0::2, 0::2] = linear[0::2, 0::2, 0]
    raw[0::2, 1::2] = linear[0::2, 1::2, 1]
    raw[1::2, 0::2] = linear[1::2, 0::2, 1]
    raw[1::2, 1::2] = linear[1::2, 1::2, 2]
    return np.round(raw * WHITE).astype(np.uint16)


def write_dng(raw: np.ndarray, target: Path) -> None:
    h, w = raw.shape
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, Orientation.Horizontal)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, BITS)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevel, 0)
    t.set(Tag.WhiteLevel, WHITE)
    t.set(Tag.ColorMatrix1, [[round(v * 10000), 10000] for row in XYZ_TO_SRGB for v in row])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]])
    t.set(Tag.Make, "Fixture")
    t.set(Tag.Model, "RawCam")
    t.set(Tag.UniqueCameraModel, "Fixture RawCam")
    t.set(Tag.DateTimeOriginal, "2023:04:05 06:07:08")
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    converter = RAW2DNG()
    converter.options(t, path=str(target.parent), compress=False)
    converter.convert(raw, filename=target.stem)


def main():
    src, out, ref = (Path(p) for p in sys.argv[1:4])
    out.mkdir(parents=True, exist_ok=True)
    ref.mkdir(parents=True, exist_ok=True)
    for png in sorted(src.glob("*.png")):
        target = out / f"{png.stem}.dng"
        write_dng(mosaic(Image.open(png)), target)
        with rawpy.imread(str(target)) as raw:
            developed = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
        Image.fromarray(developed).save(ref / f"{target.name}.png")
    first = sorted(out.glob("*.dng"))[0]
    (out / "broken.dng").write_bytes(first.read_bytes()[:2048])


if __name__ == "__main__":
    main()
