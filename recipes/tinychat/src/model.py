"""A small byte-level GPT: token + position embeddings, pre-norm transformer blocks, tied head.

Contract with the evaluator (eval/predict.py): `build_model()` takes no
arguments (it reads config.py); the model has an int attribute `block_size`
(the longest context it accepts) and maps a (B, T) int64 tensor of bytes,
T <= block_size, to (B, T, 256) next-byte logits, causally (position t sees
bytes 0..t only). The evaluator loads `model.pt` (the state_dict) into
`build_model()` and reads the logits of the last position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import config

VOCAB = 256


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, mlp_ratio: int):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, n_layer: int, n_head: int, n_embd: int, mlp_ratio: int, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.tok = nn.Embedding(VOCAB, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, mlp_ratio) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, VOCAB, bias=False)
        self.head.weight = self.tok.weight  # tied input/output embeddings
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.block_size:
            raise ValueError(f"context of {t} bytes is longer than block_size {self.block_size}")
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def build_model() -> GPT:
    if config.N_EMBD % config.N_HEAD:
        raise ValueError(f"N_EMBD {config.N_EMBD} is not a multiple of N_HEAD {config.N_HEAD}")
    return GPT(config.N_LAYER, config.N_HEAD, config.N_EMBD, config.MLP_RATIO, config.BLOCK_SIZE)
