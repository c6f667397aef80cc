"""Fine-tune a workspace's trained VQ-VAE with the noise-scale head (`VQVAEPreset.grain_weight`,
`artgen.training.vqvae.NoiseScaleHead`) so its codes learn where the canvas grain is, without
training a VQ-VAE from scratch; writes a new VQ-VAE folder (new codes).

    python scripts/finetune_vqvae_grain.py --workdir W --out DIR [--steps 1500] [--lr 5e-4] [--grain-weight 0.02]

Starts from W's VQ-VAE (its squared-error decoder), trains on unmirrored paintings, and saves
`config.json`, `model.safetensors` and `metrics.json` (test split, before and after) into DIR.
Then train an adversarial decoder on it (`artgen train decoder` in a workspace whose
`checkpoints/vqvae` is DIR) and compare with `scripts/vqvae_attribute_probe.py` and
`scripts/grain_codes_probe.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from artgen.data.pixels import load_images
from artgen.files import atomic_write_json
from artgen.models.vqvae import VQVAE, checkpoint_hash
from artgen.training.trainer import TrainConfig, train
from artgen.training.vqvae import VQVAETask, evaluate_vqvae, vqvae_of
from artgen.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--grain-weight", type=float, default=0.02)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    source = ws.checkpoint("vqvae")
    vq = VQVAE.from_pretrained(source, adversarial_decoder=False)
    _, train_pixels = load_images(ws.data, "train")
    _, test_pixels = load_images(ws.data, "test")
    task = VQVAETask(vq.cfg, train_pixels, test_pixels, mirror=False, grain_weight=args.grain_weight)
    vqvae_of(task.model).load_state_dict(vq.state_dict())
    before = evaluate_vqvae(vq, test_pixels)
    before.pop("code_counts")
    out = Path(args.out)
    cfg = TrainConfig(steps=args.steps, batch_size=32, lr=args.lr, warmup_steps=100, checkpoint_every=500, log_every=20,
                      device="cpu")
    result = train(task, cfg, out / "run", description="fine-tune the VQ-VAE with the noise-scale head")
    model = vqvae_of(result.model).eval()
    model.save_pretrained(out)
    after = evaluate_vqvae(model, test_pixels)
    after.pop("code_counts")
    metrics = {**after, "before": before, "source": str(source), "source_hash": checkpoint_hash(source),
               "steps": args.steps, "lr": args.lr, "grain_weight": args.grain_weight, "mirror": False,
               "preset": "default", "train_seconds_this_run": round(result.seconds, 1)}
    atomic_write_json(out / "metrics.json", metrics)
    print({k: metrics[k] for k in ("psnr", "perplexity", "codebook_usage", "train_seconds_this_run")}, "before:", before)


if __name__ == "__main__":
    main()
