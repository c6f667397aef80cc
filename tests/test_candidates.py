"""Best of N candidates (`artgen train scorer`, `artgen export --candidates N`): the scorer
trains into its folder and belongs to its VQ-VAE; the bundle carries it as scorer.onnx with
format 5; the runtime draws candidate j with noise stream noise_stream + j (candidate 0 is the
single draw), keeps the one the scorer finds closest to the prompt's words, and keeps
candidate 0 for a prompt that names none; serve and the bundle checks know the setting."""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, copy_workspace, run_cli

from artgen.errors import ArtgenError
from artgen.training.scorer import ScorerConfig, load_scorer, train_scorer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = ["warm, vivid, wavy", "calm, dark", "zorblat"]  # the last names no adjective


@pytest.fixture(scope="module")
def scored(trained_ar_workspace, tmp_path_factory):
    """A copy of the session's tiny AR workspace with a code scorer and a bundle of 3 candidates."""
    from artgen.generate import load_generator
    from export.bundle import ExportConfig, export_bundle

    ws = copy_workspace(trained_ar_workspace[0], tmp_path_factory.mktemp("candidates") / "ws")
    metrics = train_scorer(ws, annotations="gt", cfg=ScorerConfig(epochs=1, width=8, batch_size=32), show_progress=False)
    gen = load_generator(ws, "tiny-ar")
    scorer = load_scorer(ws, gen.config["summary"]["vqvae_hash"])
    meta = export_bundle(gen, ws.bundles / "best-of-3", ExportConfig(candidates=3), scorer=scorer)
    return ws, gen, scorer, meta, metrics


def test_the_scorer_trains_into_its_folder_for_its_vqvae(scored):
    ws, gen, scorer, _, metrics = scored
    assert metrics["vqvae_hash"] == gen.config["summary"]["vqvae_hash"] and metrics["annotations"] == "gt"
    assert json.loads((ws.checkpoint("code-scorer") / "metrics.json").read_text()) == metrics
    assert metrics["adjectives"] == len(scorer.cfg.adjectives) and scorer.cfg.adjectives == sorted(scorer.cfg.adjectives)
    with pytest.raises(ArtgenError, match="another VQ-VAE"):
        load_scorer(ws, "0" * 64)


def test_the_bundle_carries_the_scorer_and_the_default_count(scored):
    ws, gen, scorer, meta, _ = scored
    assert meta["format"] == 5 and meta["sampling"]["candidates"] == 3
    assert meta["scorer"]["adjectives"] == scorer.cfg.adjectives and "scorer" in meta["graphs"]
    assert "scorer" not in meta["int8_graphs"]
    from export.runtime import Runtime

    rt = Runtime(ws.bundles / "best-of-3")
    codes = torch.randint(0, 512, (4, gen.predictor.cfg.grid, gen.predictor.cfg.grid))
    ort_logits = rt.sessions["scorer"].run(None, {"codes": codes.numpy()})[0]
    assert np.allclose(ort_logits, scorer(codes).detach().numpy(), atol=1e-4)


def test_the_runtime_keeps_the_candidate_the_scorer_prefers(scored):
    from export.runtime import Runtime, best_candidates, prompt_words

    ws, gen, scorer, _, _ = scored
    rt = Runtime(ws.bundles / "best-of-3")
    single = rt.sample_codes(PROMPTS, seed=7, candidates=1)
    # candidate 0 is the single draw, and the single draw is what PyTorch draws
    assert np.array_equal(single, gen.sample_codes(PROMPTS, seed=7).numpy())
    states, mask = rt.encode(PROMPTS)
    seeds = [7, 8, 9]
    d = rt.meta["sampling"]
    drawn = np.stack([rt._sample_ar(states, mask, seeds, d["guidance"], d["temperature"], 0, j) for j in range(3)])
    assert np.array_equal(drawn[0], single) and not np.array_equal(drawn[1], drawn[0])
    with torch.no_grad():
        agreement = torch.stack([scorer.agreement(torch.from_numpy(drawn[j]), [prompt_words(p, scorer.cfg.adjectives)
                                                                               for p in PROMPTS]) for j in range(3)])
    expected = agreement.argmax(0).numpy()
    assert expected[2] == 0  # "zorblat" names no adjective: every score ties, the single draw is kept
    best = rt.sample_codes(PROMPTS, seed=7)  # the bundle's default: 3 candidates
    assert np.array_equal(best, drawn[expected, np.arange(3)])
    assert expected.any() or not np.array_equal(best, single)  # the pick is not always the first candidate
    calls = []
    original = rt._sample_ar
    rt._sample_ar = lambda *a, **k: calls.append(a) or original(*a, **k)
    try:  # a prompt naming no scorer word draws only the candidate it keeps
        assert np.array_equal(rt.sample_codes(["zorblat"], seed=9), original(*rt.encode(["zorblat"]), [9], d["guidance"],
                                                                            d["temperature"], 0))
        assert len(calls) == 1
    finally:
        rt._sample_ar = original
    logits = rt.sessions["scorer"].run(None, {"codes": drawn.reshape(9, *drawn.shape[2:])})[0].reshape(3, 3, -1)
    assert np.array_equal(best_candidates(logits, PROMPTS, scorer.cfg.adjectives), expected)
    assert prompt_words("Warm, WAVY and lukewarm", ["warm", "wavy", "cool"]) == ["warm", "wavy"]


def test_prompt_words_read_the_vocabularys_synonyms_but_not_the_held_out_ones():
    from artgen.data.vocabulary import HELD_OUT_SYNONYMS
    from artgen.sampling import prompt_words as torch_side
    from artgen.sampling import scorer_synonyms
    from export.runtime import prompt_words as runtime_side

    adjectives = ["bold", "contrasting", "dotted", "linear", "vivid", "warm"]
    synonyms = scorer_synonyms(adjectives)
    assert synonyms["vibrant"] == "vivid" and synonyms["high-contrast"] == "contrasting"
    assert set(synonyms.values()) <= set(adjectives) and not set(synonyms) & set(HELD_OUT_SYNONYMS)
    assert "hot" in scorer_synonyms(["warm"]) and "hot" not in scorer_synonyms(["cool"])  # only the scorer's words
    for rule in (torch_side, runtime_side):
        assert rule("Vibrant and STRIPED", adjectives, synonyms) == ["linear", "vivid"]  # the scorer's order
        assert rule("a high-contrast, polka-dot piece", adjectives, synonyms) == ["contrasting", "dotted"]
        assert rule("hot, warm", adjectives, synonyms) == ["warm"]  # named twice, asked once
        assert rule("electric, fiery", adjectives, synonyms) == []  # held-out synonyms of vivid and warm
        assert rule("vibrant", adjectives) == []  # no synonyms given: the adjectives alone, as before


def test_the_pick_reads_a_synonym_as_its_adjective(scored):
    from artgen.sampling import prompt_words
    from export.runtime import Runtime

    ws, gen, scorer, _, _ = scored
    rt = Runtime(ws.bundles / "best-of-3")
    assert rt.meta["scorer"]["synonyms"]["vibrant"] == "vivid"
    d = rt.meta["sampling"]
    prompts = ["vibrant, striped", "hot and rippling", "polka-dot"]
    asked = [prompt_words(p, scorer.cfg.adjectives, rt.meta["scorer"]["synonyms"]) for p in prompts]
    assert all(asked) and not any(prompt_words(p, scorer.cfg.adjectives) for p in prompts)
    states, mask = rt.encode(prompts)
    kept = []
    for seed in (3, 11):
        seeds = [seed + i for i in range(3)]
        drawn = np.stack([rt._sample_ar(states, mask, seeds, d["guidance"], d["temperature"], 0, j) for j in range(3)])
        with torch.no_grad():
            expected = torch.stack([scorer.agreement(torch.from_numpy(drawn[j]), asked) for j in range(3)]).argmax(0).numpy()
        assert np.array_equal(rt.sample_codes(prompts, seed=seed), drawn[expected, np.arange(3)])
        kept += expected.tolist()
    assert any(kept)  # the synonyms' candidates are scored, not the single draw kept for words it does not know


def test_bad_candidate_settings_are_named(scored, tmp_path):
    from export.bundle import ExportConfig, export_bundle
    from export.runtime import BundleError, Runtime

    ws, gen, scorer, _, _ = scored
    rt = Runtime(ws.bundles / "best-of-3")
    with pytest.raises(BundleError, match="candidates"):
        rt.sample_codes(PROMPTS, candidates=0)
    with pytest.raises(BundleError, match="candidates"):
        rt.sample_codes(PROMPTS, candidates=9)
    single = export_bundle(gen, tmp_path / "single")
    assert single["format"] == 3 and "candidates" not in single["sampling"]
    with pytest.raises(BundleError, match="code scorer"):
        Runtime(tmp_path / "single").sample_codes(PROMPTS, candidates=2)
    import copy

    bare = copy.copy(gen)
    bare.scorer = None  # a workspace without a scorer for this VQ-VAE
    with pytest.raises(ArtgenError, match="artgen train scorer"):
        export_bundle(bare, tmp_path / "x", ExportConfig(candidates=2))
    meta_path = tmp_path / "broken" / "bundle.json"
    shutil.copytree(ws.bundles / "best-of-3", meta_path.parent)
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": 4}))
    with pytest.raises(BundleError, match="format 5"):
        Runtime(meta_path.parent, verify="size")
    meta_path.write_text(json.dumps({**meta, "scorer": {"adjectives": []}}))
    with pytest.raises(BundleError, match="scorer.adjectives"):
        Runtime(meta_path.parent, verify="size")
    words = meta["scorer"]["adjectives"]
    for synonyms in ({"vibrant": "zorblat"}, {words[0]: words[1]}, {"Vibrant": words[0]}, {"two words": words[0]}, ["vibrant"]):
        meta_path.write_text(json.dumps({**meta, "scorer": {"adjectives": words, "synonyms": synonyms}}))
        with pytest.raises(BundleError, match="scorer.synonyms"):
            Runtime(meta_path.parent, verify="size")
    single = {**meta, "format": 3, "graphs": {k: v for k, v in meta["graphs"].items() if k != "scorer"},
              "sampling": {**meta["sampling"], "candidates": 1}}
    meta_path.write_text(json.dumps({**single, "scorer": ["warm"]}))  # read before any candidate is drawn
    with pytest.raises(BundleError, match="scorer = "):
        Runtime(meta_path.parent, verify="size")


def test_cli_export_with_candidates(scored, tmp_path):
    ws = scored[0]
    r = run_cli("export", "--generator", "ar", "--candidates", "2", "--out", str(tmp_path / "b"), workdir=ws.root)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "b" / "bundle.json").read_text())["sampling"]["candidates"] == 2
    assert_one_line_error(run_cli("export", "--candidates", "2", "--out", str(tmp_path / "m"), workdir=ws.root),
                          "--generator ar")
    bare = tmp_path / "bare"
    shutil.copytree(ws.root, bare)
    shutil.rmtree(bare / "checkpoints" / "code-scorer")
    assert_one_line_error(run_cli("export", "--generator", "ar", "--candidates", "2", workdir=bare), "artgen train scorer")


def test_serve_takes_candidates(scored):
    from fastapi.testclient import TestClient

    from artgen.app.serve import ServeConfig, create_app

    ws = scored[0]
    with TestClient(create_app(ws.bundles / "best-of-3", ServeConfig())) as client:
        card = client.get("/v1/model").json()
        assert card["sampling"]["candidates"] == 3
        r = client.post("/v1/images", json={"prompt": "warm, vivid", "seed": 3, "candidates": 2, "format": "json"})
        assert r.status_code == 200, r.text
        assert r.json()["sampling"]["candidates"] == 2
        assert client.post("/v1/images", json={"prompt": "warm", "candidates": 9}).status_code == 422


def test_pytorch_keeps_the_same_candidate_as_the_bundle(scored):
    ws, gen, _, _, _ = scored
    from artgen.generate import load_generator
    from export.runtime import Runtime

    loaded = load_generator(ws, "tiny-ar")
    assert loaded.scorer is not None  # the workspace's scorer, for this VQ-VAE
    for prompts in (PROMPTS, ["vibrant, striped", "hot and rippling", "polka-dot"]):  # adjectives, then synonyms
        torch_codes = loaded.sample_codes(prompts, seed=7, candidates=3).numpy()
        assert np.array_equal(torch_codes, Runtime(ws.bundles / "best-of-3").sample_codes(prompts, seed=7))
    assert np.array_equal(loaded.sample_codes(PROMPTS, seed=7).numpy(), loaded.sample_codes(PROMPTS, seed=7, candidates=1).numpy())
    loaded.scorer = None
    with pytest.raises(ArtgenError, match="artgen train scorer"):
        loaded.sample_codes(PROMPTS, candidates=2)


def test_cli_generate_with_candidates(scored, tmp_path):
    ws = scored[0]
    r = run_cli("generate", "warm, vivid", "--generator", "ar", "--candidates", "2", "-n", "2", "-o", str(tmp_path / "a.png"),
                workdir=ws.root)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.png").stat().st_size > 0


def test_the_rule_is_the_mean_log_sigmoid_of_the_asked_words_the_first_on_a_tie():
    from artgen.sampling import best_candidates as torch_side
    from export.runtime import best_candidates as runtime_side

    adjectives = ["calm", "dark", "warm"]
    logits = np.array([[[0.0, 5.0, -1.0], [2.0, 2.0, 2.0], [1.0, 0.0, 0.0]],     # candidate 0
                       [[3.0, -5.0, 0.5], [2.0, 2.0, 2.0], [0.0, 9.0, 9.0]]])    # candidate 1 (C=2, B=3, V=3)
    prompts = ["warm and calm", "dark, dark", "CALM"]
    # image 0: mean over calm and warm of log sigmoid, (0, -1) vs (3, 0.5): candidate 1; image 1: a tie, the first;
    # image 2: "CALM" is calm, 1.0 vs 0.0: candidate 0 (dark and warm are not asked, however large)
    for rule in (torch_side, runtime_side):
        assert rule(logits, prompts, adjectives).tolist() == [1, 0, 0]
    # the mean, not the sum: one strong word outweighs two middling ones of the other candidate
    logits = np.array([[[4.0, 0.0, 0.0]], [[1.0, 1.0, 0.0]]])
    assert torch_side(logits, ["calm"], adjectives).tolist() == runtime_side(logits, ["calm"], adjectives).tolist() == [0]


def test_bench_with_candidates_draws_and_times_the_best_of_n(scored):
    from helpers import SMALL, PixelFeatures

    from bench.run import BenchConfig, run_bench

    ws = scored[0]
    report = run_bench(ws, BenchConfig(**SMALL, encoders=("tiny-ar",), candidates=2), command="test",
                       feature_net=PixelFeatures(), out_dir=ws.root / "bench-best-of-2")
    assert report["meta"]["config"]["candidates"] == 2
    row = report["rows"][0]
    assert row["name"] == "tiny-ar" and np.isfinite(row["fid"]) and row["ort_int8_autoregressive_ms_p50"] > 0
    with pytest.raises(ArtgenError, match="candidates"):
        run_bench(ws, BenchConfig(**SMALL, candidates=2), command="test", feature_net=PixelFeatures(),
                  bundle=_single_bundle(ws), out_dir=ws.root / "b2")


def _single_bundle(ws):
    from artgen.generate import load_generator
    from export.bundle import export_bundle

    out = ws.bundles / "tiny-ar-single"
    if not (out / "bundle.json").exists():
        export_bundle(load_generator(ws, "tiny-ar"), out)
    return out
