"""Parity of an exported bundle with the PyTorch generator it came from.

On 64 fixed prompts, one-shot (every position masked) with guidance:
- fp32: max abs difference of the guided logits <= 1e-4 and identical argmax codes on
  >= 99 % of positions;
- int8: argmax code agreement >= 95 %; the mean abs pixel difference of the decoded images
  and the agreement of fully sampled codes (1 and 8 steps) are reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from artgen.generate import Generator
from artgen.sampling import DEFAULT_GUIDANCE
from artgen.vocabulary import ADJECTIVES
from export.runtime import Runtime

FP32_MAX_ABS = 1e-4
FP32_AGREEMENT = 0.99
INT8_AGREEMENT = 0.95


def parity_prompts(n: int = 64, seed: int = 0) -> list[str]:
    """`n` fixed prompts of 3-5 vocabulary adjectives in a few phrasings."""
    rng = np.random.default_rng(seed)
    templates = ["{}", "a {} painting", "{} and abstract"]
    prompts = []
    for i in range(n):
        words = list(rng.choice(ADJECTIVES, size=int(rng.integers(3, 6)), replace=False))
        prompts.append(templates[i % len(templates)].format(", ".join(words)))
    return prompts


@dataclass
class ParityReport:
    precision: str
    prompts: int
    logits_max_abs_diff: float
    code_agreement: float  # argmax of one-shot guided logits
    pixel_mean_abs_diff: float  # decoded argmax codes, 0-255 scale
    sampled_agreement_1_step: float
    sampled_agreement_8_steps: float
    passed: bool
    criteria: str

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def check_parity(gen: Generator, bundle_dir: Path, n_prompts: int = 64, guidance: float = DEFAULT_GUIDANCE,
                 threads: int | None = None) -> ParityReport:
    rt = Runtime(bundle_dir, threads=threads)
    prompts = parity_prompts(n_prompts)
    cfg = gen.predictor.cfg
    N = cfg.positions

    tokens = gen.encoder.tokenize(prompts)
    states, mask = gen.encoder.encode(tokens)
    codes = torch.full((len(prompts), N), cfg.mask_id, dtype=torch.long)
    torch_logits = gen.logits(codes, states, mask, guidance).numpy()  # (B, N, K)

    ort_states, ort_mask = rt.encode(prompts)
    ort_logits = rt.logits(codes.numpy(), ort_states, ort_mask, guidance)

    torch_codes, ort_codes = torch_logits.argmax(-1), ort_logits.argmax(-1)
    agreement = float((torch_codes == ort_codes).mean())
    grid = cfg.grid
    torch_pixels = gen.decode(torch.from_numpy(torch_codes).view(-1, grid, grid))
    ort_pixels = rt.decode(ort_codes.reshape(-1, grid, grid))
    pixel_diff = float(np.abs(torch_pixels.astype(np.int16) - ort_pixels.astype(np.int16)).mean())

    sampled = {}
    for steps in (1, 8):
        a = gen.sample_codes(prompts, seed=0, steps=steps, guidance=guidance).numpy()
        b = rt.sample_codes(prompts, seed=0, steps=steps, guidance=guidance)
        sampled[steps] = float((a == b).mean())

    max_abs = float(np.abs(torch_logits - ort_logits).max())
    precision = rt.meta["precision"]
    if precision == "fp32":
        passed = max_abs <= FP32_MAX_ABS and agreement >= FP32_AGREEMENT
        criteria = f"logits max abs diff <= {FP32_MAX_ABS:g} and argmax agreement >= {FP32_AGREEMENT:.0%}"
    else:
        passed = agreement >= INT8_AGREEMENT
        criteria = f"argmax code agreement >= {INT8_AGREEMENT:.0%}"
    return ParityReport(precision, len(prompts), max_abs, agreement, pixel_diff, sampled[1], sampled[8], passed, criteria)
