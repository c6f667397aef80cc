"""Train every quantiser variant at the same budget and print one table.

    python scripts/ablate_quantizer.py [--workdir DIR] [--preset quick] [--steps 300] [--threads 1]

Each variant trains the same VQ-VAE (the preset's encoder/decoder, same seed, same batches)
for the same number of steps; only the quantiser options differ. Metrics are on the whole
test split. Writes `<workdir>/reports/quantizer_ablation.{json,md}` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import sys

from artgen.errors import ArtgenError
from artgen.files import atomic_write_bytes, atomic_write_json
from artgen.models.quantizer import QUANTIZER_VARIANTS
from artgen.training.vqvae import train_vqvae
from artgen.workspace import Workspace

TECHNIQUE = {
    "plain": "codebook learned by gradient (codebook + commitment loss), random init",
    "ema": "EMA codebook updates",
    "ema-kmeans": "EMA + k-means init from the first batch",
    "ema-kmeans-restart": "EMA + k-means init + dead-code restart",
    "cosine-ema-kmeans-restart": "the above with l2-normalised (cosine) codes",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--steps", type=int, default=None, help="steps per variant (default: the preset's)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--variants", default=",".join(QUANTIZER_VARIANTS))
    args = ap.parse_args(argv)
    ws = Workspace.resolve(args.workdir)
    rows = []
    try:
        for variant in args.variants.split(","):
            out = ws.root / "ablation" / variant
            m = train_vqvae(ws, preset=args.preset, steps=args.steps, variant=variant, threads=args.threads,
                            device="cpu", out_dir=out, show_progress=False, build_latents=False)
            rows.append({k: m[k] for k in ("variant", "codebook_usage", "perplexity", "recon_mse", "psnr",
                                             "train_images_per_s", "steps", "batch_size", "machine", "threads")})
            print(f"{variant}: {rows[-1]}", file=sys.stderr, flush=True)
    except ArtgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    r0 = rows[0]
    lines = [
        f"Quantiser ablation: preset `{args.preset}`, {r0['steps']} steps x batch {r0['batch_size']} per variant, "
        f"test split; {r0['machine']}, {r0['threads']} thread(s).",
        "",
        "| variant | technique | codebook_usage | perplexity | recon_mse | PSNR dB | train images/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| `{r['variant']}` | {TECHNIQUE.get(r['variant'], '')} | {r['codebook_usage']:.1%} | "
                     f"{r['perplexity']:.0f} | {r['recon_mse']:.4f} | {r['psnr']:.2f} | {r['train_images_per_s']:.0f} |")
    table = "\n".join(lines) + "\n"
    atomic_write_json(ws.reports / "quantizer_ablation.json", rows)
    atomic_write_bytes(ws.reports / "quantizer_ablation.md", table.encode())
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
