"""A tiny byte-level GPT with ALiBi attention (no position parameters to store).

Contract with the evaluator (eval/predict.py): `build_model()` takes no
arguments (it reads config.py); `model.block_size` is the longest context it
wants at evaluation; `model(idx)` maps (B, T) int64 bytes to (B, T, 256)
next-byte logits, causally. The evaluator loads the *dequantized* int8
weights of the artifact into `build_model()`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import config

VOCAB = 256


def alibi_bias(n_head: int, t: int) -> torch.Tensor:
    """(H, T, T) additive attention bias: a per-head linear penalty on distance, -inf on the future."""
    slopes = torch.tensor([2 ** (-8 * (h + 1) / n_head) for h in range(n_head)])
    pos = torch.arange(t)
    dist = (pos[None, :] - pos[:, None]).float()  # j - i, <= 0 for the past
    bias = slopes[:, None, None] * dist[None]
    return bias.masked_fill(dist[None] > 0, float("-inf"))


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, mlp_ratio * d, bias=False)
        self.out = nn.Linear(mlp_ratio * d, d, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        d = config.N_EMBD
        self.block_size = config.EVAL_CONTEXT
        self.tok = nn.Embedding(VOCAB, d)
        self.bigram = nn.Embedding(config.BIGRAM_BUCKETS, d) if config.BIGRAM_BUCKETS else None
        self.blocks = nn.ModuleList(
            Block(d, config.N_HEAD, config.MLP_RATIO, config.DROPOUT) for _ in range(config.N_LAYER)
        )
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB, bias=False)
        if config.TIE_EMBEDDINGS:
            self.head.weight = self.tok.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
        for block in self.blocks:  # scaled init of the residual projections
            for m in (block.proj, block.out):
                nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * config.N_LAYER))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        x = self.tok(idx)
        if self.bigram is not None:
            prev = torch.cat([torch.zeros_like(idx[:, :1]), idx[:, :-1]], dim=1)
            x = x + self.bigram((prev * 257 + idx) % config.BIGRAM_BUCKETS)
        bias = alibi_bias(config.N_HEAD, t).to(x.dtype)
        for block in self.blocks:
            x = block(x, bias)
        return self.head(self.ln_f(x))


def build_model() -> TinyGPT:
    if config.N_EMBD % config.N_HEAD:
        raise ValueError(f"N_EMBD {config.N_EMBD} is not a multiple of N_HEAD {config.N_HEAD}")
    return TinyGPT()
