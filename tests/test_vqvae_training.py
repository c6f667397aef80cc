"""`artgen train vqvae` end to end on a tiny corpus, and the latents cache."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT, run_cli

from artgen.data.corpus import split_sizes
from artgen.data.latents import ensure_latents, is_fresh, load_latents
from artgen.errors import ArtgenError
from artgen.models.vqvae import VQVAE, checkpoint_hash
from artgen.workspace import Workspace

N_TRAIN, N_TEST = split_sizes(120)  # the small_corpus fixture
TINY = ["--steps", "4", "--batch-size", "4", "--device", "cpu", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_ws(small_corpus, tmp_path_factory):
    """A workspace with the small corpus and a VQ-VAE trained for a few steps by the CLI."""
    ws = tmp_path_factory.mktemp("vqws")
    shutil.copytree(small_corpus / "data", ws / "data")
    r = run_cli("train", "vqvae", *TINY, workdir=ws)
    assert r.returncode == 0, r.stderr
    return ws


def test_train_vqvae_writes_model_metrics_pictures_and_latents(trained_ws):
    ckpt = trained_ws / "checkpoints" / "vqvae"
    metrics = json.loads((ckpt / "metrics.json").read_text())
    for key in ("recon_mse", "psnr", "codebook_usage", "perplexity"):
        assert key in metrics
    assert 0 < metrics["codebook_usage"] <= 1 and 1 <= metrics["perplexity"] <= 512
    assert metrics["psnr"] == pytest.approx(10 * np.log10(1 / metrics["recon_mse"]))
    assert metrics["test_images"] == N_TEST and metrics["steps"] == 4
    for png in ("reconstructions.png", "code_histogram.png"):
        assert (ckpt / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = VQVAE.from_pretrained(ckpt)
    assert model.cfg.image_size == 32 and model.cfg.quantizer.codebook_size == 512

    ws = Workspace(trained_ws)
    ids, codes = load_latents(ws, "test")
    assert codes.dtype == np.uint16 and codes.shape == (N_TEST, 8, 8) and len(ids) == N_TEST
    from artgen.data.pixels import load_images, to_float

    corpus_ids, pixels = load_images(ws.data, "test")
    assert ids == corpus_ids
    assert np.array_equal(codes, model.encode_indices(to_float(pixels)).numpy())


def test_stale_latents_are_detected_and_rebuilt(trained_ws, tmp_path):
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(trained_ws / "data", ws.data)
    shutil.copytree(trained_ws / "checkpoints", ws.root / "checkpoints")
    ensure_latents(ws, show_progress=False)
    assert is_fresh(ws, "train")
    # A retrained model (different weights) makes the cache stale.
    ckpt = ws.checkpoint("vqvae")
    model = VQVAE.from_pretrained(ckpt)
    with torch.no_grad():
        model.quantizer.embed.mul_(-1.0)
    model.save_pretrained(ckpt)
    assert not is_fresh(ws, "train") and not is_fresh(ws, "test")
    ensure_latents(ws, show_progress=False)
    meta = json.loads((ws.latents / "train" / "meta.json").read_text())
    assert meta["checkpoint_hash"] == checkpoint_hash(ckpt)
    from artgen.data.pixels import load_images, to_float

    _, pixels = load_images(ws.data, "train")
    _, codes = load_latents(ws, "train")
    assert np.array_equal(codes, model.encode_indices(to_float(pixels)).numpy())


def test_latents_need_a_vqvae_and_a_cache(tmp_path, small_corpus):
    with pytest.raises(ArtgenError, match="artgen data synth"):
        ensure_latents(Workspace(tmp_path))
    with pytest.raises(ArtgenError, match="no VQ-VAE checkpoint.*artgen train vqvae"):
        ensure_latents(Workspace(small_corpus))
    with pytest.raises(ArtgenError, match="artgen train vqvae"):
        load_latents(Workspace(tmp_path), "train")


def test_missing_corpus_is_a_one_line_error(tmp_path):
    r = run_cli("train", "vqvae", *TINY, workdir=tmp_path)
    assert r.returncode == 2
    assert "artgen data synth" in r.stderr and "artgen data import" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_bad_options_are_clear_errors(trained_ws):
    from artgen.training.vqvae import train_vqvae

    with pytest.raises(ArtgenError, match="unknown preset 'huge'"):
        train_vqvae(Workspace(trained_ws), preset="huge")
    with pytest.raises(ArtgenError, match="unknown quantiser variant 'magic'"):
        train_vqvae(Workspace(trained_ws), variant="magic", steps=1, show_progress=False)


def test_corrupt_training_state_stops_resume(trained_ws, tmp_path):
    from artgen.training.vqvae import train_vqvae

    ws = tmp_path / "ws"
    shutil.copytree(trained_ws / "data", ws / "data")
    shutil.copytree(trained_ws / "checkpoints", ws / "checkpoints")
    opt = ws / "checkpoints" / "vqvae" / "train_state" / "optimizer.safetensors"
    opt.write_bytes(b"not a safetensors file")
    with pytest.raises(ArtgenError, match="damaged"):
        train_vqvae(Workspace(ws), resume=True, steps=6, batch_size=4, device="cpu", show_progress=False)


@pytest.mark.slow
def test_training_runs_unchanged_under_torchrun_with_two_processes(small_corpus, tmp_path):
    shutil.copytree(small_corpus / "data", tmp_path / "data")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "artgen", "--workdir", str(tmp_path), "train", "vqvae", *TINY]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "checkpoints" / "vqvae" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["images_seen"] == 4 * 4 * 2
    state = json.loads((tmp_path / "checkpoints" / "vqvae" / "train_state" / "config.json").read_text())
    assert state["step"] == 4
    assert load_latents(Workspace(tmp_path), "train")[1].shape[0] == N_TRAIN


def test_mirror_off_trains_on_the_paintings_as_they_are():
    """`VQVAEPreset.mirror=False`: every batch holds the paintings unflipped (a mirror would
    shift a one-pixel canvas weave's phase); with mirrors on, some come flipped."""
    from artgen.data.pixels import to_float
    from artgen.models.vqvae import VQVAEConfig
    from artgen.training.vqvae import VQVAETask

    pixels = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    cfg = VQVAEConfig(image_size=8, downsample=4, hidden=8, res_hidden=4, res_blocks=1)
    flipped = []
    for mirror in (False, True):
        task = VQVAETask(cfg, pixels, pixels, mirror=mirror)
        batch = task.batch(0, torch.Generator().manual_seed(1), 64)
        idx = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))
        flipped.append(int((batch != to_float(pixels[idx])).flatten(1).any(1).sum()))
    assert flipped[0] == 0 and flipped[1] > 0
    assert "mirror" not in VQVAETask(cfg, pixels, pixels).config()  # older runs still resume


def test_no_mirror_reaches_the_training_from_the_cli(small_corpus, tmp_path):
    shutil.copytree(small_corpus / "data", tmp_path / "data")
    r = run_cli("train", "vqvae", "--no-mirror", *TINY, workdir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "checkpoints" / "vqvae" / "metrics.json").read_text())["mirror"] is False


def test_downsample_sets_the_code_grid_from_the_cli(small_corpus, tmp_path):
    from artgen.data.pixels import load_images

    shutil.copytree(small_corpus / "data", tmp_path / "data")
    side = load_images(tmp_path / "data", "test")[1].shape[-1]
    r = run_cli("train", "vqvae", "--downsample", "8", *TINY, workdir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "checkpoints" / "vqvae" / "metrics.json").read_text())["grid"] == side // 8
    assert load_latents(Workspace(tmp_path), "train")[1].shape[1:] == (side // 8, side // 8)
    r = run_cli("train", "vqvae", "--downsample", "3", *TINY, workdir=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "power of two" in r.stderr, r.stderr
    assert json.loads((tmp_path / "checkpoints" / "vqvae" / "metrics.json").read_text())["grid"] == side // 8  # kept


def test_the_grain_heads_likelihood_reaches_the_encoder_and_not_the_decoder():
    """`VQVAEPreset.grain_weight`: the noise-scale head's likelihood is judged against the
    detached decoded image, so it changes the encoder's (and the head's) gradient and leaves the
    decoder's exactly as the squared error alone makes it."""
    from artgen.models.vqvae import VQVAEConfig
    from artgen.training.vqvae import VQVAETask, vqvae_of

    pixels = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    cfg = VQVAEConfig(image_size=16, downsample=4, hidden=8, res_hidden=4, res_blocks=1)
    grads = {}
    for weight in (0.0, 0.5):
        task = VQVAETask(cfg, pixels, pixels, init_seed=3, grain_weight=weight)
        batch = task.batch(0, torch.Generator().manual_seed(1), 6)
        vqvae_of(task.model).quantizer.initialized.fill_(True)  # the same codebook for both, no k-means draw
        loss, logs = task.loss(task.model, batch)
        loss.backward()
        vq = vqvae_of(task.model)
        grads[weight] = {n: p.grad.clone() for n, p in vq.named_parameters() if p.grad is not None}
        assert ("grain_nll" in logs) == (weight > 0)
    decoder = [n for n in grads[0.0] if n.startswith("decoder.")]
    encoder = [n for n in grads[0.0] if n.startswith("encoder.")]
    assert decoder and all(torch.allclose(grads[0.0][n], grads[0.5][n], atol=1e-7) for n in decoder)
    assert any(not torch.allclose(grads[0.0][n], grads[0.5][n], atol=1e-7) for n in encoder)
    head = VQVAETask(cfg, pixels, pixels, grain_weight=0.5).model.head
    with torch.no_grad():
        sigma = head(torch.randn(2, cfg.quantizer.dim, 4, 4))
    assert sigma.shape == (2, 3, 16, 16) and float(sigma.min()) >= head.min_sigma
    assert "grain_weight" not in VQVAETask(cfg, pixels, pixels).config()  # older runs still resume


def test_grain_weight_reaches_the_training_and_the_head_is_not_saved(small_corpus, tmp_path):
    shutil.copytree(small_corpus / "data", tmp_path / "data")
    r = run_cli("train", "vqvae", "--grain-weight", "0.05", *TINY, workdir=tmp_path)
    assert r.returncode == 0, r.stderr
    ckpt = tmp_path / "checkpoints" / "vqvae"
    assert json.loads((ckpt / "metrics.json").read_text())["grain_weight"] == 0.05
    from safetensors.torch import load_file

    assert not any(k.startswith("head.") or k.startswith("vqvae.") for k in load_file(str(ckpt / "model.safetensors")))
    VQVAE.from_pretrained(ckpt)  # strict: exactly a VQ-VAE's weights


def test_evaluate_vqvae_scores_the_decoder_it_is_given():
    """The adversarial decoder's training scores its decoder on the frozen VQ-VAE's codes through
    `evaluate_vqvae(..., decoder=...)`: the same numbers as a VQ-VAE holding that decoder."""
    import copy

    from artgen.models.vqvae import Decoder, VQVAEConfig
    from artgen.training.vqvae import evaluate_vqvae

    torch.manual_seed(0)
    cfg = VQVAEConfig(image_size=16, downsample=4, hidden=8, res_hidden=4, res_blocks=1)
    model, other = VQVAE(cfg).eval(), Decoder(cfg)
    pixels = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    holding = copy.deepcopy(model)
    holding.decoder.load_state_dict(other.state_dict())
    given, held, own = evaluate_vqvae(model, pixels, decoder=other), evaluate_vqvae(holding, pixels), evaluate_vqvae(model, pixels)
    assert given["recon_mse"] == pytest.approx(held["recon_mse"]) and given["recon_l1"] == pytest.approx(held["recon_l1"])
    assert given["recon_mse"] != pytest.approx(own["recon_mse"])
    assert given["code_counts"] == own["code_counts"]  # the codes are the model's either way


def test_fewer_test_paintings_than_a_row_still_get_a_reconstruction_sheet(tmp_path):
    """A small imported corpus can have 1-7 test paintings: the sheet holds them in one row
    (a torch.cat of nothing used to end the training in a traceback, losing the trained model)."""
    from PIL import Image

    from artgen.models.vqvae import VQVAEConfig
    from artgen.training.vqvae import save_reconstructions

    model = VQVAE(VQVAEConfig(image_size=16)).eval()
    pixels = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    save_reconstructions(model, pixels, tmp_path / "r.png", scale=1)
    assert Image.open(tmp_path / "r.png").size == (48, 32)  # 3 originals over their 3 reconstructions


def test_a_corpus_size_the_codes_do_not_divide_names_the_fix():
    from artgen.training.vqvae import PRESETS, build_config

    with pytest.raises(ArtgenError, match=r"30 px.*--size 64 --force"):
        build_config(PRESETS["quick"], 30)
    assert build_config(PRESETS["quick"], 32).image_size == 32


def test_flips_and_rotations_are_the_eight_symmetries_of_the_square_and_rotations_swap_orientation():
    from artgen.data.latents import FLIPS, ROTATIONS, labels_of

    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    images = [x] + [x.flip(dims) for dims in FLIPS.values()] + [turn(x) for turn in ROTATIONS.values()]
    assert len({tuple(im.flatten().tolist()) for im in images}) == 8  # all distinct: the dihedral group
    assert torch.equal(ROTATIONS["rot90"](ROTATIONS["rot270"](x)), x)
    for turn in ROTATIONS.values():  # a quarter turn makes rows of columns: horizontal bands become vertical
        bands = torch.arange(4.0).reshape(1, 1, 4, 1).expand(1, 1, 4, 4)  # constant along each row
        assert bool((turn(bands).diff(dim=-2) == 0).all()) and not bool((turn(bands).diff(dim=-1) == 0).all())
    labels = {"p1": ["warm", "horizontal", "calm"]}
    assert labels_of("p1", labels) == ["warm", "horizontal", "calm"]
    assert labels_of("p1#hflip", labels) == ["warm", "horizontal", "calm"]
    assert labels_of("p1#transpose", labels) == ["warm", "vertical", "calm"]
    assert labels_of("missing#rot90", labels) == []


def test_rotated_latents_cache_four_quarter_turns_of_every_train_painting(trained_ws):
    from artgen.data.latents import ROTATED, ROTATIONS

    ws = Workspace(trained_ws)
    ensure_latents(ws, show_progress=False, rotated=True)
    train_ids, train_codes = load_latents(ws, "train")
    ids, codes = load_latents(ws, ROTATED)
    assert ids == [f"{i}#{name}" for name in ROTATIONS for i in train_ids]
    assert codes.shape == (4 * len(train_ids), *train_codes.shape[1:])
    assert is_fresh(ws, ROTATED)
