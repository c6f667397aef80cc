"""Sampling defaults, one place for `artgen generate`, the bench and exported bundles alike
(torch-free, so the CLI can show them without importing torch).
`scripts/sampling_sweep.py` measures the alternatives."""

import math

MAX_STEPS = 64  # refine steps allowed
DEFAULT_STEPS = 8  # parallel decoding in 8 steps (1: the direct, one-shot prediction); docs/generation.md "Sampling settings"
DEFAULT_GUIDANCE = 3.0  # classifier-free guidance scale (1: none)
GUIDED_SHARE = 0.5  # guidance on the first ceil(steps * share) steps; later steps: the plain conditional model
DEFAULT_TEMPERATURE = 1.0  # Gumbel-max sampling temperature (0: the most likely code)
# A temperature below this samples the most likely code, as 0 does: smaller ones change nothing
# but float32 rounding, and the tiniest divide the logits into inf (export.runtime.MIN_TEMPERATURE)
MIN_TEMPERATURE = 1e-6
# The random stream of an image's reveal order, numpy default_rng([seed, ORDER_STREAM]); the
# Gumbel noise of step k uses default_rng([seed, k]) with k < MAX_STEPS, so they never meet.
ORDER_STREAM = 1000


def guided_steps(steps: int) -> int:
    """How many of the first sampling steps apply classifier-free guidance (1 of 1 one-shot)."""
    return math.ceil(round(steps * GUIDED_SHARE, 9))  # round: 10 * 0.3 is 3.0000000000000004

# The autoregressive generator (`--generator ar`): one position per step in raster order, so
# its step count is the grid's size; every step is guided. Image i's Gumbel noise is
# default_rng([seed + i, AR_NOISE_STREAM]).random((N, K)), row t for position t, drawn whole.
AR_DEFAULT_GUIDANCE = 2.5  # with text modulation; scripts/ar_sampling_sweep.py: 2-3 within noise, 2.5 best (docs/generation.md)
AR_DEFAULT_TEMPERATURE = 0.8  # scripts/ar_sampling_sweep.py: all 14 styles, the best FID at guidance 3 (docs/generation.md)
AR_DEFAULT_TOP_K = 0  # sample among the k most likely codes (0: all of them)
AR_NOISE_STREAM = 2000

# Best of N (`--candidates`): candidate j of image i draws with AR noise stream AR_NOISE_STREAM + j
# (candidate 0 is the single draw); the caption picker or the code scorer keeps one. export/runtime.py
# holds the same functions (a bundle's runtime needs neither torch nor artgen).
MAX_CANDIDATES = 8


def prompt_words(prompt: str, adjectives, synonyms: dict[str, str] | None = None) -> list[str]:
    """The scorer's adjectives that `prompt` names, in the scorer's order: the lower-cased prompt's
    words ([a-z]+, hyphenated ones whole and in parts) that are an adjective or a synonym of one
    (`synonyms`: word -> adjective, `scorer_synonyms`)."""
    import re

    tokens = re.findall(r"[a-z]+(?:-[a-z]+)*", prompt.lower())
    words = {*tokens, *(part for t in tokens for part in t.split("-"))}
    named = words | {synonyms[w] for w in words if w in (synonyms or {})}
    return [a for a in adjectives if a in named]


def scorer_synonyms(adjectives) -> dict[str, str]:
    """The vocabulary's synonyms of the scorer's adjectives ("vibrant" -> vivid), which the pick
    among candidates reads as their adjective. Held-out synonyms stay out: they measure how the
    text encoder meets words it never saw (the bench's zero-shot rows), which a pick that knew
    them would blur."""
    from artgen.data.vocabulary import SYNONYMS

    wanted = set(adjectives)
    return {w: a for w, a in SYNONYMS.items() if a in wanted}


def asked_words(prompts, adjectives, synonyms: dict[str, str] | None = None):
    """(B, V) float32 multi-hot of the `adjectives` each prompt names: what the caption picker reads."""
    from artgen.data.vocabulary import multi_hot

    return multi_hot([prompt_words(p, adjectives, synonyms) for p in prompts], adjectives)


def picked_candidates(scores, words):
    """(B,) the kept candidate of each image: the highest of the picker's `scores` (C, B), the
    first on a tie, 0 when the prompt names none of its words (`words` (B, V))."""
    import numpy as np

    return np.where(np.asarray(words).sum(-1) > 0, np.asarray(scores).argmax(0), 0)


def best_candidates(logits, prompts, adjectives, synonyms: dict[str, str] | None = None):
    """(B,) the kept candidate of each image: `logits` (C, B, V) of the scorer over C candidates
    of B images; the highest mean log-sigmoid over the adjectives image b's prompt names, the
    first on a tie, 0 when it names none."""
    import numpy as np

    asked = asked_words(prompts, adjectives, synonyms).astype(np.float64)
    log_sigmoid = -np.logaddexp(0.0, -np.asarray(logits, dtype=np.float64))  # (C, B, V), float64 as the page's
    agreement = (log_sigmoid * asked).sum(-1) / np.maximum(asked.sum(-1), 1)  # (C, B)
    return agreement.argmax(0)
