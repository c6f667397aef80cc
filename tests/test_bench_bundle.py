"""`artgen bench --bundle DIR`: an exported bundle benchmarked by itself, its quality sets drawn
through the torch-free runtime, what needs the torch model reported as not measured."""

import json
import types

import numpy as np
import pytest
from helpers import SMALL, PixelFeatures, copy_workspace, run_cli

from artgen.errors import ArtgenError
from artgen.workspace import Workspace
from bench.bundle_generator import BundleGenerator
from bench.run import BenchConfig, _bundle_vqvae, _generate_set, run_bench

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(trained_workspace, tmp_path_factory):
    """The session's trained workspace, copied: the bench writes its caches and reports into it."""
    return copy_workspace(trained_workspace, tmp_path_factory.mktemp("bench-bundle") / "ws")


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory):
    """The tiny workspace's model exported as an int8 bundle, as `artgen export --int8` writes it."""
    from artgen.generate import load_generator
    from export.bundle import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny-int8"
    export_bundle(load_generator(trained, "tiny"), out, ExportConfig(int8=True))
    return out


def test_the_bench_generates_what_the_runtime_generates(bundle):
    from export.runtime import Runtime

    gen, rt = BundleGenerator.open(bundle, threads=1), Runtime(bundle, threads=1)
    prompts = ["warm, chaotic, vivid", "cool, calm, minimal", "dark, dramatic, textured"]
    # one merged batch: int8 graphs quantise activations per batch, so the batch's make-up moves a few codes
    cfg = BenchConfig(batch_size=3, seed=5, steps=None, guidance=None, temperature=None, show_progress=False)
    images, codes = _generate_set(gen, prompts, cfg, "generate")
    np.testing.assert_array_equal(codes, rt.sample_codes(prompts, seeds=[5, 6, 7], merge=True))
    np.testing.assert_array_equal(images, rt.generate(prompts, seed=5, merge=True))
    assert gen.sampling["steps"] == rt.meta["sampling"]["steps"] and gen.image_size == 32


def test_a_masked_int8_bundle_draws_each_row_as_it_is_drawn_alone(bundle):
    """Its int8 predictor sees each seed's own codes, one activation scale over the batch: a list
    (even of one prompt) is drawn row by row unless merge=True."""
    from export.runtime import Runtime, exact_unit

    rt = Runtime(bundle, threads=1)
    assert exact_unit(rt.meta) == "row" and "predictor" in rt.meta["int8_graphs"]
    prompts = ["warm, chaotic, vivid", "warm, chaotic, vivid", "cool, calm"]
    alone = np.concatenate([rt.sample_codes([p], seed=5 + i) for i, p in enumerate(prompts)])
    assert np.array_equal(rt.sample_codes(prompts, seed=5), alone)
    assert np.array_equal(rt.generate(prompts, seed=5), rt.decode(alone))
    merged = rt.sample_codes(prompts, seed=5, merge=True)
    assert merged.shape == alone.shape


def test_bundle_bench_reports_quality_through_the_runtime_and_what_it_cannot_measure(trained, bundle, tmp_path,
                                                                                     monkeypatch):
    import artgen.generate

    def no_torch_model(*args, **kwargs):
        raise AssertionError("a bundle's bench must not load the torch model")

    monkeypatch.setattr(artgen.generate, "load_generator", no_torch_model)
    report = run_bench(trained, BenchConfig(**SMALL), out_dir=tmp_path, command="test", feature_net=PixelFeatures(),
                       bundle=bundle)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["bundle"]["path"] == str(bundle) and saved["bundle"]["precision"] == "int8"
    assert saved["bundle"]["sampling"]["steps"] == 8 and saved["meta"]["config"]["steps"] is None
    (row,) = saved["rows"]
    assert row["name"] == "tiny" and row["weights"] == "trained from scratch"
    assert row["fid"] > 0 and 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
    assert sum(row["code_counts"]) == 8 * 8 * 8  # 8 captions, 8x8 grids drawn by the runtime
    assert 0 <= row["style_consistency"] <= 1 and 1 <= row["styles_covered"] <= row["styles_total"]
    assert 0 <= row["attribute_accuracy"] <= 1 and row["test_ce"] is None  # an exported bundle has no train_metrics.json
    onnx = saved["encoders"]["tiny"]["onnx"]["int8"]
    assert onnx["available"] and onnx["torch_loaded"] is False and row["ort_int8_ms_p50"] > 0
    assert row["ort_int8_refine_8_ms_p50"] > 0 and row["bundle_int8_mb"] > 0
    assert "latency_ms_p50" not in row and "interpolation_smoothness" not in row  # torch-only columns
    names = [r["name"] for r in saved["references"]]
    assert any(n.startswith("retrieval") for n in names) and any("ceiling" in n for n in names)  # the bundle's VQ-VAE
    assert not any("unconditional" in n for n in names)
    missing = " ".join(m["what"] for m in saved["not_measured"])
    assert "text dropped" in missing and "PyTorch latency" in missing and "test CE" in missing
    verdicts = {c["target"].split(" (")[0]: c for c in saved["criteria"]}
    assert "ONNX Runtime int8" in verdicts["inference < 100 ms"]["measured"]
    assert verdicts["FID / VQ-VAE reconstruction FID <= 1.5"]["pass"] is not None
    md = (tmp_path / "report.md").read_text()
    assert "## Not measured" in md and "the bundle's own sampler (steps 8" in md and "Bundle bench:" in md
    assert "precision" in md and "style cons." in md and report["criteria"] == saved["criteria"]
    assert (tmp_path / "samples_tiny.png").stat().st_size > 1000
    assert "<h2>Not measured</h2>" in (tmp_path / "report.html").read_text()


def test_reconstructions_need_the_bundles_own_vqvae(trained):
    vqvae, why = _bundle_vqvae(trained, types.SimpleNamespace(meta={"vqvae_hash": "another"}))
    assert vqvae is None and "vqvae_hash differs" in why
    vqvae, why = _bundle_vqvae(Workspace(trained.root / "nowhere"), types.SimpleNamespace(meta={}))
    assert vqvae is None and "no VQ-VAE checkpoint" in why


def test_bad_bundles_are_one_line_errors(trained, bundle, tmp_path):
    with pytest.raises(ArtgenError, match="is not a folder"):
        BundleGenerator.open(tmp_path / "missing")
    with pytest.raises(ArtgenError, match="not an artgen bundle"):
        run_bench(trained, BenchConfig(**SMALL), bundle=tmp_path)
    from artgen.data.corpus import SynthConfig, synthesize

    other = Workspace(tmp_path / "ws16")
    synthesize(other.data, SynthConfig(count=12, size=16, seed=1, workers=1), show_progress=False)
    with pytest.raises(ArtgenError, match="makes 32 px images but the corpus .* is 16 px"):
        run_bench(other, BenchConfig(**SMALL), bundle=bundle)
    for args in (["--bundle", str(tmp_path)], ["--bundle", str(bundle), "--encoders", "tiny"]):
        result = run_cli("bench", *args, workdir=trained.root)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "bundle" in result.stderr and "Traceback" not in result.stderr


def test_the_path_of_bundle_json_names_its_folder():
    """`--bundle DIR/bundle.json` for `--bundle DIR`: named as such, not "export a bundle"."""
    from artgen.workspace import SHIPPED_MODEL

    with pytest.raises(ArtgenError, match=r"bundle\.json is a file, not a bundle folder: .*holds bundle\.json \(.*tiny\)"):
        BundleGenerator.open(SHIPPED_MODEL / "bundle.json")
