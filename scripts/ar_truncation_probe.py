"""Does truncating the autoregressive sampler's tail help the pictures follow their words? For
the probe set's test captions: attribute accuracy and style consistency (the bench's judges,
as `decoder_probe.py`) of the default tiny-ar model's images under each sampler setting,
decoded by the workspace VQ-VAE (its adversarial decoder when it has one).

A setting is `min_p:temperature:top_k`: min-p keeps, at every step, only the codes whose
guided probability is at least `min_p` times the most likely code's (Nguyen et al. 2024,
"min-p sampling"; 0: off), then top-k (0: off) and Gumbel-max at the temperature.

    python scripts/ar_truncation_probe.py --workdir W --settings 0:0.8:0,0.05:0.8:0,0.1:0.8:0,0.1:1.0:0 [--captions 600]

Caption i is drawn with seed i under every setting, so rows differ by the sampler alone.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from ar_probe_common import add_probe_args, open_probe
from decoder_probe import judged_setup, score

import artgen.generate as generate

ORIGINAL = generate.pick_codes


def with_min_p(min_p: float):
    """`generate.pick_codes` with min-p truncation before it."""
    def pick(logits: torch.Tensor, noise: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
        if min_p > 0:
            keep = logits >= logits.max(-1, keepdim=True).values + math.log(min_p)
            logits = logits.masked_fill(~keep, float("-inf"))
        return ORIGINAL(logits, noise, temperature, top_k)
    return pick


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(ap)
    ap.add_argument("--settings", default="0:0.8:0,0.1:0.8:0", help="comma-separated min_p:temperature:top_k")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--per-adjective", default="", help="comma-separated adjectives to show per setting")
    args = ap.parse_args()
    ws, gen, probe = open_probe(args)
    judge, requested, real = judged_setup(ws, probe)
    acc, style, _ = score(real, judge, requested, probe.judge, probe.targets)
    n = len(probe.captions)
    print(f"{n} test captions; real test paintings: attribute accuracy {acc:.3f}, style consistency {style:.3f}")
    shown = [a for a in args.per_adjective.split(",") if a]
    print("| min-p | temperature | top-k | attribute accuracy | style consistency | styles / top share | "
          + "".join(f"{a} | " for a in shown) + "seconds |")
    print("|---|---|---|---|---|---|" + "---|" * len(shown) + "---|")
    for setting in args.settings.split(","):
        min_p, temperature, top_k = setting.split(":")
        generate.pick_codes = with_min_p(float(min_p))
        start = time.perf_counter()
        codes = torch.cat([gen.sample_codes(probe.captions[s:s + args.batch], seeds=list(range(s, min(s + args.batch, n))),
                                            temperature=float(temperature), top_k=int(top_k))
                           for s in range(0, n, args.batch)])
        seconds = time.perf_counter() - start
        images = gen.decode(codes)
        acc, style, per = score(images, judge, requested, probe.judge, probe.targets)
        drawn = probe.judge.predict(list(images))
        counts = np.unique(drawn, return_counts=True)[1]
        print(f"| {min_p} | {temperature} | {top_k} | {acc:.3f} | {style:.3f} | {len(counts)} / {counts.max() / n:.2f} | "
              + "".join(f"{per.get(a, float('nan')):.2f} | " for a in shown) + f"{seconds:.0f} |", flush=True)
    generate.pick_codes = ORIGINAL


if __name__ == "__main__":
    main()
