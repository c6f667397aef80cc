"""Condition Contrastive Alignment (`artgen train align`): the loss starts at its closed form
where the model equals its frozen copy and, trained, makes each grid likelier with its own
caption than with another; the aligned model replaces the trained one with its metrics kept,
records its default guidance (which generate, the bench and the bundle sample with), and is
refused a second alignment or a model that is not autoregressive; the preset runs it after the
cross-entropy stage."""

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import TINY_AR, assert_one_line_error, run_cli

from artgen.errors import ArtgenError
from artgen.models.generators import generator_kind
from artgen.models.text_to_codes import TextToCodes
from artgen.training.alignment import AlignmentConfig, AlignmentTask, align_predictor
from artgen.training.predictor import train_predictor
from artgen.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = dict(steps=3, batch_size=8)  # AlignmentConfig fields small enough for a test


@pytest.fixture(scope="module")
def ar_workspace(trained_ar_workspace):
    """The session's workspace with a 2-step VQ-VAE and a 4-step tiny-ar model; tests align copies of it."""
    return trained_ar_workspace[0]


def _copy(ws: Workspace, root) -> Workspace:
    shutil.copytree(ws.root, root)
    return Workspace(root)


def _task(ws: Workspace, codes: np.ndarray, labels: list[list[str]], lam: float = 50.0, negatives: str = "next",
          negative_captions: int = 1) -> AlignmentTask:
    model, config = TextToCodes.from_pretrained(ws.checkpoint("tiny-ar"))
    return AlignmentTask(model.train(), codes, labels, codes[:4], labels[:4], config, None, kind=generator_kind("ar"),
                         beta=0.05, lam=lam, negatives=negatives, negative_captions=negative_captions)


def _grids(n: int, positions: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 512, (n, positions)).astype(np.uint16)


def test_the_loss_starts_at_its_closed_form_where_the_model_is_its_reference(ar_workspace):
    positions = TextToCodes.from_pretrained(ar_workspace.checkpoint("tiny-ar"))[0].predictor.cfg.positions
    words = [["warm", "vivid", "calm"], ["cool", "dark", "chaotic"], ["soft", "bright", "wavy"]]
    task = _task(ar_workspace, _grids(12, positions), [words[i % 3] for i in range(12)])
    b = task.batch(0, torch.Generator().manual_seed(0), 8)
    loss, parts = task.loss(task.model, b)
    # every gap is 0: -log sigmoid(0) = log 2 for the own caption, and log 2 times each sample's
    # weight (lambda for a negative, 1 for a positive) for the other, all divided by lambda
    weight = torch.where(b["positive_other"], 1.0, 50.0)
    expected = (math.log(2) + math.log(2) * weight.mean().item()) / 50.0
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert abs(parts["gap_per_position"].item()) < 1e-5


def test_a_sample_without_text_or_with_its_neighbours_caption_is_a_positive(ar_workspace):
    positions = TextToCodes.from_pretrained(ar_workspace.checkpoint("tiny-ar"))[0].predictor.cfg.positions
    same = [["warm", "vivid", "calm"]] * 6  # every caption drawn from the same words ...
    task = _task(ar_workspace, _grids(6, positions), same)
    task.make_caption = lambda adjectives, rng: "warm, vivid, calm"  # ... and written the same way
    b = task.batch(0, torch.Generator().manual_seed(0), 6)
    assert bool(b["positive_other"].all())
    task = _task(ar_workspace, _grids(6, positions), [[]] * 6)  # no labels: every sample's text is dropped
    b = task.batch(0, torch.Generator().manual_seed(0), 6)
    assert bool(b["positive_other"].all()) and not bool(b["text_mask"].any())


def test_training_makes_each_grid_likelier_with_its_own_caption_than_with_another(ar_workspace):
    positions = TextToCodes.from_pretrained(ar_workspace.checkpoint("tiny-ar"))[0].predictor.cfg.positions
    rng = np.random.default_rng(1)
    # two kinds of grid, each with its own words: the caption says which codes come
    codes = np.concatenate([rng.integers(0, 8, (32, positions)), rng.integers(300, 308, (32, positions))]).astype(np.uint16)
    labels = [["warm", "vivid", "bright"]] * 32 + [["cool", "dark", "calm"]] * 32
    task = _task(ar_workspace, codes, labels, lam=10.0)
    opt = torch.optim.Adam(task.model.parameters(), lr=3e-3)
    margins = []
    for step in range(30):
        b = task.batch(step, torch.Generator().manual_seed(step), 16)
        loss, parts = task.loss(task.model, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        margins.append(parts["margin_per_position"].item())
    assert abs(margins[0]) < 1e-4  # the model starts as its reference: no margin yet
    assert np.mean(margins[-5:]) > 0.05  # its own caption now makes each grid likelier than another's


def test_aligning_replaces_the_model_keeps_its_metrics_and_records_its_guidance(ar_workspace, tmp_path):
    from artgen.generate import load_generator
    from export.bundle import export_bundle

    ws = _copy(ar_workspace, tmp_path / "ws")
    before = json.loads((ws.checkpoint("tiny-ar") / "metrics.json").read_text())
    assert load_generator(ws, "tiny-ar").default_guidance == 2.5  # AR_DEFAULT_GUIDANCE before alignment
    weights_before = (ws.checkpoint("tiny-ar") / "model.safetensors").read_bytes()
    final = align_predictor(ws, "tiny", AlignmentConfig(**QUICK, guidance=1.5), device="cpu", show_progress=False)
    d = ws.checkpoint("tiny-ar")
    assert (d / "model.safetensors").read_bytes() != weights_before
    config = json.loads((d / "config.json").read_text())
    assert config["sampling"]["guidance"] == 1.5 and config["summary"]["alignment"]["steps"] == 3
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics == final and metrics["steps"] == before["steps"] and metrics["preset"] == before["preset"]
    assert metrics["alignment"]["ce_before"] == pytest.approx(before["ce"]) and np.isfinite(metrics["ce"])
    gen = load_generator(ws, "tiny-ar")
    assert gen.default_guidance == 1.5
    assert torch.equal(gen.sample_codes(["warm, vivid"], seed=3), gen.sample_codes(["warm, vivid"], seed=3, guidance=1.5))
    assert export_bundle(gen, ws.bundles / "tiny-ar")["sampling"]["guidance"] == 1.5
    with pytest.raises(ArtgenError, match="aligned already"):
        align_predictor(ws, "tiny", AlignmentConfig(**QUICK), device="cpu", show_progress=False)
    with pytest.raises(ArtgenError, match="was then aligned"):  # its cross-entropy run finished: nothing to resume
        train_predictor(ws, "tiny", preset=TINY_AR, annotations="gt", device="cpu", show_progress=False, generator="ar",
                        resume=True)
    assert (d / "model.safetensors").read_bytes() != weights_before  # the aligned model is kept


def test_bad_settings_and_a_missing_model_are_named(small_corpus, tmp_path):
    for bad in (dict(steps=0), dict(lr=0.0), dict(beta=-1.0), dict(lam=0.0), dict(guidance=0.5), dict(negatives="hard"),
                dict(negative_captions=0), dict(negative_captions=32), dict(negative_captions=2, negatives="closest")):
        with pytest.raises(ArtgenError, match=next(iter(bad)).replace("_", "-")):
            AlignmentConfig(**bad)
    with pytest.raises(ArtgenError, match="batch_size"):
        AlignmentConfig(batch_size=1)
    for bad in (dict(negatives="hard"), dict(negative_captions=0)):  # a task built without a config checks the same
        with pytest.raises(ArtgenError, match=next(iter(bad)).replace("_", "-")):
            AlignmentTask(None, None, None, None, None, {}, None, beta=0.05, lam=50.0, **bad)
    shutil.copytree(small_corpus / "data", tmp_path / "data")
    with pytest.raises(ArtgenError, match="--generator ar"):
        align_predictor(Workspace(tmp_path), "tiny", AlignmentConfig(**QUICK), device="cpu", show_progress=False)
    assert_one_line_error(run_cli("train", "align", "--beta", "0", workdir=tmp_path), "beta")
    assert_one_line_error(run_cli("train", "align", "--negatives", "hard", workdir=tmp_path), "--negatives", "closest")
    assert_one_line_error(run_cli("train", "align", workdir=tmp_path), "no trained model", "--generator ar")


def test_a_preset_with_alignment_aligns_after_the_cross_entropy_stage(ar_workspace, tmp_path):
    from dataclasses import replace

    ws = _copy(ar_workspace, tmp_path / "ws")
    final = train_predictor(ws, "tiny", preset=replace(TINY_AR, alignment=dict(QUICK, guidance=2.0)), annotations="gt",
                            device="cpu", show_progress=False, generator="ar")
    assert final["alignment"]["steps"] == 3 and final["steps"] == 4
    config = json.loads((ws.checkpoint("tiny-ar") / "config.json").read_text())
    assert config["sampling"]["guidance"] == 2.0


def test_cli_train_align(ar_workspace, tmp_path):
    ws = _copy(ar_workspace, tmp_path / "ws")
    r = run_cli("train", "align", "--steps", "2", "--guidance", "1.25", "--device", "cpu", workdir=ws.root)
    assert r.returncode == 0, r.stderr
    assert "tiny-ar aligned" in r.stdout + r.stderr
    assert json.loads((ws.checkpoint("tiny-ar") / "config.json").read_text())["sampling"]["guidance"] == 1.25


def test_a_neighbour_without_labels_gives_no_term_and_one_labelled_alike_is_a_positive(ar_workspace):
    positions = TextToCodes.from_pretrained(ar_workspace.checkpoint("tiny-ar"))[0].predictor.cfg.positions
    labels = [["warm", "vivid", "calm"] if i % 2 else [] for i in range(40)]
    task = _task(ar_workspace, _grids(40, positions), labels)
    b = task.batch(0, torch.Generator().manual_seed(0), 16)
    rows, other = b["rows"].tolist(), torch.roll(torch.arange(16), -1).tolist()
    dropped = ~b["text_mask"].any(1)
    for i, j in enumerate(other):
        if not labels[rows[j]] and not dropped[i]:
            assert b["unused_other"][i]  # the neighbour's caption is only a placeholder
        if labels[rows[i]] and labels[rows[j]]:
            assert b["positive_other"][i]  # the same adjectives, however written
    loss, _ = task.loss(task.model, b)
    unused = b["unused_other"].float()
    weight = torch.where(b["positive_other"], 1.0, 50.0) * (1 - unused)
    assert loss.item() == pytest.approx((math.log(2) + math.log(2) * weight.mean().item()) / 50.0, rel=1e-5)


def test_closest_negatives_are_the_batchs_nearest_other_adjective_set(ar_workspace):
    positions = TextToCodes.from_pretrained(ar_workspace.checkpoint("tiny-ar"))[0].predictor.cfg.positions
    sets = [["warm", "vivid", "calm"], ["warm", "vivid", "wavy"], ["cool", "dark", "chaotic"], ["cool", "dark", "linear"],
            ["soft", "bright", "circular"]]
    labels = [sets[i % len(sets)] for i in range(50)]
    task = _task(ar_workspace, _grids(50, positions), labels, negatives="closest")
    jaccard = lambda a, c: len(set(a) & set(c)) / len(set(a) | set(c))  # noqa: E731
    for seed in range(3):
        b = task.batch(0, torch.Generator().manual_seed(seed), 16)
        rows, other = b["rows"].tolist(), b["other"].tolist()
        for i, j in enumerate(other):
            own = labels[rows[i]]
            others = [labels[rows[k]] for k in range(16) if k != i and set(labels[rows[k]]) != set(own)]
            assert j != i and set(labels[rows[j]]) != set(own)  # never the sample itself or its own words
            assert jaccard(own, labels[rows[j]]) == max(jaccard(own, o) for o in others)
        assert not b["positive_other"][~(~b["text_mask"].any(1))].any()  # every sample with text has a negative
        assert torch.equal(b["other_ids"], b["ids"][b["other"]])


def test_several_negative_captions_are_the_next_samples_each_weighted_alike(ar_workspace):
    positions = TextToCodes.from_pretrained(ar_workspace.checkpoint("tiny-ar"))[0].predictor.cfg.positions
    words = [["warm", "vivid", "calm"], ["cool", "dark", "chaotic"], ["soft", "bright", "wavy"], ["cool", "linear", "calm"]]
    labels = [words[i % 4] for i in range(40)]
    one, two = (_task(ar_workspace, _grids(40, positions), labels, negative_captions=n) for n in (1, 2))
    two.model.load_state_dict(one.model.state_dict())
    with torch.no_grad():  # move the trained copy off its reference, so that every gap is its own
        for p in two.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        one.model.load_state_dict(two.model.state_dict())
    b = two.batch(0, torch.Generator().manual_seed(0), 8)
    assert b["other"].tolist() == [(i + k + 1) % 8 for k in range(2) for i in range(8)]
    with pytest.raises(ArtgenError, match="negative-captions"):  # a batch too small for them is named, not rolled onto itself
        two.batch(0, torch.Generator().manual_seed(0), 2)
    assert torch.equal(b["other_ids"], b["ids"][b["other"]])
    dropped = ~b["text_mask"].any(1)
    rows = b["rows"].tolist()
    for k in range(2):  # each half read from the batch's own samples, not from the task's masks
        o = torch.roll(torch.arange(8), -(k + 1))
        same = torch.tensor([set(labels[rows[i]]) == set(labels[rows[j]]) for i, j in enumerate(o.tolist())])
        half = slice(8 * k, 8 * (k + 1))
        assert torch.equal(b["other_text_mask"][half], b["mask"][o] & ~dropped[:, None])
        assert torch.equal(b["positive_other"][half], dropped | same)
        assert not b["unused_other"][half].any()  # every sample is labelled
    # the loss is the mean of the two one-negative losses whose negatives are the next sample's and the one after
    first = {k: v[:8] if k.startswith(("other", "positive_other", "unused_other")) else v for k, v in b.items()}
    second = {k: v[8:] if k.startswith(("other", "positive_other", "unused_other")) else v for k, v in b.items()}
    l1, l2 = one.loss(one.model, first)[0].item(), one.loss(one.model, second)[0].item()
    assert l1 != pytest.approx(l2, rel=1e-4)  # two different negatives ...
    loss, parts = two.loss(two.model, b)
    assert loss.item() == pytest.approx((l1 + l2) / 2, rel=1e-4)  # ... each weighted alike
    with torch.no_grad():  # the margin: own caption over each negative one, per position, over every negative row
        own, other = two._both_logp(two.model, b)
        ref, other_ref = two._both_logp(two.reference, b)
        negative = ~b["positive_other"]
        margin = ((own - ref).repeat(2) - (other - other_ref))[negative].mean() / positions
    assert negative.any() and parts["margin_per_position"].item() == pytest.approx(margin.item(), rel=1e-4)


def test_an_unfinished_training_run_is_not_overwritten(ar_workspace, tmp_path):
    from artgen.training.trainer import STATE_DIR, staging_dir

    ws = _copy(ar_workspace, tmp_path / "ws")
    pending = staging_dir(ws.checkpoint("tiny-ar")) / STATE_DIR
    pending.mkdir(parents=True)
    (pending / "config.json").write_text("{}")
    with pytest.raises(ArtgenError, match="--resume"):
        align_predictor(ws, "tiny", AlignmentConfig(**QUICK), device="cpu", show_progress=False)
    assert (pending / "config.json").exists()


def test_the_align_commands_defaults_are_the_configs():
    """`artgen train align` repeats AlignmentConfig's defaults (the CLI module imports no torch): they must agree."""
    from dataclasses import fields

    import typer.main

    from artgen.app.cli import app
    from artgen.training.alignment import AlignmentConfig

    command = typer.main.get_command(app).commands["train"].commands["align"]
    defaults = {p.name: p.default for p in command.params}
    config = {f.name: f.default for f in fields(AlignmentConfig)}
    shared = {"steps", "lr", "beta", "lam", "guidance", "negatives", "negative_captions"}
    assert shared <= defaults.keys() and {k: defaults[k] for k in shared} == {k: config[k] for k in shared}


def test_an_interrupted_alignment_continues_exactly(ar_workspace, tmp_path, monkeypatch):
    """Killed after a checkpoint, `--resume` (the demo does it by itself) ends with the weights of an
    alignment never interrupted; without it the waiting alignment is named, with the fix."""
    from safetensors.torch import load_file

    import artgen.training.alignment as alignment

    monkeypatch.setattr(alignment, "ALIGN_CHECKPOINT_EVERY", 1)
    whole = _copy(ar_workspace, tmp_path / "whole")
    align_predictor(whole, "tiny", AlignmentConfig(**QUICK), device="cpu", show_progress=False)

    ws = _copy(ar_workspace, tmp_path / "ws")
    real_batch = alignment.AlignmentTask.batch

    def killed_at_step_2(self, step, generator, batch_size):
        if step == 2:
            raise KeyboardInterrupt
        return real_batch(self, step, generator, batch_size)

    monkeypatch.setattr(alignment.AlignmentTask, "batch", killed_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        align_predictor(ws, "tiny", AlignmentConfig(**QUICK), device="cpu", show_progress=False)
    monkeypatch.setattr(alignment.AlignmentTask, "batch", real_batch)
    with pytest.raises(ArtgenError, match="unfinished alignment .* --resume"):
        align_predictor(ws, "tiny", AlignmentConfig(**QUICK), device="cpu", show_progress=False)
    with pytest.raises(ArtgenError, match="different model/task config"):  # another lambda: not this alignment
        align_predictor(ws, "tiny", AlignmentConfig(**QUICK, lam=10.0), device="cpu", show_progress=False, resume=True)
    with pytest.raises(ArtgenError, match="is an alignment: continue it with `artgen train align"):
        train_predictor(ws, "tiny", preset=TINY_AR, annotations="gt", device="cpu", show_progress=False, generator="ar",
                        resume=True)
    # `artgen train --preset P --resume` where P ends with this alignment continues it, from its step 2
    steps = []

    def recorded(self, step, generator, batch_size):
        steps.append(step)
        return real_batch(self, step, generator, batch_size)

    monkeypatch.setattr(alignment.AlignmentTask, "batch", recorded)
    train_predictor(ws, "tiny", preset=replace(TINY_AR, alignment=dict(QUICK)), annotations="gt", device="cpu",
                    show_progress=False, generator="ar", resume=True)
    assert steps == [2]
    a = load_file(str(whole.checkpoint("tiny-ar") / "model.safetensors"))
    b = load_file(str(ws.checkpoint("tiny-ar") / "model.safetensors"))
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert json.loads((ws.checkpoint("tiny-ar") / "config.json").read_text())["summary"]["alignment"]["steps"] == 3
