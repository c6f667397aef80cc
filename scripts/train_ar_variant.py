"""Train the AR default preset (tiny encoder) with a few of its settings changed: the ablation
rows of docs/generation.md that are not a preset of their own.

    python scripts/train_ar_variant.py --workdir W [--preset default|long] --lr 5e-4 [--steps N] [--no-text-modulation]
        [--no-rope] [--heads H] [--width W] [--layers L] [--rope-base B] [--ema-decay D] [--compile | --no-compile]
        [--text-drop P] [--input-noise P] [--batch-size B]
        [--optimizer adamw|muon] [--seed S] [--rotated] [--above]

Writes W/checkpoints/tiny-ar (W needs the corpus and a VQ-VAE, as `artgen train` does); its
metrics.json holds the test CE at every evaluation, to compare with artgen/assets/tiny/train_metrics.json.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from artgen.training.optimizers import OPTIMIZERS
from artgen.training.predictor import AR_PRESETS, train_predictor
from artgen.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--preset", choices=["default", "long"], default="default",
                    help="the AR preset the changes apply to (long: the shipped model's 12,000 steps, compiled)")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (the preset's: 1e-3)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None, help="paintings per step (the preset's: 32)")
    ap.add_argument("--no-text-modulation", action="store_true")
    ap.add_argument("--no-rope", action="store_true", help="no 2-D rotary positions in the self-attention")
    ap.add_argument("--heads", type=int, default=None, help="attention heads (the preset's: 4 of width 32)")
    ap.add_argument("--width", type=int, default=None, help="the transformer's width (the preset's: 128)")
    ap.add_argument("--layers", type=int, default=None, help="transformer blocks (the preset's: 3)")
    ap.add_argument("--rope-base", type=float, default=None, help="RoPE's wavelength base (the preset's: 100)")
    ap.add_argument("--text-drop", type=float, default=None,
                    help="share of training samples whose text is dropped, for guidance (the preset's: 0.1)")
    ap.add_argument("--input-noise", type=float, default=None,
                    help="share of the input codes swapped for other paintings' codes in training (the preset's: 0)")
    ap.add_argument("--ema-decay", type=float, default=None,
                    help="keep a moving average of the weights (e.g. 0.999; 0: none); evaluations score both")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="torch.compile the training forward (the preset's choice when not given)")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                    help="muon: Muon on the transformer blocks' matrices, AdamW on the rest (the preset's: adamw)")
    ap.add_argument("--seed", type=int, default=None,
                    help="training seed: the generator's initial weights and the batches (the preset's: 0); another seed "
                         "measures how far two runs of the same settings differ")
    ap.add_argument("--rotated", action="store_true",
                    help="also train on the paintings' quarter-turned images (orientation words swapped)")
    ap.add_argument("--above", action="store_true",
                    help="each input also carries the codes of the three cells above the one predicted (ARConfig.above)")
    ap.add_argument("--annotations", default="gt")
    args = ap.parse_args()
    p = AR_PRESETS[args.preset]["tiny"]
    train = {**p.train, **({"lr": args.lr} if args.lr is not None else {}),
             **({"batch_size": args.batch_size} if args.batch_size is not None else {}),
             **({"ema_decay": args.ema_decay} if args.ema_decay is not None else {}),
             **({"compile": args.compile} if args.compile is not None else {}),
             **({"optimizer": args.optimizer} if args.optimizer else {}),
             **({"seed": args.seed} if args.seed is not None else {})}
    predictor = {**p.predictor, **({"text_modulation": False} if args.no_text_modulation else {}),
                 **({"rope": False} if args.no_rope else {}), **({"heads": args.heads} if args.heads else {}),
                 **({"width": args.width} if args.width else {}), **({"layers": args.layers} if args.layers else {}),
                 **({"rope_base": args.rope_base} if args.rope_base else {}),
                 **({"text_drop": args.text_drop} if args.text_drop is not None else {}),
                 **({"input_noise": args.input_noise} if args.input_noise is not None else {}),
                 **({"above": True} if args.above else {})}
    p = replace(p, train=train, predictor=predictor, rotated=args.rotated or p.rotated)
    print(p)
    train_predictor(Workspace.resolve(args.workdir), "tiny", preset=p, annotations=args.annotations, generator="ar",
                    steps=args.steps)


if __name__ == "__main__":
    main()
