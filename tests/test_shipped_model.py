"""The tiny int8 model shipped in artgen/assets/tiny: it loads with no bundle argument,
generates deterministic images without torch, and `artgen generate` uses it before any
training, saying so."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT, run_cli
from PIL import Image

from artgen.workspace import SHIPPED_MODEL


def test_shipped_bundle_is_complete_small_and_benchmarked():
    meta = json.loads((SHIPPED_MODEL / "bundle.json").read_text())
    assert meta["encoder"] == "tiny" and meta["precision"] == "int8"
    size = sum(p.stat().st_size for p in SHIPPED_MODEL.rglob("*") if p.is_file())
    assert size <= 10e6  # the 10 MB, decimal like every size artgen reports
    report = json.loads((SHIPPED_MODEL / "bench" / "report.json").read_text())
    model = "tiny-ar" if meta.get("generator") == "ar" else "tiny"  # the row of the generator it holds
    tiny = next(r for r in report["rows"] if r["name"] == model)
    assert tiny["fid"] > 0 and 0 < tiny["codebook_usage"] <= 1
    assert json.loads((SHIPPED_MODEL / "parity.json").read_text())["passed"]
    if meta.get("decoder", "").startswith("adversarial"):  # its decoder's training is documented beside it
        assert json.loads((SHIPPED_MODEL / "vqvae_decoder_metrics.json").read_text())["vqvae_hash"] == meta["vqvae_hash"]


NO_TORCH = r"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(name + " is not available here")
sys.meta_path.insert(0, NoTorch())
import numpy as np
from export.runtime import Runtime
rt = Runtime(threads=1)                      # no bundle argument: the shipped model
a = rt.generate(["warm, chaotic, vivid", "cool, calm"], seed=3)
b = rt.generate(["warm, chaotic, vivid", "cool, calm"], seed=3)
c = rt.generate(["warm, chaotic, vivid", "cool, calm"], seed=4)
assert a.shape == (2, rt.image_size, rt.image_size, 3) and a.dtype == np.uint8
assert (a == b).all() and (a != c).any()
np.save(sys.argv[1], a)
"""


def test_runtime_uses_the_shipped_model_deterministically_without_torch(tmp_path):
    out = tmp_path / "a.npy"
    r = subprocess.run([sys.executable, "-c", NO_TORCH, str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    images = np.load(out)
    assert images.std() > 5  # pictures, not a flat colour


def test_generate_before_training_uses_the_shipped_model(tmp_path):
    out = tmp_path / "x.png"
    r = run_cli("generate", "warm, chaotic, vivid", "-o", str(out), "-n", "2", workdir=tmp_path / "fresh")
    assert r.returncode == 0, r.stderr
    assert "shipped" in (r.stdout + r.stderr)
    first = out.read_bytes()
    r = run_cli("generate", "warm, chaotic, vivid", "-o", str(out), "-n", "2", workdir=tmp_path / "fresh")
    assert out.read_bytes() == first
    assert Image.open(out).size[0] > 64


def test_spin_waiting_thread_pools_change_speed_not_pictures():
    from export.runtime import BundleError, Runtime

    spin = "session.intra_op.allow_spinning"
    runtimes = {how: Runtime(threads=2, spinning=how) for how in Runtime.SPINNING}
    steps = None if runtimes["none"].generator == "ar" else 2
    pictures = {how: rt.generate(["warm, chaotic, vivid", "icy, tranquil"], seed=5, steps=steps) for how, rt in runtimes.items()}
    assert all((p == pictures["none"]).all() for p in pictures.values())
    spins = {how: {name: s.get_session_options().get_session_config_entry(spin) for name, s in rt.sessions.items()}
             for how, rt in runtimes.items()}
    step_graph = "ar_step" if runtimes["none"].generator == "ar" else "predictor"  # the graph run at every step
    assert spins["predictor"] == {name: "1" if name == step_graph else "0" for name in runtimes["none"].sessions}
    assert set(spins["all"].values()) == {"1"} and set(spins["none"].values()) == {"0"}
    assert spins["none"] == {n: s.get_session_options().get_session_config_entry(spin)  # the default
                             for n, s in Runtime(threads=2).sessions.items()}
    with pytest.raises(BundleError, match="spinning must be one of"):
        Runtime(threads=2, spinning="sometimes")


def test_the_shipped_bundle_carries_the_current_runtime():
    # The bundle runs by itself, so it holds its own copy of export/runtime.py; a change to
    # the runtime must reach that copy (re-export, or copy it) before it ships.
    assert (SHIPPED_MODEL / "runtime.py").read_bytes() == (ROOT / "export" / "runtime.py").read_bytes()


def test_ort_latency_runs_in_a_torch_free_process_and_reports_its_samplers():
    r = subprocess.run([sys.executable, "-m", "bench.ort_latency", str(SHIPPED_MODEL), "--runs", "2", "--warmup", "1",
                        "--threads", "1", "--refine-steps", "3"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["torch_loaded"] is False
    for key in (("autoregressive",) if out["generator"] == "ar" else ("one_shot", "refine_3")):
        assert out[key]["runs"] == 2 and out[key]["threads"] == 1 and out[key]["p50_ms"] > 0
    bad = subprocess.run([sys.executable, "-m", "bench.ort_latency", str(ROOT / "tests")], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "bundle.json" in bad.stderr


def test_latency_in_rounds_runs_one_fresh_process_per_round():
    from bench.ort_latency import time_in_fresh_process

    out = time_in_fresh_process(SHIPPED_MODEL, threads=1, runs=2, warmup=1, rounds=2)
    key = "autoregressive" if out["generator"] == "ar" else "one_shot"
    assert out[key]["rounds"] == 2 and len(out[key]["p50_ms_per_round"]) == 2
    assert out[key]["p50_ms"] == pytest.approx(sum(out[key]["p50_ms_per_round"]) / 2)  # the median of two
    assert out["torch_loaded"] is False


def test_each_prompt_of_a_list_gets_the_picture_it_gets_alone():
    """The shipped bundle's text graphs are int8, quantised with one scale per batch: a list of
    prompts of different lengths is drawn one distinct prompt at a time, so that each picture is
    the one its prompt and seed give alone (merge=True draws them as one batch, faster)."""
    from export.runtime import Runtime, batch_invariant

    rt = Runtime(threads=1)
    assert not batch_invariant(rt.meta)
    prompts = ["wavy", "dark, dense, geometric, calm", "wavy"]
    together = rt.generate(prompts, seed=4)
    alone = np.concatenate([rt.generate([p], seed=4 + i) for i, p in enumerate(prompts)])
    assert (together == alone).all()
    codes = rt.sample_codes(prompts, seed=4)
    assert (rt.decode(codes) == alone).all()
    calls = []
    original = rt._sample_ar
    rt._sample_ar = lambda states, *a, **k: calls.append(len(states)) or original(states, *a, **k)
    try:
        rt.sample_codes(prompts, seed=4, merge=True, candidates=1)
        rt.sample_codes(prompts, seed=4, candidates=1)
    finally:
        rt._sample_ar = original
    assert calls == [3, 2, 1]  # merged: one batch of 3; alone: "wavy" twice, then the other prompt
