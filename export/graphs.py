"""The three ONNX graphs of a bundle, as small torch modules wrapping a trained Generator.

Each wrapper fixes the contract an app sees: plain int64/float32/uint8 tensors, no Python
objects, a dynamic batch axis.

    text_encoder.onnx  input_ids (B, T) int64, attention_mask (B, T) int64 -> states (B, T, d) float32
    predictor.onnx     codes (B, N) int64 [mask_id = unknown], states (B, T, d) float32,
                       attention_mask (B, T) int64 -> logits (B, N, K) float32
    decoder.onnx       codes (B, h, w) int64 -> images (B, H, W, 3) uint8

The predictor graph is the plain network: an all-zero attention_mask row is the text-dropped
(unconditional) prediction. The runtime applies classifier-free guidance itself, running the
conditional and unconditional rows as one batch of 2B on the steps that are guided and the
conditional rows alone on the others (guidance on the first steps only,
artgen.sampling.GUIDED_SHARE).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class EncoderGraph(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask > 0)  # (B, T, d) text states


class PredictorGraph(nn.Module):
    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor

    def forward(self, codes, states, attention_mask):
        return self.predictor(codes, states, attention_mask > 0)  # (B, N, K)


class DecoderGraph(nn.Module):
    """Codes to uint8 pixels with exactly the rounding of `Generator.decode`."""

    def __init__(self, vqvae):
        super().__init__()
        self.vqvae = vqvae

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        images = self.vqvae.decode_indices(codes)  # (B, 3, H, W) in [0, 1]
        return (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)  # (B, H, W, 3)
