"""Would the autoregressive generator draw its words' forms better after training on its own
best drafts? A probe of rejection-sampling fine-tuning (RAFT, Dong et al. 2023; ReST, Gulcehre
et al. 2023), aimed at the drift measured in docs/generation.md: the model starts the form its
words ask for and loses it lower down the grid, a mistake teacher forcing never shows it.

1. A code scorer: a small convolutional network over the VQ-VAE code grid that predicts which
   vocabulary adjectives a painting carries, trained on the train grids (and their mirror images)
   with their ground-truth adjectives. It never sees the corpus's `style` column nor an image;
   the bench's judges (logistic regressions on image statistics, trained on real paintings) stay
   independent of it. Its test recall of asked adjectives is printed.
2. Drafts: for `--captions` captions of train paintings (3-5 of their adjectives, never a test
   caption), `--candidates` draws each by the default sampler (guidance 2.5, T 0.8); the draft
   whose codes the scorer finds most consistent with the caption's words (the mean log-probability
   of the asked adjectives) is kept.
3. Two fine-tunings of the same model from the same weights, the same steps, LR and batches:
   `control` on the real train grids only, `self` with the kept drafts as `--share` of the
   samples. The difference between them is the drafts' effect, not the extra steps'.

    python scripts/ar_self_training_probe.py --workdir W [--model tiny-ar] [--captions 2000] [--candidates 4]
        [--steps 1000] [--lr 3e-4] [--share 0.25] [--variants control,self]

Writes W/checkpoints/tiny-ar-control and tiny-ar-self<share in %> (model folders), caches the scorer and the drafts in
W/cache/self_training/; then score each with `scripts/ar_sampling_sweep.py --checkpoint DIR
--guidance 2.5 --temperatures 0.8 --no-fid --captions 1000`.
"""

from __future__ import annotations

import argparse
import pickle
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from ar_probe_common import cached_code_scorer, finetune, labelled_grids

from artgen.generate import load_generator
from artgen.models.code_scorer import CodeScorer
from artgen.training.self_training import SelfTrainingConfig, draw_drafts, mixed_training_set
from artgen.workspace import Workspace


def print_agreement(ws: Workspace, scorer: CodeScorer, folders: list[Path], captions: int = 600) -> None:
    from ar_probe_common import draw_probe_codes, probe_set

    from artgen.training.self_training import caption_words

    probe = probe_set(ws, captions)
    asked = [caption_words(c, scorer.cfg.adjectives) for c in probe.captions]
    print("| model | scorer agreement with the caption's words (mean log p) | asked words the scorer finds |\n|---|---|---|")
    for folder in folders:
        gen = load_generator(ws, "tiny-ar", checkpoint=folder)
        codes, _ = draw_probe_codes(lambda g, c, seeds, guidance, temperature: g.sample_codes(
            c, seeds=seeds, guidance=guidance, temperature=temperature), gen, probe, 50)
        agreement = scorer.agreement(codes, asked)
        y = scorer.targets(asked).bool()
        with torch.no_grad():
            found = (scorer(codes).sigmoid() > 0.5) & y
        print(f"| {folder.name} | {agreement.mean():.3f} | {found.sum() / y.sum():.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--model", default="tiny-ar")
    ap.add_argument("--captions", type=int, default=2000, help="train captions drafted")
    ap.add_argument("--candidates", type=int, default=4, help="drafts per caption; the best one is kept")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--share", type=float, default=0.25, help="share of the fine-tuning samples that are kept drafts")
    ap.add_argument("--variants", default="control,self")
    ap.add_argument("--agreement", nargs="*", default=None, metavar="MODEL_DIR",
                    help="instead: the cached scorer's mean agreement with the words of 600 test captions for each model "
                         "folder's default-sampler images (did the fine-tuning move what the scorer reads?)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = SelfTrainingConfig(captions=args.captions, candidates=args.candidates, share=args.share, steps=args.steps,
                             lr=args.lr)
    ws = Workspace.resolve(args.workdir)
    gen = load_generator(ws, args.model)
    grids = labelled_grids(ws)
    cache = ws.root / "cache" / "self_training"
    cache.mkdir(parents=True, exist_ok=True)
    scorer, stats = cached_code_scorer(cache / "code_scorer", lambda: grids, gen.predictor.cfg.codebook_size, cfg)
    print(f"code scorer: {stats}")
    if args.agreement is not None:
        print_agreement(ws, scorer, [ws.checkpoint(args.model), *map(Path, args.agreement)])
        return

    drafts_path = cache / f"drafts-{args.model}-{args.captions}x{args.candidates}.pkl"
    if drafts_path.exists():
        drafts = pickle.loads(drafts_path.read_bytes())
    else:
        start = time.perf_counter()
        drafts = draw_drafts(gen, scorer, grids.train_labels[:grids.originals], cfg)
        drafts_path.write_bytes(pickle.dumps(drafts))
        print(f"drafts: {args.captions} x {args.candidates} in {time.perf_counter() - start:.0f} s")
    print(f"drafts: {drafts.summary()}")

    base_dir = ws.checkpoint(args.model)
    for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
        out = ws.checkpoint(f"{args.model}-control" if variant == "control" else f"{args.model}-self{round(100 * cfg.share)}")
        if variant == "control":
            grids_v = grids
        elif variant == "self":
            codes_v, labels_v = mixed_training_set(grids.train_codes, grids.train_labels, drafts, cfg.share)
            grids_v = replace(grids, train_codes=codes_v, train_labels=labels_v)
            print(f"self: {len(codes_v) - len(grids.train_codes)} draft samples beside {len(grids.train_codes)} real grids")
        else:
            raise SystemExit(f"unknown variant {variant!r}: control or self")
        note = {"variant": variant, "base": str(base_dir), **asdict(cfg), "share": cfg.share if variant == "self" else 0.0}
        m = finetune(base_dir, out, grids_v, cfg.steps, cfg.lr, "self_training", note)
        print(f"{variant}: test CE {m['ce']:.3f} (without text {m['ce_no_text']:.3f}), "
              f"{m['train_seconds_this_run']:.0f} s -> {out}")


if __name__ == "__main__":
    main()
