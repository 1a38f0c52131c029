#!/usr/bin/env python3
"""HEIC and AVIF test media, written by maintained encoders (pillow-heif's libheif for HEIC,
Pillow's libavif for AVIF), for tests/integration/media.rs.

    python make_heif.py SRC_DIR OUT_DIR REF_DIR

For each PNG in SRC_DIR: OUT_DIR/NAME.heic and OUT_DIR/NAME.avif carrying EXIF (camera, date),
and REF_DIR/NAME.heic.png, REF_DIR/NAME.avif.png: the same files decoded by pillow-heif / Pillow
(the reference pixels). Also OUT_DIR/turned.heic: a 300x200 picture (blue left third, red rest)
with EXIF Orientation 6, which pillow-heif stores as an `irot` turn: upright it is 200x300 with
blue on top. And OUT_DIR/broken.heic: the first 300 bytes of a HEIC.
"""
import sys
from pathlib import Path

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()
src, out, ref = (Path(p) for p in sys.argv[1:4])
out.mkdir(parents=True, exist_ok=True)
ref.mkdir(parents=True, exist_ok=True)
exif = Image.Exif()
exif[0x010F] = "Apple"
exif[0x0110] = "iPhone 15"
exif[0x0132] = "2024:05:06 07:08:09"
for png in sorted(src.glob("*.png")):
    picture = Image.open(png).convert("RGB")
    for ext in ("heic", "avif"):
        target = out / f"{png.stem}.{ext}"
        picture.save(target, exif=exif.tobytes(), quality=95)
        Image.open(target).convert("RGB").save(ref / f"{target.name}.png")
turned = Image.new("RGB", (300, 200), (200, 30, 30))
turned.paste((30, 30, 200), (0, 0, 100, 200))
rotate = Image.Exif()
rotate[0x0112] = 6
turned.save(out / "turned.heic", exif=rotate.tobytes(), quality=90)
(out / "broken.heic").write_bytes((out / "turned.heic").read_bytes()[:300])
