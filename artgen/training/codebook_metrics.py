"""Codebook metrics as torchmetrics-style objects: `update(codes)` many times, `compute()` once.

Definitions (DESIGN.md): over all code indices seen,
- `codebook_usage`: fraction of the K codes used at least once;
- `perplexity`: exp of the entropy (natural log) of the code histogram; K when every code is
  equally frequent, 1 when a single code is used.
"""

from __future__ import annotations

import math

import torch


class CodeHistogram:
    """Counts of each code index over everything passed to `update`."""

    def __init__(self, codebook_size: int = 512):
        if codebook_size < 1:
            raise ValueError(f"codebook_size must be positive (got {codebook_size})")
        self.codebook_size = codebook_size
        self.reset()

    def reset(self) -> None:
        self.counts = torch.zeros(self.codebook_size, dtype=torch.long)

    def update(self, codes: torch.Tensor) -> None:
        """Add code indices of any shape, e.g. (B, 16, 16)."""
        codes = torch.as_tensor(codes).reshape(-1).long().cpu()
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(f"code index out of range [0, {self.codebook_size})")
        self.counts += torch.bincount(codes, minlength=self.codebook_size)

    def update_counts(self, counts: torch.Tensor) -> None:
        """Add a ready histogram of shape (K,)."""
        self.counts += torch.as_tensor(counts).reshape(-1).long().cpu()


class CodebookUsage(CodeHistogram):
    def compute(self) -> float:
        return usage_of(self.counts)


class CodebookPerplexity(CodeHistogram):
    def compute(self) -> float:
        return perplexity_of(self.counts)


def usage_of(counts: torch.Tensor) -> float:
    counts = torch.as_tensor(counts)
    return float((counts > 0).sum()) / counts.numel()


def perplexity_of(counts: torch.Tensor) -> float:
    counts = torch.as_tensor(counts, dtype=torch.float64)
    total = counts.sum()
    if total <= 0:
        return float("nan")
    p = counts[counts > 0] / total
    return math.exp(float(-(p * p.log()).sum()))
