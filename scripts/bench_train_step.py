"""What one training step of the autoregressive default preset costs on this CPU, eager and
under `torch.compile`, with every batch's captions of one length or of varying lengths (as in
training, where the tokenizer pads each batch to its longest caption). Random codes and a
small tokenizer: the cost does not depend on what the network has learned.

    python scripts/bench_train_step.py [--batch 32] [--steps 15] [--modes eager,compile] [--lengths fixed,varied] [--profile]

Prints one row per (mode, lengths): the first steps' wall time (compilation) and the median
seconds per later step, with samples per second. `--profile` instead prints where the eager
step's CPU time goes (torch.profiler, the steps after the first few, by operator). Run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from artgen.models.encoders import load_encoder
from artgen.models.generators import generator_kind
from artgen.models.text_to_codes import TextToCodes
from artgen.training.predictor import AR_PRESETS

WORDS = "warm cool calm chaotic vivid muted wavy circular dotted blocky linear splattered gradient fluid".split()


def captions(step: int, batch: int, varied: bool) -> list[str]:
    rng = np.random.default_rng(step)
    sizes = rng.integers(1, 6, size=batch) if varied else np.full(batch, 4)
    sizes[0] = 5 if not varied else 1 + step % 5  # the batch's longest caption changes from step to step
    return [" ".join(rng.choice(WORDS, size=n, replace=False)) for n in sizes]


def run(mode: str, varied: bool, batch: int, steps: int, profile: bool = False) -> tuple[float, float]:
    p = AR_PRESETS["default"]["tiny"]
    encoder = load_encoder("tiny", texts=[" ".join(WORDS)] * 20 + WORDS * 5, overrides=p.encoder)
    kind = generator_kind("ar")
    cfg = kind.config(**{**p.predictor, "grid": 16, "text_width": encoder.width})
    torch.manual_seed(0)
    model = TextToCodes(encoder, kind.build(cfg)).train()
    forward = torch.compile(model) if mode == "compile" else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    times = []
    warm = min(5, steps // 2)
    profiler = None
    for step in range(steps):
        if profile and step == warm:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as start_profile

            profiler = start_profile(activities=[ProfilerActivity.CPU]).__enter__()
        tokens = encoder.tokenize(captions(step, batch, varied))
        codes = torch.randint(0, cfg.codebook_size, (batch, cfg.positions), generator=g)
        inputs, _, text_mask = kind.training_inputs(codes, tokens.mask, cfg, g)
        t = time.perf_counter()
        logits = forward(inputs, tokens.ids, tokens.mask, text_mask)
        loss = F.cross_entropy(logits.transpose(1, 2), codes)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    if profiler is not None:
        profiler.__exit__(None, None, None)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return sum(times[:warm]), float(np.median(times[warm:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--lengths", default="fixed,varied")
    ap.add_argument("--profile", action="store_true", help="where the eager step's time goes, by operator")
    args = ap.parse_args()
    if args.profile:
        run("eager", True, args.batch, args.steps, profile=True)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}\n")
    print("| mode | caption lengths | first 5 steps (s) | s / step (median) | samples / s |\n|---|---|---|---|---|")
    for mode in args.modes.split(","):
        for lengths in args.lengths.split(","):
            first, per_step = run(mode, lengths == "varied", args.batch, args.steps)
            print(f"| {mode} | {lengths} | {first:.1f} | {per_step:.3f} | {args.batch / per_step:.1f} |", flush=True)


if __name__ == "__main__":
    main()
