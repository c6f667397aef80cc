"""`artgen demo`: its list of stages and what a failing stage leaves (fast), then end to end on
a tiny corpus (slow: every stage really runs) and again to check that finished stages are skipped."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import assert_one_line_error
from PIL import Image

from artgen.app import demo as demo_module
from artgen.app.cli import main
from artgen.app.demo import Demo, DemoConfig, Stage, run_demo
from artgen.errors import ArtgenError
from artgen.workspace import Workspace

TINY_DEMO = DemoConfig(
    corpus_count=160, image_size=32, vqvae_steps=20, encoder_steps=20, bench_captions=16, bench_latency_runs=3,
    encoder_overrides=dict(predictor=dict(width=32, layers=1, heads=2, mlp_ratio=2), encoder=dict(width=32, layers=1, heads=2)),
)

PIPELINE = ["corpus", "annotate (heuristic)", "VQ-VAE (quick)", "{model} encoder + generator (quick)", "sample grid",
            "export int8 bundle", "bench --quick", "generate via torch-free runtime",
            "the shipped model beside the one just trained"]


def test_the_stages_follow_the_pipeline_and_touch_nothing_until_run(tmp_path):
    ws = Workspace(tmp_path / "ws")
    for generator, model in (("masked", "tiny"), ("ar", "tiny-ar")):
        demo = Demo(ws, DemoConfig(generator=generator))
        assert [s.name for s in demo.stages] == [n.format(model=model) for n in PIPELINE]
        artefacts = {s.name: s.artefact for s in demo.stages}
        assert artefacts[f"{model} encoder + generator (quick)"] == ws.checkpoint(model)
        assert artefacts["export int8 bundle"] == ws.bundles / f"{model}-int8"
    assert demo.ctx.samples.name == "samples-tiny-ar.png"  # a second generator keeps the first one's pictures
    release = Demo(ws, DemoConfig(vqvae_preset="default", decoder_preset="default", encoder_preset="default"))
    names = [s.name for s in release.stages]  # release-model's pipeline: the adversarial decoder after the VQ-VAE
    assert names[names.index("VQ-VAE (default)") + 1] == "adversarial decoder (default)"
    long = Demo(ws, DemoConfig(vqvae_preset="default", encoder_preset="long", generator="ar"))
    assert "tiny-ar encoder + generator (long)" in [s.name for s in long.stages]
    best_of = [s.name for s in Demo(ws, DemoConfig(generator="ar", candidates=2)).stages]  # the scorer before the export
    assert best_of.index("caption picker (best of candidates)") == best_of.index("tiny-ar encoder + generator (quick)") + 1
    assert "caption picker (best of candidates)" not in [s.name for s in long.stages]
    for bad in (dict(candidates=2), dict(generator="ar", candidates=0), dict(generator="ar", candidates=9)):
        with pytest.raises(ArtgenError, match="candidates"):
            DemoConfig(**bad)
    assert not ws.root.exists()


def test_a_model_of_a_longer_preset_serves_a_shorter_one_and_not_the_reverse(tmp_path):
    metrics = tmp_path / "metrics.json"
    for got, asked, done in (("long", "default", True), ("default", "long", False), ("default", "quick", True),
                             ("custom", "quick", False)):
        metrics.write_text(json.dumps({"preset": got}))
        assert demo_module.trained_with(metrics, asked) is done, (got, asked)


def test_a_preset_trained_for_fewer_steps_is_not_that_preset(tmp_path):
    # `artgen train --preset default --steps 300` records "default": the demo and release-model must not ship it as such
    from artgen.app.demo import DemoContext, tiny_done

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"preset": "default", "steps": 300}))
    assert demo_module.trained_with(metrics, "quick", 300) and not demo_module.trained_with(metrics, "default", 6000)
    metrics.write_text(json.dumps({"preset": "default"}))  # older metrics record no steps: the name decides
    assert demo_module.trained_with(metrics, "default", 6000)
    ws = Workspace(tmp_path / "ws")
    ctx = DemoContext(ws, DemoConfig(vqvae_preset="default", encoder_preset="default", generator="ar"))
    ctx.tiny.mkdir(parents=True)
    (ctx.tiny / "metrics.json").write_text(json.dumps({"preset": "default", "steps": 300}))
    assert not tiny_done(ctx)  # refused on its steps, before the checkpoint is even loaded


def test_samples_decoded_with_a_deleted_decoder_are_drawn_again(tmp_path):
    import os
    import time

    ctx = Demo(Workspace(tmp_path / "ws"), DemoConfig(generator="ar")).ctx
    for path in (ctx.tiny / "model.safetensors", ctx.decoder, ctx.samples):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    past = time.time() - 100
    for path, age in ((ctx.tiny / "model.safetensors", 0), (ctx.decoder, 1), (ctx.vqvae, 1), (ctx.samples, 2)):
        os.utime(path, (past + age, past + age))
    assert demo_module.samples_done(ctx)
    ctx.decoder.unlink()  # the pictures were decoded by a decoder that is gone
    assert not demo_module.samples_done(ctx)
    os.utime(ctx.samples, None)  # drawn again, by the plain decoder
    assert demo_module.samples_done(ctx)


def test_a_failing_stage_stops_the_demo_in_one_line_and_keeps_what_finished(tmp_path, monkeypatch, capsys):
    ws = Workspace(tmp_path / "ws")
    first, later = ws.root / "first.txt", []

    def make_first(ctx):
        first.parent.mkdir(parents=True, exist_ok=True)
        first.write_text("done")

    def broken(ctx):
        raise ArtgenError("the second stage broke: fix its input")

    stages = [Stage("first", first, lambda ctx: first.exists(), make_first, lambda ctx: "one file"),
              Stage("second", ws.root / "second", lambda ctx: False, broken, lambda ctx: ""),
              Stage("third", ws.root / "third", lambda ctx: False, lambda ctx: later.append("third"), lambda ctx: "")]
    monkeypatch.setattr(demo_module, "demo_stages", lambda ctx: stages)
    rc = main(["--workdir", str(ws.root), "demo"])
    progress, _, error = capsys.readouterr().err.strip().rpartition("\n")  # stage banners go to stderr, the error last
    assert_one_line_error(SimpleNamespace(returncode=rc, stderr=error), "the second stage broke")
    assert "demo: second" in progress and "third" not in progress and "error" not in progress
    assert first.read_text() == "done" and later == []

    demo = Demo(ws, DemoConfig())  # a rerun skips the finished stage and stops at the same one
    with pytest.raises(ArtgenError, match="second stage broke"):
        demo.run()
    assert [(r.stage, r.status, r.headline) for r in demo.results] == [("first", "skipped", "one file")]


@pytest.mark.slow
def test_demo_runs_every_stage_then_skips_them(tmp_path):
    ws = Workspace(tmp_path / "ws")
    first = run_demo(ws, TINY_DEMO)
    assert [r.status for r in first] == ["ran"] * 9
    assert (ws.data / "dataset_dict.json").exists()
    assert sum(1 for _ in (ws.annotations / "heuristic.jsonl").open()) == 160
    assert (ws.checkpoint("vqvae") / "model.safetensors").exists()
    metrics = json.loads((ws.checkpoint("tiny") / "metrics.json").read_text())
    assert metrics["weights"] == "trained from scratch" and "token_accuracy" in metrics
    assert Image.open(ws.reports / "demo" / "samples.png").size[0] > 100
    report = json.loads((ws.reports / "bench" / "report.json").read_text())
    assert any(r.get("name") == "tiny" and r.get("fid") is not None for r in report["rows"])
    bundle = json.loads((ws.bundles / "tiny-int8" / "bundle.json").read_text())
    assert bundle["precision"] == "int8"
    assert report["encoders"]["tiny"]["onnx"]["int8"]["bundle"] == str(ws.bundles / "tiny-int8")  # timed, not re-exported
    runtime = np.asarray(Image.open(ws.reports / "demo" / "runtime.png"))
    assert runtime.ndim == 3 and runtime.std() > 0
    beside = np.asarray(Image.open(ws.reports / "demo" / "shipped_vs_quick.png"))  # the shipped model, then this one
    assert beside.shape[0] > 8 * 64 and beside.std() > 0

    second = run_demo(ws, TINY_DEMO)
    assert [r.status for r in second] == ["skipped"] * 9
    assert [r.headline for r in second] == [r.headline for r in first]


def test_a_model_aligned_with_other_settings_than_the_presets_is_not_that_preset(tmp_path):
    # the long preset ends with an alignment: a model aligned otherwise (fewer steps, `artgen train align --steps`) is
    # not what the preset makes, and an unaligned one is aligned, not shipped
    from dataclasses import asdict

    from artgen.app.demo import DemoContext, _alignment, tiny_done
    from artgen.training.alignment import AlignmentConfig
    from artgen.training.predictor import AR_PRESETS

    preset = AR_PRESETS["long"]["tiny"]
    ctx = DemoContext(Workspace(tmp_path / "ws"), DemoConfig(vqvae_preset="default", encoder_preset="long", generator="ar"))
    ctx.tiny.mkdir(parents=True)
    metrics = {"preset": "long", "steps": preset.train["steps"]}
    (ctx.tiny / "metrics.json").write_text(json.dumps(metrics))
    assert _alignment(ctx, preset) is None and not tiny_done(ctx)
    wanted = asdict(AlignmentConfig(**preset.alignment))
    (ctx.tiny / "metrics.json").write_text(json.dumps({**metrics, "alignment": {**wanted, "seconds": 1.0}}))
    assert _alignment(ctx, preset) is True
    (ctx.tiny / "metrics.json").write_text(json.dumps({**metrics, "alignment": {**wanted, "steps": wanted["steps"] // 2}}))
    assert _alignment(ctx, preset) is False


def test_the_demo_aligns_an_unaligned_model_and_trains_one_aligned_otherwise_again(tmp_path, monkeypatch):
    from dataclasses import asdict

    import artgen.generate
    import artgen.training.alignment
    import artgen.training.predictor
    from artgen.app.demo import DemoContext, tiny_done, train_tiny_model
    from artgen.training.alignment import AlignmentConfig
    from artgen.training.predictor import AR_PRESETS

    calls = []
    monkeypatch.setattr(artgen.generate, "load_generator", lambda ws, model: None)  # a model that loads
    monkeypatch.setattr(artgen.training.alignment, "align_predictor", lambda *a, **k: calls.append("align"))
    monkeypatch.setattr(artgen.training.predictor, "train_predictor", lambda *a, **k: calls.append("train"))
    preset = AR_PRESETS["long"]["tiny"]
    ctx = DemoContext(Workspace(tmp_path / "ws"), DemoConfig(vqvae_preset="default", encoder_preset="long", generator="ar"))
    ctx.tiny.mkdir(parents=True)
    metrics = {"preset": "long", "steps": preset.train["steps"]}
    wanted = asdict(AlignmentConfig(**preset.alignment))
    for alignment, done, stage in ((None, False, "align"), (wanted, True, None), ({**wanted, "steps": 1}, False, "train")):
        (ctx.tiny / "metrics.json").write_text(json.dumps({**metrics, **({"alignment": alignment} if alignment else {})}))
        assert tiny_done(ctx) is done, alignment
        if stage:
            calls.clear()
            train_tiny_model(ctx)
            assert calls == [stage], alignment


def test_the_demo_continues_an_interrupted_training_run_of_its_preset(tmp_path, monkeypatch):
    """A killed demo or release leaves `.tiny-ar.partial/train_state`: the next run continues it
    (hours of the long preset are not thrown away) unless it was another length's or the trainer
    refuses it before any step."""
    import artgen.training.predictor
    from artgen.app.demo import DemoContext, train_tiny_model
    from artgen.training.predictor import AR_PRESETS
    from artgen.training.trainer import STATE_DIR, ResumeRefused, staging_dir

    calls, refuse = [], []

    def fake_train(*a, resume=False, **k):
        calls.append(resume)
        if resume and refuse:
            raise ResumeRefused("the checkpoint at X was made with a different model/task config")

    monkeypatch.setattr(artgen.training.predictor, "train_predictor", fake_train)
    steps = AR_PRESETS["default"]["tiny"].train["steps"]
    ctx = DemoContext(Workspace(tmp_path / "ws"), DemoConfig(vqvae_preset="default", encoder_preset="default", generator="ar"))
    state = staging_dir(ctx.tiny) / STATE_DIR
    for saved_steps, refused, expected in ((None, False, [False]), (steps, False, [True]), (steps, True, [True, False]),
                                           (steps // 2, False, [False])):
        if saved_steps is not None:
            state.mkdir(parents=True, exist_ok=True)
            (state / "config.json").write_text(json.dumps({"step": 500, "train": {"steps": saved_steps}, "task": {}}))
        calls.clear()
        refuse[:] = [True] if refused else []
        train_tiny_model(ctx)
        assert calls == expected, (saved_steps, refused)


@pytest.mark.parametrize("stage", ["vqvae", "decoder"])
def test_the_demo_continues_an_interrupted_vqvae_or_decoder_run(tmp_path, monkeypatch, stage):
    import artgen.training.decoder
    import artgen.training.vqvae
    from artgen.app.demo import DemoContext, train_decoder_model, train_vqvae_model
    from artgen.training.trainer import STATE_DIR, staging_dir

    module = artgen.training.vqvae if stage == "vqvae" else artgen.training.decoder
    calls = []
    monkeypatch.setattr(module, f"train_{stage}", lambda *a, resume=False, **k: calls.append(resume))
    ctx = DemoContext(Workspace(tmp_path / "ws"), DemoConfig(vqvae_preset="default", decoder_preset="default"))
    steps = module.PRESETS["default"].train["steps"]
    state = staging_dir(ctx.ws.checkpoint(stage)) / STATE_DIR
    state.mkdir(parents=True)
    (state / "config.json").write_text(json.dumps({"step": 100, "train": {"steps": steps}, "task": {}}))
    (train_vqvae_model if stage == "vqvae" else train_decoder_model)(ctx)
    assert calls == [True]


def test_the_demo_continues_only_a_staged_run_of_the_stages_kind_and_length(tmp_path, monkeypatch):
    """The tiny stage never continues a staged alignment as a training run, nor the alignment a staged
    training run; a staged alignment it cannot continue is discarded so the new one can start."""
    import artgen.generate
    import artgen.training.alignment
    import artgen.training.predictor
    from artgen.app.demo import DemoContext, train_tiny_model
    from artgen.training.predictor import AR_PRESETS
    from artgen.training.trainer import STATE_DIR, staging_dir

    calls = []
    monkeypatch.setattr(artgen.generate, "load_generator", lambda ws, model: None)  # a model that loads
    monkeypatch.setattr(artgen.training.alignment, "align_predictor", lambda *a, resume=False, **k: calls.append(("align", resume)))
    monkeypatch.setattr(artgen.training.predictor, "train_predictor", lambda *a, resume=False, **k: calls.append(("train", resume)))
    preset = AR_PRESETS["long"]["tiny"]
    align_steps = 2000  # AlignmentConfig's default, the long preset's
    ctx = DemoContext(Workspace(tmp_path / "ws"), DemoConfig(vqvae_preset="default", encoder_preset="long", generator="ar"))
    state = staging_dir(ctx.tiny) / STATE_DIR

    def stage(steps, alignment):
        state.mkdir(parents=True, exist_ok=True)
        task = {"alignment": {"beta": 0.05}} if alignment else {}
        (state / "config.json").write_text(json.dumps({"step": 250, "train": {"steps": steps}, "task": task}))

    ctx.tiny.mkdir(parents=True)
    trained = {"preset": "long", "steps": preset.train["steps"]}
    (ctx.tiny / "metrics.json").write_text(json.dumps(trained))  # trained, not yet aligned: the alignment branch
    for steps, alignment, expected, kept in ((align_steps, True, [("align", True)], True),
                                             (align_steps // 2, True, [("align", False)], False),
                                             (align_steps, False, [("align", False)], True)):
        stage(steps, alignment)
        calls.clear()
        train_tiny_model(ctx)
        assert calls == expected and state.exists() is kept, (steps, alignment)
    (ctx.tiny / "metrics.json").unlink()  # not trained: the training branch
    stage(preset.train["steps"], True)  # an alignment of as many steps as the training run
    calls.clear()
    train_tiny_model(ctx)
    assert calls == [("train", False)]


def test_a_run_interrupted_before_the_corpus_or_annotations_changed_starts_afresh(tmp_path, monkeypatch):
    import os

    import artgen.training.vqvae
    from artgen.app.demo import DemoContext, train_vqvae_model
    from artgen.training.trainer import STATE_DIR, staging_dir

    calls = []
    monkeypatch.setattr(artgen.training.vqvae, "train_vqvae", lambda *a, resume=False, **k: calls.append(resume))
    ctx = DemoContext(Workspace(tmp_path / "ws"), DemoConfig(vqvae_preset="default"))
    state = staging_dir(ctx.vqvae) / STATE_DIR
    state.mkdir(parents=True)
    saved = state / "config.json"
    saved.write_text(json.dumps({"step": 100, "train": {"steps": artgen.training.vqvae.PRESETS["default"].train["steps"]},
                                 "task": {}}))
    ctx.ws.annotations.mkdir(parents=True)
    labels = ctx.ws.annotations / "heuristic.jsonl"
    labels.write_text("{}\n")
    os.utime(labels, (saved.stat().st_mtime - 60,) * 2)  # annotated before the checkpoint: continued
    train_vqvae_model(ctx)
    os.utime(labels, (saved.stat().st_mtime + 60,) * 2)  # annotated since: started afresh
    train_vqvae_model(ctx)
    assert calls == [True, False]


def test_an_unreadable_staged_checkpoint_stops_the_stage_instead_of_deleting_it(tmp_path):
    from artgen.app.demo import DemoContext, train_vqvae_model
    from artgen.training.trainer import STATE_DIR, staging_dir

    ctx = DemoContext(Workspace(tmp_path / "ws"), DemoConfig(vqvae_preset="default"))
    state = staging_dir(ctx.vqvae) / STATE_DIR
    state.mkdir(parents=True)
    (state / "config.json").write_text("{torn")
    with pytest.raises(ArtgenError, match="unreadable checkpoint.*delete"):
        train_vqvae_model(ctx)
    assert (state / "config.json").exists()


def test_a_damaged_staged_checkpoint_stops_the_demo_with_what_to_delete(tmp_path):
    """A staged checkpoint whose config reads but whose weights do not (a kill mid-write): the demo
    names the staging folder to delete, not the trainer's --resume, which it has no flag for."""
    import torch

    from artgen.app.demo import continue_or_start
    from artgen.training.trainer import STATE_DIR, load_checkpoint, staging_dir

    ws = Workspace(tmp_path / "ws")
    final = ws.checkpoint("tiny")
    state = staging_dir(final) / STATE_DIR
    state.mkdir(parents=True)
    (state / "config.json").write_text(json.dumps({"step": 250, "train": {"steps": 1000}, "task": {}}))
    (state / "model.safetensors").write_bytes(b"torn")
    model = torch.nn.Linear(2, 2)

    def train_stage(resume: bool) -> None:
        assert resume
        load_checkpoint(state, model, torch.optim.AdamW(model.parameters()), "cpu")

    with pytest.raises(ArtgenError, match=r"damaged checkpoint .*delete .*\.tiny\.partial to train that stage") as e:
        continue_or_start(ws, final, 1000, train_stage)
    assert "--resume" not in str(e.value) and (state / "model.safetensors").exists()
