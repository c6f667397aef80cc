"""`artgen demo` end to end on a tiny corpus (slow: every stage really runs), then again to
check that finished stages are skipped."""

import json

import numpy as np
import pytest
from PIL import Image

from artgen.app.demo import DemoConfig, run_demo
from artgen.workspace import Workspace

TINY_DEMO = DemoConfig(
    corpus_count=160, image_size=32, vqvae_steps=20, encoder_steps=20, bench_captions=16, bench_latency_runs=3,
    encoder_overrides=dict(predictor=dict(width=32, layers=1, heads=2, mlp_ratio=2), encoder=dict(width=32, layers=1, heads=2)),
)


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
