"""Does the autoregressive generator keep its words' style better when the sampler commits to
it early? The first rows of the grid drawn at another guidance and temperature (a colder or
more strongly guided opening), the rest at the defaults; style consistency, styles covered and
top style share on the sweep's test captions, one row per opening.

    python scripts/ar_opening_probe.py --workdir W [--model tiny-ar] [--captions 300]
        [--openings 2:2.5:0.5,4:2.5:0.5,4:4:0.8]        # rows:guidance:temperature, each

`scripts/ar_style_diagnosis.py` found that the true codes of the first 4 rows lift style
consistency by ~0.09: this asks how much of that a sampler can get without them. Captions,
seeds and the judge as in `scripts/ar_sampling_sweep.py`.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from ar_probe_common import add_probe_args, drawn_styles, open_probe

from artgen.sampling import AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(ap)
    ap.add_argument("--openings", default="2:2.5:0.5,4:2.5:0.5,4:4:0.8",
                    help="comma-separated rows:guidance:temperature for the opening rows")
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    _, gen, probe = open_probe(args)
    captions, targets, judge = probe.captions, probe.targets, probe.judge
    grid = gen.predictor.cfg.grid
    N = grid * grid

    def judged(rows: int, guidance: float, temperature: float) -> list[str]:
        g = [guidance] * (rows * grid) + [AR_DEFAULT_GUIDANCE] * (N - rows * grid)
        t = [temperature] * (rows * grid) + [AR_DEFAULT_TEMPERATURE] * (N - rows * grid)
        return drawn_styles(gen, captions, judge, g, t, args.batch)

    print(f"model {args.model} ({gen.source}), {len(captions)} test captions; the rest of the grid at guidance "
          f"{AR_DEFAULT_GUIDANCE}, temperature {AR_DEFAULT_TEMPERATURE}\n")
    print("| opening rows | guidance | temperature | style consistency | styles covered | top style share |")
    print("|---|---|---|---|---|---|")
    settings = [(0, AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE)]
    settings += [(int(r), float(g), float(t)) for r, g, t in (o.split(":") for o in args.openings.split(","))]
    for rows, guidance, temperature in settings:
        predicted = judged(rows, guidance, temperature)
        counts = Counter(predicted)
        consistency = float(np.mean([p == t for p, t in zip(predicted, targets)]))
        print(f"| {rows} | {guidance:g} | {temperature:g} | {consistency:.3f} | {len(counts)} of "
              f"{len(set(targets) | set(judge.styles))} | {max(counts.values()) / len(predicted):.2f} |", flush=True)


if __name__ == "__main__":
    main()
