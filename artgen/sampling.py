"""Sampling defaults, one place for `artgen generate`, the bench and exported bundles alike
(torch-free, so the CLI can show them without importing torch).
`scripts/sampling_sweep.py` measures the alternatives."""

MAX_STEPS = 64  # refine steps allowed
DEFAULT_STEPS = 1  # the direct, one-shot prediction
DEFAULT_GUIDANCE = 3.0  # classifier-free guidance scale (1: none)
DEFAULT_TEMPERATURE = 1.0  # Gumbel-max sampling temperature (0: the most likely code)
