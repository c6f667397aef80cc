"""The direct index predictor: text states in, logits over the VQ-VAE codebook for every
position of the latent grid out.

One learned query per latent position (256 for a 16x16 grid) plus the embedding of the code
already known there - or of the [MASK] code where nothing is known. Blocks of self-attention
among positions, cross-attention to the text states, and an MLP. Trained MaskGIT-style
(Chang et al., 2022): a random share of positions is given, the rest masked, so the same
network predicts the whole grid in one shot from nothing and can refine it in K parallel
steps. Classifier-free guidance (Ho & Salimans, 2022): the text is dropped for a share of
training samples; a learned "null" text token, always present among the keys, is all that
is left to attend to, so an all-False text mask is the unconditional model.

`forward` has no data-dependent Python control flow, so it exports to ONNX as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from artgen.models.layers import MLP, Attention


@dataclass
class PredictorConfig:
    grid: int = 16  # latent grid side: grid*grid positions
    codebook_size: int = 512
    text_width: int = 192  # width of the encoder's states (set from the encoder)
    width: int = 128  # the default preset (training.predictor.PRESETS; scripts/bench_predictor_step.py)
    layers: int = 4
    heads: int = 4
    mlp_ratio: int = 3
    dropout: float = 0.0
    text_drop: float = 0.1  # share of training samples whose text is dropped (for guidance)
    full_mask: float = 0.25  # share of training samples with every position masked (the one-shot case)

    @property
    def positions(self) -> int:
        return self.grid * self.grid

    @property
    def mask_id(self) -> int:
        return self.codebook_size  # the extra embedding row meaning "unknown here"


class PredictorBlock(nn.Module):
    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.width)
        self.self_attn = Attention(cfg.width, cfg.heads, dropout=cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.width)
        self.cross_attn = Attention(cfg.width, cfg.heads, dropout=cfg.dropout)
        self.ln3 = nn.LayerNorm(cfg.width)
        self.mlp = MLP(cfg.width, cfg.mlp_ratio, cfg.dropout)

    def forward(self, x, text, text_mask):
        h = self.ln1(x)
        x = x + self.self_attn(h, h)
        x = x + self.cross_attn(self.ln2(x), text, text_mask)
        return x + self.mlp(self.ln3(x))


class IndexPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.cfg = cfg
        self.queries = nn.Parameter(torch.randn(1, cfg.positions, cfg.width) * 0.02)  # one per position
        self.code_emb = nn.Embedding(cfg.codebook_size + 1, cfg.width)  # + the [MASK] code
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_width), nn.Linear(cfg.text_width, cfg.width))
        self.null_text = nn.Parameter(torch.randn(1, 1, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(PredictorBlock(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.codebook_size)
        nn.init.normal_(self.code_emb.weight, std=0.02)

    def forward(self, codes: torch.Tensor, states: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """codes (B, N) long with `mask_id` where unknown; states (B, T, d_text); text_mask
        (B, T) bool, all False for the unconditional (text-dropped) prediction.
        Returns logits (B, N, codebook_size)."""
        B = codes.shape[0]
        x = self.queries + self.code_emb(codes)  # (B, N, d)
        text = torch.cat([self.null_text.expand(B, -1, -1), self.text_proj(states)], dim=1)  # (B, 1+T, d)
        keys = torch.cat([torch.ones_like(text_mask[:, :1]), text_mask], dim=1)  # (B, 1+T) the null token always
        for block in self.blocks:
            x = block(x, text, keys)
        return self.head(self.ln_f(x))  # (B, N, K)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def mask_schedule(progress: torch.Tensor) -> torch.Tensor:
    """MaskGIT's cosine schedule: share of positions still masked at `progress` in [0, 1]."""
    return torch.cos(progress * math.pi / 2)


def training_inputs(codes: torch.Tensor, text_mask: torch.Tensor, cfg: PredictorConfig,
                    generator: torch.Generator | None = None):
    """Mask a random share of each grid (cosine schedule; `full_mask` of the samples entirely)
    and drop the text of `text_drop` of them.

    codes (B, N) long -> (inputs (B, N) with mask_id, masked (B, N) bool, text_mask (B, T))."""
    B, N = codes.shape
    dev = codes.device
    ratio = mask_schedule(torch.rand(B, generator=generator, device=dev))
    ratio = torch.where(torch.rand(B, generator=generator, device=dev) < cfg.full_mask, torch.ones_like(ratio), ratio)
    n_masked = (ratio * N).ceil().clamp(1, N)  # (B,)
    order = torch.rand(B, N, generator=generator, device=dev).argsort(dim=1).argsort(dim=1)  # a random rank per position
    masked = order < n_masked[:, None]  # (B, N) True where the model must predict
    inputs = torch.where(masked, torch.full_like(codes, cfg.mask_id), codes)
    drop = torch.rand(B, generator=generator, device=dev) < cfg.text_drop
    return inputs, masked, text_mask & ~drop[:, None]


def evaluation_inputs(codes: torch.Tensor, cfg: PredictorConfig) -> torch.Tensor:
    """What the test CE reads: a fully masked grid (the one-shot prediction)."""
    return torch.full_like(codes, cfg.mask_id)
