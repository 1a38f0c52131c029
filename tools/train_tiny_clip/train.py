#!/usr/bin/env python3
"""Train the tiny CLIP on procedural scenes (CPU, seeded, reproducible).

    python train.py            # defaults = the recipe of tests/fixtures/models/clipsight-tiny
    python train.py --steps 3000 --batch 128 --count 30000 --captions 6 --hard-frac 0.6 \
        --hard-groups colour,shape --threads 1 --seed 0 --out .cache/tiny_clip.pt
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import scenes
from model import TinyClip, TinyClipConfig
from tokenizer import ClipTextEncoder, write_tokenizer_files

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


def load_data(count, seed, size, n_captions, workers):
    path = CACHE / f"train_n{count}_s{seed}_px{size}_c{n_captions}.npz"
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        return z["images"], json.loads(str(z["captions"]))
    t0 = time.time()
    images, captions = scenes.make_training_arrays(count, seed=seed, size=size, n_captions=n_captions,
                                                   workers=workers)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images, captions=np.array(json.dumps(captions)))
    print(f"generated {count} training scenes in {time.time() - t0:.1f}s -> {path}", flush=True)
    return images, captions


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--count", type=int, default=30000)
    ap.add_argument("--captions", type=int, default=6, help="caption variants per image (canonical + random)")
    ap.add_argument("--seed", type=int, default=0, help="training data seed (< 1000000) and torch seed")
    ap.add_argument("--hard-frac", type=float, default=0.5,
                    help="fraction of batches drawn from single-object images sharing one colour (or one shape), so the "
                         "captions in the batch differ by the other attributes")
    ap.add_argument("--hard-groups", default="colour",
                    help="attributes to group hard batches by (comma list of colour, shape, size, position; "
                         "'a+b' groups by both, e.g. position+size)")
    ap.add_argument("--pos-scale", type=float, default=1.0,
                    help="multiply the probability that a random caption variant states an object's position "
                         "(1 = shipped recipe; otherwise the captions are regenerated from the scene specs, "
                         "the images are reused)")
    ap.add_argument("--size-scale", type=float, default=1.0,
                    help="same for stating an object's size")
    ap.add_argument("--canon-weight", type=float, default=1.0,
                    help="sampling weight of the canonical caption (variant 0) relative to each random "
                         "variant (1 = uniform, the shipped recipe)")
    ap.add_argument("--loss", choices=["softmax", "sigmoid"], default="softmax",
                    help="softmax: CLIP's InfoNCE (the English fixture); sigmoid: SigLIP's pairwise loss with a "
                         "learned bias, mean/std 0.5 and canonicalized captions (the SigLIP fixture)")
    ap.add_argument("--context", type=int, default=77, help="text context length (SigLIP: 64)")
    ap.add_argument("--init-scale", type=float, default=10.0, help="sigmoid: the logit scale's initial value "
                    "(SigLIP's is 10; a short run converges faster from a larger one)")
    ap.add_argument("--temp-lr", type=float, default=1.0,
                    help="learning-rate multiplier of the logit scale (and bias): a short sigmoid run needs them "
                         "to move further than the weights (1 = the English fixture's recipe)")
    ap.add_argument("--partial", type=int, default=0,
                    help="partial captions per image (scenes.partial_caption: a few attributes of one object, "
                         "as queries are typed); when > 0, every caption carries its meaning and the loss "
                         "counts every image of the batch that satisfies a caption as its positive")
    ap.add_argument("--positives", choices=["own", "all"], default="own",
                    help="with --partial: own = each caption's positive is its own image (CLIP's loss, as "
                         "web captions are trained: the images a partial caption also fits are negatives, "
                         "and cosines of short and long texts land on different scales); all = every image "
                         "of the batch that satisfies it")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--wd", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 was ~3x faster than 2 while cargo shared the 2 cores "
                         "(results may differ slightly with another value)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--out", type=Path, default=CACHE / "tiny_clip.pt")
    a = ap.parse_args(argv)
    assert a.seed < 1000000

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    t_start = time.time()

    cfg = TinyClipConfig(context_length=a.context, loss=a.loss, init_scale=a.init_scale)
    print(cfg, flush=True)
    tok_dir = CACHE / "tokenizer"
    write_tokenizer_files(tok_dir)
    enc = ClipTextEncoder(tok_dir / "tokenizer.json", tok_dir / "tokenizer_config.json", context_length=a.context)

    images, captions = load_data(a.count, a.seed, cfg.image_size, a.captions, workers=a.threads)
    if a.pos_scale != 1.0 or a.size_scale != 1.0:
        t_cap = time.time()
        regen = scenes.training_captions(a.count, a.seed, a.captions, a.pos_scale, a.size_scale)
        assert all(r[0] == c[0] for r, c in zip(regen, captions)), "scene specs do not match the cached images"
        captions = regen
        print(f"captions regenerated (pos_scale {a.pos_scale}, size_scale {a.size_scale}) in "
              f"{time.time() - t_cap:.1f}s", flush=True)
    scene_codes = meaning_codes = None
    if a.partial > 0:
        t_cap = time.time()
        codes, regen, means = scenes.training_meanings(a.count, a.seed, a.captions, a.pos_scale, a.size_scale,
                                                       a.partial)
        assert all(r[0] == c[0] for r, c in zip(regen, captions)), "scene specs do not match the cached images"
        captions = regen
        scene_codes, meaning_codes = torch.from_numpy(codes).long(), torch.from_numpy(means).long()
        print(f"captions with meanings ({a.partial} partial per image) in {time.time() - t_cap:.1f}s", flush=True)
    n_variants = len(captions[0])
    t_data = time.time()
    uniq = sorted({c for caps in captions for c in caps})
    index = {c: i for i, c in enumerate(uniq)}
    # SigLIP's text cleaning ("canonicalize": ASCII punctuation removed, lower case) as Immich applies it.
    clean = scenes.canonicalize if a.loss == "sigmoid" else (lambda t: t)
    ids_table = torch.from_numpy(enc.encode_batch([clean(c) for c in uniq]).astype(np.int64))
    eot_pos = ids_table.argmax(-1)
    cap_idx = torch.tensor([[index[c] for c in caps] for caps in captions])
    print(f"{len(images)} images, {len(uniq)} distinct captions, max tokens {int(eot_pos.max()) + 1}, "
          f"data ready in {t_data - t_start:.1f}s", flush=True)
    images_t = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    mean_std = (scenes.SIGLIP_MEAN, scenes.SIGLIP_STD) if a.loss == "sigmoid" else (scenes.MEAN, scenes.STD)
    mean = torch.tensor(mean_std[0]).view(1, 3, 1, 1)
    std = torch.tensor(mean_std[1]).view(1, 3, 1, 1)

    model = TinyClip(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params} (visual {sum(p.numel() for p in model.visual.parameters())}, "
          f"textual {sum(p.numel() for p in model.textual.parameters())})", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters()
                if not (p.ndim >= 2 and "embedding" not in n) and not n.startswith("logit_")]
    temperature = [p for n, p in model.named_parameters() if n.startswith("logit_")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0},
                             {"params": temperature, "weight_decay": 0.0, "lr_mult": a.temp_lr}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, a.steps // 10)

    def lr_at(step):
        if step < warmup:
            return a.lr * (step + 1) / warmup
        return a.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, a.steps - warmup)))

    # Single-object images grouped by colour and by shape (parsed from the canonical caption, variant 0:
    # "a|an <size> <colour> <shape> <position...>").
    field = {"colour": 2, "shape": 3, "size": 1, "position": -1}
    groups = {}
    for attr in a.hard_groups.split(","):
        for i, caps in enumerate(captions):
            if " and " not in caps[0]:
                words = caps[0].split()
                groups.setdefault((attr, "+".join(words[field[p]] for p in attr.split("+"))), []).append(i)
    groups = [torch.tensor(v) for _, v in sorted(groups.items())]
    print("hard-batch groups:", [len(v) for v in groups], flush=True)

    g = torch.Generator().manual_seed(a.seed)
    variant_w = torch.tensor([a.canon_weight] + [1.0] * (n_variants - 1))
    n = len(images_t)
    perm, pos = torch.randperm(n, generator=g), 0
    model.train()
    t0 = time.time()
    running = 0.0
    for step in range(a.steps):
        if torch.rand((), generator=g).item() < a.hard_frac:
            grp_ = groups[int(torch.randint(0, len(groups), (), generator=g))]
            bi = grp_[torch.randperm(len(grp_), generator=g)[:a.batch]]
        else:
            if pos + a.batch > n:
                perm, pos = torch.randperm(n, generator=g), 0
            bi = perm[pos:pos + a.batch]
            pos += a.batch
        if a.canon_weight == 1.0:
            variant = torch.randint(0, n_variants, (len(bi),), generator=g)
        else:
            variant = torch.multinomial(variant_w, len(bi), replacement=True, generator=g)
        ci = cap_idx[bi, variant]
        ids = ids_table[ci]
        ids = ids[:, : int(eot_pos[ci].max()) + 1]  # exact: causal mask + EOT pooling
        x = (images_t[bi].float() / 255.0 - mean) / std
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step) * grp.get("lr_mult", 1.0)

        img = model.encode_image(x)
        txt = model.encode_text(ids)
        logits = (img @ txt.t()) * model.logit_scale.exp()
        if a.loss == "sigmoid":
            # SigLIP: every image-text pair a binary decision; a pair is positive when the texts are
            # equal (the same caption drawn for two images of a batch is no negative).
            positive = (ci[:, None] == ci[None, :]).float()
            loss = -F.logsigmoid((2 * positive - 1) * (logits + model.logit_bias)).sum() / len(bi)
        elif meaning_codes is not None and a.positives == "all":
            # Every image of the batch that satisfies a caption is its positive (soft targets spread
            # evenly over them), in both directions.
            positive = scenes.satisfies(scene_codes[bi], meaning_codes[bi, variant]).float()  # [text, image]
            t2i = -(F.log_softmax(logits.t(), 1) * positive / positive.sum(1, keepdim=True)).sum(1).mean()
            i2t = -(F.log_softmax(logits, 1) * positive.t() / positive.t().sum(1, keepdim=True)).sum(1).mean()
            loss = (t2i + i2t) / 2
        else:
            labels = torch.arange(len(bi))
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        running += loss.item()
        if (step + 1) % a.log_every == 0 or step == 0:
            k = 1 if step == 0 else a.log_every
            el = time.time() - t0
            bias = f" bias {model.logit_bias.item():.2f}" if a.loss == "sigmoid" else ""
            print(f"step {step + 1}/{a.steps} loss {running / k:.4f} scale {model.logit_scale.exp().item():.1f}{bias} "
                  f"lr {lr_at(step):.2e} {el:.0f}s ({el / (step + 1):.2f}s/step)", flush=True)
            running = 0.0
    train_s = time.time() - t0
    total_s = time.time() - t_start
    a.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"steps": a.steps, "batch": a.batch, "count": a.count, "captions": a.captions, "seed": a.seed,
            "lr": a.lr, "temp_lr": a.temp_lr, "hard_frac": a.hard_frac, "hard_groups": a.hard_groups, "wd": a.wd, "threads": a.threads, "train_seconds": round(train_s, 1),
            "total_seconds": round(total_s, 1), "data_seconds": round(t_data - t_start, 1),
            "distinct_captions": len(uniq), "parameters": n_params, "torch": torch.__version__,
            "final_logit_scale": model.logit_scale.exp().item(), "loss": a.loss, "context": a.context}
    if a.loss == "sigmoid":
        meta["final_logit_bias"] = model.logit_bias.item()
    for k, default in (("pos_scale", 1.0), ("size_scale", 1.0), ("canon_weight", 1.0), ("partial", 0), ("positives", "own")):
        if getattr(a, k) != default:
            meta[k] = getattr(a, k)
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "meta": meta}, a.out)
    (a.out.with_suffix(".json")).write_text(json.dumps(meta, indent=2))
    print(f"training loop {train_s:.1f}s, total wall {total_s:.1f}s -> {a.out}", flush=True)
    print(json.dumps(meta), flush=True)


if __name__ == "__main__":
    main()
