"""Interpolation smoothness: walk between two prompts' text states and see whether the
images change evenly.

`interpolation_images` encodes both prompts, blends their text states linearly in `steps`
steps (steps + 1 images, both ends included) and predicts each grid in one shot with the
argmax code (temperature 0), so the text state is the only thing that changes along the
walk. `smoothness` is the ratio of the largest to the mean distance between consecutive
images in FID-feature space: 1.0 is an even walk, large values mean one abrupt jump.
"""

from __future__ import annotations

import numpy as np
import torch

from artgen.sampling import DEFAULT_GUIDANCE


def smoothness(features: np.ndarray) -> dict:
    """`features` (S + 1, D) along a walk -> {"ratio": max/mean step distance, "steps": [...]}."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 3:
        raise ValueError(f"need at least 3 points (2 steps) along the walk, got shape {features.shape}")
    steps = np.linalg.norm(np.diff(features, axis=0), axis=1)
    mean = steps.mean()
    ratio = float(steps.max() / mean) if mean > 0 else float("nan")
    return {"ratio": ratio, "steps": steps.tolist()}


@torch.no_grad()
def interpolation_images(gen, prompt_a: str, prompt_b: str, steps: int = 8, guidance: float | None = None) -> np.ndarray:
    """(steps + 1, H, W, 3) uint8 images from `prompt_a` to `prompt_b` for an
    `artgen.generate.Generator` (masked: the one-shot argmax; autoregressive: greedy decoding).
    Text positions that are padding in one prompt are
    attended to all along the walk (the union of both masks)."""
    tokens = gen.encoder.tokenize([prompt_a, prompt_b])  # both padded to one length T
    states, mask = gen.encoder.encode(tokens)  # (2, T, d) text states, (2, T)
    t = torch.linspace(0, 1, steps + 1)[:, None, None]  # (S+1, 1, 1)
    walk = (1 - t) * states[0:1] + t * states[1:2]  # (S+1, T, d)
    walk_mask = (mask[0] | mask[1]).expand(steps + 1, -1) if mask.dtype == torch.bool else \
        torch.maximum(mask[0], mask[1]).expand(steps + 1, -1)
    cfg = gen.predictor.cfg
    if getattr(gen, "kind", "masked") == "ar":  # its greedy (temperature 0) drawing from each text state
        guidance = gen.default_guidance if guidance is None else guidance
        grids = gen.codes_from_states(walk, walk_mask.contiguous(), [0] * (steps + 1), guidance, temperature=0.0)
        return gen.decode(grids)
    codes = torch.full((steps + 1, cfg.positions), cfg.mask_id, dtype=torch.long)  # (S+1, N) all unknown
    logits = gen.logits(codes, walk, walk_mask.contiguous(), DEFAULT_GUIDANCE if guidance is None else guidance)  # (S+1, N, K)
    grids = logits.argmax(-1).view(steps + 1, cfg.grid, cfg.grid)  # (S+1, h, w)
    return gen.decode(grids)
