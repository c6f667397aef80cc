"""Would the autoregressive generator follow its words more after Condition Contrastive Alignment?
A probe of CCA (Chen et al. 2024, "Toward Guidance-Free AR Visual Generation via Condition
Contrastive Alignment"): the text gap (test CE without the text minus with it) has moved with
the style drawn more often than the CE has (docs/generation.md), and CCA fine-tunes a trained
model to widen exactly that — each train grid is made likelier than under a frozen copy of the
model (the reference) with its own caption, and less likely with another painting's caption
(the batch's captions rolled by one):

    loss = -log sigmoid(beta * gap(x, c)) - lambda * log sigmoid(-beta * gap(x, c_other)),
    gap(x, c) = log p(x | c) - log p_ref(x | c), summed over the grid's positions,

divided by lambda. The samples whose text is dropped (`text_drop`, 10 %) keep the unconditional
model for guidance: both their terms push their likelihood up, with weight 1 (as the paper's
code does). CCA's claim is that the fine-tuned model without guidance draws as the original
does with it (half the rows per step); whether it also draws the words better under guidance
is what this probe measures.

    python scripts/ar_cca_probe.py --workdir W [--model tiny-ar] [--steps 1000] [--lr 1e-4] [--beta 0.05] [--lam 50]

The loss is `artgen.training.alignment`'s (`artgen train align`, which aligns the model in place);
this probe writes W/checkpoints/<model>-cca (a model folder) from the same weights, batches, steps and LR
schedule as `ar_self_training_probe.py`'s `control` (1,000 steps on real grids at 3e-4), then
score it with `scripts/ar_sampling_sweep.py --checkpoint DIR --guidance 1,2.5 --temperatures 0.8
--no-fid --captions 1000`.
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from ar_probe_common import finetune, labelled_grids

from artgen.training.alignment import AlignmentTask
from artgen.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--model", default="tiny-ar")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-4)
    # the paper's beta 0.02 let the model drift far from its frozen copy at this LR (its own captions'
    # likelihood fell 0.65 nats per position within 60 steps); 0.05 keeps it within ~0.1
    ap.add_argument("--beta", type=float, default=0.05)
    ap.add_argument("--lam", type=float, default=50.0)
    ap.add_argument("--out", default=None, help="model folder name (default: <model>-cca)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    base_dir = ws.checkpoint(args.model)
    out = ws.checkpoint(args.out or f"{args.model}-cca")
    note = {"base": str(base_dir), "steps": args.steps, "lr": args.lr, "beta": args.beta, "lambda": args.lam}
    final = finetune(base_dir, out, labelled_grids(ws), args.steps, args.lr, "cca", note,
                     make_task=partial(AlignmentTask, beta=args.beta, lam=args.lam), description="CCA fine-tune")
    print(f"CCA: test CE {final['ce']:.3f} (without text {final['ce_no_text']:.3f}; text gap "
          f"{final['ce_no_text'] - final['ce']:.3f}), {final['train_seconds_this_run']:.0f} s -> {out}")


if __name__ == "__main__":
    main()
