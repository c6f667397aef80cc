"""Which sampling settings make the autoregressive generator draw the style its words ask
for? Style consistency (the bench's style judge), styles covered, top style share and
FID / KID against the real test paintings, for every (guidance, temperature, top-k) asked for.

    python scripts/ar_sampling_sweep.py --workdir W [--model tiny-ar | --checkpoint DIR] [--captions 300]
        [--guidance 1.5,3,5] [--temperatures 0.8,1.0] [--top-k 0,64] [--candidates 1,2]

Captions are made like the bench's (3-5 of a test painting's ground-truth adjectives, seed
i for caption i); image i uses seed i. At 300 vs 300 the FID values compare settings, not
the bench's 1,000-vs-2,133 figures. The judge is trained on real train paintings (cached in
the workspace) and validated on real test ones; the retrieval row is what a generator that
returned a train painting with the caption's exact words would score.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from ar_probe_common import probe_set

from artgen.data.corpus import decode_image
from artgen.generate import load_generator
from artgen.workspace import Workspace
from bench.inception import InceptionConfig, InceptionFeatures
from bench.quality import FeatureStore, FidKid
from bench.style import StyleConsistency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--model", default="tiny-ar")
    ap.add_argument("--checkpoint", default=None, help="a checkpoint directory instead of the workspace's --model")
    ap.add_argument("--captions", type=int, default=300)
    ap.add_argument("--guidance", default="1.5,3,5")
    ap.add_argument("--temperatures", default="0.8,1.0")
    ap.add_argument("--top-k", default="0")
    ap.add_argument("--candidates", default="1", help="best of N kept by the workspace's code scorer (`artgen train scorer`)")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--no-fid", action="store_true", help="style metrics only (faster)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    gen = load_generator(ws, args.model, checkpoint=args.checkpoint)
    probe = probe_set(ws, args.captions)
    rows, captions, targets, judge = probe.rows, probe.captions, probe.targets, probe.judge
    real = [decode_image(im) for im in rows["image"]]
    real_score = StyleConsistency(judge)
    real_score.update(real, targets)
    quality = store = None
    if not args.no_fid:
        store = FeatureStore(InceptionFeatures(InceptionConfig(threads=2)), ws.root / "cache" / "fid", show_progress=False)
        quality = FidKid(store(real), kid_subset_size=min(100, len(real)), kid_subsets=20)
    print(f"model {args.checkpoint or args.model} ({gen.source}, {gen.kind}), {len(captions)} test captions; style judge on these real "
          f"test paintings: {real_score.compute()['style_consistency']:.3f}")
    print("| guidance | temperature | top-k | candidates | style consistency | styles covered | top style share | FID | KID | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for g, t, k, n in itertools.product(*(map(float, s.split(",")) for s in (args.guidance, args.temperatures, args.top_k,
                                                                              args.candidates))):
        start = time.perf_counter()
        extra = {"top_k": int(k), "candidates": int(n)} if gen.kind == "ar" else {}
        images = np.concatenate([
            gen.generate(captions[s:s + args.batch], seeds=list(range(s, min(s + args.batch, len(captions)))),
                         guidance=g, temperature=t, **extra)
            for s in range(0, len(captions), args.batch)])
        score = StyleConsistency(judge)
        score.update(list(images), targets)
        m = score.compute()
        fid = kid = float("nan")
        if quality is not None:
            quality.reset()
            quality.update(store(list(images)))
            q = quality.compute()
            fid, kid = q["fid"], q["kid"]
        print(f"| {g:g} | {t:g} | {int(k)} | {int(n)} | {m['style_consistency']:.3f} | {m['styles_covered']} of {m['styles_total']} "
              f"| {m['top_style_share']:.2f} ({m['top_style']}) | {fid:.1f} | {kid:.4f} | {time.perf_counter() - start:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
