#!/usr/bin/env python3
"""Test videos made by Debian's FFmpeg from the fixture model's scenes, for
tests/integration/video.rs.

    python make_videos.py SCENES_DIR OUT_DIR

SCENES_DIR holds scenes written by tools/train_tiny_clip/scenes.py (with manifest.json). Writes:
- moment.mp4 (H.264, 30 s, 640x360, with a creation date and a GPS position): a single-object
  scene that is not a red circle for seconds 0-12, a red circle for 12-15, another scene for
  15-30. moment.webm: the same pictures as VP9 in WebM. moment.mov: QuickTime with Apple's
  make/model/date/location keys.
- black.mp4: 6 s of black. audio.mp4: sound and no picture. zero.mp4: a video stream with no
  frame. broken.mp4: the first 4 kB of moment.mp4. long.mkv: 10 hours of 64x64 pictures at 1 fps.
Prints the JSON {"before": FILE, "circle": FILE, "after": FILE} of the scenes used.
"""
import json
import subprocess
import sys
from pathlib import Path

scenes, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
images = json.loads((scenes / "manifest.json").read_text())["images"]
singles = [i for i in images if i["labels"].get("shape")]
circle = next(i for i in singles if i["labels"] == {"colour": "red", "shape": "circle"})
others = [i for i in singles if i["labels"]["colour"] != "red" and i["labels"]["shape"] != "circle"]
before, after = others[0], others[1]


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


# The three scenes, as a concat list with durations (the last entry repeated, as concat wants).
listing = out / "scenes.txt"
parts = [(before, 12), (circle, 3), (after, 15)]
listing.write_text("".join(f"file '{(scenes / p['file']).resolve()}'\nduration {d}\n" for p, d in parts) + f"file '{(scenes / after['file']).resolve()}'\n")
picture = ["-f", "concat", "-safe", "0", "-i", str(listing), "-vf", "fps=30,scale=640:360,format=yuv420p", "-t", "30"]
ffmpeg(*picture, "-c:v", "libx264", "-preset", "veryfast",
       "-metadata", "creation_time=2023-07-14T18:30:00Z", "-metadata", "location=+48.8584+002.2945/", str(out / "moment.mp4"))
ffmpeg(*picture, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k", str(out / "moment.webm"))
ffmpeg(*picture, "-c:v", "libx264", "-preset", "veryfast", "-movflags", "use_metadata_tags",
       "-metadata", "com.apple.quicktime.make=Apple", "-metadata", "com.apple.quicktime.model=iPhone 15",
       "-metadata", "com.apple.quicktime.creationdate=2024-05-01T12:34:56+0200",
       "-metadata", "com.apple.quicktime.location.ISO6709=-33.8568+151.2153+005.000/", str(out / "moment.mov"))
ffmpeg("-f", "lavfi", "-i", "color=c=black:s=320x240:r=15", "-t", "6", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out / "black.mp4"))
ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac", "-f", "mp4", str(out / "audio.mp4"))
ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:r=1", "-frames:v", "0", "-c:v", "libx264", "-f", "mp4", str(out / "zero.mp4"))
(out / "broken.mp4").write_bytes((out / "moment.mp4").read_bytes()[:4096])
ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:r=1", "-t", "36000", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out / "long.mkv"))
listing.unlink()
print(json.dumps({"before": before["file"], "circle": circle["file"], "after": after["file"]}))
