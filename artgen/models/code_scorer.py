"""The code scorer: a small convolutional network that reads a VQ-VAE code grid (B, h, w) and
predicts which vocabulary adjectives the painting carries (one logit each). The autoregressive
generator's self-training (`artgen.training.self_training`) keeps, of several drafts for one
caption, the one whose codes it finds most consistent with the caption's words.

It reads codes, never pixels or the corpus's `style` column, so the bench's judges (logistic
regressions on image statistics of decoded images) stay independent of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from artgen.data.vocabulary import multi_hot
from artgen.errors import ArtgenError
from artgen.files import atomic_save_safetensors, atomic_write_json

CONFIG, WEIGHTS = "config.json", "model.safetensors"


@dataclass
class CodeScorerConfig:
    codebook_size: int = 512
    adjectives: list[str] = field(default_factory=list)  # one logit per word, in this order
    embed: int = 32  # code embedding width
    width: int = 48  # channels of the first block (x2 at 8x8, x4 at 4x4)


class CodeScorer(nn.Module):
    """Adjective logits (B, V) of code grids (B, h, w): an embedding per code, three 3x3
    convolution stages (full grid, 1/2, 1/4), mean and max pooled, one linear layer."""

    def __init__(self, cfg: CodeScorerConfig):
        super().__init__()
        if not cfg.adjectives:
            raise ArtgenError("a code scorer needs at least one adjective to score")
        self.cfg = cfg
        w = cfg.width
        self.embed = nn.Embedding(cfg.codebook_size, cfg.embed)
        self.net = nn.Sequential(
            nn.Conv2d(cfg.embed, w, 3, padding=1), nn.GELU(),
            nn.Conv2d(w, w, 3, padding=1), nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.GELU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.GELU(),
        )
        self.head = nn.Linear(8 * w, len(cfg.adjectives))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.net(self.embed(codes.long()).permute(0, 3, 1, 2))
        return self.head(torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1))

    def targets(self, labels: list[list[str]]) -> torch.Tensor:
        """Multi-hot (B, V) of each painting's adjectives (words it does not score are ignored)."""
        return torch.from_numpy(multi_hot(labels, self.cfg.adjectives))

    @torch.no_grad()
    def agreement(self, codes: torch.Tensor, asked: list[list[str]]) -> torch.Tensor:
        """(B,): the mean log-probability the scorer gives each grid's asked adjectives."""
        y = self.targets(asked)
        logp = F.logsigmoid(self(codes))
        return (logp * y).sum(1) / y.sum(1).clamp_min(1)

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        atomic_save_safetensors(self.state_dict(), directory / WEIGHTS)
        atomic_write_json(directory / CONFIG, asdict(self.cfg))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "CodeScorer":
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG).is_file() or not (directory / WEIGHTS).is_file():
            raise ArtgenError(f"no code scorer at {directory} (no {CONFIG} + {WEIGHTS})")
        model = cls(CodeScorerConfig(**json.loads((directory / CONFIG).read_text())))
        model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
        return model.eval()
