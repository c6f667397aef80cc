"""Do a VQ-VAE's codes record the canvas grain? For each VQ-VAE checkpoint given: a logistic
regression from a painting's code histogram (how often each of the 512 codes occurs in its
16 x 16 grid) to whether the corpus drew it with strong grain (texture parameter >= 0.5, the
paintings labelled "textured"), fitted on the train split and scored on the test split, beside
the base rate; and how many codes the grainy paintings use almost alone (> 90 % of a code's
uses) or almost never (< 10 %). Codes that know the grain are what lets a generator ask for it.

    python scripts/grain_codes_probe.py --workdir W --vqvae DIR [--vqvae DIR2 ...]

Needs a corpus with the synthetic generator's `params` column (its `texture`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from artgen.data.corpus import load_corpus
from artgen.data.pixels import load_images, to_float
from artgen.models.vqvae import VQVAE
from artgen.workspace import Workspace

GRAINY = 0.5  # the corpus labels a painting "textured" from this texture strength (artgen/data/paintings.py)


def grainy(split) -> np.ndarray:
    return np.array([(p if isinstance(p, dict) else json.loads(p))["texture"] >= GRAINY for p in split["params"]])


@torch.no_grad()
def code_grids(vq: VQVAE, pixels: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([vq.encode_indices(to_float(pixels[s:s + batch])) for s in range(0, len(pixels), batch)])


def histograms(codes: torch.Tensor, k: int) -> np.ndarray:
    flat = codes.reshape(len(codes), -1)
    return torch.stack([torch.bincount(row, minlength=k) for row in flat]).float().numpy() / flat.shape[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--vqvae", action="append", required=True, help="a VQ-VAE checkpoint directory (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    corpus = load_corpus(ws.data)
    y_train, y_test = grainy(corpus["train"]), grainy(corpus["test"])
    _, train_pixels = load_images(ws.data, "train")
    _, test_pixels = load_images(ws.data, "test")
    base = max(y_test.mean(), 1 - y_test.mean())
    print(f"{len(y_train)} train / {len(y_test)} test paintings; grainy (texture >= {GRAINY}): {y_test.mean():.3f} "
          f"of the test split, so the base rate is {base:.3f}")
    print("| VQ-VAE | grainy from the code histogram (test accuracy) | codes > 90 % grainy | codes < 10 % grainy | codes used |")
    print("|---|---|---|---|---|")
    for d in args.vqvae:
        vq = VQVAE.from_pretrained(d)
        k = vq.cfg.quantizer.codebook_size
        train_codes, test_codes = code_grids(vq, train_pixels), code_grids(vq, test_pixels)
        clf = LogisticRegression(max_iter=2000, C=10.0).fit(histograms(train_codes, k), y_train)
        acc = clf.score(histograms(test_codes, k), y_test)
        g = torch.from_numpy(y_train)
        in_grainy = torch.bincount(train_codes[g].reshape(-1), minlength=k).float()
        in_other = torch.bincount(train_codes[~g].reshape(-1), minlength=k).float()
        used = (in_grainy + in_other) > 0
        share = (in_grainy / (in_grainy + in_other).clamp(min=1))[used]
        print(f"| {d} | {acc:.3f} | {int((share > 0.9).sum())} | {int((share < 0.1).sum())} | {int(used.sum())} |")


if __name__ == "__main__":
    main()
