"""Does a guidance that grows down the grid hold the words' style where the generator drifts?
For the probe set's test captions: attribute accuracy and style consistency (the bench's
judges, as `decoder_probe.py`) of the tiny-ar model's images under each guidance schedule,
decoded by the workspace VQ-VAE (its adversarial decoder when it has one).

A schedule is `first:last[:power]`: the guidance of row r of the grid (0 … rows-1) is
first + (last - first) * (r / (rows - 1)) ** power (power 1: a straight ramp). `2.5:2.5` is
the default sampler. The temperature is the default's (or --temperature) on every row.

    python scripts/ar_guidance_schedule_probe.py --workdir W --schedules 2.5:2.5,1.5:3.5,1:4,2:4:2 [--captions 1000]

`scripts/ar_word_rows.py` shows generated images that start as the asked-for field and turn
into another style lower down: with every row's prefix longer, the prefix outweighs the text,
and a later, stronger guidance is the sampler's way to lean on the words again. Caption i is
drawn with seed i under every schedule, so rows differ by the schedule alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ar_probe_common import add_probe_args, guided_codes, open_probe
from decoder_probe import judged_setup, score

from artgen.sampling import AR_DEFAULT_TEMPERATURE


def row_guidance(schedule: str, grid: int) -> list[float]:
    """One guidance per position (raster order) for a `first:last[:power]` schedule."""
    parts = [float(p) for p in schedule.split(":")]
    if len(parts) not in (2, 3):
        raise SystemExit(f"a schedule is first:last[:power] (got {schedule!r})")
    first, last, power = parts[0], parts[1], parts[2] if len(parts) == 3 else 1.0
    rows = [first + (last - first) * (r / (grid - 1)) ** power for r in range(grid)]
    return [g for g in rows for _ in range(grid)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(ap)
    ap.add_argument("--schedules", default="2.5:2.5,1.5:3.5", help="comma-separated first:last[:power]")
    ap.add_argument("--temperature", type=float, default=AR_DEFAULT_TEMPERATURE)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--per-adjective", default="", help="comma-separated adjectives to show per schedule")
    args = ap.parse_args()
    ws, gen, probe = open_probe(args)
    judge, requested, real = judged_setup(ws, probe)
    acc, style, _ = score(real, judge, requested, probe.judge, probe.targets)
    n, grid = len(probe.captions), gen.predictor.cfg.grid
    print(f"model {args.model} ({gen.source}), {n} test captions, temperature {args.temperature:g}; "
          f"real test paintings: attribute accuracy {acc:.3f}, style consistency {style:.3f}")
    shown = [a for a in args.per_adjective.split(",") if a]
    print("| guidance schedule | attribute accuracy | style consistency | styles / top share | "
          + "".join(f"{a} | " for a in shown) + "seconds |")
    print("|---|---|---|---|" + "---|" * len(shown) + "---|")
    for schedule in args.schedules.split(","):
        guidance = row_guidance(schedule, grid)
        start = time.perf_counter()
        codes = torch.cat([guided_codes(gen, probe.captions[s:s + args.batch], list(range(s, min(s + args.batch, n))),
                                        guidance, args.temperature)[0] for s in range(0, n, args.batch)])
        seconds = time.perf_counter() - start
        images = gen.decode(codes.view(-1, grid, grid))
        acc, style, per = score(images, judge, requested, probe.judge, probe.targets)
        counts = np.unique(probe.judge.predict(list(images)), return_counts=True)[1]
        print(f"| {schedule} | {acc:.3f} | {style:.3f} | {len(counts)} / {counts.max() / n:.2f} | "
              + "".join(f"{per.get(a, float('nan')):.2f} | " for a in shown) + f"{seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
