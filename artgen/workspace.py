"""The workspace: one folder every command reads and writes by convention.

`--workdir DIR`, else the `ARTGEN_HOME` environment variable, else `./artgen-work`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKDIR = "artgen-work"
# The tiny int8 ONNX bundle shipped inside the package (made by `artgen release-model`):
# what `artgen generate` and `Runtime()` use when no model has been trained.
SHIPPED_MODEL = Path(__file__).resolve().parent / "assets" / "tiny"


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __post_init__(self):  # Workspace("artgen-work") works as Workspace(Path("artgen-work")) does
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def resolve(cls, workdir: str | os.PathLike | None = None) -> "Workspace":
        root = workdir or os.environ.get("ARTGEN_HOME") or DEFAULT_WORKDIR
        return cls(Path(root).expanduser().resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def annotations(self) -> Path:
        return self.root / "annotations"

    @property
    def latents(self) -> Path:
        return self.root / "latents"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def bundles(self) -> Path:
        return self.root / "bundles"

    def checkpoint(self, stage: str) -> Path:
        return self.root / "checkpoints" / stage
