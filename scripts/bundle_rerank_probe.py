"""Would best-of-N sampling with an outside scorer lift the shipped bundle's style and attribute
match, and by how much? A probe, not a sampler the product ships: for each probe caption the
bundle's torch-free runtime draws N candidates at its default sampler (candidate j of caption i
with seed i + 1000 j), the code scorer (`artgen.models.code_scorer`, trained on the workspace's
train grids and their ground-truth adjectives by `ar_self_training_probe.py`, cached under
`cache/self_training/code_scorer`) keeps the candidate whose codes agree best with the caption's
words, and the bundle's decoder draws it. Scored by the bench's style judge and attribute judge
(neither reads codes; the attribute judge learns the same adjectives from pixels as the scorer
from codes, so its rise is not an independent view — the style judge's is). Also an oracle that
always keeps a candidate of the right style: the ceiling of any reranker over the candidates.

    python scripts/bundle_rerank_probe.py --workdir W --bundle artgen/assets/tiny [--captions 1000] [--n 1,2,4]

The workspace must hold the bundle's VQ-VAE (the scorer reads its codes). Timings: the runtime's
p50 for one prompt's N candidates drawn as one batch, and one per thread at once (the latency a
best-of-N sampler would cost; median of 7, not counting the scorer and the decoder).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from ar_probe_common import cached_code_scorer, labelled_grids, probe_set
from decoder_probe import judged_setup, score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from artgen.training.self_training import SelfTrainingConfig, caption_words  # noqa: E402
from artgen.workspace import Workspace  # noqa: E402
from export.runtime import Runtime  # noqa: E402


def p50_ms(rt: Runtime, n: int, guidance: float | None, threads: bool = False, runs: int = 7) -> float:
    """p50 of one prompt's n candidates: drawn as one batch, or (`threads`) one per Python thread
    at once (ONNX Runtime releases the GIL while a graph runs, and the step graph runs on one
    core, so on 2 cores two candidates can draw side by side)."""
    prompt = "warm, wavy, vivid"
    times = []
    with ThreadPoolExecutor(n) as pool:
        for r in range(runs):
            start = time.perf_counter()
            if threads:
                list(pool.map(lambda j: rt.sample_codes([prompt], seeds=[r + 1000 * j], guidance=guidance), range(n)))
            else:
                rt.sample_codes([prompt] * n, seeds=[r + 1000 * j for j in range(n)], guidance=guidance)
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def draw(rt: Runtime, captions: list[str], offsets: list[int], batch: int, guidance: float | None) -> np.ndarray:
    """(C, h, w): caption i drawn with seed i + offsets[i], in batches."""
    return np.concatenate([rt.sample_codes(captions[s:s + batch], seeds=[i + offsets[i] for i in range(s, min(s + batch, len(captions)))],
                                           guidance=guidance) for s in range(0, len(captions), batch)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--bundle", default="artgen/assets/tiny")
    ap.add_argument("--captions", type=int, default=1000)
    ap.add_argument("--n", default="1,2,4", help="candidate counts to compare")
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--scorer", default=None, help="a code scorer folder (default: the self-training probe's cached one); "
                    "trained there with --scorer-width / --scorer-epochs when it holds none")
    ap.add_argument("--scorer-width", type=int, default=48)
    ap.add_argument("--scorer-epochs", type=int, default=4)
    ap.add_argument("--guidance", type=float, default=None, help="instead of the bundle's default (1: no guidance, half the rows)")
    args = ap.parse_args()
    ns = sorted(int(x) for x in args.n.split(","))
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    probe = probe_set(ws, args.captions)
    scorer_dir = Path(args.scorer) if args.scorer else ws.root / "cache" / "self_training" / "code_scorer"
    rt = Runtime(args.bundle)
    scorer, stats = cached_code_scorer(scorer_dir, lambda: labelled_grids(ws), rt.meta["codebook_size"],
                                       SelfTrainingConfig(scorer_width=args.scorer_width, scorer_epochs=args.scorer_epochs))
    print(f"code scorer: {stats}")
    captions, C, M = probe.captions, len(probe.captions), ns[-1]
    start = time.perf_counter()
    codes = np.stack([draw(rt, captions, [1000 * j] * C, args.batch, args.guidance) for j in range(M)], 1)  # (C, M, h, w)
    drawn_s = time.perf_counter() - start
    asked = [caption_words(c, scorer.cfg.adjectives) for c in captions]
    flat = codes.reshape(C * M, *codes.shape[2:])
    agreement = scorer.agreement(torch.from_numpy(flat), [a for a in asked for _ in range(M)]).view(C, M).numpy()
    attr_judge, requested, _ = judged_setup(ws, probe)
    rows = np.arange(C)
    images = rt.decode(flat)  # every candidate decoded once; the kept ones are picked from these
    styles = np.array(probe.judge.predict(list(images))).reshape(C, M)
    images = images.reshape(C, M, *images.shape[1:])
    hit = styles == np.array(probe.targets)[:, None]
    guidance = args.guidance or rt.meta["sampling"]["guidance"]
    print(f"bundle {args.bundle}, guidance {guidance}, scorer {scorer_dir}, {C} test captions, {M} candidates each, "
          f"drawn in {drawn_s:.0f} s")
    print("style consistency of each candidate alone: " + ", ".join(f"{h:.3f}" for h in hit.mean(0)))
    print("| candidates | kept by | style consistency | seen attributes | styles covered | top style share | oracle style | "
          "p50, one prompt: batched / threads |\n|---|---|---|---|---|---|---|---|")
    for n in ns:
        picks = {"the scorer": agreement[:, :n].argmax(1)}
        if n > 1:
            picks["the first (no reranking)"] = np.zeros(C, dtype=int)
        ms = f"{p50_ms(rt, n, args.guidance):.1f} / {p50_ms(rt, n, args.guidance, threads=True):.1f} ms"
        for how, best in picks.items():
            accuracy, style, _ = score(images[rows, best], attr_judge, requested, probe.judge, probe.targets)
            counts = Counter(styles[rows, best])
            print(f"| {n} | {how} | {style:.3f} | {accuracy:.3f} | {len(counts)} | {counts.most_common(1)[0][1] / C:.2f} "
                  f"| {hit[:, :n].any(1).mean():.3f} | {ms} |")


if __name__ == "__main__":
    main()
