"""A patch discriminator for the adversarial decoder (`artgen.training.decoder`).

    disc = PatchDiscriminator(PatchDiscriminatorConfig())
    logits = disc(images * 2 - 1)   # (B, 1, H/4, W/4): one real-vs-decoded score per patch

Convolutions with spectral normalisation and leaky ReLUs, as the PatchGAN of pix2pix
(Isola et al. 2017) that VQGAN (Esser et al. 2021) puts beside the reconstruction loss: each
output scores a patch of ~22 px, so it judges texture and edges, not the composition. Used in
training only; it is not exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class PatchDiscriminatorConfig:
    width: int = 64     # channels of the first layer, doubled once
    layers: int = 2     # stride-2 layers (each halves the side)
    norm: str = "spectral"  # spectral: spectral-normalised convolutions; batch: BatchNorm after the inner ones (pix2pix, VQGAN)


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: PatchDiscriminatorConfig | None = None):
        super().__init__()
        cfg = cfg or PatchDiscriminatorConfig()
        if cfg.norm not in ("spectral", "batch"):
            raise ValueError(f"unknown discriminator norm {cfg.norm!r}: use spectral or batch")

        def conv(c_in: int, c_out: int, k: int, stride: int, inner: bool) -> list[nn.Module]:
            layer = nn.Conv2d(c_in, c_out, k, stride=stride, padding=1)
            if cfg.norm == "spectral":
                return [spectral_norm(layer)]
            return [layer, nn.BatchNorm2d(c_out)] if inner else [layer]

        layers, c_in = [], 3
        for i in range(cfg.layers):
            c = cfg.width * 2 ** i
            layers += [*conv(c_in, c, 4, 2, inner=i > 0), nn.LeakyReLU(0.2)]
            c_in = c
        layers += [*conv(c_in, c_in, 3, 1, inner=True), nn.LeakyReLU(0.2), *conv(c_in, 1, 3, 1, inner=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [-1, 1] -> (B, 1, h, w) logits
        return self.net(x)
