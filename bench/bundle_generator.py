"""An exported bundle as the bench's generator: `artgen bench --bundle DIR`.

The bench's quality sets need three things from a generator — `sample_codes(prompts, ...,
seeds=...)` for (B, h, w) code grids, `decode(codes)` for (B, H, W, 3) uint8 images and
`generate(prompts, seed=...)` — and `BundleGenerator` gives them from the torch-free
`export.runtime.Runtime`, through its public methods and `Runtime.meta` only, so any
generator kind the runtime runs is benchmarked the same way. Sampling is the bundle's own
(steps, guidance, temperature from its bundle.json): a sampler setting the bench passes as
None is left to the bundle, any other value is passed through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from artgen.errors import ArtgenError


class BundleGenerator:
    def __init__(self, runtime):
        self.runtime = runtime
        self.meta = runtime.meta
        self.kind = runtime.generator  # masked | ar, as a trained generator's

    @classmethod
    def open(cls, bundle: Path, threads: int | None = None) -> "BundleGenerator":
        """The bundle at `bundle` loaded by the runtime; a bad bundle is a one-line ArtgenError."""
        from export.runtime import BundleError, Runtime

        bundle = Path(bundle)
        if not bundle.exists():  # a file (bundle.json itself, say) is named by the runtime
            raise ArtgenError(f"--bundle {bundle} is not a folder: give a bundle written by `artgen export`")
        try:
            return cls(Runtime(bundle, threads=threads))
        except BundleError as e:
            raise ArtgenError(str(e)) from None

    @property
    def bundle(self) -> Path:
        return Path(self.runtime.bundle)

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def grid(self) -> int:
        return int(self.meta["grid"])

    @property
    def codebook_size(self) -> int:
        return int(self.meta["codebook_size"])

    @property
    def sampling(self) -> dict:
        """The bundle's default sampler: its scalar settings (steps, guidance, temperature ...)."""
        return {k: v for k, v in self.meta.get("sampling", {}).items() if isinstance(v, (int, float, bool))}

    def sample_codes(self, prompts: Sequence[str], steps: int | None = None, guidance: float | None = None,
                     temperature: float | None = None, seeds: Sequence[int] | None = None,
                     candidates: int | None = None) -> np.ndarray:
        """(B, h, w) int64 code grids, image i drawn with seeds[i]."""
        sampler = {k: v for k, v in (("steps", steps), ("guidance", guidance), ("temperature", temperature),
                                     ("candidates", candidates)) if v is not None}
        # merge: the captions of a batch as one runtime call, as the torch generator draws them (in an int8
        # bundle an image may then differ a little from the one its caption gives alone; a set's statistics do not)
        return np.asarray(self.runtime.sample_codes(list(prompts), seeds=list(seeds) if seeds is not None else None,
                                                    merge=True, **sampler))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self.runtime.decode(np.asarray(codes, dtype=np.int64)))  # (B, H, W, 3) uint8

    def generate(self, prompts: Sequence[str], seed: int = 0, steps: int | None = None, guidance: float | None = None,
                 temperature: float | None = None, candidates: int | None = None) -> np.ndarray:
        sampler = {k: v for k, v in (("steps", steps), ("guidance", guidance), ("temperature", temperature),
                                     ("candidates", candidates)) if v is not None}
        return np.asarray(self.runtime.generate(list(prompts), seed=seed, merge=True, **sampler))
