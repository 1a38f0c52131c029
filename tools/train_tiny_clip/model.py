"""Tiny CLIP dual encoder with CLIP's I/O contract.

image float32 [N,3,S,S] (normalised with the OpenAI mean/std) -> unit embedding [N,E]
text  int     [N,77]    CLIP BPE ids, <|startoftext|> ... <|endoftext|> + padding -> unit embedding [N,E]
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TinyClipConfig:
    embed_dim: int = 64
    image_size: int = 64
    cnn_widths: tuple = (32, 48, 96, 128)
    cnn_head_channels: int = 32
    cnn_hidden: int = 256
    context_length: int = 77
    vocab_size: int = 49408
    token_dim: int = 24  # factorised token embedding: vocab x token_dim, then Linear -> width
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 2
    mlp_ratio: int = 4
    loss: str = "softmax"  # "sigmoid": SigLIP's loss, with a learned bias beside the scale
    init_scale: float = 10.0  # sigmoid: the logit scale's initial value (SigLIP's: 10)

    def to_dict(self):
        d = asdict(self)
        d["cnn_widths"] = list(self.cnn_widths)
        return d


def conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ImageEncoder(nn.Module):
    """Small CNN; keeps a 4x4 spatial map (flattened, not pooled) so positions survive."""

    def __init__(self, cfg: TinyClipConfig):
        super().__init__()
        w = cfg.cnn_widths
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 4, 4, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True),  # 64 -> 16 patchify
            conv_bn(w[0], w[1]), nn.MaxPool2d(2),     # 16 -> 8
            conv_bn(w[1], w[2]), nn.MaxPool2d(2),     # 8 -> 4
            conv_bn(w[2], w[3]),
            nn.Conv2d(w[3], cfg.cnn_head_channels, 1), nn.ReLU(inplace=True),
        )
        grid = cfg.image_size // 16
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cfg.cnn_head_channels * grid * grid, cfg.cnn_hidden),
                                  nn.ReLU(inplace=True), nn.Linear(cfg.cnn_hidden, cfg.embed_dim))

    def forward(self, x):
        return self.head(self.features(x))


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width * mlp_ratio), nn.GELU(), nn.Linear(width * mlp_ratio, width))

    def attn(self, x, mask):
        n, l, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).reshape(n, l, 3, h, d // h).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h)) + mask
        y = a.softmax(-1) @ v
        return self.out(y.transpose(1, 2).reshape(n, l, d))

    def forward(self, x, mask):
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class TextEncoder(nn.Module):
    def __init__(self, cfg: TinyClipConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.token_dim)
        self.token_proj = nn.Linear(cfg.token_dim, cfg.text_width, bias=False)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.context_length, cfg.text_width) * 0.01)
        self.blocks = nn.ModuleList([Block(cfg.text_width, cfg.text_heads, cfg.mlp_ratio)
                                     for _ in range(cfg.text_layers)])
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.proj = nn.Linear(cfg.text_width, cfg.embed_dim, bias=False)
        mask = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu(1)
        self.register_buffer("mask", mask, persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.1)

    def forward(self, ids):
        # ids: [N, L] (L <= 77). Causal attention, so features at the first <|endoftext|> (the
        # largest id, found by argmax) never see what follows it: truncating L after the last
        # end-of-text in the batch gives the same output.
        ids = ids.long()
        l = ids.shape[1]
        x = self.token_proj(self.token_embedding(ids)) + self.positional_embedding[:l]
        mask = self.mask[:l, :l]
        for b in self.blocks:
            x = b(x, mask)
        eot = ids.float().argmax(-1)
        x = x[torch.arange(x.shape[0]), eot]
        return self.proj(self.ln_final(x))


class TinyClip(nn.Module):
    def __init__(self, cfg: TinyClipConfig):
        super().__init__()
        self.cfg = cfg
        self.visual = ImageEncoder(cfg)
        self.textual = TextEncoder(cfg)
        if cfg.loss == "sigmoid":
            # SigLIP's initialisation (Zhai et al., 2023): t' = log 10, b = -10 (a larger initial
            # scale converges in fewer steps: see train.py --init-scale).
            self.logit_scale = nn.Parameter(torch.tensor(math.log(cfg.init_scale)))
            self.logit_bias = nn.Parameter(torch.tensor(-10.0))
        else:
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x):
        return F.normalize(self.visual(x), dim=-1)

    def encode_text(self, ids):
        return F.normalize(self.textual(ids), dim=-1)


class VisualExport(nn.Module):
    def __init__(self, m: TinyClip):
        super().__init__()
        self.m = m

    def forward(self, image):
        return self.m.encode_image(image)


class TextualExport(nn.Module):
    def __init__(self, m: TinyClip):
        super().__init__()
        self.m = m

    def forward(self, text):
        return self.m.encode_text(text)
