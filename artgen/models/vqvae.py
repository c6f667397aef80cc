"""The VQ-VAE: a convolutional encoder, the vector quantiser, a convolutional decoder.

Default: 64x64 RGB in [0, 1] -> (B, 64, 16, 16) encoder outputs -> (B, 16, 16) indices into
a 512 x 64 codebook -> 64x64 RGB reconstruction. The encoder downsamples with stride-2
convolutions (log2(`downsample`) of them), then residual blocks at the code resolution; the
decoder mirrors it with transposed convolutions (van den Oord et al. 2017).

    model = VQVAE.from_pretrained("artgen-work/checkpoints/vqvae")
    codes = model.encode_indices(images)     # (B, 16, 16) long
    images = model.decode_indices(codes)     # (B, 3, 64, 64) float in [0, 1]
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from artgen.errors import ArtgenError
from artgen.files import atomic_save_safetensors, atomic_write_json
from artgen.hub import local_dir
from artgen.models.quantizer import QUANTIZER_VARIANTS, QuantizerConfig, VectorQuantizer


@dataclass
class VQVAEConfig:
    image_size: int = 64
    downsample: int = 4             # image_size / downsample = code grid side (64 / 4 = 16)
    hidden: int = 128               # channels at the code resolution
    res_hidden: int = 64            # bottleneck channels inside a residual block
    res_blocks: int = 2             # residual blocks in the encoder and in the decoder
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)

    def __post_init__(self):
        if isinstance(self.quantizer, dict):
            self.quantizer = QuantizerConfig(**self.quantizer)
        d = self.downsample
        if d < 2 or d & (d - 1):
            raise ArtgenError(f"downsample must be a power of two >= 2 (got {d})")
        if self.image_size % d:
            raise ArtgenError(f"image size {self.image_size} is not divisible by downsample {d}")

    @property
    def grid(self) -> int:
        return self.image_size // self.downsample

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def with_variant(cls, variant: str, **kw) -> "VQVAEConfig":
        if variant not in QUANTIZER_VARIANTS:
            raise ArtgenError(f"unknown quantiser variant {variant!r}: use one of {', '.join(QUANTIZER_VARIANTS)}")
        q = kw.pop("quantizer", {})
        return cls(quantizer=QuantizerConfig(**{**QUANTIZER_VARIANTS[variant], **q}), **kw)


DECODER_FILE = "decoder.safetensors"  # the adversarial decoder's weights (`artgen train decoder`)
DECODER_METRICS_FILE = "decoder_metrics.json"
VQVAE_FILES = ["config.json", "model.safetensors", DECODER_FILE]  # what a VQ-VAE folder or hub repo holds (the decoder file optional)


class ResBlock(nn.Module):
    def __init__(self, ch: int, hidden: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(), nn.Conv2d(ch, hidden, 3, padding=1),
            nn.ReLU(), nn.Conv2d(hidden, ch, 1),
        )

    def forward(self, x):
        return x + self.block(x)


class Encoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        n_down = int(math.log2(cfg.downsample))
        chans = [cfg.hidden // 2 ** (n_down - 1 - i) for i in range(n_down)]  # e.g. [64, 128]
        layers, c_in = [], 3
        for i, c in enumerate(chans):
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1)] + ([nn.ReLU()] if i < n_down - 1 else [])
            c_in = c
        layers += [nn.ReLU(), nn.Conv2d(cfg.hidden, cfg.hidden, 3, padding=1)]
        layers += [ResBlock(cfg.hidden, cfg.res_hidden) for _ in range(cfg.res_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(cfg.hidden, cfg.quantizer.dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B, 3, H, W) in [-1, 1] -> (B, D, H/d, W/d)
        return self.net(x)


class GrainBranch(nn.Module):
    """Texture drawn over the decoded image where its codes ask for it (the adversarial decoder's,
    `artgen train decoder`): the decoder's last features, upsampled to full resolution through
    a ReLU, are per-channel amplitude maps of a fixed noise image (StyleGAN's noise inputs,
    Karras et al. 2019, with one stored noise draw so a code grid always decodes to the same
    pixels): the noise shows only where the features allow it. A zero-initialised 3x3
    convolution to RGB adds the result to the image (so a new branch leaves the decoder's output
    as it was). The noise stays one (1, 1, H, W) image in an exported graph."""

    def __init__(self, c_in: int, image_size: int, channels: int = 16, seed: int = 0):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, channels, 4, stride=2, padding=1)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("noise", torch.randn(1, 1, image_size, image_size, generator=g))
        self.out = nn.Conv2d(channels, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.up(features)) * self.noise)


class Decoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.grain: GrainBranch | None = None  # added by `add_grain` (the adversarial decoder)
        n_up = int(math.log2(cfg.downsample))
        layers = [nn.Conv2d(cfg.quantizer.dim, cfg.hidden, 3, padding=1)]
        layers += [ResBlock(cfg.hidden, cfg.res_hidden) for _ in range(cfg.res_blocks)]
        c_in = cfg.hidden
        for i in range(n_up):
            last = i == n_up - 1
            c = 3 if last else max(c_in // 2, 16)
            layers += [nn.ReLU(), nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1)]
            c_in = c
        self.net = nn.Sequential(*layers)

    def add_grain(self) -> "Decoder":
        c_in = self.net[-1].in_channels
        self.grain = GrainBranch(c_in, self.cfg.image_size)
        return self

    def parts(self, q) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the image before its grain, the grain; None without a grain branch): `forward` is their sum."""
        if self.grain is None:
            return self.net(q), None
        features = self.net[:-1](q)
        return self.net[-1](features), self.grain(features)

    def forward(self, q):  # (B, D, h, w) -> (B, 3, h*d, w*d) in ~[-1, 1]
        base, grain = self.parts(q)
        return base if grain is None else base + grain


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizer(cfg.quantizer)
        self.decoder = Decoder(cfg)
        self.checkpoint_dir: Path | None = None  # the folder `from_pretrained` read it from
        self._checkpoint_sha256: str | None = None

    @property
    def checkpoint_sha256(self) -> str:
        """`checkpoint_hash` of the folder this VQ-VAE was loaded from, what trained models and
        decoders name its codes by; computed once, on first use."""
        if self._checkpoint_sha256 is None:
            if self.checkpoint_dir is None:
                raise ArtgenError("this VQ-VAE was not loaded from a checkpoint folder, so it has no checkpoint hash: "
                                  "save it with `save_pretrained` and load it with `VQVAE.from_pretrained`")
            self._checkpoint_sha256 = checkpoint_hash(self.checkpoint_dir)
        return self._checkpoint_sha256

    def forward(self, images: torch.Tensor) -> dict:
        """Training pass: images (B, 3, H, W) in [0, 1] -> recon, codes, losses, code counts."""
        z = self.encoder(images * 2 - 1)                     # (B, D, h, w)
        vq = self.quantizer(z)
        recon = self.decoder(vq.quantized) * 0.5 + 0.5        # (B, 3, H, W), unclamped for the loss
        recon_mse = ((recon - images) ** 2).mean()
        return {"recon": recon, "codes": vq.codes, "counts": vq.counts, "quantized": vq.quantized,
                "recon_mse": recon_mse, "vq_loss": vq.loss, "loss": recon_mse + vq.loss}

    @torch.no_grad()
    def encode_indices(self, images: torch.Tensor) -> torch.Tensor:
        """(B, h, w) long code indices for images (B, 3, H, W) float in [0, 1]."""
        self._check_images(images)
        return self.quantizer.encode(self.encoder(images * 2 - 1))

    def decode_indices(self, codes: torch.Tensor, decoder: nn.Module | None = None) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] for code indices (B, h, w), through `decoder` (a retrained
        one, `artgen train decoder`) or the model's own. ONNX-exportable (opset 17)."""
        q = self.quantizer.lookup(codes)                      # (B, D, h, w)
        return ((decoder if decoder is not None else self.decoder)(q) * 0.5 + 0.5).clamp(0.0, 1.0)

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ArtgenError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-1] % self.cfg.downsample or images.shape[-2] % self.cfg.downsample:
            raise ArtgenError(f"image side {tuple(images.shape[-2:])} is not divisible by downsample {self.cfg.downsample}")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------ Hugging Face-style files

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write `config.json` + `model.safetensors` into `directory` (each file atomically)."""
        d = Path(directory)
        # Weights first, config last: a config.json never points at half-written weights.
        atomic_save_safetensors(self.state_dict(), d / "model.safetensors")
        atomic_write_json(d / "config.json", {"model_type": "artgen-vqvae", **self.cfg.to_dict()})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu",
                        adversarial_decoder: bool = True) -> "VQVAE":
        """The VQ-VAE in `directory`, a folder or a Hugging Face Hub repo id (`artgen.hub`).
        With `adversarial_decoder` (the default) the decoder `artgen train decoder` saved beside
        it (`decoder.safetensors`, same codes) replaces its squared-error decoder."""
        from safetensors.torch import load_file

        d = local_dir(directory, VQVAE_FILES, "VQ-VAE")
        if not (d / "config.json").exists() or not (d / "model.safetensors").exists():
            raise ArtgenError(f"no VQ-VAE checkpoint at {d}: run `artgen train vqvae` first")
        try:
            raw = json.loads((d / "config.json").read_text())
            raw.pop("model_type", None)
            model = cls(VQVAEConfig(**raw))
            model.load_state_dict(load_file(str(d / "model.safetensors"), device=map_location), strict=True)
        except ArtgenError:
            raise
        except Exception as e:
            raise ArtgenError(f"the VQ-VAE checkpoint at {d} is damaged ({type(e).__name__}): "
                              f"train it again with `artgen train vqvae`") from e
        model.decoder_source = "squared error (trained with the VQ-VAE)"
        model.checkpoint_dir = d
        if adversarial_decoder and (d / DECODER_FILE).is_file():
            state = load_adversarial_decoder(d, map_location, vqvae_hash=model.checkpoint_sha256)
            try:
                if any(k.startswith("grain.") for k in state):
                    model.decoder.add_grain()
                model.decoder.load_state_dict(state, strict=True)
            except Exception as e:
                raise ArtgenError(f"the adversarial decoder at {d / DECODER_FILE} does not fit this version's decoder "
                                  f"({type(e).__name__}): train it again with `artgen train decoder`, or delete it") from e
            model.decoder_source = f"adversarial ({DECODER_FILE}, `artgen train decoder`)"
        return model.eval()


def load_adversarial_decoder(directory: Path, map_location: str = "cpu", vqvae_hash: str | None = None) -> dict:
    """The decoder weights `artgen train decoder` saved in a VQ-VAE folder, checked to be for
    this VQ-VAE's codes (its `checkpoint_hash`, which covers only config.json and model.safetensors;
    `vqvae_hash` when the caller has already computed it)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(directory) / DECODER_FILE
    try:
        with safe_open(str(path), framework="pt") as f:
            tagged = (f.metadata() or {}).get("vqvae_hash")
        state = load_file(str(path), device=map_location)
    except Exception as e:
        raise ArtgenError(f"the adversarial decoder at {path} is damaged ({type(e).__name__}): "
                          f"train it again with `artgen train decoder`, or delete it") from e
    if tagged != (vqvae_hash or checkpoint_hash(directory)):
        raise ArtgenError(f"{path} was trained for another VQ-VAE's codes: train it again with "
                          f"`artgen train decoder`, or delete it")
    return state


def checkpoint_hash(directory: str | os.PathLike) -> str:
    """sha256 of a saved VQ-VAE's config.json and model.safetensors (tags the latents cache)."""
    import hashlib

    d = Path(directory)
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with open(d / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
