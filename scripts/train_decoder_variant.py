"""Train a variant of the adversarial decoder (`artgen train decoder`) for an ablation: the
default preset with some of its settings changed. Writes into the workspace's VQ-VAE folder
like the command (`decoder.safetensors`, `decoder_metrics.json`); score it with
`scripts/decoder_probe.py`.

    python scripts/train_decoder_variant.py --workdir W [--steps 1500] [--adversarial-weight 0.5]
        [--no-grain] [--grain-without-l1] [--mirror] [--discriminator-norm batch] [--code-noise 0.1]
"""

from __future__ import annotations

import argparse

import torch

from artgen.training.decoder import train_decoder
from artgen.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--adversarial-weight", type=float, default=None)
    ap.add_argument("--no-grain", action="store_true", help="no grain branch: the VQ-VAE's decoder as it is")
    ap.add_argument("--grain-without-l1", action="store_true", help="the grain trained by the discriminator alone")
    ap.add_argument("--mirror", action="store_true", help="also train on the paintings' mirror images")
    ap.add_argument("--discriminator-norm", default=None, choices=["spectral", "batch"])
    ap.add_argument("--code-noise", type=float, default=None,
                    help="share of the training codes swapped for codes of other paintings (the preset's: 0)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    overrides = {"grain": not args.no_grain, "grain_l1": not args.grain_without_l1, "mirror": args.mirror}
    if args.discriminator_norm is not None:
        overrides["discriminator"] = {"norm": args.discriminator_norm}
    if args.code_noise is not None:
        overrides["code_noise"] = args.code_noise
    if args.adversarial_weight is not None:
        overrides["adversarial_weight"] = args.adversarial_weight
    metrics = train_decoder(Workspace.resolve(args.workdir), preset="default", steps=args.steps, **overrides)
    print({k: metrics[k] for k in ("psnr", "recon_l1", "adversarial_weight", "grain", "grain_l1", "mirror", "code_noise", "steps",
                                   "train_seconds_this_run")})


if __name__ == "__main__":
    main()
