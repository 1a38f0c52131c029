"""The scenes' captions in English, Chinese (simplified) and Spanish, phrase for phrase.

A caption is drawn once as a *meaning* — which objects, which of their attributes are named, which
prefix — and rendered in each language, so the three renderings say the same thing. English is
rendered the way the English fixture was trained (scenes.py), so its text tower can serve as the
teacher of a multilingual one (M-CLIP's recipe: the student learns to place every language's
rendering where the teacher places the English one).
"""
from __future__ import annotations

import numpy as np

import scenes

LANGS = ("en", "zh", "es")

ZH_COLOUR = {"red": ["红色", "红"], "green": ["绿色", "绿"], "blue": ["蓝色", "蓝"], "yellow": ["黄色", "黄"],
             "orange": ["橙色", "橘色"], "purple": ["紫色", "紫"], "white": ["白色", "白"], "black": ["黑色", "黑"]}
ZH_SHAPE = {"circle": ["圆", "圆形", "圆圈"], "square": ["正方形", "方块", "方形"], "triangle": ["三角形"],
            "star": ["星星", "星形", "五角星"], "cross": ["十字", "十字形", "加号"], "heart": ["心形", "爱心"],
            "hexagon": ["六边形"], "diamond": ["菱形"]}
ZH_SIZE = {"small": ["小"], "large": ["大"]}
ZH_POS = {"left": ["在左边", "在左侧"], "right": ["在右边", "在右侧"], "top": ["在上面", "在顶部"],
          "bottom": ["在下面", "在底部"], "centre": ["在中间", "在中央"]}
ZH_PREFIX = ["", "一张照片：", "一张图片：", "一幅图：", "有", "一幅画："]
ZH_OBJECT = "物体"

# Spanish nouns carry a gender the article and adjectives agree with.
ES_SHAPE = {"circle": [("círculo", "m"), ("disco", "m"), ("bola", "f")], "square": [("cuadrado", "m"), ("bloque", "m")],
            "triangle": [("triángulo", "m")], "star": [("estrella", "f")], "cross": [("cruz", "f")],
            "heart": [("corazón", "m")], "hexagon": [("hexágono", "m")], "diamond": [("rombo", "m")]}
ES_COLOUR = {"red": ("rojo", "roja"), "green": ("verde", "verde"), "blue": ("azul", "azul"),
             "yellow": ("amarillo", "amarilla"), "orange": ("naranja", "naranja"), "purple": ("morado", "morada"),
             "white": ("blanco", "blanca"), "black": ("negro", "negra")}
ES_SIZE = {"small": ("pequeño", "pequeña"), "large": ("grande", "grande")}
ES_POS = {"left": ["a la izquierda", "en el lado izquierdo"], "right": ["a la derecha", "en el lado derecho"],
          "top": ["arriba", "en la parte de arriba"], "bottom": ["abajo", "en la parte de abajo"],
          "centre": ["en el centro", "en el medio"]}
ES_PREFIX = ["", "una foto de ", "una imagen de ", "una ilustración de ", "hay ", "un dibujo de "]


def _pick(rng, xs):
    return xs[int(rng.integers(len(xs)))]


def draw_meaning(spec: dict, rng) -> dict:
    """Which objects of a scene spec a caption names, with which attributes, and its prefix."""
    objs = []
    for o in spec["objects"]:
        objs.append({"shape": o["shape"],
                     "colour": o["colour"] if rng.random() < 0.9 else None,
                     "size": o["size"] if rng.random() < 0.35 else None,
                     "position": o["position"] if rng.random() < 0.3 else None})
    if len(objs) == 2 and rng.random() < 0.5:
        objs.reverse()
    return {"objects": objs, "prefix": int(rng.integers(len(scenes.PREFIXES)))}


def canonical_meaning(spec: dict) -> dict:
    """The evaluation caption's meaning: every attribute, no prefix."""
    return {"objects": [dict(o) for o in spec["objects"]], "prefix": 0}


def prompt_meaning(spec: dict, rng) -> dict:
    """A zero-shot prompt's meaning for a one-object scene: "a photo of a red object" or "a photo
    of a circle" (what scenes.random_caption draws 6% + 6% of the time)."""
    o = spec["objects"][0]
    return {"prompt": ("colour", o["colour"]) if rng.random() < 0.5 else ("shape", o["shape"])}


def render(meaning: dict, lang: str, rng=None) -> str:
    """The caption of `meaning` in `lang`; `rng` picks synonyms (None: the first of each)."""
    if "prompt" in meaning:
        task, value = meaning["prompt"]
        classes = list(scenes.COLOURS) if task == "colour" else scenes.SHAPES
        return zero_shot_prompts(lang)[task][classes.index(value)]
    pick = (lambda xs: _pick(rng, xs)) if rng is not None else (lambda xs: xs[0])
    objs = meaning["objects"]
    if lang == "en":
        phrases = []
        for o in objs:
            words = [w for w in (o["size"], o["colour"], o["shape"]) if w]
            p = scenes.with_article(" ".join(words))
            if o["position"]:
                p += " " + scenes.POS_PHRASE[o["position"]]
            phrases.append(p)
        return scenes.PREFIXES[meaning["prefix"]] + " and ".join(phrases)
    if lang == "zh":
        phrases = []
        for o in objs:
            p = pick(ZH_POS[o["position"]]) if o["position"] else ""
            p += pick(["一个", ""])
            if o["size"]:
                p += pick(ZH_SIZE[o["size"]]) + pick(["", "的"])
            if o["colour"]:
                p += pick(ZH_COLOUR[o["colour"]]) + pick(["的", ""])
            p += pick(ZH_SHAPE[o["shape"]])
            phrases.append(p)
        return ZH_PREFIX[meaning["prefix"]] + "和".join(phrases)
    if lang == "es":
        phrases = []
        for o in objs:
            noun, gender = pick(ES_SHAPE[o["shape"]])
            g = 0 if gender == "m" else 1
            p = ("un " if g == 0 else "una ") + noun
            if o["colour"]:
                p += " " + ES_COLOUR[o["colour"]][g]
            if o["size"]:
                p += " " + ES_SIZE[o["size"]][g]
            if o["position"]:
                p += " " + pick(ES_POS[o["position"]])
            phrases.append(p)
        return ES_PREFIX[meaning["prefix"]] + " y ".join(phrases)
    raise ValueError(lang)


def zero_shot_prompts(lang: str) -> dict:
    """The zero-shot tasks' prompts (scenes.zero_shot's) in `lang`."""
    colours, shapes = list(scenes.COLOURS), scenes.SHAPES
    if lang == "en":
        return {k: v["prompts"] for k, v in scenes.zero_shot().items()}
    if lang == "zh":
        return {"colour": [f"一张{ZH_COLOUR[c][0]}{ZH_OBJECT}的照片" for c in colours],
                "shape": [f"一张{ZH_SHAPE[s][0]}的照片" for s in shapes]}
    if lang == "es":
        return {"colour": [f"una foto de un objeto {ES_COLOUR[c][0]}" for c in colours],
                "shape": [f"una foto de {'un' if ES_SHAPE[s][0][1] == 'm' else 'una'} {ES_SHAPE[s][0][0]}" for s in shapes]}
    raise ValueError(lang)


def training_triples(count: int, seed: int) -> list[tuple[str, str, str]]:
    """`count` captions as (English, Chinese, Spanish), drawn from the training scenes' specs."""
    out = []
    for i in range(count):
        spec = scenes.sample_scene(np.random.default_rng([seed, i]))
        rng = np.random.default_rng([seed, i, 11])
        u = rng.random()
        if u < 0.12 and len(spec["objects"]) == 1:
            meaning = prompt_meaning(spec, rng)
        elif u < 0.85:
            meaning = draw_meaning(spec, rng)
        else:
            meaning = canonical_meaning(spec)
        out.append(tuple(render(meaning, lang, rng) for lang in LANGS))
    # The zero-shot prompts, with their meaning shared across languages.
    prompts = {lang: zero_shot_prompts(lang) for lang in LANGS}
    for task in prompts["en"]:
        for k in range(len(prompts["en"][task])):
            out.append(tuple(prompts[lang][task][k] for lang in LANGS))
    return out
