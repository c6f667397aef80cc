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

from artgen.data.captions import make_caption
from artgen.data.corpus import load_corpus
from artgen.data.latents import load_latents, painting_id
from artgen.generate import gumbel, load_generator
from artgen.sampling import AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE, AR_NOISE_STREAM
from artgen.workspace import Workspace
from bench.style import style_judge


@torch.no_grad()
def sample(gen, captions: list[str], seeds: list[int], given: torch.Tensor, known: int) -> torch.Tensor:
    """(B, N) codes from the default guided sampler, the first `known` positions taken from `given`."""
    P, B = gen.predictor, len(captions)
    N, K = P.cfg.positions, P.cfg.codebook_size
    states, mask = gen.encoder.encode(gen.encoder.tokenize(captions))
    context = P.context(torch.cat([states, states]), torch.cat([mask, torch.zeros_like(mask)]))
    past_k, past_v = P.empty_cache(2 * B)
    noise = torch.from_numpy(np.stack([gumbel(s, AR_NOISE_STREAM, (N, K)) for s in seeds]).astype(np.float32))
    token = torch.full((2 * B, 1), P.cfg.start_id, dtype=torch.long)
    codes = torch.empty((B, N), dtype=torch.long)
    for t in range(N):
        logits, past_k, past_v = P.step(token, past_k, past_v, *context)
        cond, uncond = logits.chunk(2)
        guided = uncond + AR_DEFAULT_GUIDANCE * (cond - uncond)
        codes[:, t] = given[:, t] if t < known else (guided / AR_DEFAULT_TEMPERATURE + noise[:, t]).argmax(-1)
        token = codes[:, t:t + 1].repeat(2, 1)
    return codes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--model", default="tiny-ar")
    ap.add_argument("--captions", type=int, default=300)
    ap.add_argument("--rows", default="1,2,4", help="true first rows to give the sampler, one run each")
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    gen = load_generator(ws, args.model)
    if gen.kind != "ar":
        raise SystemExit(f"{args.model} is not an autoregressive model")
    dd = load_corpus(ws.data)
    train, test = dd["train"], dd["test"]
    idx = sorted(np.random.default_rng(0).choice(len(test), size=min(args.captions, len(test)), replace=False).tolist())
    rows = test.select(idx)
    targets = list(rows["style"])
    captions = [make_caption(adj, np.random.default_rng([0, i])) for i, adj in enumerate(rows["gt_adjectives"])]
    judge, why = style_judge(ws.root / "cache" / "style", train)
    if judge is None:
        raise SystemExit(f"no style judge: {why}")
    test_ids, test_codes = load_latents(ws, "test")
    where = {painting_id(i): k for k, i in enumerate(test_ids)}
    true = torch.from_numpy(np.stack([test_codes[where[str(i)]] for i in rows["id"]]).astype(np.int64)).flatten(1)
    grid = gen.predictor.cfg.grid

    def judged(known: int) -> list[str]:
        codes = torch.cat([sample(gen, captions[s:s + args.batch], list(range(s, min(s + args.batch, len(captions)))),
                                  true[s:s + args.batch], known) for s in range(0, len(captions), args.batch)])
        return judge.predict(list(gen.decode(codes.view(-1, grid, grid))))

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
