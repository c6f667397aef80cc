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



class ScorerGraph(nn.Module):
    """The code scorer: code grids (B, h, w) to one logit per adjective (B, V)."""

    def __init__(self, scorer):
        super().__init__()
        self.scorer = scorer

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.scorer(codes)


class PickerGraph(nn.Module):
    """The caption picker: decoded images (B, H, W, 3) uint8 and the multi-hot words each
    prompt names (B, V) float32 to the cosine of each image to its words (B,). The images are
    average-pooled to the picker's input size in the graph (H a multiple of it), as
    `CaptionPicker.pixels` does."""

    def __init__(self, picker, image_size: int):
        super().__init__()
        self.picker = picker
        self.pool = image_size // picker.cfg.input_size

    def forward(self, images: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255
        if self.pool > 1:
            x = nn.functional.avg_pool2d(x, self.pool)
        return self.picker(x, words)


class ARContextGraph(nn.Module):
    """The autoregressive generator's per-prompt work, computed once and read by every step.

    states (B, T, d) float32, attention_mask (B, T) int64 -> per block i cross_key_i
    (B, h, hs, 1+T) (transposed) and cross_value_i (B, h, 1+T, hs) float32, and cross_bias
    (B, 1, 1, 1+T) float32: 0 for the null text token and the real tokens, -inf for padding;
    with text modulation also text_modulation (B, layers, 6, width) float32."""

    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor

    def forward(self, states, attention_mask):
        ks, vs, bias, modulation = self.predictor.context(states, attention_mask > 0)
        return (*ks, *vs, bias) + (() if modulation is None else (modulation,))


class ARStepGraph(nn.Module):
    """One cached autoregressive step, the standard ONNX pattern for decoder LMs.

    token (B, 1) int64 (start_id, then the last code drawn), with `above` the codes (B, 3) int64
    of the cells above the one predicted (`ARPredictor.above_codes`), past_key_i/past_value_i
    (B, h, t, hs) per block (t = 0 at the first step), cross_key_i/cross_value_i/cross_bias
    (and text_modulation) from ar_context -> logits (B, K) float32 of position t, present_key_i/present_value_i
    (B, h, t+1, hs)."""

    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor
        self.layers = predictor.cfg.layers
        self.above = getattr(predictor.cfg, "above", False)

    def forward(self, token, *tensors):
        L = self.layers
        above, tensors = (tensors[0], tensors[1:]) if self.above else (None, tensors)
        past_k, past_v = list(tensors[:L]), list(tensors[L:2 * L])
        cross_k, cross_v, bias = list(tensors[2 * L:3 * L]), list(tensors[3 * L:4 * L]), tensors[4 * L]
        modulation = tensors[4 * L + 1] if len(tensors) > 4 * L + 1 else None
        logits, ks, vs = self.predictor.step(token, past_k, past_v, cross_k, cross_v, bias, modulation, above)
        return (logits, *ks, *vs)
