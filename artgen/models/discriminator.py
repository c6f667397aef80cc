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


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: PatchDiscriminatorConfig | None = None):
        super().__init__()
        cfg = cfg or PatchDiscriminatorConfig()
        layers, c_in = [], 3
        for i in range(cfg.layers):
            c = cfg.width * 2 ** i
            layers += [spectral_norm(nn.Conv2d(c_in, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in = c
        layers += [spectral_norm(nn.Conv2d(c_in, c_in, 3, padding=1)), nn.LeakyReLU(0.2),
                   spectral_norm(nn.Conv2d(c_in, 1, 3, padding=1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [-1, 1] -> (B, 1, h, w) logits
        return self.net(x)
