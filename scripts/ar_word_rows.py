"""A picture of what one word asks for and what the generator draws: for the first `--n` probe
captions holding `--word`, the real test paintings (top row), their VQ-VAE reconstructions
(middle) and the autoregressive generator's images with the default sampler, caption i with
seed i (bottom).

    python scripts/ar_word_rows.py --workdir W --word smooth --out docs/word_rows_smooth.png [--n 8] [--captions 600]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from ar_probe_common import add_probe_args, open_probe
from PIL import Image

from artgen.data.corpus import decode_image
from artgen.data.pixels import to_float


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(ap)
    ap.add_argument("--word", required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ws, gen, probe = open_probe(args)
    idx = [i for i, c in enumerate(probe.captions) if args.word in c.replace(",", " ").split()][:args.n]
    if not idx:
        raise SystemExit(f"no probe caption holds {args.word!r}")
    captions = [probe.captions[i] for i in idx]
    real = np.stack([decode_image(probe.rows["image"][i]) for i in idx])
    pixels = torch.from_numpy(real).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        recon = gen.decode(gen.vqvae.encode_indices(to_float(pixels)))
    drawn = gen.generate(captions, seeds=idx)
    rows = [np.concatenate(list(r), axis=1) for r in (real, recon, drawn)]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    sheet.resize((sheet.width * args.scale, sheet.height * args.scale), Image.NEAREST).save(args.out)
    for i, c in zip(idx, captions):
        print(f"caption {i}: {c}")
    print(f"wrote {args.out}: real test paintings, reconstructions, generated ({len(idx)} columns)")


if __name__ == "__main__":
    main()
