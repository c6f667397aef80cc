"""Seconds per training step of the index predictor alone, for a few widths.

    python scripts/bench_predictor_step.py [--threads 2] [--batch 32]

One AdamW step (forward, masked-token cross-entropy, backward) on a batch of random code
grids with 8 random text states, the median of 5 timed steps after one warm-up step. This
is how the default predictor width was chosen (artgen.training.predictor.PRESETS).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from artgen.machine import cpu_name
from artgen.models.predictor import IndexPredictor, PredictorConfig, training_inputs

SIZES = (dict(width=192, layers=4, heads=6), dict(width=160, layers=4, heads=5), dict(width=128, layers=4, heads=4),
         dict(width=128, layers=3, heads=4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{cpu_name()}, {args.threads} threads, batch {args.batch}")
    for size in SIZES:
        cfg = PredictorConfig(**size)
        model = IndexPredictor(cfg)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        codes = torch.randint(0, cfg.codebook_size, (args.batch, cfg.positions))
        states = torch.randn(args.batch, 8, cfg.text_width)
        text_mask = torch.ones(args.batch, 8, dtype=torch.bool)
        times = []
        for _ in range(6):
            t0 = time.perf_counter()
            inputs, masked, tmask = training_inputs(codes, text_mask, cfg)
            loss = F.cross_entropy(model(inputs, states, tmask)[masked], codes[masked])
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        print(f"width {cfg.width} x {cfg.layers} layers ({model.num_parameters() / 1e6:.2f}M): "
              f"{statistics.median(times[1:]):.2f} s per step")


if __name__ == "__main__":
    main()
