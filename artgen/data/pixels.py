"""The corpus as pixel tensors, for the models that read images (the VQ-VAE and its latents cache).

    ids, pixels = load_images(ws.data, "train")   # pixels: (N, 3, H, W) uint8, every image decoded once
    x = to_float(pixels[:32])                     # (32, 3, H, W) float in [0, 1]

Every image is decoded once into a uint8 tensor (9,735 x 3 x 64 x 64 is 120 MB); batches are
drawn from it by index.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from artgen.data.corpus import load_corpus
from artgen.errors import ArtgenError


def load_images(data_dir: Path, split: str) -> tuple[list[str], torch.Tensor]:
    """(ids, (N, 3, H, W) uint8) of one corpus split, every image decoded once."""
    import datasets  # heavy: loaded when a split is read, like `corpus.load_corpus`

    ds = load_corpus(data_dir)[split].cast_column("image", datasets.Image(decode=False))
    ids = list(ds["id"])
    arrays = []
    for cell in ds["image"]:
        with Image.open(io.BytesIO(cell["bytes"])) as im:
            arrays.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    sizes = {a.shape for a in arrays}
    if len(sizes) != 1:
        raise ArtgenError(f"the corpus at {data_dir} mixes image sizes {sorted(sizes)}: re-import it with one --size")
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
    return ids, pixels


def to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as the float images in [0, 1] the VQ-VAE reads."""
    return pixels.float().div_(255.0)
