"""Would best-of-N sampling help the autoregressive generator draw the style its words ask for?
A probe, not a sampler the product ships: N candidates per caption (seeds s, s+1000, ...), each
scored by the model's own text agreement, the sum over positions of
log p(code | text) - log p(code | no text) (both terms are computed anyway under guidance), and
the best-scoring one judged by the bench's style judge. Prints style consistency per candidate,
of the best-of-N for every N asked for, and of an oracle that always picks a hit (the ceiling of
any reranker over the same candidates).

    python scripts/ar_rerank_probe.py --workdir W [--model tiny-ar] [--captions 300] [--n 1,2,4]

Captions and targets as in `scripts/ar_sampling_sweep.py` (3-5 of a test painting's ground-truth
adjectives, seed i for caption i), at the shipped defaults' guidance and temperature.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
import torch
from ar_probe_common import add_probe_args, guided_codes, open_probe

from artgen.sampling import AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(ap)
    ap.add_argument("--n", default="1,2,4", help="candidate counts to compare")
    ap.add_argument("--batch", type=int, default=25)
    args = ap.parse_args()
    ns = sorted(int(x) for x in args.n.split(","))
    _, gen, probe = open_probe(args)
    captions, targets, judge = probe.captions, np.array(probe.targets), probe.judge
    start = time.perf_counter()
    codes, scores = [], []
    for s in range(0, len(captions), args.batch):
        batch = captions[s:s + args.batch]
        per = [guided_codes(gen, batch, [1000 * j + i for i in range(s, s + len(batch))], AR_DEFAULT_GUIDANCE,
                            AR_DEFAULT_TEMPERATURE) for j in range(ns[-1])]
        codes.append(torch.stack([c for c, _ in per], 1))
        scores.append(torch.stack([sc for _, sc in per], 1))
    codes, score = torch.cat(codes), torch.cat(scores)  # (C, n, N), (C, n)
    grid = gen.predictor.cfg.grid
    images = gen.decode(codes.flatten(0, 1).view(-1, grid, grid))
    predicted = np.array(judge.predict(list(images))).reshape(len(captions), ns[-1])
    hit = predicted == targets[:, None]
    print(f"model {args.model} ({gen.source}), {len(captions)} test captions, guidance {AR_DEFAULT_GUIDANCE}, "
          f"temperature {AR_DEFAULT_TEMPERATURE}, {time.perf_counter() - start:.0f} s")
    print("style consistency of each candidate alone: " + ", ".join(f"{h:.3f}" for h in hit.mean(0)))
    print("| candidates | best by text agreement | styles covered | top style share | oracle |\n|---|---|---|---|---|")
    rows_ = np.arange(len(captions))
    for n in ns:
        best = score[:, :n].argmax(1).numpy()
        counts = Counter(predicted[rows_, best])
        print(f"| {n} | {hit[rows_, best].mean():.3f} | {len(counts)} | {counts.most_common(1)[0][1] / len(captions):.2f} "
              f"| {hit[:, :n].any(1).mean():.3f} |")


if __name__ == "__main__":
    main()
