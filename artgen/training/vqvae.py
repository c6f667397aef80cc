"""`artgen train vqvae`: train the VQ-VAE on the corpus with the shared training loop.

    from artgen.training.vqvae import train_vqvae
    metrics = train_vqvae(ws, preset="quick")   # -> checkpoints/vqvae/{config.json, model.safetensors,
                                                #    metrics.json, reconstructions.png, code_histogram.png}

Every image is decoded once into a uint8 tensor (`artgen.data.pixels.load_images`); batches
are drawn from it by index. Metrics are measured on the whole test split.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artgen.data.latents import ensure_latents
from artgen.data.pixels import load_images, to_float
from artgen.errors import ArtgenError
from artgen.files import atomic_write_bytes, atomic_write_json
from artgen.locks import stage_lock
from artgen.machine import cpu_name
from artgen.models.vqvae import DECODER_FILE, DECODER_METRICS_FILE, VQVAE, VQVAEConfig
from artgen.progress import console
from artgen.tracking import NO_TRACKER, Tracker, checkpoint_files
from artgen.training.codebook_metrics import perplexity_of, usage_of
from artgen.training.trainer import TrainConfig, publish_run, run_dir, train
from artgen.workspace import Workspace

STAGE = "vqvae"


@dataclass
class VQVAEPreset:
    model: dict = field(default_factory=dict)   # VQVAEConfig fields (image_size comes from the corpus)
    variant: str = "ema-kmeans-restart"          # quantiser variant, see models.quantizer.QUANTIZER_VARIANTS
    train: dict = field(default_factory=dict)   # TrainConfig fields
    mirror: bool = True                          # train on horizontal mirrors too (half of every batch)
    grain_weight: float = 0.0                    # weight of the noise-scale head's likelihood (`NoiseScaleHead`):
                                                 # > 0 teaches the codes where the canvas grain is; 0: no head


PRESETS: dict[str, VQVAEPreset] = {
    # Tests and the demo: a few minutes on 2 CPU cores.
    "quick": VQVAEPreset(
        model=dict(hidden=64, res_hidden=32, res_blocks=1),
        train=dict(steps=300, batch_size=32, lr=2e-3, warmup_steps=30, checkpoint_every=100, log_every=10),
    ),
    # The best reachable in <= 30 minutes wall on the 2-core build machine.
    "default": VQVAEPreset(
        model=dict(hidden=96, res_hidden=48, res_blocks=2),
        train=dict(steps=2000, batch_size=32, lr=2e-3, warmup_steps=100, checkpoint_every=250, log_every=10),
    ),
}


class NoiseScaleHead(nn.Module):
    """A training device that teaches a VQ-VAE's codes where the canvas grain is.

    A VQ-VAE trained on squared error alone has no reason to record grain: no decoder can redraw
    i.i.d. noise, so knowing about it lowers no squared error, and "textured" vanishes from
    every code grid (docs/vqvae.md). This head predicts, from the code vectors alone, each
    pixel's spread around the decoded image (a Gaussian's sigma, (B, 3, H, W) > 0) and is
    trained by the Gaussian negative log-likelihood of the painting given the detached decoded
    image: a grainy patch is far likelier under a large sigma and a flat one under a small
    sigma, so its gradient, straight through the quantiser to the encoder, makes the codes say
    which is which. The decoded image keeps its squared-error loss. The head is not saved: the
    adversarial decoder (`artgen train decoder`) draws the grain the codes now ask for."""

    def __init__(self, dim: int, downsample: int, min_sigma: float = 0.004, channels: int = 32):
        super().__init__()
        self.min_sigma = min_sigma  # in [-1, 1] units: about half a grey level
        layers: list[nn.Module] = [nn.Conv2d(dim, channels, 3, padding=1)]
        c = channels
        for i in range(int(math.log2(downsample))):
            last = 2 ** (i + 1) == downsample
            layers += [nn.ReLU(), nn.ConvTranspose2d(c, 3 if last else max(c // 2, 8), 4, stride=2, padding=1)]
            c = max(c // 2, 8)
        self.net = nn.Sequential(*layers)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.net(quantized)) + self.min_sigma

    def nll(self, quantized: torch.Tensor, decoded: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Mean Gaussian negative log-likelihood (without its constant) of `real` around the
        detached `decoded` (both in [-1, 1])."""
        sigma = self(quantized)
        return (0.5 * ((real - decoded.detach()) / sigma) ** 2 + sigma.log()).mean()


class VQVAEWithGrainHead(nn.Module):
    """What a VQ-VAE run with `grain_weight` > 0 trains: the VQ-VAE and its noise-scale head, one
    module so the shared loop's optimiser, checkpoints, resume and data-parallel wrapper cover both."""

    def __init__(self, vqvae: VQVAE, head: NoiseScaleHead, grain_weight: float):
        super().__init__()
        self.vqvae = vqvae
        self.head = head
        self.grain_weight = grain_weight

    def forward(self, images: torch.Tensor) -> dict:
        """`VQVAE.forward`'s outputs, with the head's likelihood (`grain_nll`) added to its loss."""
        out = self.vqvae(images)
        nll = self.head.nll(out["quantized"], out["recon"] * 2 - 1, images * 2 - 1)
        return {**out, "grain_nll": nll, "loss": out["loss"] + self.grain_weight * nll}


class VQVAETask:
    """The VQ-VAE as a task of the shared training loop (see artgen/training/trainer.py)."""

    def __init__(self, cfg: VQVAEConfig, train_pixels: torch.Tensor, test_pixels: torch.Tensor,
                 init_seed: int = 0, eval_batch: int = 256, mirror: bool = True, grain_weight: float = 0.0):
        self.cfg, self.mirror, self.grain_weight = cfg, mirror, grain_weight
        self.train_pixels = train_pixels
        self.test_pixels = test_pixels
        self.eval_batch = eval_batch
        torch.manual_seed(init_seed)
        vqvae = VQVAE(cfg)
        self.model = (VQVAEWithGrainHead(vqvae, NoiseScaleHead(cfg.quantizer.dim, cfg.downsample), grain_weight)
                      if grain_weight > 0 else vqvae)

    def batch(self, step: int, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.train_pixels), (batch_size,), generator=generator)
        x = to_float(self.train_pixels[idx])                          # (B, 3, H, W) in [0, 1]
        flip = torch.rand(batch_size, generator=generator) < (0.5 if self.mirror else 0.0)  # horizontal flips
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def loss(self, model, batch):
        out = model(batch)
        counts = out["counts"].detach()
        logs = {"mse": out["recon_mse"].detach(), "usage": usage_of(counts), "ppl": perplexity_of(counts)}
        if "grain_nll" in out:
            logs["grain_nll"] = out["grain_nll"].detach()
        return out["loss"], logs

    def evaluate(self, model) -> dict:
        return evaluate_vqvae(vqvae_of(model), self.test_pixels, batch_size=self.eval_batch)

    def config(self) -> dict:
        return {"kind": "vqvae", "model": self.cfg.to_dict(), **({} if self.mirror else {"mirror": False}),
                **({"grain_weight": self.grain_weight} if self.grain_weight > 0 else {})}


def vqvae_of(model: nn.Module) -> VQVAE:
    """The VQ-VAE inside what a VQ-VAE run trains (itself, or itself with its noise-scale head)."""
    model = getattr(model, "module", model)
    return model.vqvae if isinstance(model, VQVAEWithGrainHead) else model


@torch.no_grad()
def evaluate_vqvae(model: VQVAE, pixels: torch.Tensor, batch_size: int = 256, decoder: nn.Module | None = None) -> dict:
    """recon_mse, recon_l1, psnr, codebook_usage, perplexity over all of `pixels` (N, 3, H, W)
    uint8; the codes decoded by `decoder` (a retrained one, `artgen train decoder`) or the model's own."""
    model.eval()
    decoder = (decoder or model.decoder).eval()
    device = next(model.parameters()).device
    sq_err, abs_err, n_values = 0.0, 0.0, 0
    counts = torch.zeros(model.cfg.quantizer.codebook_size, dtype=torch.long)
    for s in range(0, len(pixels), batch_size):
        x = to_float(pixels[s:s + batch_size]).to(device)
        codes = model.encode_indices(x)                                                    # (B, h, w)
        recon = model.decode_indices(codes, decoder)                                       # (B, 3, H, W) in [0, 1]
        sq_err += float(((recon - x) ** 2).sum())
        abs_err += float((recon - x).abs().sum())
        n_values += x.numel()
        counts += torch.bincount(codes.reshape(-1).cpu(), minlength=counts.numel())
    mse = sq_err / n_values
    return {"recon_mse": mse, "recon_l1": abs_err / n_values, "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else float("inf"),
            "codebook_usage": usage_of(counts), "perplexity": perplexity_of(counts),
            "code_counts": counts.tolist()}


def build_config(preset: VQVAEPreset, image_size: int, variant: str | None = None,
                 model_overrides: dict | None = None) -> VQVAEConfig:
    kw = {**preset.model, **(model_overrides or {})}
    down = kw.get("downsample", VQVAEConfig.downsample)
    if isinstance(down, int) and (down < 2 or down & (down - 1)):
        raise ArtgenError(f"the code cell side (downsample) must be a power of two >= 2, got {down}: "
                          "use --downsample 4 (the default) or 8")
    if isinstance(down, int) and image_size % down:
        size = down * max(1, -(-64 // down))
        raise ArtgenError(f"the corpus's {image_size} px images do not divide into the VQ-VAE's {down} x {down} px code cells: "
                          f"rebuild the corpus at a multiple of {down} px (`artgen data import SOURCE --size {size} --force`, or "
                          f"`artgen data synth --size {size} --force`)")
    return VQVAEConfig.with_variant(variant or preset.variant, image_size=image_size, **kw)


def machine_description() -> str:
    return f"{os.cpu_count()}-core {cpu_name()}, torch {torch.__version__}"


def train_vqvae(ws: Workspace, preset: str = "quick", resume: bool = False, device: str = "auto",
                threads: int = 0, steps: int | None = None, batch_size: int | None = None, variant: str | None = None,
                model_overrides: dict | None = None, out_dir: Path | None = None,
                show_progress: bool = True, build_latents: bool = True, tracker: Tracker = NO_TRACKER,
                mirror: bool | None = None, grain_weight: float | None = None) -> dict:
    """Train the VQ-VAE, save it to `checkpoints/vqvae`, write metrics and pictures; returns metrics
    (None on the non-zero ranks of a data-parallel run). A new run trains in a staging folder that
    replaces the finished VQ-VAE only when complete; one process at a time (a workspace lock).
    `tracker` (`artgen.tracking`) gets the configs, every logged step, the final metrics and the
    checkpoint's JSON files and pictures."""
    if preset not in PRESETS:
        raise ArtgenError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    p = replace(PRESETS[preset], **{k: v for k, v in (("mirror", mirror), ("grain_weight", grain_weight)) if v is not None})
    tcfg = TrainConfig(**{**p.train, "device": device, "threads": threads, "show_progress": show_progress})
    if steps is not None:
        tcfg = replace(tcfg, steps=steps, checkpoint_every=min(tcfg.checkpoint_every, max(1, steps // 2)),
                       warmup_steps=min(tcfg.warmup_steps, max(1, steps // 10)))
    if batch_size is not None:
        tcfg = replace(tcfg, batch_size=batch_size)
    out_dir = Path(out_dir or ws.checkpoint(STAGE))
    with stage_lock(ws, f"checkpoint-{out_dir.name}", f"the VQ-VAE at {out_dir}"):
        metrics = _train_vqvae(ws, p, preset, tcfg, out_dir, resume, variant, model_overrides, show_progress, tracker)
    if build_latents and metrics is not None:
        ensure_latents(ws, show_progress=show_progress)
    return metrics


def _train_vqvae(ws: Workspace, p: VQVAEPreset, preset: str, tcfg: TrainConfig, out_dir: Path, resume: bool,
                 variant: str | None, model_overrides: dict | None, show_progress: bool,
                 tracker: Tracker = NO_TRACKER) -> dict | None:
    """Train in a staging folder and swap it over `out_dir` when done; None on non-zero ranks."""
    import torch.distributed as dist

    work = run_dir(out_dir, resume)
    _, train_pixels = load_images(ws.data, "train")
    _, test_pixels = load_images(ws.data, "test")
    cfg = build_config(p, train_pixels.shape[-1], variant, model_overrides)
    task = VQVAETask(cfg, train_pixels, test_pixels, mirror=p.mirror, grain_weight=p.grain_weight)
    tracker.log_params({"stage": STAGE, "preset": preset, "variant": variant or p.variant, "resumed": resume,
                        "train_images": len(train_pixels), "test_images": len(test_pixels),
                        "model": cfg.to_dict(), "train": asdict(tcfg)})
    result = train(task, tcfg, work, resume=resume, description=f"train vqvae ({preset})", on_log=tracker.log_metrics)

    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return None
    model = vqvae_of(result.model).cpu().eval()
    model.save_pretrained(work)
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    counts = result.metrics.pop("code_counts")
    metrics = {
        **result.metrics,
        "preset": preset, "variant": variant or p.variant, "mirror": p.mirror, "grain_weight": p.grain_weight,
        "steps": tcfg.steps, "batch_size": tcfg.batch_size, "grid": cfg.grid,
        "world_size": world, "images_seen": tcfg.steps * tcfg.batch_size * world,
        "train_seconds_this_run": round(result.seconds, 1), "train_images_per_s": round(result.images_per_s, 2),
        "parameters": model.num_parameters(), "device": str(next(iter(result.model.parameters())).device),
        "machine": machine_description(), "threads": torch.get_num_threads(),
        "test_images": len(test_pixels), "train_images": len(train_pixels),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "resumed": resume,
    }
    atomic_write_json(work / "metrics.json", metrics)
    save_reconstructions(model, test_pixels[:32], work / "reconstructions.png")
    save_code_histogram(torch.tensor(counts), work / "code_histogram.png", metrics)
    for name in (DECODER_FILE, DECODER_METRICS_FILE):  # a decoder for the codes before this run: no longer theirs
        (work / name).unlink(missing_ok=True)
    publish_run(work, out_dir)
    tracker.log_metrics(metrics, step=tcfg.steps)
    tracker.log_files(checkpoint_files(out_dir), folder="checkpoint")
    if show_progress:
        console.print(
            f"vqvae: recon_mse {metrics['recon_mse']:.5f} (PSNR {metrics['psnr']:.2f} dB), "
            f"codebook_usage {metrics['codebook_usage']:.3f}, perplexity {metrics['perplexity']:.1f} "
            f"on {len(test_pixels)} test images; saved to {out_dir}"
        )
    return metrics


def save_reconstructions(model: VQVAE, pixels: torch.Tensor, path: Path, per_row: int = 8, scale: int = 3) -> None:
    """PNG: rows of originals, each followed by the row of their reconstructions."""
    from PIL import Image

    with torch.no_grad():
        recon = model.decode_indices(model.encode_indices(to_float(pixels)))
    recon = (recon * 255).round().clamp(0, 255).to(torch.uint8)
    per_row = max(1, min(per_row, len(pixels)))  # a small imported corpus may have fewer test images than a row
    n = (len(pixels) // per_row) * per_row
    rows = []
    for s in range(0, n, per_row):
        rows.append(torch.cat(list(pixels[s:s + per_row]), dim=2))   # (3, H, per_row*W)
        rows.append(torch.cat(list(recon[s:s + per_row]), dim=2))
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()           # (rows*H, per_row*W, 3)
    im = Image.fromarray(grid, "RGB")
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def save_code_histogram(counts: torch.Tensor, path: Path, metrics: dict) -> None:
    """PNG: test-split code frequencies, most used first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freq = (counts.double() / counts.sum()).sort(descending=True).values.numpy()
    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    ax.bar(np.arange(len(freq)), freq, width=1.0, color="#3b6ea5")
    ax.axhline(1.0 / len(freq), color="#c0392b", lw=1, ls="--", label="uniform")
    ax.set_xlabel("code rank (most used first)")
    ax.set_ylabel("share of test positions")
    ax.set_title(f"VQ-VAE code frequencies: usage {metrics['codebook_usage']:.1%}, "
                 f"perplexity {metrics['perplexity']:.0f} / {len(freq)}")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
