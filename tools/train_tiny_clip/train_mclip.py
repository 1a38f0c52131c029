#!/usr/bin/env python3
"""clipsight-tiny-multilingual: a multilingual text tower for the tiny CLIP, made the way M-CLIP
(Carlsson et al., 2022) made Immich's XLM-Roberta and LaBSE models: the English model's text tower
is the teacher, and a new text tower with a multilingual tokenizer learns to place the English,
Chinese and Spanish renderings of a caption where the teacher places the English one. The image
tower is the English model's, unchanged, so the embedding space is the same.

    python train_mclip.py [--teacher ../../tests/fixtures/models/clipsight-tiny]
                          [--out ../../tests/fixtures/models/clipsight-tiny-multilingual]

Writes the model in M-CLIP's export layout (Immich's): textual/model.onnx takes `input_ids` and
`attention_mask` (int32 [batch, 77]) and returns `embedding`, the masked mean of the last layer
projected by a linear map and L2-normalised; textual/tokenizer.json is a Unigram tokenizer (the
kind XLM-R's SentencePiece model is) trained here with HF `tokenizers`, `<s> … </s>` around the
text, padded with `<pad>`. Then evaluates retrieval and zero-shot accuracy per language on held-out
scenes and writes .cache/mclip_report.json.

    python train_mclip.py --layout nllb [--out ../../tests/fixtures/models/clipsight-tiny-nllb]

The same student in NLLB-CLIP's layout: the tokenizer holds FLORES-200 language codes as special
tokens and each training text starts with its language's code, written before the text with no
separator (as Immich feeds NLLB-CLIP; English also without one, as Immich sends a text without a
language); textual/model.onnx takes `text` alone (int32 [batch, 77]) and masks the padding itself.
Report: .cache/nllb_report.json.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

import evaluate
import multilingual
import scenes
from model import Block

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent.parent / "tests" / "fixtures" / "models"
CONTEXT = 77
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R's order: <s>=0, <pad>=1, </s>=2, <unk>=3
PAD_ID = 1
# FLORES-200 codes the NLLB layout's vocabulary holds: the training languages', and those
# clipsight maps browser languages to (src/.../language.rs), so any of them is one token as in NLLB.
FLORES = {"en": "eng_Latn", "zh": "zho_Hans", "es": "spa_Latn"}
MORE_FLORES = ["afr_Latn", "arb_Arab", "azj_Latn", "bel_Cyrl", "bul_Cyrl", "cat_Latn", "ces_Latn", "dan_Latn",
               "deu_Latn", "ell_Grek", "est_Latn", "pes_Arab", "fin_Latn", "fra_Latn", "heb_Hebr", "hin_Deva",
               "hrv_Latn", "hun_Latn", "hye_Armn", "ind_Latn", "ita_Latn", "jpn_Jpan", "kmr_Latn", "kor_Hang",
               "ltz_Latn", "lit_Latn", "lav_Latn", "zsm_Latn", "mkd_Cyrl", "khk_Cyrl", "mar_Deva", "nob_Latn",
               "nno_Latn", "nld_Latn", "pol_Latn", "por_Latn", "ron_Latn", "rus_Cyrl", "slk_Latn", "slv_Latn",
               "srp_Cyrl", "swe_Latn", "tam_Taml", "tel_Telu", "tha_Thai", "tur_Latn", "ukr_Cyrl", "urd_Arab",
               "vie_Latn", "zho_Hant"]


def train_tokenizer(texts: list[str], vocab_size: int, nllb: bool) -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    codes = list(FLORES.values()) + MORE_FLORES if nllb else []
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIALS + codes, unk_token="<unk>", shrinking_factor=0.75)
    tok.train_from_iterator(texts, trainer)
    # NLLB: the language code (in the text) first, `</s>` last; M-CLIP (XLM-R): `<s> … </s>`.
    single = "$A </s>" if nllb else "<s> $A </s>"
    tok.post_processor = processors.TemplateProcessing(single=single, special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.enable_truncation(CONTEXT)
    tok.enable_padding(length=CONTEXT, pad_id=PAD_ID, pad_token="<pad>")
    return tok


def encode(tok: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Immich's M-CLIP text input: whitespace collapsed, <s> … </s>, padded to 77 with <pad>."""
    enc = tok.encode_batch([" ".join(t.split()) for t in texts])
    return np.array([e.ids for e in enc], np.int32), np.array([e.attention_mask for e in enc], np.int32)


class MultilingualText(nn.Module):
    """Token + position embeddings, bidirectional pre-LN transformer blocks over the unmasked
    tokens, masked mean pooling, a linear map (M-CLIP's LinearTransformation)."""

    def __init__(self, vocab: int, width: int = 64, layers: int = 2, heads: int = 2, embed_dim: int = 64, positions: int = CONTEXT):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.randn(positions, width) * 0.01)
        self.blocks = nn.ModuleList([Block(width, heads, 4) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim)
        nn.init.normal_(self.token_embedding.weight, std=0.1)

    def forward(self, input_ids, attention_mask):
        ids = input_ids.long()
        m = attention_mask.to(torch.float32)
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        bias = ((1.0 - m) * -1e9)[:, None, None, :]
        for b in self.blocks:
            x = b(x, bias)
        x = self.ln_final(x)
        pooled = (x * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)
        return self.proj(pooled)


class Export(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return F.normalize(self.m(input_ids, attention_mask), dim=-1)


class NllbExport(nn.Module):
    """NLLB-CLIP's contract: ids alone; the padding is masked from the ids."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, text):
        return F.normalize(self.m(text, (text != PAD_ID).to(torch.int32)), dim=-1)


def teacher_embeddings(teacher: Path, texts: list[str]) -> np.ndarray:
    sess = ort.InferenceSession(str(teacher / "textual" / "model.onnx"), providers=["CPUExecutionProvider"])
    enc = evaluate.TextEncoder(teacher / "textual", CONTEXT)
    return evaluate.run(sess, np.stack([enc(t) for t in texts]), batch=512)


def train(ids, mask, targets, vocab: int, steps: int, batch: int, seed: int) -> MultilingualText:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MultilingualText(vocab)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "positional" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "positional" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=2e-3, betas=(0.9, 0.98))
    warm = steps // 15
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm))))
    ids_t, mask_t, tgt_t = torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(targets)
    lengths = mask.sum(1)
    batches: list[np.ndarray] = []
    started = time.time()
    for step in range(steps):
        if not batches:
            # An epoch of batches of similar lengths (sorted by length, ties in random order), in
            # random order: padding costs little, every caption is seen once per epoch.
            order = np.lexsort((rng.random(len(ids)), lengths))
            batches = [order[i:i + batch] for i in range(0, len(order) - batch + 1, batch)]
            rng.shuffle(batches)
        rows = torch.from_numpy(batches.pop())
        length = int(mask_t[rows].sum(1).max())
        out = F.normalize(model(ids_t[rows, :length], mask_t[rows, :length]), dim=-1)
        loss = (1.0 - (out * tgt_t[rows]).sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.5f} ({time.time() - started:.0f}s)", flush=True)
    return model.eval()


def export(model: MultilingualText, tok: Tokenizer, teacher: Path, out: Path, vocab: int, nllb: bool) -> dict:
    if out.exists():
        shutil.rmtree(out)
    (out / "textual").mkdir(parents=True)
    shutil.copytree(teacher / "visual", out / "visual")
    config = json.loads((teacher / "config.json").read_text())
    config["text_cfg"] = {"context_length": CONTEXT, "vocab_size": vocab, "width": 64, "heads": 2, "layers": 2,
                          "pooling": "masked mean", "tokenizer": "unigram (HF tokenizers)", "distilled_from": "clipsight-tiny"}
    if nllb:
        config["text_cfg"]["language_codes"] = "FLORES-200, written before the text"
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    saved = Tokenizer.from_str(tok.to_str())
    saved.no_padding()
    saved.no_truncation()
    saved.save(str(out / "textual" / "tokenizer.json"))
    (out / "textual" / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "NllbTokenizer" if nllb else "XLMRobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
         "unk_token": "<unk>", "model_max_length": CONTEXT}, indent=2) + "\n")
    (out / "textual" / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}, indent=2) + "\n")
    path = out / "textual" / "model.onnx"
    ids2 = torch.ones(2, CONTEXT, dtype=torch.int32)
    if nllb:
        torch.onnx.export(NllbExport(model), (ids2,), str(path), input_names=["text"], output_names=["embedding"],
                          dynamic_axes={"text": {0: "batch_size"}, "embedding": {0: "batch_size"}},
                          opset_version=17, do_constant_folding=True, dynamo=False)
    else:
        torch.onnx.export(Export(model), (ids2, ids2), str(path), input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch_size"}, "attention_mask": {0: "batch_size"}, "embedding": {0: "batch_size"}},
                          opset_version=17, do_constant_folding=True, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [("text", "tensor(int32)")] if nllb else [("input_ids", "tensor(int32)"), ("attention_mask", "tensor(int32)")]
    assert [(i.name, i.type) for i in sess.get_inputs()] == inputs
    texts = ["红色的圆", "un círculo rojo", "a red circle", "一个小的蓝色的正方形在左边和一个大的黄色的星星在右边", "x " * 100]
    if nllb:
        texts = [FLORES[lang] + t for lang, t in zip(["zh", "es", "en", "zh", "en"], texts)]
    ids, mask = encode(tok, texts)
    with torch.no_grad():
        ref = Export(model)(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    diffs = {}
    for b in (1, 3, 5):
        feeds = {"text": ids[:b]} if nllb else {"input_ids": ids[:b], "attention_mask": mask[:b]}
        got = sess.run(None, feeds)[0]
        diffs[f"b{b}"] = float(np.abs(got - ref[:b]).max())
    assert max(diffs.values()) < 1e-4, diffs
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    return {"max_abs_diff_onnx_vs_torch": diffs, "sizes": sizes, "total_bytes": sum(sizes.values())}


def evaluate_languages(model_dir: Path, teacher: Path, eval_dir: Path, nllb: bool) -> dict:
    """Per language: text→image recall@1/5 of the canonical captions and zero-shot accuracy, with
    the student's tokenizer and graph; the English teacher's figures beside them."""
    manifest = json.loads((eval_dir / "manifest.json").read_text())
    pcfg = json.loads((teacher / "visual" / "preprocess_cfg.json").read_text())
    vis = ort.InferenceSession(str(teacher / "visual" / "model.onnx"), providers=["CPUExecutionProvider"])
    entries = manifest["images"]
    img = evaluate.run(vis, np.stack([evaluate.preprocess(eval_dir / e["file"], pcfg) for e in entries]))
    tok = Tokenizer.from_file(str(model_dir / "textual" / "tokenizer.json"))
    tok.enable_truncation(CONTEXT)
    tok.enable_padding(length=CONTEXT, pad_id=1, pad_token="<pad>")
    sess = ort.InferenceSession(str(model_dir / "textual" / "model.onnx"), providers=["CPUExecutionProvider"])

    def feeds(ids, mask):
        return {"text": ids} if nllb else {"input_ids": ids, "attention_mask": mask}

    def student(texts):
        ids, mask = encode(tok, texts)
        return np.concatenate([sess.run(None, feeds(ids[i:i + 256], mask[i:i + 256]))[0] for i in range(0, len(ids), 256)])

    specs = [scenes.sample_scene(np.random.default_rng([1000000, i])) for i in range(len(entries))]
    assert all(scenes.canonical_caption(s) == e["caption"] for s, e in zip(specs, entries))
    english = [e["caption"] for e in entries]
    same = np.array([[a == b for b in english] for a in english])
    report = {}
    code = (lambda lang: FLORES[lang]) if nllb else (lambda lang: "")
    for name, embed, lang in [("teacher", lambda t: teacher_embeddings(teacher, t), "en")] + [(lang, student, lang) for lang in multilingual.LANGS]:
        captions = [multilingual.render(multilingual.canonical_meaning(s), lang) for s in specs]
        prefix = code(lang) if name != "teacher" else ""
        sim = embed([prefix + c for c in captions]) @ img.T
        t2i = {f"r{k}": float(np.mean([same[i, evaluate.topk(sim[i], k)].any() for i in range(len(entries))])) for k in (1, 5)}
        zero = {}
        for task, prompts in multilingual.zero_shot_prompts(lang).items():
            spec = manifest["zero_shot"][task]
            idx = [i for i, e in enumerate(entries) if task in e["labels"]]
            pred = np.argmax(img[idx] @ embed([prefix + p for p in prompts]).T, axis=1)
            truth = np.array([spec["classes"].index(entries[i]["labels"][task]) for i in idx])
            zero[task] = float(np.mean(pred == truth))
        report[name] = {"t2i": t2i, "zero_shot": zero, "example": captions[0]}
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, default=FIXTURES / "clipsight-tiny")
    ap.add_argument("--layout", choices=["mclip", "nllb"], default="mclip")
    ap.add_argument("--out", type=Path, help="default: tests/fixtures/models/clipsight-tiny-multilingual (mclip) or -nllb")
    ap.add_argument("--count", type=int, default=40000, help="training captions (each in 3 languages)")
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval", type=Path, default=HERE / ".cache" / "eval500")
    a = ap.parse_args(argv)
    nllb = a.layout == "nllb"
    a.out = a.out or FIXTURES / ("clipsight-tiny-nllb" if nllb else "clipsight-tiny-multilingual")
    torch.set_num_threads(a.threads)
    started = time.time()
    triples = multilingual.training_triples(a.count, a.seed)
    if nllb:  # each rendering after its language's code, and the English one also without a code
        triples = [tuple(FLORES[lang] + t for lang, t in zip(multilingual.LANGS, triple)) + (triple[0],) for triple in triples]
    texts = [t for triple in triples for t in triple]
    targets = teacher_embeddings(a.teacher, [triple[-1] if nllb else triple[0] for triple in triples])
    targets = np.repeat(targets, len(triples[0]), axis=0).astype(np.float32)
    tok = train_tokenizer(texts, a.vocab, nllb)
    vocab = tok.get_vocab_size()
    ids, mask = encode(tok, texts)
    print(f"{len(triples)} captions x {len(triples[0])} renderings, vocabulary {vocab}, "
          f"longest {int(mask.sum(1).max())} tokens; prepared in {time.time() - started:.0f}s", flush=True)
    t0 = time.time()
    model = train(ids, mask, targets, vocab, a.steps, a.batch, a.seed)
    train_s = time.time() - t0
    report = {"recipe": vars(a) | {"teacher": str(a.teacher), "out": str(a.out), "eval": str(a.eval)},
              "train_seconds": round(train_s, 1), "vocab": vocab,
              "parameters": sum(p.numel() for p in model.parameters())}
    report |= export(model, tok, a.teacher, a.out, vocab, nllb)
    if not (a.eval / "manifest.json").exists():
        scenes.write_eval_set(a.eval, 500, 1000000)
    report["eval_500_seed_1000000"] = evaluate_languages(a.out, a.teacher, a.eval, nllb)
    (HERE / ".cache").mkdir(exist_ok=True)
    (HERE / ".cache" / f"{a.layout}_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
