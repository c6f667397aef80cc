"""The latents cache: every corpus image as a grid of VQ-VAE code indices, computed once.

    ensure_latents(ws)                          # builds latents/{train,test} or rebuilds stale ones
    ids, codes = load_latents(ws, "train")      # codes: (N, 16, 16) uint16

Layout: `latents/<split>/codes.npy` (uint16), `ids.json`, `meta.json`. `meta.json` records the
sha256 of the VQ-VAE checkpoint and a fingerprint of the corpus split; a cache whose tags do
not match the current checkpoint and corpus is stale and rebuilt by `ensure_latents`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from artgen.data.corpus import load_corpus
from artgen.data.pixels import load_images, to_float
from artgen.errors import ArtgenError
from artgen.files import replace_dir
from artgen.locks import stage_lock
from artgen.models.vqvae import VQVAE, checkpoint_hash
from artgen.progress import progress_bar
from artgen.workspace import Workspace

SPLITS = ("train", "test")
# Augmented caches, encoded from a corpus split's flipped paintings: every adjective of the
# vocabulary survives a mirror (bands stay horizontal or vertical, a diagonal stays diagonal),
# while a 90-degree rotation swaps the orientation words (ROTATIONS below relabels them). Ids are
# "<painting id>#<flip>"; `painting_id` strips the suffix to find the painting's labels.
FLIPS: dict[str, tuple[int, ...]] = {"hflip": (-1,), "vflip": (-2,), "hvflip": (-2, -1)}
FLIPPED = "train-flipped"
# The other half of the square's symmetries: the four that turn the canvas by 90 degrees (a
# quarter turn either way, and the two diagonal mirrors). They swap the orientation words, so a
# rotated painting's labels go through `rotated_labels`. Ids are "<painting id>#<rotation>".
ROTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rot90": lambda x: torch.rot90(x, 1, dims=(-2, -1)),
    "rot270": lambda x: torch.rot90(x, -1, dims=(-2, -1)),
    "transpose": lambda x: x.transpose(-2, -1),
    "antitranspose": lambda x: torch.rot90(x, 2, dims=(-2, -1)).transpose(-2, -1),
}
ROTATED = "train-rotated"
ROTATED_WORDS = {"horizontal": "vertical", "vertical": "horizontal"}  # what a quarter turn makes of a label
_SOURCE = {"train": "train", "test": "test", FLIPPED: "train", ROTATED: "train"}


def painting_id(latent_id: str) -> str:
    return latent_id.split("#", 1)[0]


def rotated_labels(adjectives: list[str]) -> list[str]:
    """The labels of a painting turned by 90 degrees: horizontal and vertical swap."""
    return [ROTATED_WORDS.get(a, a) for a in adjectives]


def labels_of(latent_id: str, labels: dict[str, list[str]]) -> list[str]:
    """The labels of a cached grid: its painting's, turned with it when the grid is a rotation."""
    base, _, variant = latent_id.partition("#")
    found = labels.get(base, [])
    return rotated_labels(found) if variant in ROTATIONS else found


def corpus_fingerprint(data_dir: Path, split: str) -> str:
    """sha256 of the split's dataset state and arrow file sizes: changes when the corpus does."""
    d = Path(data_dir) / split
    h = hashlib.sha256()
    for f in sorted(d.glob("*")):
        if f.name in ("state.json", "dataset_info.json"):
            h.update(f.read_bytes())
        elif f.suffix == ".arrow":
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()


def _expected_tags(ws: Workspace) -> dict:
    ckpt = ws.checkpoint("vqvae")
    if not (ckpt / "model.safetensors").exists():
        raise ArtgenError(f"no VQ-VAE checkpoint at {ckpt}: run `artgen train vqvae` first")
    return {"checkpoint_hash": checkpoint_hash(ckpt)}


def is_fresh(ws: Workspace, split: str, tags: dict | None = None) -> bool:
    d = ws.latents / split
    try:
        meta = json.loads((d / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    tags = tags or _expected_tags(ws)
    return (meta.get("checkpoint_hash") == tags["checkpoint_hash"]
            and meta.get("corpus_fingerprint") == corpus_fingerprint(ws.data, _SOURCE[split])
            and (d / "codes.npy").exists() and (d / "ids.json").exists())


def ensure_latents(ws: Workspace, batch_size: int = 256, show_progress: bool = True, flipped: bool = False,
                   rotated: bool = False) -> None:
    """Encode both splits with the workspace's VQ-VAE unless an up-to-date cache exists;
    `flipped` also caches the three mirror images of every train painting (`train-flipped`),
    `rotated` its four quarter-turned images (`train-rotated`)."""
    load_corpus(ws.data)  # a missing corpus is a one-line error naming the fix
    tags = _expected_tags(ws)
    extra = ((FLIPPED,) if flipped else ()) + ((ROTATED,) if rotated else ())
    stale = [s for s in SPLITS + extra if not is_fresh(ws, s, tags)]
    if not stale:
        return
    with stage_lock(ws, "latents", "the latents cache"):
        _encode_splits(ws, stale, tags, batch_size, show_progress)


def _encode_splits(ws: Workspace, stale: list[str], tags: dict, batch_size: int, show_progress: bool) -> None:
    model = VQVAE.from_pretrained(ws.checkpoint("vqvae"), adversarial_decoder=False)  # encodes only
    for split in stale:
        ids, pixels = load_images(ws.data, _SOURCE[split])
        if split == FLIPPED:
            ids = [f"{i}#{name}" for name in FLIPS for i in ids]
            pixels = torch.cat([pixels.flip(dims) for dims in FLIPS.values()])
        elif split == ROTATED:
            ids = [f"{i}#{name}" for name in ROTATIONS for i in ids]
            pixels = torch.cat([turn(pixels) for turn in ROTATIONS.values()])
        if pixels.shape[-1] != model.cfg.image_size:
            raise ArtgenError(f"the corpus has {pixels.shape[-1]} px images but the VQ-VAE expects "
                              f"{model.cfg.image_size} px: retrain it with `artgen train vqvae`")
        chunks = []
        with progress_bar(f"encode latents ({split})", total=len(pixels), enabled=show_progress) as advance:
            for s in range(0, len(pixels), batch_size):
                codes = model.encode_indices(to_float(pixels[s:s + batch_size]))  # (B, h, w) long
                chunks.append(codes.to(torch.int32).numpy().astype(np.uint16))
                advance(len(codes))
        codes = np.concatenate(chunks)                                               # (N, h, w) uint16
        meta = {**tags, "corpus_fingerprint": corpus_fingerprint(ws.data, _SOURCE[split]), "split": split,
                "shape": list(codes.shape), "codebook_size": model.cfg.quantizer.codebook_size}
        _write_split(ws.latents / split, ids, codes, meta)


def _write_split(final: Path, ids: list[str], codes: np.ndarray, meta: dict) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    np.save(tmp / "codes.npy", codes)
    (tmp / "ids.json").write_text(json.dumps(ids))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    replace_dir(tmp, final)


def load_latents(ws: Workspace, split: str) -> tuple[list[str], np.ndarray]:
    """(ids, codes (N, h, w) uint16) of a split; the cache must exist (see `ensure_latents`)."""
    if split not in _SOURCE:
        raise ArtgenError(f"unknown split {split!r}: use train or test")
    d = ws.latents / split
    if not (d / "meta.json").exists():
        raise ArtgenError(f"no latents cache at {d}: run `artgen train vqvae` (it builds the cache)")
    try:
        ids = json.loads((d / "ids.json").read_text())
        codes = np.load(d / "codes.npy", allow_pickle=False)
    except Exception as e:
        raise ArtgenError(f"the latents cache at {d} is damaged ({type(e).__name__}): delete {d} and rerun") from e
    if codes.dtype != np.uint16 or codes.ndim != 3 or len(ids) != len(codes):
        raise ArtgenError(f"the latents cache at {d} is damaged (shape {codes.shape}, {len(ids)} ids): delete {d} and rerun")
    return ids, codes
