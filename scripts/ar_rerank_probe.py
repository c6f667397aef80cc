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

from artgen.data.captions import make_caption
from artgen.data.corpus import load_corpus
from artgen.generate import gumbel, load_generator
from artgen.sampling import AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE, AR_NOISE_STREAM
from artgen.workspace import Workspace
from bench.style import style_judge


@torch.no_grad()
def sample_scored(gen, captions: list[str], seeds: list[int], guidance: float, temperature: float):
    """(codes (B, N), text agreement (B,)) with the runtime's sampler (guided Gumbel-max)."""
    P, B = gen.predictor, len(captions)
    N, K = P.cfg.positions, P.cfg.codebook_size
    states, mask = gen.encoder.encode(gen.encoder.tokenize(captions))
    context = P.context(torch.cat([states, states]), torch.cat([mask, torch.zeros_like(mask)]))
    past_k, past_v = P.empty_cache(2 * B)
    noise = torch.from_numpy(np.stack([gumbel(s, AR_NOISE_STREAM, (N, K)) for s in seeds]).astype(np.float32))
    token = torch.full((2 * B, 1), P.cfg.start_id, dtype=torch.long)
    codes, score = torch.empty((B, N), dtype=torch.long), torch.zeros(B)
    for t in range(N):
        logits, past_k, past_v = P.step(token, past_k, past_v, *context)
        cond, uncond = logits.chunk(2)
        guided = uncond + guidance * (cond - uncond)
        codes[:, t] = (guided / temperature + noise[:, t]).argmax(-1)
        drawn = codes[:, t:t + 1]
        score += (cond.log_softmax(-1).gather(1, drawn) - uncond.log_softmax(-1).gather(1, drawn))[:, 0]
        token = drawn.repeat(2, 1)
    return codes, score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--model", default="tiny-ar")
    ap.add_argument("--captions", type=int, default=300)
    ap.add_argument("--n", default="1,2,4", help="candidate counts to compare")
    ap.add_argument("--batch", type=int, default=25)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ns = sorted(int(x) for x in args.n.split(","))
    ws = Workspace.resolve(args.workdir)
    gen = load_generator(ws, args.model)
    if gen.kind != "ar":
        raise SystemExit(f"{args.model} is not an autoregressive model")
    dd = load_corpus(ws.data)
    train, test = dd["train"], dd["test"]
    idx = sorted(np.random.default_rng(0).choice(len(test), size=min(args.captions, len(test)), replace=False).tolist())
    rows = test.select(idx)
    targets = np.array(rows["style"])
    captions = [make_caption(adj, np.random.default_rng([0, i])) for i, adj in enumerate(rows["gt_adjectives"])]
    judge, why = style_judge(ws.root / "cache" / "style", train)
    if judge is None:
        raise SystemExit(f"no style judge: {why}")
    start = time.perf_counter()
    codes, scores = [], []
    for s in range(0, len(captions), args.batch):
        batch = captions[s:s + args.batch]
        per = [sample_scored(gen, batch, [1000 * j + i for i in range(s, s + len(batch))], AR_DEFAULT_GUIDANCE,
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
