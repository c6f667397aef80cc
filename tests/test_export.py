"""Export every encoder (small configs) to an ONNX bundle, check parity with PyTorch, run
the bundle's own runtime in a process where torch cannot be imported, and the error paths."""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import ROOT, copy_workspace, run_cli

from artgen.training.predictor import PredictorPreset, train_predictor

# clip and distilbert at one layer of width 32, trained beside the shared tiny model
SMALL_ENCODERS = {
    "clip": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
    "distilbert": dict(dim=32, hidden_dim=64, n_layers=1, n_heads=2),
}


@pytest.fixture(scope="module")
def ws(trained_workspace, tmp_path_factory):
    """A copy of the session's trained workspace (the tiny model) with a few-step clip and
    distilbert model beside it: the tests export bundles into it."""
    ws = copy_workspace(trained_workspace, tmp_path_factory.mktemp("export") / "ws")
    for name, overrides in SMALL_ENCODERS.items():
        preset = PredictorPreset(predictor=dict(width=32, layers=1, heads=2, mlp_ratio=2), encoder=overrides,
                                 train=dict(steps=40, batch_size=8, lr=2e-3, warmup_steps=2, checkpoint_every=40, log_every=5))
        train_predictor(ws, name, preset=preset, annotations="gt", device="cpu", show_progress=False)
    return ws


@pytest.mark.parametrize("encoder", ["tiny", *SMALL_ENCODERS])
def test_export_and_parity_for_every_encoder(ws, encoder):
    from artgen.generate import load_generator
    from export.bundle import ExportConfig, export_bundle
    from export.parity import check_parity

    gen = load_generator(ws, encoder)
    fp32 = export_bundle(gen, ws.bundles / encoder)
    report = check_parity(gen, ws.bundles / encoder, n_prompts=64)
    assert report.logits_max_abs_diff <= 1e-4
    assert report.code_agreement >= 0.99 and report.passed
    assert report.sampled_agreement_1_step >= 0.99 and report.sampled_agreement_8_steps >= 0.99

    int8 = export_bundle(gen, ws.bundles / f"{encoder}-int8", ExportConfig(int8=True))
    report8 = check_parity(gen, ws.bundles / f"{encoder}-int8", n_prompts=64)
    assert report8.precision == "int8" and report8.code_agreement >= 0.95 and report8.passed
    assert report8.logits_max_abs_diff > 0  # it really is a different (quantised) graph
    assert int8["int8_graphs"] == ["text_encoder", "predictor"]
    assert fp32["size_bytes"] > 0 and int8["size_bytes"] > 0

    for graph in ("text_encoder", "predictor", "decoder"):
        model = onnx.load(str(ws.bundles / encoder / f"{graph}.onnx"))
        onnx.checker.check_model(model, full_check=True)
        props = {p.key: p.value for p in model.metadata_props}
        assert model.producer_name == "artgen"
        assert props["vocabulary_hash"] and props["encoder"] == encoder
        assert props["weights"] == "trained from scratch"


def test_bundle_json_is_a_complete_contract(ws):
    meta = json.loads((ws.bundles / "tiny" / "bundle.json").read_text())
    for key in ("format", "codebook_size", "grid", "image_size", "mask_id", "sampling", "tokenizer", "graphs"):
        assert key in meta
    assert meta["mask_id"] == meta["codebook_size"]
    names = {s["name"] for g in meta["graphs"].values() for s in g["inputs"] + g["outputs"]}
    assert {"input_ids", "attention_mask", "states", "codes", "logits", "images"} <= names
    for key in ("steps", "guidance", "temperature", "guided_share", "order_stream", "schedule", "noise"):
        assert key in meta["sampling"]
    assert (ws.bundles / "tiny" / meta["tokenizer"]["file"]).is_file()
    assert "mask_id" in (ws.bundles / "tiny" / "README.md").read_text()


TORCH_FREE = r"""
import sys, json
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name.startswith("artgen") or name == "transformers":
            raise ImportError(f"{name} is not available in this app")
sys.meta_path.insert(0, NoTorch())
sys.path.insert(0, sys.argv[1])        # the bundle folder: its own copy of runtime.py
from runtime import Runtime
import numpy as np
rt = Runtime(sys.argv[1], threads=1)
images = rt.generate(["warm, chaotic, vivid", "cool, calm, minimal"], seed=5, steps=int(sys.argv[3]),
                     guidance=float(sys.argv[4]), temperature=float(sys.argv[5]))
np.save(sys.argv[2], images)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "artgen", "transformers"))))
"""


@pytest.mark.parametrize("encoder, steps, guidance, temperature",
                         [("tiny", 1, 3.0, 1.0), ("tiny", 8, 3.0, 1.0), ("tiny", 5, 1.0, 0.7), ("distilbert", 1, 3.0, 1.0)])
def test_torch_free_runtime_matches_artgen_generate(ws, tmp_path, encoder, steps, guidance, temperature):
    from artgen.generate import load_generator
    from export.bundle import export_bundle

    bundle = ws.bundles / f"{encoder}-runtime"
    export_bundle(load_generator(ws, encoder), bundle)
    out = tmp_path / "images.npy"
    result = subprocess.run([sys.executable, "-c", TORCH_FREE, str(bundle), str(out), str(steps), str(guidance),
                             str(temperature)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []  # nothing of torch was loaded
    runtime_images = np.load(out)
    torch_images = load_generator(ws, encoder).generate(["warm, chaotic, vivid", "cool, calm, minimal"], seed=5, steps=steps,
                                                        guidance=guidance, temperature=temperature)
    assert runtime_images.shape == torch_images.shape and runtime_images.dtype == np.uint8
    assert np.abs(runtime_images.astype(int) - torch_images).max() <= 1


def test_runtime_command_line_and_example_app(ws, tmp_path):
    from artgen.generate import load_generator
    from export.bundle import export_bundle

    bundle = ws.bundles / "tiny-cli"
    export_bundle(load_generator(ws, "tiny"), bundle)
    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-m", "export.runtime", str(bundle), "warm, vivid", "-o", str(out), "-n", "2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 100
    app_out = tmp_path / "app.png"
    r = subprocess.run([sys.executable, "examples/app_embed.py", str(bundle), "calm, cool", str(app_out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert app_out.stat().st_size > 100


def _runtime_error(bundle, prompt="warm, vivid", *extra):
    r = subprocess.run([sys.executable, "-m", "export.runtime", str(bundle), prompt, "-o", "/dev/null", *extra],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_bad_bundles_and_prompts_are_one_line(ws, tmp_path):
    from artgen.generate import load_generator
    from export.bundle import export_bundle

    good = ws.bundles / "tiny-errors"
    export_bundle(load_generator(ws, "tiny"), good)
    assert "does not exist" in _runtime_error(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "not an artgen bundle" in _runtime_error(tmp_path / "empty")
    assert "too long" in _runtime_error(good, "warm " * 30) or "limit" in _runtime_error(good, "warm " * 30)
    assert "empty" in _runtime_error(good, "   ")
    assert "seeds must be >= 0" in _runtime_error(good, "warm", "--seed", "-2")

    incomplete = tmp_path / "incomplete"
    shutil.copytree(good, incomplete)
    (incomplete / "predictor.onnx").unlink()
    assert "predictor.onnx is missing" in _runtime_error(incomplete)

    damaged = tmp_path / "damaged"
    shutil.copytree(good, damaged)
    (damaged / "decoder.onnx").write_bytes(b"not a model")
    assert "decoder.onnx" in _runtime_error(damaged) and "export the bundle again" in _runtime_error(damaged)

    old = tmp_path / "old"
    shutil.copytree(good, old)
    meta = json.loads((old / "bundle.json").read_text())
    meta["format"] = 99
    (old / "bundle.json").write_text(json.dumps(meta))
    assert "bundle format 99" in _runtime_error(old)


def test_cli_export_check_and_errors(ws, tmp_path):
    r = run_cli("export", "--encoder", "tiny", "--int8", "--check", "--out", str(tmp_path / "b"), workdir=ws.root)
    assert r.returncode == 0, r.stderr
    parity = json.loads((tmp_path / "b" / "parity.json").read_text())
    assert parity["precision"] == "int8" and parity["passed"]

    empty = tmp_path / "empty-ws"
    r = run_cli("export", "--encoder", "tiny", workdir=empty)
    assert r.returncode == 2 and "artgen train --encoder tiny" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("export", "--encoder", "gpt", workdir=ws.root)
    assert r.returncode == 2 and "unknown encoder" in r.stderr


def test_odd_prompts_on_the_shipped_bundle(tmp_path):
    """Prompts an app passes by mistake: one BundleError line, or the image a list would give."""
    from artgen.workspace import SHIPPED_MODEL
    from export.runtime import BundleError, Runtime

    rt = Runtime(SHIPPED_MODEL, threads=1)
    for prompt, needle in (("warm \ud83d", "lone surrogate '\\ud83d' at character 5"), ("!!! ,,, ...", "holds no words"),
                           ("🔥 🔥", "holds no words")):
        with pytest.raises(BundleError, match=needle.replace("\\", "\\\\")):
            rt.sample_codes([prompt])
    # one string for sample_codes is one prompt, as generate takes it (not "a string or a list ... (got str)")
    np.testing.assert_array_equal(rt.sample_codes("warm, vivid", seed=3), rt.sample_codes(["warm, vivid"], seed=3))
    # a byte that is not UTF-8 in argv reaches Python as a lone surrogate: one line, no sentencepiece traceback
    r = subprocess.run([sys.executable, "-m", "export.runtime", str(SHIPPED_MODEL), b"warm \xed", "-o", str(tmp_path / "x.png")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not valid Unicode" in r.stderr, r.stderr


def test_bundle_folder_mistakes_name_the_fix(tmp_path):
    from artgen.workspace import SHIPPED_MODEL
    from export.runtime import READABLE_FORMATS, BundleError, Runtime

    with pytest.raises(BundleError, match=r"bundle\.json is a file, not a bundle folder: .*holds bundle\.json \(.*tiny\)"):
        Runtime(SHIPPED_MODEL / "bundle.json")
    newer = tmp_path / "newer"
    newer.mkdir()
    newest = max(READABLE_FORMATS)
    (newer / "bundle.json").write_text(json.dumps({**json.loads((SHIPPED_MODEL / "bundle.json").read_text()), "format": newest + 1}))
    with pytest.raises(BundleError, match=f"format {newest + 1}, newer than this runtime reads .*runtime.py inside the bundle"):
        Runtime(newer)
    (newer / "bundle.json").write_text("[" * 100_000 + "]" * 100_000)  # nested past Python's recursion limit
    with pytest.raises(BundleError, match="is not valid JSON"):
        Runtime(newer)


def test_the_runtime_command_line_takes_the_candidates_setting(tmp_path):
    """`python -m export.runtime B P --candidates N` draws as `Runtime.generate(..., candidates=N)`."""
    from artgen.workspace import SHIPPED_MODEL
    from export.runtime import Runtime, save_png

    out, ref = tmp_path / "one.png", tmp_path / "ref.png"
    r = subprocess.run([sys.executable, "-m", "export.runtime", str(SHIPPED_MODEL), "warm, wavy", "--candidates", "1", "-o",
                        str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    save_png(Runtime(SHIPPED_MODEL).generate("warm, wavy", candidates=1), ref, scale=4)  # the command line's default scale
    assert out.read_bytes() == ref.read_bytes()
    assert "candidates" in _runtime_error(SHIPPED_MODEL, "warm", "--candidates", "99")
