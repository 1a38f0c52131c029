#!/usr/bin/env python3
"""Writes the parity test images: real photo sizes with natural-image statistics (smooth colour
fields, edges, texture, noise) in every colour type and container clipsight must handle.

    make_images.py OUTDIR
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def natural(w: int, h: int, seed: int) -> np.ndarray:
    """uint8 [h, w, 3]: low-frequency colour gradients + a few hard-edged shapes + texture + noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(0.5, 4) / w, rng.uniform(0.5, 4) / h
            img[..., c] += rng.uniform(20, 50) * np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 6.3))
        img[..., c] += rng.uniform(80, 170)
    for _ in range(6):  # edges
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.25) * min(w, h)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = img[mask] * 0.4 + rng.uniform(0, 255, 3) * 0.6
    img += rng.normal(0, 6, img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(natural(4000, 3000, 1)).save(out / "photo_4000x3000.jpg", quality=90)
    Image.fromarray(natural(1080, 1920, 2)).save(out / "portrait_1080x1920.jpg", quality=90)
    rotated = Image.fromarray(natural(1600, 1200, 3))
    exif = rotated.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90° CW to display
    rotated.save(out / "exif_orientation6.jpg", quality=90, exif=exif)
    rgba = np.dstack([natural(800, 600, 4), np.tile(np.linspace(0, 255, 800, dtype=np.uint8), (600, 1))])
    Image.fromarray(rgba, "RGBA").save(out / "alpha_800x600.png")
    Image.fromarray(natural(640, 480, 5)[..., 0], "L").save(out / "gray_640x480.png")
    la = np.dstack([natural(500, 500, 6)[..., 1], np.full((500, 500), 200, np.uint8)])
    Image.fromarray(la, "LA").save(out / "gray_alpha_500x500.png")
    g16 = natural(700, 500, 7)[..., 2].astype(np.uint16) * 257
    Image.fromarray(g16).save(out / "gray16_700x500.png")
    Image.fromarray(natural(900, 600, 8)).convert("CMYK").save(out / "cmyk_900x600.jpg", quality=92)
    Image.fromarray(natural(37, 23, 9)).save(out / "tiny_37x23.png")
    Image.fromarray(natural(300, 200, 10)).convert("P", palette=Image.ADAPTIVE).save(out / "palette_300x200.gif")
    Image.fromarray(natural(640, 480, 11)).save(out / "lossless_640x480.webp", lossless=True)
    Image.fromarray(natural(320, 240, 12)).save(out / "bitmap_320x240.bmp")
    Image.fromarray(natural(400, 300, 13)).save(out / "scan_400x300.tiff")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
