"""The three ONNX graphs of a bundle, as small torch modules wrapping a trained Generator.

Each wrapper fixes the contract an app sees: plain int64/float32/uint8 tensors, no Python
objects, a dynamic batch axis.

    text_encoder.onnx  input_ids (B, T) int64, attention_mask (B, T) int64 -> states (B, T, d) float32
    predictor.onnx     codes (B, N) int64 [mask_id = unknown], states (B, T, d) float32,
                       attention_mask (B, T) int64, guidance (1,) float32 -> logits (B, N, K) float32
    decoder.onnx       codes (B, h, w) int64 -> images (B, H, W, 3) uint8

The predictor graph runs the conditional and the text-dropped pass as one batch of 2B and
returns guided logits, uncond + g * (cond - uncond): one ORT call per sampling step.
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


class GuidedPredictorGraph(nn.Module):
    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor

    def forward(self, codes, states, attention_mask, guidance):
        mask = attention_mask > 0  # (B, T)
        both = self.predictor(
            torch.cat([codes, codes], 0),  # (2B, N)
            torch.cat([states, states], 0),  # (2B, T, d)
            torch.cat([mask, torch.zeros_like(mask)], 0),  # text, then text dropped
        )  # (2B, N, K)
        cond, uncond = both.chunk(2, dim=0)
        return uncond + guidance * (cond - uncond)  # (B, N, K)


class DecoderGraph(nn.Module):
    """Codes to uint8 pixels with exactly the rounding of `Generator.decode`."""

    def __init__(self, vqvae):
        super().__init__()
        self.vqvae = vqvae

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        images = self.vqvae.decode_indices(codes)  # (B, 3, H, W) in [0, 1]
        return (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)  # (B, H, W, 3)
