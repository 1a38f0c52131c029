#!/usr/bin/env python3
"""CLIP BPE tokenizer files for the HF `tokenizers` library, equivalent to
openai/clip-vit-base-patch32's tokenizer (the one Immich ships), plus the text encoding the
engine uses: collapse whitespace, encode (the post-processor adds <|startoftext|> ... <|endoftext|>),
truncate to 77 keeping <|endoftext|> last, pad to 77 with <|endoftext|> (49407).

The vocabulary is open_clip's bpe_simple_vocab_16e6.txt.gz, read from the PyPI wheel
open_clip_torch==3.3.0 (fetched with `pip download --no-deps` into .cache/wheels).

    python tokenizer.py --out DIR      # writes tokenizer.json, tokenizer_config.json, special_tokens_map.json
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
SOT_ID, EOT_ID = 49406, 49407
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
OPEN_CLIP_WHEEL = "open_clip_torch==3.3.0"
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
BPE_TXT_SHA256 = "67603cfda2e032ad77b5f8808af37789d590db664b26df8705d2bf8b3c553fc8"  # decompressed
CLIP_SPLIT_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
HERE = Path(__file__).resolve().parent
WHEEL_CACHE = HERE / ".cache" / "wheels"


def bytes_to_unicode() -> dict[int, str]:
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def locate_wheel() -> Path:
    pattern = "open_clip_torch-" + OPEN_CLIP_WHEEL.split("==")[1] + "-*.whl"
    if not sorted(WHEEL_CACHE.glob(pattern)):
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        print(f"fetching {OPEN_CLIP_WHEEL} for its BPE vocabulary -> {WHEEL_CACHE}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d",
                        str(WHEEL_CACHE), OPEN_CLIP_WHEEL], check=True)
    return sorted(WHEEL_CACHE.glob(pattern))[0]


def load_bpe_merges(source: Path | None = None) -> list[tuple[str, str]]:
    source = source or locate_wheel()
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            raw = wheel.read(BPE_MEMBER)
    else:
        raw = source.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BPE_TXT_SHA256:
        raise SystemExit(f"error: {source} is not CLIP's bpe_simple_vocab_16e6 (sha256 {digest})")
    lines = raw.decode("utf-8").split("\n")
    return [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]


def clip_vocab(merges) -> dict[str, int]:
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
    return {token: i for i, token in enumerate(tokens)}


def clip_tokenizer_json(vocab, merges) -> str:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                        end_of_word_suffix="</w>", fuse_unk=False, unk_token=EOT))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT_REGEX), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing((EOT, EOT_ID), (SOT, SOT_ID),
                                                      trim_offsets=False, add_prefix_space=False)
    tok.add_special_tokens([AddedToken(SOT, normalized=True, special=True),
                            AddedToken(EOT, normalized=True, special=True)])
    data = json.loads(tok.to_str())
    data["truncation"] = data["padding"] = None  # the engine enables both at load time
    data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    text = json.dumps(data, ensure_ascii=False, indent=2)
    ids = Tokenizer.from_str(text).encode("a photo of a cat").ids
    assert ids == [SOT_ID, 320, 1125, 539, 320, 2368, EOT_ID], ids
    return text


def _special(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def write_tokenizer_files(textual_dir: Path, merges=None, context_length: int = CONTEXT_LENGTH) -> None:
    """tokenizer.json, tokenizer_config.json, special_tokens_map.json (as Immich ships them)."""
    merges = merges or load_bpe_merges()
    textual_dir = Path(textual_dir)
    textual_dir.mkdir(parents=True, exist_ok=True)
    vocab = clip_vocab(merges)
    (textual_dir / "tokenizer.json").write_text(clip_tokenizer_json(vocab, merges), encoding="utf-8")
    tokenizer_config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(SOT_ID): {**_special(SOT), "special": True},
                                 str(EOT_ID): {**_special(EOT), "special": True}},
        "bos_token": SOT, "clean_up_tokenization_spaces": True, "do_lower_case": True,
        "eos_token": EOT, "errors": "replace", "model_max_length": context_length,
        "pad_token": EOT, "tokenizer_class": "CLIPTokenizer", "unk_token": EOT,
    }
    (textual_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, ensure_ascii=False, indent=2), encoding="utf-8")
    special_tokens_map = {"bos_token": _special(SOT), "eos_token": _special(EOT),
                          "pad_token": EOT, "unk_token": _special(EOT)}
    (textual_dir / "special_tokens_map.json").write_text(
        json.dumps(special_tokens_map, ensure_ascii=False, indent=2), encoding="utf-8")


class ClipTextEncoder:
    """Text -> int32 [77] ids exactly as the engine does it."""

    def __init__(self, tokenizer_json: Path, tokenizer_config: Path | None = None,
                 context_length: int = CONTEXT_LENGTH):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(str(tokenizer_json))
        self.context_length = context_length
        pad = EOT
        if tokenizer_config and Path(tokenizer_config).is_file():
            pad = json.loads(Path(tokenizer_config).read_text())["pad_token"]
        self.pad_id = self.tok.token_to_id(pad)

    def encode(self, text: str) -> np.ndarray:
        text = re.sub(r"\s+", " ", text).strip()
        ids = self.tok.encode(text).ids  # post-processor already adds SOT ... EOT
        assert ids[0] == SOT_ID and ids[-1] == EOT_ID, ids
        if len(ids) > self.context_length:
            ids = ids[: self.context_length - 1] + [EOT_ID]
        out = np.full(self.context_length, self.pad_id, np.int32)
        out[: len(ids)] = ids
        return out

    def encode_batch(self, texts) -> np.ndarray:
        return np.stack([self.encode(t) for t in texts]) if texts else np.zeros((0, self.context_length), np.int32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--check-against", type=Path, help="another tokenizer.json to compare ids with")
    a = ap.parse_args(argv)
    write_tokenizer_files(a.out)
    enc = ClipTextEncoder(a.out / "tokenizer.json", a.out / "tokenizer_config.json")
    texts = ["a photo of a cat", "A large red circle on the left", "red  ball\tnext to a small blue square",
             "a photo of an orange object", "Hello, World! 123 naïve café 🙂", "x " * 100]
    for t in texts:
        print(repr(t[:40]), enc.encode(t)[:12].tolist())
    if a.check_against:
        from tokenizers import Tokenizer
        ref = Tokenizer.from_file(str(a.check_against))
        for t in texts:
            assert ref.encode(t).ids == enc.tok.encode(t).ids, t
        assert (a.out / "tokenizer.json").read_bytes() == a.check_against.read_bytes(), "bytes differ"
        print("identical to", a.check_against)


if __name__ == "__main__":
    main()
