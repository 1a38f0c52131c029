#!/usr/bin/env python3
"""Procedural scenes (one or two coloured shapes on a muted, textured background) with captions.

Only numpy + PIL: the Rust test suite runs this without torch.

    python scenes.py --out DIR --count N --seed S

writes DIR/000001.png ... and DIR/manifest.json:
    {"images": [{"file": "000001.png", "caption": "<canonical caption>",
                 "labels": {"colour": "red", "shape": "circle"}}, ...],   # labels only for 1-object images
     "zero_shot": {"colour": {"classes": [...], "prompts": [...]},
                   "shape":  {"classes": [...], "prompts": [...]}}}

Everything is deterministic: scene i of seed S is drawn from numpy.random.default_rng([S, i]).
Training uses seeds < 1000000; held-out evaluation uses seeds >= 1000000.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 256  # scenes are square, so the CLIP centre crop never cuts an object

COLOURS = {  # name -> RGB; saturated or extreme, backgrounds stay muted mid-tones
    "red": (220, 30, 35),
    "green": (35, 175, 50),
    "blue": (35, 70, 225),
    "yellow": (240, 220, 35),
    "orange": (250, 140, 15),
    "purple": (140, 40, 185),
    "white": (248, 248, 248),
    "black": (12, 12, 12),
}
SHAPES = ["circle", "square", "triangle", "star", "cross", "heart", "hexagon", "diamond"]
SIZES = ["small", "large"]
POSITIONS = ["left", "right", "top", "bottom", "centre"]
CENTRES = {"left": (0.26, 0.5), "right": (0.74, 0.5), "top": (0.5, 0.26), "bottom": (0.5, 0.74),
           "centre": (0.5, 0.5)}
RADIUS = {"small": (0.11, 0.13), "large": (0.20, 0.23)}  # fraction of SIZE

# Canonical (evaluation) phrases
POS_PHRASE = {"left": "on the left", "right": "on the right", "top": "at the top",
              "bottom": "at the bottom", "centre": "in the centre"}
# Synonyms used for training caption variants (canonical word first)
COLOUR_SYN = {c: [c] for c in COLOURS}
COLOUR_SYN["purple"] = ["purple", "violet"]
SHAPE_SYN = {
    "circle": ["circle", "ball", "disc", "round dot"],
    "square": ["square", "box", "block"],
    "triangle": ["triangle"],
    "star": ["star"],
    "cross": ["cross", "plus sign"],
    "heart": ["heart"],
    "hexagon": ["hexagon"],
    "diamond": ["diamond", "rhombus"],
}
SIZE_SYN = {"small": ["small", "little", "tiny"], "large": ["large", "big", "huge"]}
POS_SYN = {
    "left": ["on the left", "on the left side", "at the left"],
    "right": ["on the right", "on the right side", "at the right"],
    "top": ["at the top", "on top", "at the top of the image"],
    "bottom": ["at the bottom", "at the bottom of the image", "on the bottom"],
    "centre": ["in the centre", "in the middle", "in the center"],
}
PREFIXES = ["", "a photo of ", "an image of ", "a picture of ", "there is ", "a drawing of "]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def zero_shot() -> dict:
    return {
        "colour": {"classes": list(COLOURS),
                   "prompts": [f"a photo of {article(c)} {c} object" for c in COLOURS]},
        "shape": {"classes": list(SHAPES), "prompts": [f"a photo of {article(s)} {s}" for s in SHAPES]},
    }


# ------------------------------------------------------------------------------------------
# Drawing
# ------------------------------------------------------------------------------------------
def _unit_polygon(shape: str) -> np.ndarray:
    """Outline in unit coordinates (y down), roughly inside the unit circle."""
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], 1)
    if shape == "square":
        a = 0.82
        return np.array([[-a, -a], [a, -a], [a, a], [-a, a]])
    if shape == "triangle":
        t = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(t), np.sin(t) + 0.18], 1)
    if shape == "star":
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([r * np.cos(t), r * np.sin(t) + 0.08], 1)
    if shape == "cross":
        a, b = 0.3, 0.92
        return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b],
                         [-a, a], [-b, a], [-b, -a], [-a, -a]])
    if shape == "heart":
        t = np.linspace(0, 2 * np.pi, 80, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.stack([x / 17.0, (y + 2.5) / 17.0], 1)
    if shape == "hexagon":
        t = np.arange(6) * np.pi / 3
        return np.stack([np.cos(t), np.sin(t)], 1)
    if shape == "diamond":
        return np.array([[0, -1.0], [0.62, 0], [0, 1.0], [-0.62, 0]])
    raise ValueError(shape)


_POLYS = {s: _unit_polygon(s) for s in SHAPES}
_GRID = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE


def _muted(rng) -> np.ndarray:
    level = rng.uniform(80, 170)
    return np.clip(level + rng.uniform(-18, 18, 3), 0, 255)


def _background(rng) -> np.ndarray:
    kind = rng.integers(4)
    yy, xx = _GRID
    c1, c2 = _muted(rng), _muted(rng)
    if kind == 0:  # smooth blotchy noise
        g = rng.uniform(-1, 1, (6, 6, 3)).astype(np.float32)
        up = np.stack([np.asarray(Image.fromarray(g[..., k]).resize((SIZE, SIZE), Image.BICUBIC))
                       for k in range(3)], -1)
        img = c1 + up * rng.uniform(8, 22)
    elif kind == 1:  # linear gradient
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) * 0.707 + 0.5
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif kind == 2:  # stripes
        a = rng.uniform(0, np.pi)
        period = rng.uniform(0.04, 0.15)
        s = np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / period)
        if rng.random() < 0.5:
            s = np.sign(s)
        c2 = c1 + rng.uniform(-25, 25, 3)
        t = (s[..., None] + 1) / 2
        img = c1 * (1 - t) + c2 * t
    else:  # checkerboard
        n = rng.integers(4, 16)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2)[..., None]
        c2 = c1 + rng.uniform(-22, 22, 3)
        img = c1 * (1 - t) + c2 * t
    return img.astype(np.float32)


def sample_scene(rng) -> dict:
    """A scene spec: {"objects": [{"colour","shape","size","position"}, ...]}."""
    if rng.random() < 0.5:
        objs = [{"colour": str(rng.choice(list(COLOURS))), "shape": str(rng.choice(SHAPES)),
                 "size": str(rng.choice(SIZES)), "position": str(rng.choice(POSITIONS))}]
    else:
        pair = ("left", "right") if rng.random() < 0.5 else ("top", "bottom")
        while True:
            objs = [{"colour": str(rng.choice(list(COLOURS))), "shape": str(rng.choice(SHAPES)),
                     "size": str(rng.choice(SIZES)), "position": p} for p in pair]
            if (objs[0]["colour"], objs[0]["shape"]) != (objs[1]["colour"], objs[1]["shape"]):
                break
    return {"objects": objs}


def render(spec: dict, rng) -> Image.Image:
    img = _background(rng)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for o in spec["objects"]:
        cx, cy = CENTRES[o["position"]]
        if o["position"] in ("left", "right"):
            cx += rng.uniform(-0.02, 0.02); cy += rng.uniform(-0.07, 0.07)
        elif o["position"] in ("top", "bottom"):
            cx += rng.uniform(-0.07, 0.07); cy += rng.uniform(-0.02, 0.02)
        else:
            cx += rng.uniform(-0.04, 0.04); cy += rng.uniform(-0.04, 0.04)
        r = rng.uniform(*RADIUS[o["size"]]) * SIZE
        a = math.radians(rng.uniform(-12, 12))
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        pts = _POLYS[o["shape"]] @ rot.T * r + np.array([cx * SIZE, cy * SIZE])
        col = np.clip(np.array(COLOURS[o["colour"]]) + rng.uniform(-14, 14, 3), 0, 255)
        draw.polygon([tuple(p) for p in pts.tolist()], fill=tuple(int(v) for v in col))
    arr = np.asarray(pil).astype(np.float32)
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(2, 8))
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))


# ------------------------------------------------------------------------------------------
# Captions
# ------------------------------------------------------------------------------------------
def _canon_obj(o: dict) -> str:
    return f"{with_article(o['size'] + ' ' + o['colour'] + ' ' + o['shape'])} {POS_PHRASE[o['position']]}"


def canonical_caption(spec: dict) -> str:
    """One fixed template naming every attribute of every object (left/top object first)."""
    return " and ".join(_canon_obj(o) for o in spec["objects"])


def _pick(rng, xs):
    return xs[int(rng.integers(len(xs)))]


def _obj_phrase(o: dict, rng, p_size=0.75, p_colour=0.9, p_pos=0.7, with_pos=True, stated=None) -> str:
    """A phrase naming the object `o`, some attributes left out. When `stated` is a list, the
    attributes the phrase names are appended to it as a dict (the phrase's meaning); the random
    draws are the same either way."""
    words, said = [], {"shape": o["shape"]}
    if rng.random() < p_size:
        words.append(_pick(rng, SIZE_SYN[o["size"]]))
        said["size"] = o["size"]
    if rng.random() < p_colour:
        words.append(_pick(rng, COLOUR_SYN[o["colour"]]))
        said["colour"] = o["colour"]
    words.append(_pick(rng, SHAPE_SYN[o["shape"]]))
    phrase = with_article(" ".join(words))
    if with_pos and rng.random() < p_pos:
        phrase += " " + _pick(rng, POS_SYN[o["position"]])
        said["position"] = o["position"]
    if stated is not None:
        stated.append(said)
    return phrase


def random_caption(spec: dict, rng, pos_scale: float = 1.0, size_scale: float = 1.0, meaning=None) -> str:
    """A training caption: templates, synonyms, attributes sometimes left out.

    pos_scale / size_scale multiply the probabilities that an object phrase states its position /
    size (1.0 = the shipped recipe; the random draws are the same whatever the scales). When
    `meaning` is a list, one dict per described object (the attributes the caption states) is
    appended to it."""
    objs = spec["objects"]
    kw = {"p_size": 0.75 * size_scale, "stated": meaning}
    prefix = _pick(rng, PREFIXES)
    if len(objs) == 1:
        o = objs[0]
        u = rng.random()
        if u < 0.06:
            if meaning is not None:
                meaning.append({"colour": o["colour"]})
            return f"a photo of {article(o['colour'])} {o['colour']} object"
        if u < 0.12:
            if meaning is not None:
                meaning.append({"shape": o["shape"]})
            return f"a photo of {article(o['shape'])} {o['shape']}"
        return prefix + _obj_phrase(o, rng, p_pos=0.7 * pos_scale, **kw)
    a, b = objs
    u = rng.random()
    if u < 0.45:  # positions stated per object, random order
        x, y = (a, b) if rng.random() < 0.5 else (b, a)
        return (prefix + _obj_phrase(x, rng, p_pos=0.8 * pos_scale, **kw) + " and "
                + _obj_phrase(y, rng, p_pos=0.8 * pos_scale, **kw))
    if u < 0.75:  # relational: each object's position is implied
        pa = _obj_phrase(a, rng, with_pos=False, stated=meaning)
        pb = _obj_phrase(b, rng, with_pos=False, stated=meaning)
        if meaning is not None:
            meaning[-2]["position"], meaning[-1]["position"] = a["position"], b["position"]
        if a["position"] == "left":
            rel = _pick(rng, [(pa, "to the left of", pb), (pb, "to the right of", pa),
                              (pa, "next to", pb), (pb, "next to", pa)])
        else:
            rel = _pick(rng, [(pa, "above", pb), (pb, "below", pa), (pa, "over", pb), (pb, "under", pa)])
        return prefix + " ".join(rel)
    pa = _obj_phrase(a, rng, with_pos=False, **kw)
    pb = _obj_phrase(b, rng, with_pos=False, **kw)
    x, y = (pa, pb) if rng.random() < 0.5 else (pb, pa)
    return prefix + _pick(rng, [f"{x} and {y}", f"{x} with {y}", f"two shapes: {x} and {y}"])


PARTIAL_NOUNS = ["object", "shape", "thing"]


def partial_caption(spec: dict, rng, meaning: list) -> str:
    """A caption naming a few attributes of *one* object of the scene ("red", "circle", "a red
    circle", "something small at the top", "a photo of a blue thing"), as people type queries.
    Its meaning (one dict) is appended to `meaning`; the scene satisfies it, and so does every
    other scene with such an object."""
    o = _pick(rng, spec["objects"])
    while True:
        said = {k: o[k] for k, p in (("colour", 0.6), ("shape", 0.6), ("size", 0.25), ("position", 0.25))
                if rng.random() < p}
        if "colour" in said or "shape" in said or (said and rng.random() < 0.15):
            break
    meaning.append(said)
    words = []
    if "size" in said:
        words.append(_pick(rng, SIZE_SYN[o["size"]]))
    if "colour" in said:
        words.append(_pick(rng, COLOUR_SYN[o["colour"]]))
    noun = _pick(rng, SHAPE_SYN[o["shape"]]) if "shape" in said else None
    pos = " " + _pick(rng, POS_SYN[o["position"]]) if "position" in said else ""
    u = rng.random()
    if u < 0.35 and "position" not in said:  # bare words, the way queries are typed
        return " ".join(words + ([noun] if noun else []))
    if noun is None:
        if words and rng.random() < 0.3:
            return "something " + " ".join(words) + pos
        noun = _pick(rng, PARTIAL_NOUNS)
    return _pick(rng, PREFIXES) + with_article(" ".join(words + [noun])) + pos


ATTRIBUTES = {"colour": list(COLOURS), "shape": SHAPES, "size": SIZES, "position": POSITIONS}


def encode_meaning(objects: list) -> np.ndarray:
    """Objects (dicts of some attributes) -> int8 [2, 5]: a present flag, then the index of each
    attribute of ATTRIBUTES in order (-1: not stated). Rows of absent objects are all -1."""
    out = np.full((2, 5), -1, np.int8)
    for k, o in enumerate(objects):
        out[k, 0] = 1
        for j, (attr, values) in enumerate(ATTRIBUTES.items()):
            if attr in o:
                out[k, j + 1] = values.index(o[attr])
    return out


def training_meanings(count: int, seed: int = 0, n_captions: int = 6, pos_scale: float = 1.0,
                      size_scale: float = 1.0, n_partial: int = 4):
    """Per training scene: its objects encoded (encode_meaning of the full spec), and its captions —
    the canonical one, n_captions - 1 random variants (as training_captions), n_partial partial
    captions — each with its encoded meaning."""
    specs, caps, means = [], [], []
    for i in range(count):
        spec = sample_scene(np.random.default_rng([seed, i]))
        crng = np.random.default_rng([seed, i, 7])
        texts, meanings = [canonical_caption(spec)], [encode_meaning(spec["objects"])]
        for _ in range(n_captions - 1):
            m = []
            texts.append(random_caption(spec, crng, pos_scale, size_scale, meaning=m))
            meanings.append(encode_meaning(m))
        prng = np.random.default_rng([seed, i, 11])
        for _ in range(n_partial):
            m = []
            texts.append(partial_caption(spec, prng, m))
            meanings.append(encode_meaning(m))
        specs.append(encode_meaning(spec["objects"]))
        caps.append(texts)
        means.append(np.stack(meanings))
    return np.stack(specs), caps, np.stack(means)


def satisfies(scenes_: "np.ndarray | torch.Tensor", meanings):
    """[S, 2, 5] scenes x [M, 2, 5] meanings -> bool [M, S]: does each scene hold objects as each
    meaning states them (two stated objects must be two different objects)? Works on numpy
    arrays and torch tensors."""
    def match(c, o):  # c [M, 5], o [S, 5] -> [M, S]
        present = o[None, :, 0] == 1
        eq = (c[:, None, 1:] == -1) | (c[:, None, 1:] == o[None, :, 1:])
        return present & eq.all(-1)

    c1, c2 = meanings[:, 0], meanings[:, 1]
    o1, o2 = scenes_[:, 0], scenes_[:, 1]
    absent2 = (c2[:, 0] != 1)[:, None]
    m2o1 = match(c2, o1) | absent2
    m2o2 = match(c2, o2) | absent2
    return (match(c1, o1) & m2o2) | (match(c1, o2) & m2o1)


# ------------------------------------------------------------------------------------------
# Preprocessing (identical to CLIP / open_clip inference preprocessing)
# ------------------------------------------------------------------------------------------
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
# SigLIP's normalisation (open_clip's SigLIP preprocess configs).
SIGLIP_MEAN = [0.5, 0.5, 0.5]
SIGLIP_STD = [0.5, 0.5, 0.5]
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def canonicalize(text: str) -> str:
    """open_clip's `clean="canonicalize"` as Immich applies it: whitespace collapsed, ASCII
    punctuation removed, lower case."""
    return " ".join(text.split()).translate(_PUNCTUATION).lower()


def resize_crop(img: Image.Image, size: int) -> np.ndarray:
    """PIL bicubic resize of the shortest side to `size` (torchvision semantics), centre crop,
    RGB -> uint8 HWC."""
    img = img.convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    top = int(round((nh - size) / 2.0))
    left = int(round((nw - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8)


def normalize(u8_hwc: np.ndarray) -> np.ndarray:
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W], x/255 then (x - mean) / std."""
    x = u8_hwc.astype(np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.moveaxis(x, -1, -3).astype(np.float32)


# ------------------------------------------------------------------------------------------
# Datasets
# ------------------------------------------------------------------------------------------
def scene(seed: int, index: int):
    """Deterministic (PIL image, spec) for (seed, index)."""
    rng = np.random.default_rng([seed, index])
    spec = sample_scene(rng)
    return render(spec, rng), spec


def _train_chunk(args):
    seed, start, stop, size, n_captions = args
    imgs = np.empty((stop - start, size, size, 3), np.uint8)
    caps = []
    for k, i in enumerate(range(start, stop)):
        img, spec = scene(seed, i)
        imgs[k] = resize_crop(img, size)
        crng = np.random.default_rng([seed, i, 7])
        caps.append([canonical_caption(spec)] + [random_caption(spec, crng) for _ in range(n_captions - 1)])
    return imgs, caps


def training_captions(count: int, seed: int = 0, n_captions: int = 6, pos_scale: float = 1.0,
                      size_scale: float = 1.0) -> list:
    """The captions of make_training_arrays(count, seed, n_captions=n_captions) without rendering (the
    spec is drawn first from the scene's rng, the captions use their own rng), optionally with other
    position / size mention rates (see random_caption)."""
    caps = []
    for i in range(count):
        spec = sample_scene(np.random.default_rng([seed, i]))
        crng = np.random.default_rng([seed, i, 7])
        caps.append([canonical_caption(spec)] + [random_caption(spec, crng, pos_scale, size_scale)
                                                 for _ in range(n_captions - 1)])
    return caps


def make_training_arrays(count: int, seed: int = 0, size: int = 64, n_captions: int = 6,
                         workers: int = 2, chunk: int = 1000):
    """Pre-generated training set: uint8 images [count, size, size, 3] (already resized and
    centre-cropped like inference) and `n_captions` captions per image (canonical first)."""
    jobs = [(seed, s, min(s + chunk, count), size, n_captions) for s in range(0, count, chunk)]
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_train_chunk, jobs)
    else:
        parts = [_train_chunk(j) for j in jobs]
    return np.concatenate([p[0] for p in parts]), [c for p in parts for c in p[1]]


def relevance_queries() -> list:
    """The relevance query set: (text, meaning) for every colour ("red"), shape ("circle"),
    colour+shape ("red circle", typed as people type), size+colour+shape ("a small red circle")
    and colour+shape+position ("a red circle on the left"): 528 queries, from one to three
    attributes of one object."""
    out = [(c, {"colour": c}) for c in COLOURS] + [(s, {"shape": s}) for s in SHAPES]
    out += [(f"{c} {s}", {"colour": c, "shape": s}) for c in COLOURS for s in SHAPES]
    out += [(with_article(f"{z} {c} {s}"), {"size": z, "colour": c, "shape": s})
            for z in SIZES for c in COLOURS for s in SHAPES]
    out += [(f"{with_article(c + ' ' + s)} {POS_PHRASE[p]}", {"colour": c, "shape": s, "position": p})
            for c in COLOURS for s in SHAPES for p in POSITIONS]
    return out


def write_eval_set(out: Path, count: int, seed: int) -> dict:
    """Writes `count` held-out scenes of `seed` as PNGs and their manifest: each image's canonical
    caption, labels (one-object scenes) and objects, the zero-shot tasks, and the relevance
    queries with the files that are relevant to each (ground truth from the scenes' objects)."""
    out.mkdir(parents=True, exist_ok=True)
    images, codes = [], []
    for i in range(count):
        img, spec = scene(seed, i)
        name = f"{i + 1:06d}.png"
        img.save(out / name)
        labels = {}
        if len(spec["objects"]) == 1:
            labels = {"colour": spec["objects"][0]["colour"], "shape": spec["objects"][0]["shape"]}
        images.append({"file": name, "caption": canonical_caption(spec), "labels": labels,
                       "objects": spec["objects"]})
        codes.append(encode_meaning(spec["objects"]))
    queries = relevance_queries()
    relevant = satisfies(np.stack(codes), np.stack([encode_meaning([m]) for _, m in queries]))
    manifest = {"images": images, "zero_shot": zero_shot(),
                "queries": [{"text": t, "relevant": [images[j]["file"] for j in np.flatnonzero(row)]}
                            for (t, _), row in zip(queries, relevant)]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1000000)
    ap.add_argument("--show-captions", action="store_true", help="print sample training captions")
    a = ap.parse_args(argv)
    m = write_eval_set(a.out, a.count, a.seed)
    if a.show_captions:
        for i in range(min(a.count, 10)):
            _, spec = scene(a.seed, i)
            r = np.random.default_rng(i)
            print(m["images"][i]["caption"], "|", " | ".join(random_caption(spec, r) for _ in range(3)))
    print(f"wrote {a.count} images + manifest.json to {a.out}")


if __name__ == "__main__":
    main()
