"""Do opposite adjectives move generated images in the intended direction?

For each pair (warm/cool, bright/dark, vivid/muted, calm/chaotic) generate `--n` images of
"a <word> painting" (seeds 0..n-1) and report the mean of the image statistic that the word
is about, next to the same statistic on real test paintings labelled with each word, and
the generated gap as a share of the real one (100 %: as far apart as real paintings; below
zero: the wrong way round).

    python scripts/prompt_contrast.py --workdir artgen-work --encoder tiny [--n 32] [--steps 1]
        [--guidance 3] [--temperature 1]
"""

from __future__ import annotations

import argparse

from artgen.data.corpus import decode_image, load_corpus
from artgen.data.image_stats import STAT_NAMES, statistics_matrix
from artgen.generate import load_generator
from artgen.sampling import DEFAULT_GUIDANCE, DEFAULT_STEPS, DEFAULT_TEMPERATURE
from artgen.workspace import Workspace

PAIRS = [("warm", "cool", "warm_cool_balance"), ("bright", "dark", "lightness_mean"),
         ("vivid", "muted", "saturation_mean"), ("chaotic", "calm", "edge_density")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--encoder", default="tiny")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    ap.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    args = ap.parse_args()
    ws = Workspace.resolve(args.workdir)
    gen = load_generator(ws, args.encoder)
    test = load_corpus(ws.data)["test"]
    real = statistics_matrix([decode_image(im) for im in test["image"]])
    labels = test["gt_adjectives"]
    print(f"encoder {args.encoder} ({gen.source}), {args.n} images per prompt, steps {args.steps}, "
          f"guidance {args.guidance}, temperature {args.temperature}")
    print("| pair | statistic | generated: first | generated: second | gap, as share of the real gap | real test: first | real test: "
          "second |")
    print("|---|---|---|---|---|---|---|")
    for a, b, stat in PAIRS:
        col = STAT_NAMES.index(stat)
        means = []
        for word in (a, b):
            images = gen.generate([f"a {word} painting"] * args.n, seed=0, steps=args.steps, guidance=args.guidance,
                                  temperature=args.temperature)
            means.append(float(statistics_matrix(list(images))[:, col].mean()))
        ref = [float(real[[word in adj for adj in labels], col].mean()) for word in (a, b)]
        share = (means[0] - means[1]) / (ref[0] - ref[1])  # 1: as far apart as real paintings; < 0: wrong way
        print(f"| {a} / {b} | {stat} | {means[0]:.3f} | {means[1]:.3f} | {means[0] - means[1]:+.3f} ({share:.0%}) "
              f"| {ref[0]:.3f} | {ref[1]:.3f} |")


if __name__ == "__main__":
    main()
