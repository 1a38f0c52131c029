#!/usr/bin/env python3
"""Writes the bad-input corpus: files an indexer meets in real photo archives that must be
reported and skipped (or indexed, when they are odd but valid) without stopping a run.

    make_bad_inputs.py OUTDIR

Writes OUTDIR/<case>.<ext> and prints a JSON object {file: "indexed" | "reported"}.
"""
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

from make_raw import mosaic, write_dng


def scene(w=96, h=96, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w), (y * 255 // h), np.full((h, w), 120)], -1).astype(np.float32)
    img += rng.normal(0, 8, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def png_bytes(img, **kw):
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    expect = {}

    def write(name, data, outcome):
        (out / name).write_bytes(data)
        expect[name] = outcome

    buf = io.BytesIO()
    scene(seed=1).save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    write("truncated.jpg", jpeg[: len(jpeg) // 3], "reported")
    good_png = png_bytes(scene(seed=2))
    corrupt = bytearray(good_png)
    idat = corrupt.find(b"IDAT")
    for i in range(idat + 8, min(idat + 200, len(corrupt) - 12)):
        corrupt[i] ^= 0x5A
    write("corrupt.png", bytes(corrupt), "reported")
    write("zero-bytes.jpg", b"", "reported")
    write("one-pixel.png", png_bytes(Image.new("RGB", (1, 1), (200, 30, 30))), "indexed")
    # A valid PNG header claiming 100000 x 100000 RGB pixels (a decompression bomb), with a tiny IDAT.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    write("bomb.png", bomb, "reported")
    frames = [scene(seed=s) for s in (3, 4, 5)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    write("animated.gif", buf.getvalue(), "indexed")
    buf = io.BytesIO()
    scene(seed=6).convert("CMYK").save(buf, format="JPEG", quality=90)
    write("cmyk.jpg", buf.getvalue(), "indexed")
    sixteen = Image.fromarray((np.asarray(scene(seed=7).convert("L"), np.uint16) * 257).astype(np.uint16))
    write("sixteen-bit.png", png_bytes(sixteen), "indexed")
    write("gray-alpha.png", png_bytes(scene(seed=8).convert("LA")), "indexed")
    write("text-named.jpg", b"this is a shopping list, not a photo\n", "reported")
    (out / "folder-named.jpg").mkdir(exist_ok=True)
    (out / "folder-named.jpg" / "inside.png").write_bytes(png_bytes(scene(seed=9)))
    expect["folder-named.jpg/inside.png"] = "indexed"
    write("notes.txt", b"not an image, not named like one\n", "ignored")
    # HEIF (pillow-heif) and AVIF (Pillow): valid ones, cut-off ones, a box header with nothing
    # after it, and an MP4 video named like a photo.
    pillow_heif.register_heif_opener()
    for ext, fmt in (("heic", "HEIF"), ("avif", "AVIF")):
        buf = io.BytesIO()
        scene(seed=11).save(buf, format=fmt, quality=80)
        data = buf.getvalue()
        write(f"phone.{ext}", data, "indexed")
        write(f"truncated.{ext}", data[: len(data) // 2], "reported")
    write("ftyp-only.avif", struct.pack(">I", 24) + b"ftypavif\0\0\0\0avifmif1" + bytes(64), "reported")
    write("video-named.heic", struct.pack(">I", 24) + b"ftypisom\0\0\0\0isommp42" + bytes(64), "reported")

    # Videos (Debian's FFmpeg): a valid one, one cut off before its index, one with sound and no
    # picture, one with a picture stream and no frame, Matroska and AVI headers with nothing
    # after them, and a photo named like a video (read by its content).
    def ffmpeg(*args):
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)

    clip = out / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=10", "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip))
    expect["clip.mp4"] = "indexed"
    write("truncated.mp4", clip.read_bytes()[: clip.stat().st_size // 2], "reported")
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", "-f", "mp4", str(out / "no-picture.mp4"))
    expect["no-picture.mp4"] = "reported"
    ffmpeg("-f", "lavfi", "-i", "color=s=64x64", "-frames:v", "0", "-c:v", "libx264", "-f", "mp4", str(out / "no-frames.mp4"))
    expect["no-frames.mp4"] = "reported"
    write("header-only.mkv", bytes([0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x88]) + b"matroska" + bytes(200), "reported")
    write("header-only.avi", b"RIFF" + struct.pack("<I", 200) + b"AVI LIST" + bytes(200), "reported")
    buf = io.BytesIO()
    scene(seed=12).save(buf, format="JPEG", quality=85)
    write("photo-named.mov", buf.getvalue(), "indexed")

    # Camera RAW: a DNG (PiDNG) without a preview, the same cut in half, and RAF, CR3 and ORF
    # signatures with nothing readable after them.
    write_dng(mosaic(scene(seed=13)), out / "camera.dng")
    expect["camera.dng"] = "indexed"
    data = (out / "camera.dng").read_bytes()
    write("truncated.dng", data[: len(data) // 2], "reported")
    write("header-only.raf", b"FUJIFILMCCD-RAW 0201FF383501" + bytes(300), "reported")
    write("header-only.cr3", struct.pack(">I", 24) + b"ftypcrx \0\0\0\x01crx isom" + bytes(300), "reported")
    write("garbage.orf", b"IIRO\x08\0\0\0" + bytes(range(256)) * 4, "reported")
    print(json.dumps(expect))


if __name__ == "__main__":
    main()
