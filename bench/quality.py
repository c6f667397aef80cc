"""Image quality against real paintings: FID, KID, precision and recall on the standard FID
network's features.

FID and KID are torchmetrics' own `FrechetInceptionDistance` / `KernelInceptionDistance`.
Their `feature` module here is `PrecomputedFeatures`, which passes 2,048-d features through:
features of each image set are computed once by `bench.inception.InceptionFeatures` and
cached on disk under a hash of the set's pixels (`FeatureStore`), so the real test images,
which every row is compared with, are featurised once per workspace, not once per row.

`PrecisionRecall` is the improved precision and recall of Kynkäänniemi et al. (2019) on the
same features: FID mixes fidelity and variety into one number, precision ("how many generated
images look real") and recall ("how much of the real variety is generated") tell a realistic
but repetitive set from a varied but unrealistic one.

Inception Score is not computed: see `bench.inception.class_logits_absent`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from bench.inception import FEATURE_DIM, InceptionFeatures


class PrecomputedFeatures(nn.Module):
    """torchmetrics `feature` module for features computed beforehand: (B, D) in, (B, D) out."""

    def __init__(self, num_features: int = FEATURE_DIM):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"expected (B, {self.num_features}) features, got {tuple(features.shape)}")
        return features


def image_set_hash(images: Sequence[np.ndarray], salt: str = "") -> str:
    """sha1 over every image's shape and bytes, in order (plus `salt`: who made the features)."""
    h = hashlib.sha1(salt.encode())
    for im in images:
        a = np.ascontiguousarray(im)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class FeatureStore:
    """FID features of image sets, cached as `<root>/<hash>.npy` (root None: no cache)."""

    def __init__(self, net: InceptionFeatures, root: Path | None, show_progress: bool = True):
        self.net = net
        self.root = Path(root) if root is not None else None
        self.show_progress = show_progress
        self.hits = 0
        self.misses = 0

    def __call__(self, images: Sequence[np.ndarray], description: str = "FID features") -> np.ndarray:
        key = image_set_hash(images, self.net.identity)
        path = self.root / f"{key}.npy" if self.root is not None else None
        if path is not None and path.is_file():
            feats = np.load(path)
            if feats.shape == (len(images), self.net.num_features):
                self.hits += 1
                return feats
        self.misses += 1
        feats = self.net.features(images, description=description, show_progress=self.show_progress)
        if path is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, feats)
            tmp.replace(path)
        return feats


class FidKid:
    """FID and KID of generated feature sets against one fixed real set.

    `update(fake_features)` any number of times, `compute()`, `reset()` (the real features
    stay), as torchmetrics metrics do. KID uses `subsets` random subsets of
    min(`subset_size`, n_real, n_fake) samples, seeded, so a rerun gives the same value.
    """

    def __init__(self, real_features: np.ndarray, kid_subset_size: int = 1000, kid_subsets: int = 20, seed: int = 0):
        real = torch.as_tensor(np.asarray(real_features, dtype=np.float32))
        if real.dim() != 2 or len(real) < 2:
            raise ValueError(f"need at least 2 real feature rows, got shape {tuple(real.shape)}")
        dim = real.shape[1]
        self.n_real = len(real)
        self.kid_subset_size = kid_subset_size
        self.kid_subsets = kid_subsets
        self.seed = seed
        self._fid = FrechetInceptionDistance(feature=PrecomputedFeatures(dim), reset_real_features=False)
        self._fid.update(real, real=True)
        self._real = real
        self._fake: list[torch.Tensor] = []

    def update(self, fake_features: np.ndarray) -> None:
        fake = torch.as_tensor(np.asarray(fake_features, dtype=np.float32))
        self._fid.update(fake, real=False)
        self._fake.append(fake)

    def compute(self) -> dict:
        fake = torch.cat(self._fake) if self._fake else torch.zeros(0, self._real.shape[1])
        if len(fake) < 2:
            raise ValueError("FID needs at least 2 generated images")
        fid = float(self._fid.compute())
        size = min(self.kid_subset_size, self.n_real, len(fake))
        with warnings.catch_warnings():  # "will save all extracted features": they are small here
            warnings.simplefilter("ignore")
            kid_metric = KernelInceptionDistance(
                feature=PrecomputedFeatures(self._real.shape[1]), subsets=self.kid_subsets, subset_size=size)
        kid_metric.update(self._real, real=True)
        kid_metric.update(fake, real=False)
        state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)  # KID draws random subsets with the global generator
        try:
            kid_mean, kid_std = kid_metric.compute()
        finally:
            torch.random.set_rng_state(state)
        return {"fid": fid, "kid": float(kid_mean), "kid_std": float(kid_std),
                "n_real": self.n_real, "n_fake": len(fake), "kid_subset_size": size}

    def reset(self) -> None:
        self._fid.reset()  # keeps the real features (reset_real_features=False)
        self._fake = []


def _kth_neighbour_radii(features: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """(N,) distance of each row to its k-th nearest other row (the row itself, at distance 0,
    is the 0-th)."""
    return torch.cat([torch.cdist(features[s:s + chunk], features).kthvalue(k + 1, dim=1).values
                      for s in range(0, len(features), chunk)])


def _inside_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """(Q,) bool: each query lies within radii[j] of some support row j."""
    return torch.cat([(torch.cdist(queries[s:s + chunk], support) <= radii[None, :]).any(dim=1)
                      for s in range(0, len(queries), chunk)])


class PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
    Metric for Assessing Generative Models"), k = 3, of generated feature sets against one fixed
    real set, torchmetrics-style: `update(fake_features)`, `compute()`, `reset()`.

    Each set's manifold is the union of balls around its samples, each ball reaching the
    sample's k-th nearest neighbour in the same set. `precision`: the share of generated
    samples inside the real manifold; `recall`: the share of real samples inside the generated
    manifold. Distances in float64, in chunks of `chunk` rows.
    """

    def __init__(self, real_features: np.ndarray, k: int = 3, chunk: int = 1024):
        real = torch.as_tensor(np.asarray(real_features, dtype=np.float64))
        if real.dim() != 2 or len(real) <= k:
            raise ValueError(f"need more than k = {k} real feature rows, got shape {tuple(real.shape)}")
        self.k, self.chunk = k, chunk
        self._real = real
        self._real_radii = _kth_neighbour_radii(real, k, chunk)  # (N_real,)
        self._fake: list[torch.Tensor] = []

    def update(self, fake_features: np.ndarray) -> None:
        self._fake.append(torch.as_tensor(np.asarray(fake_features, dtype=np.float64)))

    def compute(self) -> dict:
        fake = torch.cat(self._fake) if self._fake else torch.zeros(0, self._real.shape[1], dtype=torch.float64)
        if len(fake) <= self.k:
            raise ValueError(f"precision and recall need more than k = {self.k} generated images, got {len(fake)}")
        fake_radii = _kth_neighbour_radii(fake, self.k, self.chunk)  # (N_fake,)
        precision = _inside_manifold(fake, self._real, self._real_radii, self.chunk).double().mean()
        recall = _inside_manifold(self._real, fake, fake_radii, self.chunk).double().mean()
        return {"precision": float(precision), "recall": float(recall), "pr_k": self.k}

    def reset(self) -> None:
        self._fake = []


def fid_kid(real_features: np.ndarray, fake_features: np.ndarray, **kwargs) -> dict:
    """One-call form of `FidKid`."""
    metric = FidKid(real_features, **kwargs)
    metric.update(fake_features)
    return metric.compute()
