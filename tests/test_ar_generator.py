"""The autoregressive generator: causality, KV cache = uncached forward, guidance 1 = the
conditional model, training through the shared loop into checkpoints/<encoder>-ar, generation
(seeded, deterministic) and the CLI."""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import TINY_AR, copy_workspace, run_cli

from artgen.errors import ArtgenError
from artgen.models.ar_predictor import ARConfig, ARPredictor
from artgen.training.predictor import train_predictor
from artgen.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _model(grid=4, seed=0, text_modulation=False, rope=False, above=False):
    torch.manual_seed(seed)
    model = ARPredictor(ARConfig(grid=grid, text_width=24, width=32, layers=2, heads=4, text_modulation=text_modulation,
                                 rope=rope, above=above))
    if text_modulation:  # zero-initialised for training; random here so that the tests read it
        torch.nn.init.normal_(model.modulation[1].weight, std=0.1)
    return model.eval()


def _inputs(B=3, N=16, T=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 512, (B, N), generator=g)
    states = torch.randn(B, T, 24, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 3:] = False  # a shorter prompt
    return codes, states, mask


@pytest.mark.parametrize("rope,above", [(False, False), (True, False), (True, True)])
def test_a_position_does_not_see_later_codes(rope, above):
    model = _model(rope=rope, above=above)
    codes, states, mask = _inputs()
    before = model(codes, states, mask)
    changed = codes.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % 512
    after = model(changed, states, mask)
    # position t reads codes < t: changing codes 9.. leaves positions 0..9 as they were
    assert torch.equal(before[:, :10], after[:, :10])
    assert not torch.allclose(before[:, 10:], after[:, 10:])


@pytest.mark.parametrize("text_modulation,rope,above", [(False, False, False), (True, False, False), (True, True, False),
                                                         (True, True, True)])
def test_kv_cached_steps_equal_the_uncached_forward(text_modulation, rope, above):
    model = _model(text_modulation=text_modulation, rope=rope, above=above)
    codes, states, mask = _inputs()
    full = model(codes, states, mask)  # (B, N, K)
    context = model.context(states, mask)
    assert (context[3] is not None) == text_modulation
    past_k, past_v = model.empty_cache(len(codes))
    token = torch.full((len(codes), 1), model.cfg.start_id)
    steps = []
    for t in range(codes.shape[1]):
        drawn = codes.clone()
        drawn[:, t:] = -1  # only the codes already drawn exist
        neighbours = model.above_codes(drawn, t) if above else None
        logits, past_k, past_v = model.step(token, past_k, past_v, *context, above=neighbours)
        steps.append(logits)
        token = codes[:, t:t + 1]
        assert past_k[0].shape[2] == t + 1  # the cache grows by one position per step
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-5)


def test_above_codes_are_the_three_cells_of_the_row_above():
    model = _model(grid=4, above=True)
    codes = torch.arange(16)[None] + 100  # the code of cell (r, c) is 100 + 4r + c
    start = model.cfg.start_id
    every = model.above_codes(codes)  # (1, 16, 3)
    assert every[0, 0].tolist() == [start] * 3  # the first row has nothing above
    assert every[0, 4].tolist() == [start, 100, 101]  # (1, 0): no cell above-left
    assert every[0, 6].tolist() == [101, 102, 103]  # (1, 2)
    assert every[0, 7].tolist() == [102, 103, start]  # (1, 3): no cell above-right
    assert every[0, 15].tolist() == [110, 111, start]
    assert torch.equal(model.above_codes(codes, 6)[0], every[0, 6])
    with pytest.raises(ValueError, match="above"):
        model.step(torch.full((1, 1), start), *model.empty_cache(1), *model.context(torch.randn(1, 2, 24),
                                                                                  torch.ones(1, 2, dtype=torch.bool)))


def test_rope_attention_scores_depend_on_the_relative_offset_only():
    from artgen.models.ar_predictor import apply_rope, rope_tables

    cfg = ARConfig(grid=8, width=32, heads=1)
    cos, sin, perm = rope_tables(cfg)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 32, generator=g), torch.randn(1, 32, generator=g)

    def score(a, b):  # query at cell a, key at cell b, cells as (row, col)
        i, j = a[0] * 8 + a[1], b[0] * 8 + b[1]
        return (apply_rope(q, cos[i:i + 1], sin[i:i + 1], perm) * apply_rope(k, cos[j:j + 1], sin[j:j + 1], perm)).sum()

    # the same offset (one row up, two columns left) anywhere on the grid gives the same score
    assert torch.allclose(score((3, 4), (2, 2)), score((6, 7), (5, 5)), atol=1e-5)
    assert not torch.allclose(score((3, 4), (2, 2)), score((3, 4), (2, 3)), atol=1e-3)
    assert torch.allclose(apply_rope(q, cos[:1], sin[:1], perm), q)  # cell (0, 0) is not turned
    assert torch.allclose(apply_rope(q, cos[1:2], sin[1:2], perm).norm(), q.norm())  # a rotation: norms kept


@pytest.mark.parametrize("text_modulation", [False, True])
def test_the_text_changes_the_prediction_and_dropping_it_is_the_null_token(text_modulation):
    model = _model(text_modulation=text_modulation)
    codes, states, mask = _inputs()
    dropped = model(codes, states, torch.zeros_like(mask))
    other_states = model(codes, torch.randn_like(states), torch.zeros_like(mask))
    assert torch.allclose(dropped, other_states, atol=1e-6)  # without text, the states are not read
    assert not torch.allclose(model(codes, states, mask), dropped)


@pytest.fixture(scope="module")
def trained_ar(trained_ar_workspace, tmp_path_factory):
    """A copy of the session's tiny AR workspace: these tests add bundles and reports to it."""
    ws, metrics = trained_ar_workspace
    return copy_workspace(ws, tmp_path_factory.mktemp("ar") / "ws"), metrics


def test_input_noise_swaps_a_share_of_the_inputs_for_batch_codes_and_keeps_the_targets():
    """`ARConfig.input_noise`: the model reads about that share of its inputs swapped for codes
    drawn from the batch; the targets it is scored on stay the true codes."""
    from artgen.models.ar_predictor import training_inputs

    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 40, (64, 256), generator=g)   # 40 of 512 codes in use
    kept = codes.clone()
    text_mask = torch.ones(64, 5, dtype=torch.bool)
    clean, predicted, _ = training_inputs(codes, text_mask, ARConfig(), g)
    assert torch.equal(clean, codes) and bool(predicted.all())
    noisy, _, _ = training_inputs(codes, text_mask, ARConfig(input_noise=0.3), g)
    changed = float((noisy != codes).float().mean())
    assert 0.25 < changed < 0.31  # 0.3 of the inputs swapped, 1 in 40 for the same code
    assert int(noisy.max()) < 40   # drawn from the batch's codes, not the whole codebook
    assert torch.equal(codes, kept)  # the targets are untouched
    assert ARConfig(**{k: v for k, v in ARConfig().__dict__.items() if k != "input_noise"}).input_noise == 0.0


def test_ar_training_writes_its_own_checkpoint_with_teacher_forced_metrics(trained_ar):
    ws, metrics = trained_ar
    d = ws.checkpoint("tiny-ar")
    config = json.loads((d / "config.json").read_text())
    assert config["generator"] == "ar" and config["summary"]["model"] == "tiny-ar"
    assert config["summary"]["test_ce_kind"] == "teacher-forced" and metrics["test_ce_kind"] == "teacher-forced"
    assert not ws.checkpoint("tiny").exists()  # the masked model's folder is untouched
    for key in ("ce", "ce_no_text", "token_accuracy", "baseline_ce"):
        assert np.isfinite(metrics[key])
    # a few steps from scratch: near the uniform CE over 512 codes, not yet below the unigram baseline
    assert abs(metrics["ce"] - np.log(512)) < 1.0


def test_the_training_seed_draws_the_generators_initial_weights(trained_ar, tmp_path):
    """At learning rate 0 a run ends with its initial weights: seed 0 twice gives the same
    generator, seed 1 another one (the text encoder's start is the same for both)."""
    from dataclasses import replace

    from safetensors.torch import load_file

    def weights(seed: int, name: str) -> dict:
        root = tmp_path / name
        for d in ("data", "latents"):
            shutil.copytree(trained_ar[0].root / d, root / d)
        shutil.copytree(trained_ar[0].root / "checkpoints" / "vqvae", root / "checkpoints" / "vqvae")
        preset = replace(TINY_AR, train={**TINY_AR.train, "lr": 0.0, "steps": 1, "seed": seed})
        train_predictor(Workspace(root), "tiny", preset=preset, annotations="gt", device="cpu",
                        show_progress=False, generator="ar")
        return load_file(str(root / "checkpoints" / "tiny-ar" / "model.safetensors"))

    a, b, c = weights(0, "a"), weights(0, "b"), weights(1, "c")
    generator = [k for k in a if k.startswith("predictor.")]
    assert generator and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in generator)
    assert all(torch.equal(a[k], c[k]) for k in a if k.startswith("encoder."))


def test_ar_generation_is_seeded_and_guidance_one_is_the_conditional_model(trained_ar):
    from artgen.generate import ARGenerator, load_generator

    ws, _ = trained_ar
    gen = load_generator(ws, "tiny-ar")
    assert isinstance(gen, ARGenerator) and gen.default_steps == 64  # 32 px corpus: 8x8 grid
    prompts = ["warm, chaotic, vivid", "cool, calm"]
    a = gen.sample_codes(prompts, seed=3)
    assert a.shape == (2, 8, 8) and a.dtype == torch.long and int(a.max()) < 512
    assert torch.equal(a, gen.sample_codes(prompts, seed=3))
    assert not torch.equal(a, gen.sample_codes(prompts, seed=4))
    # image i depends on its own seed only, not on the batch it is in
    assert torch.equal(a[1], gen.sample_codes([prompts[1]], seeds=[4])[0])
    # guidance 1 runs the conditional model alone: at temperature 0 that is its greedy decoding
    greedy = gen.sample_codes(prompts[:1], guidance=1.0, temperature=0.0)[0].flatten()
    cond_logits = gen.predictor(greedy[None], *gen.encoder.encode(gen.encoder.tokenize(prompts[:1])))
    assert torch.equal(cond_logits.argmax(-1)[0], greedy)
    images = gen.generate(prompts, seed=0)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8


def test_ar_sampler_refuses_bad_settings(trained_ar):
    from artgen.generate import load_generator

    gen = load_generator(trained_ar[0], "tiny-ar")
    for kwargs, needle in ((dict(steps=8), "--steps"), (dict(top_k=600), "--top-k"),
                           (dict(guidance=float("nan")), "--guidance"), (dict(temperature=float("inf")), "--temperature")):
        with pytest.raises(ArtgenError, match=needle):
            gen.sample_codes(["warm"], **kwargs)


def test_top_k_one_is_the_argmax(trained_ar):
    from artgen.generate import load_generator

    gen = load_generator(trained_ar[0], "tiny-ar")
    assert torch.equal(gen.sample_codes(["warm"], seed=1, top_k=1), gen.sample_codes(["warm"], seed=2, temperature=0.0))


def test_cli_generate_with_the_ar_generator(trained_ar, tmp_path):
    ws, _ = trained_ar
    out = tmp_path / "ar.png"
    r = run_cli("generate", "warm, vivid", "--generator", "ar", "-n", "2", "-o", str(out), workdir=ws.root)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0
    r = run_cli("generate", "warm", "--generator", "ar", "--encoder", "clip", "-o", str(out), workdir=ws.root)
    assert r.returncode == 2 and "artgen train --encoder clip --generator ar" in r.stderr


def test_ar_export_parity_and_the_torch_free_runtime(trained_ar):
    from artgen.generate import load_generator
    from export.bundle import ExportConfig, export_bundle
    from export.parity import check_parity
    from export.runtime import Runtime

    ws, _ = trained_ar
    gen = load_generator(ws, "tiny-ar")
    meta = export_bundle(gen, ws.bundles / "tiny-ar")
    assert meta["generator"] == "ar" and set(meta["graphs"]) == {"text_encoder", "ar_context", "ar_step", "decoder"}
    assert meta["format"] == 3 and "above" not in meta["sampling"]  # the lowest format that describes it
    report = check_parity(gen, ws.bundles / "tiny-ar", n_prompts=16)
    assert report.generator == "ar" and report.passed, report
    assert report.guidance == gen.default_guidance == meta["sampling"]["guidance"]  # checked as the bundle samples
    assert report.logits_max_abs_diff <= 1e-4 and report.code_agreement >= 0.99
    assert report.sampled_agreement_all_steps >= 0.99  # same seed, same codes after every sampled step
    rt = Runtime(ws.bundles / "tiny-ar")
    for kwargs in (dict(), dict(guidance=1.0, temperature=0.7), dict(top_k=5)):
        a = gen.sample_codes(["warm, vivid", "cool"], seed=5, **kwargs).numpy()
        assert (a == rt.sample_codes(["warm, vivid", "cool"], seed=5, **kwargs)).mean() >= 0.99
    int8 = export_bundle(gen, ws.bundles / "tiny-ar-int8", ExportConfig(int8=True))
    # the step graph and ar_context's cross-attention keys/values stay fp32; of ar_context only
    # the text-modulation projection is int8
    assert int8["int8_graphs"] == ["text_encoder", "ar_context"]
    import onnx

    context = onnx.load(str(ws.bundles / "tiny-ar-int8" / "ar_context.onnx")).graph
    assert [n.op_type for n in context.node].count("MatMulInteger") == 1
    assert sum(n.op_type == "MatMul" for n in context.node) == 1 + gen.predictor.cfg.layers  # text_proj + one kv per block
    report8 = check_parity(gen, ws.bundles / "tiny-ar-int8", n_prompts=16)
    assert report8.precision == "int8" and report8.passed, report8
    from export.bundle import bundle_is_current

    meta_path = ws.bundles / "tiny-ar-int8" / "bundle.json"
    assert bundle_is_current(meta_path.parent, ws.checkpoint("tiny-ar"))
    old = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**old, "int8_graphs": [*old["int8_graphs"], "ar_step"]}))
    assert not bundle_is_current(meta_path.parent, ws.checkpoint("tiny-ar"))  # an older export's int8 step: re-export


def test_an_ar_model_that_reads_the_codes_above_exports_and_samples_alike_everywhere(small_corpus, tmp_path):
    """`ARConfig.above`: the step graph takes the codes above each cell as an input (`above`),
    bundle.json says so, and the torch sampler, the parity check and the runtime agree."""
    from dataclasses import replace

    from artgen.generate import load_generator
    from artgen.training.vqvae import train_vqvae
    from export.bundle import ExportConfig, bundle_is_current, export_bundle
    from export.parity import check_parity
    from export.runtime import Runtime, above_codes

    shutil.copytree(small_corpus / "data", tmp_path / "data")
    ws = Workspace(tmp_path)
    train_vqvae(ws, preset="quick", steps=2, batch_size=8, device="cpu", show_progress=False)
    preset = replace(TINY_AR, predictor={**TINY_AR.predictor, "above": True})
    train_predictor(ws, "tiny", preset=preset, annotations="gt", device="cpu", show_progress=False, generator="ar")
    gen = load_generator(ws, "tiny-ar")
    assert gen.predictor.cfg.above
    with torch.no_grad():  # the trained above-embeddings are read: other neighbours, other logits
        codes = torch.randint(0, 512, (1, gen.predictor.cfg.positions))
        states, mask = gen.encoder.encode(gen.encoder.tokenize(["warm"]))
        other = codes.clone()
        other[:, :16] = (other[:, :16] + 7) % 512  # the first row: what the second row reads from above
        a, b = gen.predictor(codes, states, mask), gen.predictor(other, states, mask)
        assert not torch.allclose(a[:, 17:32], b[:, 17:32])
    meta = export_bundle(gen, ws.bundles / "above")
    assert meta["sampling"]["above"] is True and meta["format"] == 4
    assert [i["name"] for i in meta["graphs"]["ar_step"]["inputs"][:2]] == ["token", "above"]
    assert json.loads((ws.bundles / "above" / "bundle.json").read_text())["format"] == 4
    assert bundle_is_current(ws.bundles / "above", ws.checkpoint("tiny-ar"))
    report = check_parity(gen, ws.bundles / "above", n_prompts=8)
    assert report.passed and report.code_agreement >= 0.99, report
    rt = Runtime(ws.bundles / "above")
    torch_codes = gen.sample_codes(["warm, vivid", "cool"], seed=3).numpy()
    assert (torch_codes == rt.sample_codes(["warm, vivid", "cool"], seed=3)).mean() >= 0.99
    flat = torch_codes.reshape(2, -1)
    assert above_codes(flat, 17, 16, 512).tolist() == [flat[i, :3].tolist() for i in range(2)]
    assert np.array_equal(above_codes(flat, 16 * 3 + 15, 16, 512)[:, 2], [512, 512])  # nothing above-right at the edge
    export_bundle(gen, ws.bundles / "above-int8", ExportConfig(int8=True))
    assert check_parity(gen, ws.bundles / "above-int8", n_prompts=8).passed
    from export.runtime import BundleError

    meta_path = ws.bundles / "above" / "bundle.json"
    good = json.loads(meta_path.read_text())
    for bad in ({**good, "format": 3}, {**good, "sampling": {**good["sampling"], "above": "yes"}}):
        meta_path.write_text(json.dumps(bad))
        with pytest.raises(BundleError, match="sampling.above"):
            Runtime(ws.bundles / "above", verify="size")


TORCH_FREE_AR = r"""
import sys, json
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "artgen", "transformers"):
            raise ImportError(f"{name} is not available in this app")
sys.meta_path.insert(0, NoTorch())
sys.path.insert(0, sys.argv[1])        # the bundle folder: its own copy of runtime.py
from runtime import Runtime
import numpy as np
rt = Runtime(sys.argv[1], threads=1)
np.save(sys.argv[2], rt.generate(["warm, chaotic, vivid", "cool, calm, minimal"], seed=5))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "artgen", "transformers"))))
"""


def test_ar_bundle_runs_torch_free_and_draws_what_artgen_generate_draws(trained_ar, tmp_path):
    import subprocess
    import sys

    from artgen.generate import load_generator
    from export.bundle import export_bundle

    ws, _ = trained_ar
    bundle = ws.bundles / "tiny-ar-app"
    export_bundle(load_generator(ws, "tiny-ar"), bundle)
    out = tmp_path / "images.npy"
    r = subprocess.run([sys.executable, "-c", TORCH_FREE_AR, str(bundle), str(out)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []  # nothing of torch was loaded
    images = load_generator(ws, "tiny-ar").generate(["warm, chaotic, vivid", "cool, calm, minimal"], seed=5)
    assert np.abs(np.load(out).astype(int) - images).max() <= 1


def test_ar_runtime_refuses_masked_only_settings(trained_ar):
    from artgen.generate import load_generator
    from export.bundle import export_bundle
    from export.runtime import BundleError, Runtime

    ws, _ = trained_ar
    bundle = ws.bundles / "tiny-ar-errors"
    export_bundle(load_generator(ws, "tiny-ar"), bundle)
    rt = Runtime(bundle)
    for kwargs, needle in ((dict(steps=8), "steps"), (dict(top_k=-1), "top_k"), (dict(guidance=float("nan")), "guidance"),
                           (dict(temperature="hot"), "temperature")):
        with pytest.raises(BundleError, match=needle):
            rt.generate("warm", **kwargs)
    with pytest.raises(BundleError, match="no prompt"):
        rt.generate(None)


def test_bench_compares_the_masked_and_the_autoregressive_generator(trained_ar):
    """Both generators of the tiny encoder in one bench: a row each, the AR one timed as what it
    runs (all positions, PyTorch and the int8 bundle), and the criteria judge the masked one."""
    from helpers import SMALL, TINY, PixelFeatures

    from bench.run import BenchConfig, run_bench, success_criteria, trained_encoders

    ws, _ = trained_ar
    if not (ws.checkpoint("tiny") / "model.safetensors").exists():
        train_predictor(ws, "tiny", preset=TINY, annotations="gt", device="cpu", show_progress=False)
    assert trained_encoders(ws) == ["tiny", "tiny-ar"]
    report = run_bench(ws, BenchConfig(**SMALL), command="test", feature_net=PixelFeatures(), out_dir=ws.root / "ar-bench")
    rows = {r["name"]: r for r in report["rows"]}
    assert rows["tiny"]["generator"] == "masked" and rows["tiny-ar"]["generator"] == "ar"
    ar = rows["tiny-ar"]
    assert ar["autoregressive_ms_p50"] > 0 and ar["ort_int8_autoregressive_ms_p50"] > 0 and "refine_8_ms_p50" not in ar
    assert sum(ar["code_counts"]) == 8 * 8 * 8 and np.isfinite(ar["fid"])
    assert "unconditional" in " ".join(r["name"] for r in report["references"] if "tiny-ar" in r["name"])
    criteria = success_criteria(report)
    assert any("(tiny," in c["target"] for c in criteria)
    md = (ws.root / "ar-bench" / "report.md").read_text()
    assert "tiny-ar" in md and "autoregressive" in md


def test_cli_export_of_the_ar_model_and_an_out_folder_that_is_not_a_bundle(trained_ar, tmp_path):
    ws, _ = trained_ar
    out = tmp_path / "b"
    r = run_cli("export", "--encoder", "tiny", "--generator", "ar", "--out", str(out), "--check", workdir=ws.root)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "bundle.json").read_text())["generator"] == "ar"
    parity = json.loads((out / "parity.json").read_text())
    assert parity["generator"] == "ar" and parity["passed"] and parity["sampled_agreement_all_steps"] >= 0.99
    r = run_cli("export", "--generator", "ar", "--out", str(out), workdir=ws.root)  # a bundle is replaced
    assert r.returncode == 0, r.stderr
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"not a bundle")
    r = run_cli("export", "--generator", "ar", "--out", str(precious), workdir=ws.root)
    assert r.returncode == 2 and "not an artgen bundle" in r.stderr and "--force" in r.stderr
    assert (precious / "holiday.jpg").read_bytes() == b"not a bundle"  # nothing lost
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_bench_of_the_ar_model_alone_judges_it_as_the_tiny_model(trained_ar):
    from helpers import SMALL, PixelFeatures

    from bench.run import BenchConfig, run_bench

    ws, _ = trained_ar
    report = run_bench(ws, BenchConfig(**SMALL, encoders=("tiny-ar",)), command="test", feature_net=PixelFeatures(),
                       out_dir=ws.root / "ar-only")
    assert [r["name"] for r in report["rows"]] == ["tiny-ar"] and report["rows"][0]["test_ce_kind"] == "teacher-forced"
    latency = next(c for c in report["criteria"] if c["target"].startswith("inference"))
    assert "(tiny-ar," in latency["target"] and "autoregressive" in latency["note"] and latency["pass"] is not None
    assert "autoregressive ones: all positions" in (ws.root / "ar-only" / "report.md").read_text()


def test_bench_of_an_ar_bundle_names_its_generator(trained_ar):
    from helpers import SMALL, PixelFeatures

    from artgen.generate import load_generator
    from bench.run import BenchConfig, run_bench
    from export.bundle import ExportConfig, export_bundle

    ws, _ = trained_ar
    bundle = ws.bundles / "tiny-ar-bench"
    export_bundle(load_generator(ws, "tiny-ar"), bundle, ExportConfig(int8=True))
    report = run_bench(ws, BenchConfig(**SMALL), command="test", feature_net=PixelFeatures(), bundle=bundle,
                       out_dir=ws.root / "ar-bundle-bench")
    row = report["rows"][0]
    assert row["name"] == "tiny-ar" and row["generator"] == "ar" and row["ort_int8_autoregressive_ms_p50"] > 0
    assert report["bundle"]["generator"] == "ar"


def test_generate_asking_for_an_untrained_generator_names_the_training_command(small_corpus, tmp_path):
    from artgen.app.release import shipped_generator

    other = "masked" if shipped_generator() == "ar" else "ar"
    r = run_cli("generate", "warm", "--generator", other, "-o", str(tmp_path / "x.png"), workdir=tmp_path / "fresh")
    assert r.returncode == 2 and "artgen train --encoder tiny" in r.stderr  # not the shipped model of the other kind
    r = run_cli("generate", "warm", "--generator", shipped_generator(), "-n", "1", "-o", str(tmp_path / "y.png"),
                workdir=tmp_path / "fresh")
    assert r.returncode == 0 and "shipped" in (r.stdout + r.stderr)


def test_a_preset_object_equal_to_a_named_preset_is_recorded_under_its_name():
    from dataclasses import replace

    from artgen.training.predictor import AR_PRESETS, PRESETS, preset_label

    default = AR_PRESETS["default"]["tiny"]
    assert preset_label(replace(default), AR_PRESETS, "tiny") == "default"  # a copy that changes nothing
    assert preset_label(replace(default, train={**default.train, "lr": 5e-4}), AR_PRESETS, "tiny") == "custom"
    assert preset_label(TINY_AR, AR_PRESETS, "tiny") == "custom"
    # the long preset is the default one at twice the steps, compiled, then aligned (CCA at AlignmentConfig's
    # defaults): no other setting differs
    long = AR_PRESETS["long"]["tiny"]
    assert long.train["steps"] == 2 * default.train["steps"] and long.train["compile"] and long.alignment == {}
    assert {k: v for k, v in long.train.items() if k != "compile"} == {**default.train, "steps": long.train["steps"]}
    assert replace(long, train=default.train, alignment=None) == default
    assert preset_label(long, AR_PRESETS, "tiny") == "long"
    # the masked generator's default preset is not the autoregressive one
    assert preset_label(PRESETS["default"]["tiny"], AR_PRESETS, "tiny") == "custom"
