"""One vector quantiser whose options name the codebook technique they switch on.

- `ema`: codebook vectors follow an exponential moving average of the encoder outputs
  assigned to them instead of being learned by gradient (van den Oord et al. 2017, VQ-VAE,
  appendix; Razavi et al. 2019, VQ-VAE-2).
- `kmeans_init`: the codebook starts as k-means centroids of the first batch's encoder
  outputs rather than random vectors (as in lucidrains/vector-quantize-pytorch, after
  Lancucki et al. 2020, "Robust training of vector quantized bottleneck models").
- `dead_code_threshold`: a code whose EMA usage count falls below this is restarted on a
  random encoder output of the current batch (Dhariwal et al. 2020, Jukebox; Zeghidour et
  al. 2021, SoundStream).
- `l2_normalized`: encoder outputs and codes live on the unit sphere, so the nearest code is
  the one of highest cosine similarity (Yu et al. 2022, ViT-VQGAN).

The nearest code is found by one matmul and an argmin over expanded squared distances, not
`torch.cdist`, so the lookup exports to ONNX. `vector-quantize-pytorch` is not used: it is not
installed here and its lookup goes through `cdist`/einops paths we would have to patch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerConfig:
    codebook_size: int = 512
    dim: int = 64
    ema: bool = True
    decay: float = 0.99             # EMA decay of codebook statistics
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 1.0  # restart codes whose EMA count < this (0: never restart)
    l2_normalized: bool = False
    commitment_weight: float = 0.25
    eps: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)


# Named variants used by presets and the ablation (each name says which tricks are on).
QUANTIZER_VARIANTS: dict[str, dict] = {
    "plain": dict(ema=False, kmeans_init=False, dead_code_threshold=0.0),
    "ema": dict(ema=True, kmeans_init=False, dead_code_threshold=0.0),
    "ema-kmeans": dict(ema=True, kmeans_init=True, dead_code_threshold=0.0),
    "ema-kmeans-restart": dict(ema=True, kmeans_init=True, dead_code_threshold=1.0),
    "cosine-ema-kmeans-restart": dict(ema=True, kmeans_init=True, dead_code_threshold=1.0, l2_normalized=True),
}


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(N,) index of the nearest row of `codebook` (K, D) for each row of `z` (N, D).

    ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is constant per row, so it is dropped."""
    scores = (codebook * codebook).sum(1)[None, :] - 2.0 * (z @ codebook.t())  # (N, K)
    return scores.argmin(dim=1)


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(k, D) centroids of `x` (N, D) by Lloyd's algorithm; empty clusters keep their centre."""
    n = x.shape[0]
    idx = torch.randperm(n, generator=generator)[:k] if n >= k else torch.randint(0, n, (k,), generator=generator)
    centres = x[idx.to(x.device)].clone()
    for _ in range(iters):
        assign = nearest_code(x, centres)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t


class QuantizerOutput(NamedTuple):
    quantized: torch.Tensor   # (B, D, h, w) code vectors, straight-through gradient to the encoder
    codes: torch.Tensor       # (B, h, w) code indices
    loss: torch.Tensor        # commitment (+ codebook, without EMA) loss, scalar
    commitment: torch.Tensor  # unweighted commitment term, detached, for logging
    counts: torch.Tensor      # (K,) how often each code was picked in this batch


class VectorQuantizer(nn.Module):
    def __init__(self, cfg: QuantizerConfig):
        super().__init__()
        self.cfg = cfg
        k, d = cfg.codebook_size, cfg.dim
        embed = torch.randn(k, d)
        if cfg.l2_normalized:
            embed = F.normalize(embed, dim=1)
        if cfg.ema:
            self.register_buffer("embed", embed)
            self.register_buffer("embed_sum", embed.clone())
            self.register_buffer("cluster_size", torch.ones(k))
        else:
            self.embed = nn.Parameter(embed)
            self.register_buffer("cluster_size", torch.ones(k))  # usage EMA, for restarts only
        self.register_buffer("initialized", torch.tensor(not cfg.kmeans_init))

    def codebook(self) -> torch.Tensor:
        e = self.embed
        return F.normalize(e, dim=1) if self.cfg.l2_normalized else e

    def _prepare(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=1) if self.cfg.l2_normalized else z

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) code vectors for (B, h, w) indices (ONNX: one Gather)."""
        return F.embedding(codes, self.codebook()).permute(0, 3, 1, 2)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, h, w) code indices for encoder outputs (B, D, h, w)."""
        b, d, h, w = z.shape
        flat = self._prepare(z.permute(0, 2, 3, 1).reshape(-1, d))  # (B*h*w, D)
        return nearest_code(flat, self.codebook()).view(b, h, w)

    @torch.no_grad()
    def _init_kmeans(self, flat: torch.Tensor) -> None:
        centres = kmeans(flat, self.cfg.codebook_size, self.cfg.kmeans_iters)
        if self.cfg.l2_normalized:
            centres = F.normalize(centres, dim=1)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast(centres, 0)
        self.embed.data.copy_(centres)
        if self.cfg.ema:
            self.embed_sum.copy_(centres)
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        cfg = self.cfg
        k = cfg.codebook_size
        counts = _all_reduce(counts.to(flat.dtype).clone())
        self.cluster_size.mul_(cfg.decay).add_(counts, alpha=1 - cfg.decay)
        if cfg.ema:
            sums = _all_reduce(torch.zeros(k, flat.shape[1], device=flat.device, dtype=flat.dtype).index_add_(0, codes, flat))
            self.embed_sum.mul_(cfg.decay).add_(sums, alpha=1 - cfg.decay)
            n = self.cluster_size.sum()
            # Laplace smoothing keeps rarely used codes from dividing by ~0.
            smoothed = (self.cluster_size + cfg.eps) / (n + k * cfg.eps) * n
            embed = self.embed_sum / smoothed[:, None]
            if cfg.l2_normalized:
                embed = F.normalize(embed, dim=1)
            self.embed.copy_(embed)
        if cfg.dead_code_threshold > 0:
            dead = self.cluster_size < cfg.dead_code_threshold
            n_dead = int(dead.sum())
            if n_dead:
                pick = torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)
                fresh = flat[pick]
                if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                    dist.broadcast(fresh, 0)
                self.embed.data[dead] = fresh
                if cfg.ema:
                    self.embed_sum[dead] = fresh
                self.cluster_size[dead] = 1.0

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantise encoder outputs z (B, D, h, w)."""
        b, d, h, w = z.shape
        flat = self._prepare(z.permute(0, 2, 3, 1).reshape(-1, d))  # (B*h*w, D)
        if self.training and not bool(self.initialized):
            self._init_kmeans(flat.detach())
        codebook = self.codebook()
        codes = nearest_code(flat.detach(), codebook)                  # (B*h*w,)
        quant = F.embedding(codes, codebook)                            # (B*h*w, D)
        counts = torch.bincount(codes, minlength=self.cfg.codebook_size)
        commitment = F.mse_loss(flat, quant.detach())
        loss = self.cfg.commitment_weight * commitment
        if not self.cfg.ema:
            loss = loss + F.mse_loss(quant, flat.detach())  # codebook loss moves the codes
        if self.training:
            self._update(flat.detach(), codes, counts)
        quant = flat + (quant - flat).detach()                          # straight-through
        quant = quant.view(b, h, w, d).permute(0, 3, 1, 2)              # (B, D, h, w)
        return QuantizerOutput(quantized=quant, codes=codes.view(b, h, w), loss=loss,
                               commitment=commitment.detach(), counts=counts)
