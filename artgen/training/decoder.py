"""`artgen train decoder`: retrain the VQ-VAE's decoder adversarially, on the same codes.

    from artgen.training.decoder import train_decoder
    metrics = train_decoder(ws, preset="default")   # -> checkpoints/vqvae/{decoder.safetensors, decoder_metrics.json}

A VQ-VAE trained on squared error decodes each code to the mean of the pixels it stood for, so
whatever the codes do not pin down — canvas grain, brush texture, splatter — comes out as flat
colour: the image statistics that say "textured", "chaotic" or "splattered" are gone from every
reconstruction and from every generated image. This stage keeps the encoder and the codebook
frozen (the codes, the latents cache and every model trained on them stay valid) and trains
the decoder again, from its own weights, on an L1 reconstruction loss plus a patch
discriminator's hinge loss, weighted adaptively by the ratio of the two losses' gradients at
the decoder's last layer (VQGAN, Esser et al. 2021). The discriminator judges ~22-px patches,
so the decoder learns to draw texture where its codes say there is texture. A grain branch
(`models.vqvae.GrainBranch`: a stored noise image the decoder lets through where it chooses)
gives it noise to draw grain with. (Sparing the grain the L1 loss, so that it learns from the
discriminator alone, let it spread over every painting: docs/vqvae.md.)

The result is `decoder.safetensors` inside the VQ-VAE's folder, tagged with the VQ-VAE's
`checkpoint_hash`; `VQVAE.from_pretrained` loads it over the decoder weights, so generation,
export and the bench's reconstruction rows all use it. Retraining the VQ-VAE replaces the
folder and drops it. Training runs through the shared loop (`artgen.training.trainer`:
progress, atomic checkpoints, exact resume) in a staging folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

import torch
import torch.nn.functional as F
from torch import nn

from artgen.data.pixels import load_images, to_float
from artgen.errors import ArtgenError
from artgen.files import atomic_save_safetensors, atomic_write_json
from artgen.locks import stage_lock
from artgen.models.ar_predictor import noisy_inputs
from artgen.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from artgen.models.vqvae import DECODER_FILE, DECODER_METRICS_FILE, VQVAE, Decoder
from artgen.progress import console
from artgen.tracking import NO_TRACKER, Tracker
from artgen.training.trainer import TrainConfig, run_dir, train
from artgen.training.vqvae import evaluate_vqvae
from artgen.workspace import Workspace

STAGE = "decoder"


@dataclass
class DecoderPreset:
    adversarial_weight: float = 1.0  # times the adaptive weight (gradient-norm ratio) on the hinge loss
    grain: bool = True  # a grain branch (`models.vqvae.GrainBranch`): fixed noise the decoder lets through where it draws texture
    grain_l1: bool = True  # the grain under the L1 loss too (False: the discriminator alone trains it; spreads it everywhere)
    mirror: bool = False  # train on mirror images too: off, as a mirror shifts a canvas weave's phase by a pixel,
                          # and a decoder can draw the weave from its codes only if its phase is fixed
    code_noise: float = 0.0  # share of each training grid's codes swapped for codes drawn from the batch, the
                             # target still the true painting: a decoder that draws a painting through the slips
                             # a generator makes (`models.ar_predictor.noisy_inputs`)
    discriminator: dict = field(default_factory=dict)  # PatchDiscriminatorConfig fields
    train: dict = field(default_factory=dict)  # TrainConfig fields


PRESETS: dict[str, DecoderPreset] = {
    # Tests and the demo: a minute on 2 CPU cores.
    "quick": DecoderPreset(discriminator=dict(width=32),
                           train=dict(steps=100, batch_size=16, lr=2e-4, warmup_steps=10, betas=(0.5, 0.9),
                                      checkpoint_every=50, log_every=10)),
    # ~10 min on 2 CPU cores.
    "default": DecoderPreset(train=dict(steps=1500, batch_size=32, lr=2e-4, warmup_steps=100, betas=(0.5, 0.9),
                                        checkpoint_every=500, log_every=20)),
}


class AdversarialDecoder(nn.Module):
    """What this stage trains: the VQ-VAE's decoder and the patch discriminator, one module so
    the shared loop's optimiser, checkpoints and resume cover both."""

    def __init__(self, decoder: Decoder, discriminator: PatchDiscriminator):
        super().__init__()
        self.decoder = decoder
        self.discriminator = discriminator


def _last_layer(decoder: Decoder) -> torch.Tensor:
    """The weight the adaptive weight compares the two losses' gradients at: the decoder's last
    layer to RGB (not the grain branch's, which starts at zero)."""
    return decoder.net[-1].weight


def decoded_parts(decoder: Decoder, quantized: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`Decoder.parts`, with zeros for the grain of a decoder without a grain branch."""
    base, grain = decoder.parts(quantized)
    return base, torch.zeros_like(base) if grain is None else grain


def adversarial_terms(decoder: Decoder, discriminator: nn.Module, quantized: torch.Tensor, real: torch.Tensor,
                      adversarial_weight: float, grain_l1: bool = True):
    """(L1 loss, weighted adversarial surrogate, discriminator hinge loss, logs) of decoding
    `quantized` against `real` (both in [-1, 1]). Each loss reaches only its own network when
    they are summed under one optimiser: the discriminator's hinge loss sees the decoded images
    detached, and the decoder's adversarial loss reaches the decoder (and whatever made
    `quantized`) through a surrogate, decoded images times the loss's gradient with respect to
    them, which leaves the discriminator's weights untouched. The adversarial weight is VQGAN's:
    the ratio of the two losses' gradient norms at the decoder's last layer."""
    base, grain = decoded_parts(decoder, quantized)                    # (B, 3, H, W) in ~[-1, 1] each
    fake = base + grain
    rec = ((fake if grain_l1 else base + grain.detach()) - real).abs().mean()
    d_loss = F.relu(1 - discriminator(real)).mean() + F.relu(1 + discriminator(fake.detach())).mean()
    probe = fake.detach().requires_grad_(True)
    g_adv = -discriminator(probe).mean()
    (grad,) = torch.autograd.grad(g_adv, probe)
    surrogate = (fake * grad).sum()
    last = _last_layer(decoder)
    (g_rec,) = torch.autograd.grad(rec, last, retain_graph=True)
    (g_sur,) = torch.autograd.grad(surrogate, last, retain_graph=True)
    weight = (g_rec.norm() / (g_sur.norm() + 1e-4)).clamp(0, 1e4).detach() * adversarial_weight
    return rec, weight * surrogate, d_loss, {"l1": rec.detach(), "g_adv": g_adv.detach(), "d": d_loss.detach(), "w": weight}


class DecoderTask:
    """The adversarial decoder as a task of the shared training loop.

    One optimiser steps both networks, so each loss reaches only its own: the discriminator's
    hinge loss sees the decoded images detached, and the decoder's adversarial loss reaches the
    decoder through a surrogate (decoded images times the loss's gradient with respect to them),
    which leaves the discriminator's weights untouched."""

    def __init__(self, vqvae: VQVAE, train_pixels: torch.Tensor, test_pixels: torch.Tensor, preset: DecoderPreset,
                 init_seed: int = 0, eval_batch: int = 256, vqvae_hash: str = ""):
        self.vqvae, self.vqvae_hash = vqvae.eval(), vqvae_hash
        for p in self.vqvae.parameters():
            p.requires_grad_(False)
        self.train_pixels, self.test_pixels = train_pixels, test_pixels
        self.preset, self.eval_batch = preset, eval_batch
        torch.manual_seed(init_seed)
        decoder = Decoder(vqvae.cfg)
        decoder.load_state_dict(vqvae.decoder.state_dict())  # start from the squared-error decoder
        if preset.grain:
            decoder.add_grain()
        self.model = AdversarialDecoder(decoder, PatchDiscriminator(PatchDiscriminatorConfig(**preset.discriminator)))

    def batch(self, step: int, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.train_pixels), (batch_size,), generator=generator)
        x = to_float(self.train_pixels[idx])                             # (B, 3, H, W) in [0, 1]
        if not self.preset.mirror:
            return x
        flip_h, flip_v = (torch.rand(2, batch_size, generator=generator) < 0.5)
        x = torch.where(flip_h[:, None, None, None], x.flip(-1), x)
        return torch.where(flip_v[:, None, None, None], x.flip(-2), x)

    def loss(self, model, batch):
        net = getattr(model, "module", model)
        with torch.no_grad():
            codes = self.vqvae.encode_indices(batch)  # (B, h, w)
            if self.preset.code_noise > 0:
                codes = noisy_inputs(codes.flatten(1), self.preset.code_noise).view_as(codes)
            quantized = self.vqvae.quantizer.lookup(codes)
        rec, adv, d_loss, logs = adversarial_terms(net.decoder, net.discriminator, quantized, batch * 2 - 1,
                                                   self.preset.adversarial_weight, grain_l1=self.preset.grain_l1)
        return rec + adv + d_loss, logs

    def evaluate(self, model) -> dict:
        decoder = getattr(model, "module", model).decoder
        m = evaluate_vqvae(self.vqvae, self.test_pixels, batch_size=self.eval_batch, decoder=decoder)
        return {k: m[k] for k in ("recon_mse", "recon_l1", "psnr")}

    def config(self) -> dict:
        return {"kind": "decoder", "vqvae": self.vqvae.cfg.to_dict(), "vqvae_hash": self.vqvae_hash,
                "adversarial_weight": self.preset.adversarial_weight,
                "mirror": self.preset.mirror, "grain": self.preset.grain, "grain_l1": self.preset.grain_l1,
                **({"code_noise": self.preset.code_noise} if self.preset.code_noise else {}),
                "discriminator": asdict(PatchDiscriminatorConfig(**self.preset.discriminator))}


def train_decoder(ws: Workspace, preset: str = "default", resume: bool = False, steps: int | None = None,
                  threads: int = 0, show_progress: bool = True, tracker: Tracker = NO_TRACKER, **overrides) -> dict:
    """Train the adversarial decoder of the workspace's VQ-VAE and save it beside it
    (`decoder.safetensors`, `decoder_metrics.json`); returns the metrics. `overrides`:
    `DecoderPreset` fields (adversarial_weight, grain, grain_l1, mirror, discriminator) for
    ablations (`scripts/train_decoder_variant.py`)."""
    if preset not in PRESETS:
        raise ArtgenError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    p = replace(PRESETS[preset], **overrides)
    tcfg = TrainConfig(**{**p.train, "threads": threads, "show_progress": show_progress, "device": "cpu"})
    if steps is not None:
        tcfg = replace(tcfg, steps=steps, checkpoint_every=min(tcfg.checkpoint_every, max(1, steps // 2)),
                       warmup_steps=min(tcfg.warmup_steps, max(1, steps // 10)))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ArtgenError("`artgen train decoder` runs in one process: run it without torchrun")
    vq_dir = ws.checkpoint("vqvae")
    if not (vq_dir / "model.safetensors").is_file():
        raise ArtgenError(f"no VQ-VAE at {vq_dir}: train one first with `artgen train vqvae`")
    with stage_lock(ws, "checkpoint-vqvae", f"the VQ-VAE at {vq_dir}"):
        vqvae = VQVAE.from_pretrained(vq_dir, adversarial_decoder=False)
        vq_hash = vqvae.checkpoint_sha256
        work = run_dir(ws.checkpoint(STAGE), resume)
        _, train_pixels = load_images(ws.data, "train")
        _, test_pixels = load_images(ws.data, "test")
        if train_pixels.shape[-1] != vqvae.cfg.image_size:
            raise ArtgenError(f"the corpus has {train_pixels.shape[-1]} px images but the VQ-VAE expects "
                              f"{vqvae.cfg.image_size} px: retrain it with `artgen train vqvae`")
        task = DecoderTask(vqvae, train_pixels, test_pixels, p, vqvae_hash=vq_hash)
        before = task.evaluate(task.model)
        tracker.log_params({"stage": STAGE, "preset": preset, "resumed": resume, "train": asdict(tcfg)})
        result = train(task, tcfg, work, resume=resume, description=f"train adversarial decoder ({preset})",
                       on_log=tracker.log_metrics)
        decoder = result.model.decoder.eval()
        metrics = {
            **result.metrics, "squared_error_decoder": before, "steps": tcfg.steps,
            # a variant's settings are its own preset: the demo and release-model then retrain the default
            "preset": preset if p == PRESETS[preset] else "custom",
            "batch_size": tcfg.batch_size, "adversarial_weight": p.adversarial_weight, "mirror": p.mirror, "grain": p.grain,
            "grain_l1": p.grain_l1, "code_noise": p.code_noise,
            "discriminator_parameters": sum(q.numel() for q in result.model.discriminator.parameters()),
            "decoder_parameters": sum(q.numel() for q in decoder.parameters()),
            "train_seconds_this_run": round(result.seconds, 1), "vqvae_hash": vq_hash,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "resumed": resume,
        }
        # The weights first, their metrics last: a metrics file never names half-written weights.
        atomic_save_safetensors({k: v.contiguous() for k, v in decoder.state_dict().items()}, vq_dir / DECODER_FILE,
                                metadata={"vqvae_hash": vq_hash})
        atomic_write_json(vq_dir / DECODER_METRICS_FILE, metrics)
        shutil.rmtree(work, ignore_errors=True)  # the run's state: done with
    tracker.log_metrics(metrics, step=tcfg.steps)
    if show_progress:
        console.print(f"decoder: test PSNR {before['psnr']:.2f} dB (squared-error decoder) -> {metrics['psnr']:.2f} dB "
                      f"(adversarial), L1 {before['recon_l1']:.4f} -> {metrics['recon_l1']:.4f}; saved to {vq_dir / DECODER_FILE}")
    return metrics
