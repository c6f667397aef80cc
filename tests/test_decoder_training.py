"""`artgen train decoder`: the adversarial decoder, saved beside the VQ-VAE, on the same codes."""

import json

import pytest
import torch
from helpers import assert_one_line_error, copy_workspace, run_cli
from safetensors.torch import load_file

from artgen.errors import ArtgenError
from artgen.files import atomic_save_safetensors
from artgen.generate import load_generator
from artgen.models.vqvae import DECODER_FILE, DECODER_METRICS_FILE, VQVAE, checkpoint_hash
from artgen.training.decoder import PRESETS, DecoderTask, decoded_parts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def decoder_ws(trained_workspace, tmp_path_factory):
    """The trained workspace plus a 4-step adversarial decoder, trained by the CLI."""
    ws = copy_workspace(trained_workspace, tmp_path_factory.mktemp("dec") / "ws")
    before = checkpoint_hash(ws.checkpoint("vqvae"))
    r = run_cli("train", "decoder", "--preset", "quick", "--steps", "4", "--threads", "1", workdir=ws.root)
    assert r.returncode == 0, r.stderr
    return ws, before


def test_decoder_is_saved_beside_the_vqvae_and_keeps_its_codes(decoder_ws):
    ws, hash_before = decoder_ws
    vq_dir = ws.checkpoint("vqvae")
    metrics = json.loads((vq_dir / DECODER_METRICS_FILE).read_text())
    assert metrics["steps"] == 4 and metrics["vqvae_hash"] == hash_before
    for key in ("psnr", "recon_l1"):
        assert key in metrics and key in metrics["squared_error_decoder"]
    assert checkpoint_hash(vq_dir) == hash_before  # the codes' identity: models trained on them stay valid
    assert not (vq_dir.parent / ".decoder.partial").exists()  # the run's state is cleaned up

    adversarial = VQVAE.from_pretrained(vq_dir)
    plain = VQVAE.from_pretrained(vq_dir, adversarial_decoder=False)
    saved = load_file(str(vq_dir / DECODER_FILE))
    for name, tensor in adversarial.decoder.state_dict().items():
        assert torch.equal(tensor, saved[name])
    assert any(not torch.equal(a, b) for a, b in zip(adversarial.decoder.state_dict().values(),
                                                     plain.decoder.state_dict().values()))
    for name, tensor in plain.state_dict().items():
        if not name.startswith("decoder."):
            assert torch.equal(tensor, adversarial.state_dict()[name])
    assert "adversarial" in adversarial.decoder_source and "squared error" in plain.decoder_source


def test_generation_decodes_with_the_adversarial_decoder(decoder_ws):
    ws, _ = decoder_ws
    gen = load_generator(ws, "tiny")  # the predictor's recorded VQ-VAE hash still matches
    codes = gen.sample_codes(["warm, calm"], seed=0)
    plain = VQVAE.from_pretrained(ws.checkpoint("vqvae"), adversarial_decoder=False)
    with torch.no_grad():
        expected = gen.vqvae.decode_indices(codes)
        other = plain.decode_indices(codes)
    assert torch.equal(expected, VQVAE.from_pretrained(ws.checkpoint("vqvae")).decode_indices(codes))
    assert not torch.equal(expected, other)


def test_a_decoder_for_other_codes_is_a_one_line_error(decoder_ws, tmp_path):
    ws, _ = decoder_ws
    other = copy_workspace(ws, tmp_path / "ws")
    path = other.checkpoint("vqvae") / DECODER_FILE
    atomic_save_safetensors(load_file(str(path)), path, metadata={"vqvae_hash": "0" * 64})
    with pytest.raises(ArtgenError, match="another VQ-VAE's codes"):
        VQVAE.from_pretrained(other.checkpoint("vqvae"))
    assert_one_line_error(run_cli("generate", "warm", "-n", "1", "-o", str(tmp_path / "x.png"), workdir=other.root),
                          "artgen train decoder")


def test_each_loss_reaches_only_its_own_network(trained_workspace):
    """One optimiser steps both networks: the decoder's gradient must be that of L1 + weight x
    the adversarial loss (the discriminator held fixed), the discriminator's that of its hinge
    loss alone."""
    vqvae = VQVAE.from_pretrained(trained_workspace.checkpoint("vqvae"), adversarial_decoder=False)
    pixels = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    task = DecoderTask(vqvae, pixels, pixels, PRESETS["quick"])
    model = task.model.eval()  # spectral norm without power-iteration updates: every forward the same
    batch = task.batch(0, torch.Generator().manual_seed(0), 6)
    loss, parts = task.loss(model, batch)
    model.zero_grad()
    loss.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}

    with torch.no_grad():
        quantized = vqvae.quantizer.lookup(vqvae.encode_indices(batch))
    dec, disc = list(model.decoder.parameters()), list(model.discriminator.parameters())
    base, grain = decoded_parts(model.decoder, quantized)
    fake = base + grain
    for p in disc:
        p.requires_grad_(False)
    decoder_loss = (fake - (batch * 2 - 1)).abs().mean() + parts["w"] * -model.discriminator(fake).mean()
    want_dec = torch.autograd.grad(decoder_loss, dec)
    for p in disc:
        p.requires_grad_(True)
    real = batch * 2 - 1
    d_loss = (torch.relu(1 - model.discriminator(real)).mean()
              + torch.relu(1 + model.discriminator(fake.detach())).mean())
    want_disc = torch.autograd.grad(d_loss, disc)
    names = dict(model.named_parameters())
    inv = {id(p): n for n, p in names.items()}
    for p, want in zip(dec, want_dec):
        torch.testing.assert_close(got[inv[id(p)]], want, rtol=1e-4, atol=1e-6)
    for p, want in zip(disc, want_disc):
        torch.testing.assert_close(got[inv[id(p)]], want, rtol=1e-4, atol=1e-6)
    assert parts["w"] > 0
    assert model.decoder.grain is not None and got["decoder.grain.out.weight"].abs().sum() > 0  # the grain branch trains too


def test_the_grain_branch_starts_as_the_decoder_it_is_added_to(trained_workspace):
    vqvae = VQVAE.from_pretrained(trained_workspace.checkpoint("vqvae"), adversarial_decoder=False)
    codes = torch.randint(0, vqvae.cfg.quantizer.codebook_size, (2, vqvae.cfg.grid, vqvae.cfg.grid))
    with torch.no_grad():
        before = vqvae.decode_indices(codes)
        vqvae.decoder.add_grain()
        after = vqvae.decode_indices(codes)
    assert torch.equal(before, after)


@pytest.mark.parametrize("how", [("--steps", "2", "--batch-size", "4"),  # a new run, staged and swapped in
                                 ("--resume", "--steps", "3", "--batch-size", "8")])  # more steps, in place
def test_retraining_the_vqvae_drops_its_decoder(decoder_ws, tmp_path, how):
    ws, _ = decoder_ws
    other = copy_workspace(ws, tmp_path / "ws")
    r = run_cli("train", "vqvae", *how, "--device", "cpu", "--threads", "1", workdir=other.root)
    assert r.returncode == 0, r.stderr
    assert not (other.checkpoint("vqvae") / DECODER_FILE).exists()
    assert not (other.checkpoint("vqvae") / DECODER_METRICS_FILE).exists()


def test_a_decoder_of_another_shape_is_a_one_line_error(decoder_ws, tmp_path):
    ws, _ = decoder_ws
    other = copy_workspace(ws, tmp_path / "ws")
    vq_dir = other.checkpoint("vqvae")
    state = load_file(str(vq_dir / DECODER_FILE))
    state["grain.strength"] = torch.ones(1, 16, 1, 1)  # a key this version's decoder does not have
    atomic_save_safetensors(state, vq_dir / DECODER_FILE, metadata={"vqvae_hash": checkpoint_hash(vq_dir)})
    with pytest.raises(ArtgenError, match="does not fit this version's decoder"):
        VQVAE.from_pretrained(vq_dir)


def test_a_bundle_is_current_only_through_the_decoder_there_is_now(decoder_ws, tmp_path):
    """Exported through the adversarial decoder: stale once that decoder is retrained or deleted."""
    import os
    import time

    from export.bundle import ExportConfig, bundle_is_current, export_bundle

    ws, _ = decoder_ws
    other = copy_workspace(ws, tmp_path / "ws")
    vq_dir, model_dir, bundle = other.checkpoint("vqvae"), other.checkpoint("tiny"), tmp_path / "bundle"
    export_bundle(load_generator(other, "tiny"), bundle, ExportConfig())
    assert json.loads((bundle / "bundle.json").read_text())["decoder"].startswith("adversarial")
    assert bundle_is_current(bundle, model_dir, vq_dir)
    later = time.time() + 5
    os.utime(vq_dir / DECODER_FILE, (later, later))  # the decoder retrained after the export
    assert not bundle_is_current(bundle, model_dir, vq_dir)
    (vq_dir / DECODER_FILE).unlink()  # or deleted: the bundle's images are no longer what generate draws
    assert not bundle_is_current(bundle, model_dir, vq_dir)
    assert bundle_is_current(bundle, model_dir)  # the model checkpoint alone still matches


@pytest.mark.parametrize("norm", ["spectral", "batch"])
def test_the_discriminator_scores_one_logit_per_patch(norm):
    from artgen.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig

    disc = PatchDiscriminator(PatchDiscriminatorConfig(width=8, norm=norm))
    assert disc(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 8, 8)  # two stride-2 layers: 32 px -> 8 x 8 patches
    with pytest.raises(ValueError, match="unknown discriminator norm"):
        PatchDiscriminator(PatchDiscriminatorConfig(norm="layer"))


@pytest.mark.parametrize("code_noise", [0.0, 0.3])
def test_code_noise_changes_the_codes_the_decoder_reads_not_its_target(trained_workspace, monkeypatch, code_noise):
    from dataclasses import replace

    from artgen.training import decoder as decoder_module

    vqvae = VQVAE.from_pretrained(trained_workspace.checkpoint("vqvae"), adversarial_decoder=False)
    pixels = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    task = DecoderTask(vqvae, pixels, pixels, replace(PRESETS["quick"], code_noise=code_noise))
    calls, seen = [], {}

    def slips(codes, share, generator=None):  # every code read as code 0
        calls.append(share)
        return torch.zeros_like(codes)

    def terms(decoder, discriminator, quantized, real, *args, **kw):
        seen.update(quantized=quantized, real=real)
        zero = quantized.sum() * 0
        return zero, zero, zero, {}

    monkeypatch.setattr(decoder_module, "noisy_inputs", slips)
    monkeypatch.setattr(decoder_module, "adversarial_terms", terms)
    batch = task.batch(0, torch.Generator().manual_seed(0), 4)
    task.loss(task.model, batch)
    codes = vqvae.encode_indices(batch)
    want = torch.zeros_like(codes) if code_noise else codes
    assert calls == ([code_noise] if code_noise else [])
    assert torch.equal(seen["quantized"], vqvae.quantizer.lookup(want))
    assert torch.equal(seen["real"], batch * 2 - 1)  # the target is the true painting either way
    assert ("code_noise" in task.config()) == bool(code_noise)  # older decoder runs still resume


def test_a_decoder_trained_with_changed_settings_is_not_recorded_as_its_preset(trained_workspace, tmp_path):
    from artgen.training.decoder import train_decoder

    ws = copy_workspace(trained_workspace, tmp_path / "ws")
    assert train_decoder(ws, "quick", steps=2, threads=1, show_progress=False)["preset"] == "quick"
    metrics = train_decoder(ws, "quick", steps=2, threads=1, show_progress=False, code_noise=0.1)
    assert metrics["preset"] == "custom" and metrics["code_noise"] == 0.1
