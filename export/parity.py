"""Parity of an exported bundle with the PyTorch generator it came from.

Masked generator, on 64 fixed prompts, one-shot (every position masked) with guidance:
- fp32: max abs difference of the guided logits <= 1e-4 and identical argmax codes on
  >= 99 % of positions;
- int8: argmax code agreement >= 95 %; the mean abs pixel difference of the decoded images
  and the agreement of fully sampled codes (1 and 8 steps) are reported.
Autoregressive generator, the same criteria on the guided logits of every position, the
bundle's step graph fed the codes PyTorch sampled (teacher forcing through the KV cache);
the agreement of fully sampled codes (all N steps) is reported in `sampled_agreement_8_steps`'s
place as `sampled_agreement_all_steps`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from artgen.data.vocabulary import ADJECTIVES
from artgen.errors import ArtgenError
from artgen.generate import Generator
from export.bundle import ar_step_names
from export.runtime import Runtime, above_codes

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
    sampled_agreement_1_step: float | None
    sampled_agreement_8_steps: float | None
    passed: bool
    criteria: str
    generator: str = "masked"
    sampled_agreement_all_steps: float | None = None  # autoregressive: every position sampled
    guidance: float | None = None  # the guidance of the compared logits and samples (the model's default)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def check_parity(gen: Generator, bundle_dir: Path, n_prompts: int = 64, guidance: float | None = None,
                 threads: int | None = None) -> ParityReport:
    """`guidance`: None checks at the guidance the bundle samples with (exported from the model's
    own default: an aligned AR model's is lower)."""
    rt = Runtime(bundle_dir, threads=threads)
    guidance = float(rt.meta.get("sampling", {}).get("guidance", gen.default_guidance) if guidance is None else guidance)
    if rt.generator != gen.kind:
        raise ArtgenError(f"{bundle_dir} holds the {rt.generator} generator but the model is {gen.kind}: "
                          "check a bundle against the model it was exported from")
    prompts = parity_prompts(n_prompts)
    if gen.kind == "ar":
        return _ar_parity(gen, rt, prompts, guidance)
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
    passed, criteria = _judge(rt.meta["precision"], max_abs, agreement)
    return ParityReport(rt.meta["precision"], len(prompts), max_abs, agreement, pixel_diff, sampled[1], sampled[8],
                        passed, criteria, guidance=guidance)


def _judge(precision: str, max_abs: float, agreement: float) -> tuple[bool, str]:
    if precision == "fp32":
        return (max_abs <= FP32_MAX_ABS and agreement >= FP32_AGREEMENT,
                f"logits max abs diff <= {FP32_MAX_ABS:g} and argmax agreement >= {FP32_AGREEMENT:.0%}")
    return agreement >= INT8_AGREEMENT, f"argmax code agreement >= {INT8_AGREEMENT:.0%}"


def _ar_parity(gen: Generator, rt: Runtime, prompts: list[str], guidance: float) -> ParityReport:
    """Guided logits of every position, the bundle's step graph fed the codes PyTorch sampled."""
    cfg = gen.predictor.cfg
    B, N, L = len(prompts), cfg.positions, cfg.layers
    codes = gen.sample_codes(prompts, seed=0, guidance=guidance)  # (B, h, w)
    flat = codes.flatten(1)  # (B, N)
    states, mask = gen.encoder.encode(gen.encoder.tokenize(prompts))
    both = gen.predictor(torch.cat([flat, flat]), torch.cat([states, states]),
                         torch.cat([mask, torch.zeros_like(mask)]))  # (2B, N, K)
    torch_logits = (both[B:] + guidance * (both[:B] - both[B:])).numpy()

    ort_states, ort_mask = rt.encode(prompts)
    ort_states = np.concatenate([ort_states, ort_states])
    ort_mask = np.concatenate([ort_mask, np.zeros_like(ort_mask)])
    context = rt.sessions["ar_context"]
    feed = dict(zip([o.name for o in context.get_outputs()],
                    context.run(None, {"states": ort_states, "attention_mask": ort_mask})))
    past = ar_step_names(L)[1]
    feed.update({n: np.zeros((2 * B, cfg.heads, 0, cfg.head_width), np.float32) for n in past})
    tokens = np.concatenate([np.full((B, 1), cfg.start_id), flat[:, :-1].numpy()], axis=1)  # (B, N)
    ort_logits = np.empty_like(torch_logits)
    sampled_flat = flat.numpy()
    for t in range(N):
        feed["token"] = np.concatenate([tokens[:, t:t + 1], tokens[:, t:t + 1]])
        if cfg.above:
            feed["above"] = np.tile(above_codes(sampled_flat, t, cfg.grid, cfg.start_id), (2, 1))
        out = rt.sessions["ar_step"].run(None, feed)
        ort_logits[:, t] = out[0][B:] + np.float32(guidance) * (out[0][:B] - out[0][B:])
        feed.update(zip(past, out[1:]))

    agreement = float((torch_logits.argmax(-1) == ort_logits.argmax(-1)).mean())
    ort_codes = rt.sample_codes(prompts, seed=0, guidance=guidance, candidates=1)  # the single draw PyTorch makes
    sampled = float((codes.numpy() == ort_codes).mean())
    pixel_diff = float(np.abs(gen.decode(codes).astype(np.int16) - rt.decode(ort_codes).astype(np.int16)).mean())
    max_abs = float(np.abs(torch_logits - ort_logits).max())
    passed, criteria = _judge(rt.meta["precision"], max_abs, agreement)
    return ParityReport(rt.meta["precision"], B, max_abs, agreement, pixel_diff, None, None, passed, criteria,
                        generator="ar", sampled_agreement_all_steps=sampled, guidance=guidance)
