"""Where does the autoregressive generator lose the style its words ask for? Style consistency
per style (with the styles each one is mistaken for), and with the sampler given the true codes
of the first rows of the test painting the caption came from: if the style were settled by the
first rows, a true start would lift it most of the way to the VQ-VAE reconstructions' score.

    python scripts/ar_style_diagnosis.py --workdir W [--model tiny-ar] [--captions 300] [--rows 1,2,4]

Captions, seeds and the judge as in `scripts/ar_sampling_sweep.py`; the shipped defaults'
guidance and temperature.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

import numpy as np
import torch
from ar_probe_common import add_probe_args, drawn_styles, open_probe

from artgen.data.latents import load_latents, painting_id
from artgen.sampling import AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(ap)
    ap.add_argument("--rows", default="1,2,4", help="true first rows to give the sampler, one run each")
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    ws, gen, probe = open_probe(args)
    rows, captions, targets, judge = probe.rows, probe.captions, probe.targets, probe.judge
    test_ids, test_codes = load_latents(ws, "test")
    where = {painting_id(i): k for k, i in enumerate(test_ids)}
    true = torch.from_numpy(np.stack([test_codes[where[str(i)]] for i in rows["id"]]).astype(np.int64)).flatten(1)
    grid = gen.predictor.cfg.grid

    def judged(known: int) -> list[str]:
        return drawn_styles(gen, captions, judge, AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE, args.batch, true, known)

    def share(predicted: list[str]) -> float:
        return float(np.mean([p == t for p, t in zip(predicted, targets)]))

    reconstructions = judge.predict(list(gen.decode(true.view(-1, grid, grid))))
    print(f"model {args.model} ({gen.source}), {len(captions)} test captions, guidance {AR_DEFAULT_GUIDANCE}, "
          f"temperature {AR_DEFAULT_TEMPERATURE}; VQ-VAE reconstructions of the test paintings: {share(reconstructions):.3f}")
    predicted = judged(0)
    print(f"\nstyle consistency {share(predicted):.3f}\n\n| style | captions | consistency | mistaken for |\n|---|---|---|---|")
    by_style = defaultdict(list)
    for p, t in zip(predicted, targets):
        by_style[t].append(p)
    for style, got in sorted(by_style.items(), key=lambda kv: np.mean([p == kv[0] for p in kv[1]])):
        wrong = Counter(p for p in got if p != style).most_common(3)
        print(f"| {style} | {len(got)} | {np.mean([p == style for p in got]):.2f} | "
              f"{', '.join(f'{p} {n}' for p, n in wrong) or '-'} |")
    print("\n| true first rows given | style consistency |\n|---|---|\n| 0 | " + f"{share(predicted):.3f} |")
    for r in (int(x) for x in args.rows.split(",")):
        print(f"| {r} | {share(judged(r * grid)):.3f} |", flush=True)


if __name__ == "__main__":
    main()
