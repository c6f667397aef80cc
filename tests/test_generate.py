"""The session's trained workspace (a few-step tiny encoder + predictor, conftest.py): its
checkpoint, resuming, then generating: shapes, determinism, guidance, the CLI and its errors."""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import TINY, run_cli
from helpers import assert_one_line_error as _assert_one_line_error

from artgen.errors import ArtgenError
from artgen.training.predictor import train_predictor
from artgen.workspace import Workspace

# one thread, as the session's model was trained: the resume test matches its weights to 1e-6
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_checkpoint_describes_itself_and_metrics_are_written(trained_workspace):
    ws = trained_workspace
    d = ws.checkpoint("tiny")
    config = json.loads((d / "config.json").read_text())
    assert config["summary"]["weights"] == "trained from scratch"
    assert config["summary"]["encoder"] == "tiny" and len(config["summary"]["vqvae_hash"]) == 64
    assert (d / "model.safetensors").exists() and (d / "tokenizer" / "spm.model").exists()
    saved = json.loads((d / "metrics.json").read_text())
    for key in ("ce", "ce_no_text", "token_accuracy", "baseline_accuracy", "baseline_ce"):
        assert np.isfinite(saved[key])
    assert 0 <= saved["token_accuracy"] <= 1 and saved["test_images"] == 26
    # the baseline predicts the most frequent training code everywhere: its accuracy is that code's test share
    from artgen.data.latents import load_latents

    train_codes, test_codes = load_latents(ws, "train")[1], load_latents(ws, "test")[1]
    top = np.bincount(train_codes.ravel().astype(np.int64)).argmax()
    assert saved["baseline_accuracy"] == pytest.approx((test_codes == top).mean())


def test_resume_continues_exactly(trained_workspace, tmp_path):
    from safetensors.torch import load_file

    ws = trained_workspace
    other = Workspace(tmp_path)
    for sub in ("data", "latents", "checkpoints/vqvae"):
        shutil.copytree(ws.root / sub, tmp_path / sub)
    train_predictor(other, "tiny", preset=TINY, annotations="gt", device="cpu", show_progress=False, steps=2)
    metrics = train_predictor(other, "tiny", preset=TINY, annotations="gt", device="cpu", show_progress=False, resume=True)
    saved = json.loads((other.checkpoint("tiny") / "metrics.json").read_text())
    assert all(saved[k] == metrics[k] for k in ("ce", "ce_no_text", "token_accuracy", "baseline_accuracy", "baseline_ce"))
    a = load_file(str(ws.checkpoint("tiny") / "model.safetensors"))
    b = load_file(str(other.checkpoint("tiny") / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


@pytest.fixture(scope="module")
def generator(trained_workspace):
    from artgen.generate import load_generator

    return load_generator(trained_workspace, "tiny")


def test_one_shot_and_refine_shapes_and_determinism(generator):
    grid = generator.predictor.cfg.grid
    for steps in (1, 4):
        a = generator.sample_codes(["warm, chaotic, vivid", "cool calm"], seed=3, steps=steps)
        assert a.shape == (2, grid, grid) and a.dtype == torch.long
        assert int(a.min()) >= 0 and int(a.max()) < generator.predictor.cfg.codebook_size
        assert torch.equal(a, generator.sample_codes(["warm, chaotic, vivid", "cool calm"], seed=3, steps=steps))
    other = generator.sample_codes(["warm, chaotic, vivid", "cool calm"], seed=4, steps=1)
    assert not torch.equal(a[:1], other[:1])
    images = generator.decode(a)
    assert images.dtype == np.uint8 and images.shape[0] == 2 and images.shape[-1] == 3


def test_an_image_does_not_depend_on_its_batch(generator):
    batch = generator.sample_codes(["warm", "cool", "dark"], seed=10, steps=2)
    alone = generator.sample_codes(["cool"], seeds=[11], steps=2)
    assert torch.equal(batch[1], alone[0])


def test_refine_fixes_positions_in_the_reveal_order_and_guides_the_first_half(generator, monkeypatch):
    from artgen.generate import known_after, reveal_order

    cfg = generator.predictor.cfg
    N, steps = cfg.positions, 6
    seen, scales = [], []  # the codes the predictor is shown and the guidance scale, per step
    real_logits = generator.logits

    def logits(codes, states, mask, guidance):
        seen.append(codes.clone())
        scales.append(guidance)
        return real_logits(codes, states, mask, guidance)

    monkeypatch.setattr(generator, "logits", logits)
    final = generator.sample_codes(["cool calm", "warm"], seeds=[7, 8], steps=steps, guidance=2.5).view(2, N)
    assert len(seen) == steps
    assert scales == [2.5, 2.5, 2.5, 1.0, 1.0, 1.0]  # guided for the first half of the steps only
    order = reveal_order([7, 8], N)
    counts = [known_after(s, steps, N) for s in range(steps)]
    assert counts == sorted(counts) and counts[-1] == N and counts[0] >= 1
    for step, codes in enumerate(seen):
        n_known = counts[step - 1] if step else 0
        for b in range(2):
            known = np.flatnonzero((codes[b] != cfg.mask_id).numpy())
            assert sorted(known) == sorted(order[b, :n_known])  # exactly the first n_known of its order
            assert torch.equal(codes[b, known], final[b, known])  # a fixed code never changes
    assert sorted(order[0]) == list(range(N)) and not np.array_equal(order[0], order[1])


def test_guidance_one_is_the_conditional_model_and_temperature_zero_is_argmax(generator):
    codes = torch.full((1, generator.predictor.cfg.positions), generator.predictor.cfg.mask_id)
    states, mask = generator.encoder.encode(generator.encoder.tokenize(["warm, vivid"]))
    cond = generator.predictor(codes, states, mask)
    uncond = generator.predictor(codes, states, torch.zeros_like(mask))
    assert torch.allclose(generator.logits(codes, states, mask, 1.0), cond)
    assert torch.allclose(generator.logits(codes, states, mask, 0.0), uncond, atol=1e-6)
    assert torch.allclose(generator.logits(codes, states, mask, 3.0), uncond + 3 * (cond - uncond), atol=1e-5)
    greedy = generator.sample_codes(["warm, vivid"], seed=0, steps=1, temperature=0.0, guidance=1.0)
    assert torch.equal(greedy.flatten(), cond.argmax(-1).flatten())
    assert torch.equal(greedy, generator.sample_codes(["warm, vivid"], seed=99, steps=1, temperature=0.0, guidance=1.0))


def test_bad_sampling_arguments(generator):
    with pytest.raises(ArtgenError, match="empty"):
        generator.sample_codes([" "])
    with pytest.raises(ArtgenError, match="steps"):
        generator.sample_codes(["warm"], steps=0)
    with pytest.raises(ArtgenError, match="seeds must be >= 0"):
        generator.sample_codes(["warm"], seed=-1, temperature=0.0)


def test_cli_generate_writes_the_same_png_for_the_same_seed(trained_workspace, tmp_path):
    ws = trained_workspace
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    r1 = run_cli("generate", "warm, chaotic, vivid", "-n", "3", "--seed", "5", "-o", str(a), workdir=ws.root)
    r2 = run_cli("generate", "warm, chaotic, vivid", "-n", "3", "--seed", "5", "-o", str(b), workdir=ws.root)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr
    assert a.read_bytes() == b.read_bytes()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("warm vivid\n\ncool calm\n")
    c = tmp_path / "c.png"
    r3 = run_cli("generate", "--prompts", str(prompts), "-n", "2", "--steps", "3", "-o", str(c), workdir=ws.root)
    assert r3.returncode == 0, r3.stderr
    from PIL import Image

    side = 32 + 2  # 32 px images, 2 px gaps, drawn at twice the size
    assert Image.open(a).size == ((3 * side + 2) * 2, (1 * side + 2) * 2)  # one prompt, three seeds
    assert Image.open(c).size == ((2 * side + 2) * 2, (2 * side + 2) * 2)  # two prompts (rows), two seeds
    assert "wrote 2 x 2 images" in r3.stderr


def test_cli_generate_notes_unseen_words(trained_workspace, tmp_path):
    r = run_cli("generate", "fiery, zorbly, vivid", "-n", "1", "-o", str(tmp_path / "x.png"), workdir=trained_workspace.root)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "'fiery'" in notes[0] and "'zorbly'" in notes[0] and "'vivid'" not in notes[0]


@pytest.mark.parametrize("args, needles", [
    (["generate", ""], ["empty"]),
    (["generate", " ".join(["warm"] * 30)], ["words", "limit"]),
    (["generate", "warm", "--encoder", "gpt5"], ["unknown encoder", "tiny, clip, distilbert"]),
    (["generate", "warm", "--encoder", "clip"], ["artgen train --encoder clip"]),
    (["generate"], ["no prompt"]),
    (["generate", "--prompts", "/nonexistent/p.txt"], ["does not exist"]),
])
def test_cli_generate_errors_are_one_line(trained_workspace, args, needles):
    _assert_one_line_error(run_cli(*args, workdir=trained_workspace.root), *needles)


def test_cli_train_errors_are_one_line(tmp_path):
    _assert_one_line_error(run_cli("train", workdir=tmp_path), "--encoder tiny")
    _assert_one_line_error(run_cli("train", "--encoder", "gpt5", workdir=tmp_path), "unknown encoder")
    _assert_one_line_error(run_cli("train", "--encoder", "tiny", "--annotations", "gt", workdir=tmp_path),
                           "artgen data synth")
    _assert_one_line_error(run_cli("train", "--encoder", "tiny", "--finetune", workdir=tmp_path), "--pretrained")


def test_cli_encoders_lists_sizes_and_sources(trained_workspace):
    r = run_cli("encoders", workdir=trained_workspace.root, env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    for name in ("tiny", "clip", "distilbert"):
        assert name in out
    assert "trained from scratch" in out and "not trained" in out  # tiny trained, clip not


def test_generator_from_pretrained_is_the_one_checkpoint_api(trained_workspace, tmp_path):
    from artgen.generate import Generator, load_generator
    from artgen.models.text_to_codes import TextToCodes

    ws = trained_workspace
    gen = Generator.from_pretrained(ws.checkpoint("tiny"), ws.checkpoint("vqvae"))
    same = load_generator(ws, "tiny")
    assert torch.equal(gen.sample_codes(["warm, vivid"], seed=1, steps=2), same.sample_codes(["warm, vivid"], seed=1, steps=2))
    model, config = TextToCodes.from_pretrained(ws.checkpoint("tiny"))
    model.save_pretrained(tmp_path / "copy", config)  # a round trip keeps every weight
    again, _ = TextToCodes.from_pretrained(tmp_path / "copy")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ArtgenError, match="no trained model at"):
        Generator.from_pretrained(tmp_path / "nowhere", ws.checkpoint("vqvae"))


def test_prompt_files_as_editors_save_them(tmp_path):
    from artgen.data.vocabulary import parse_prompt
    from artgen.generate import read_prompts

    f = tmp_path / "p.txt"
    f.write_bytes("\ufeff# my prompts\r\nwarm, vivid\r\n\r\n  # cool ones\r\ncool, calm\r\n".encode())  # Notepad: BOM, CRLF
    assert read_prompts(f) == ["warm, vivid", "cool, calm"]
    f.write_bytes("chaud, caf\xe9\n".encode("latin-1"))  # not silently "caf\ufffd"
    with pytest.raises(ArtgenError, match=r"not UTF-8 text \(byte 0xe9 on line 1\): save it as UTF-8"):
        read_prompts(f)
    with pytest.raises(ArtgenError, match="is a folder"):
        read_prompts(tmp_path)
    f.write_text("# only a comment\n\n")
    with pytest.raises(ArtgenError, match="holds no prompts"):
        read_prompts(f)
    with pytest.raises(ArtgenError, match="not valid Unicode"):  # a non-UTF-8 byte in argv, as Python keeps it
        parse_prompt("warm \udced")
