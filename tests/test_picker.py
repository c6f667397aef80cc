"""The caption picker (`artgen train picker`, `artgen export --candidates N`, `artgen attach-picker`):
a contrastive image / words dual encoder learns which paintings go with which adjective sets; the
bundle carries it as picker.onnx (format 6) in the code scorer's stead; the runtime decodes every
candidate and keeps the one nearest its prompt's words (candidate 0 for a prompt naming none),
and PyTorch keeps the same one."""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, copy_workspace, run_cli

from artgen.errors import ArtgenError
from artgen.models.caption_picker import CaptionPicker, PickerConfig, contrastive_loss, pair_accuracy, train_caption_picker

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = ["warm, vivid, wavy", "calm, dark", "zorblat"]  # the last names no adjective
TINY = PickerConfig(epochs=1, widths=(8, 8), embed=8, words_hidden=16, batch_size=32, input_size=16)


def two_kinds(n: int = 96, seed: int = 0) -> tuple[np.ndarray, list[list[str]]]:
    """Half the paintings red with horizontal stripes labelled warm + linear, half blue with
    dots labelled cool + dotted, each with noise."""
    rng = np.random.default_rng(seed)
    images, sets = [], []
    y, x = np.mgrid[:32, :32]
    for i in range(n):
        img = rng.integers(0, 60, (32, 32, 3))
        if i % 2:
            img[..., 0] += 150 * ((y // 4) % 2)
            sets.append(["warm", "linear"])
        else:
            img[..., 2] += 150 * (((x % 8) - 4) ** 2 + ((y % 8) - 4) ** 2 < 5)
            sets.append(["cool", "dotted"])
        images.append(img.clip(0, 255).astype(np.uint8))
    return np.stack(images), sets


def test_the_loss_counts_every_painting_of_the_same_set_as_a_positive():
    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)
    words = img.clone()
    same = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    scale = torch.tensor(0.0)  # logit scale 1
    logits = img @ words.T
    target = same.float() / same.float().sum(1, keepdim=True)
    by_hand = 0.5 * (-(target * logits.log_softmax(1)).sum(1).mean() - (target * logits.T.log_softmax(1)).sum(1).mean())
    assert torch.allclose(contrastive_loss(img, words, same, scale), by_hand)
    swapped = words[[2, 2, 0]]  # each image's words those of the other set
    assert contrastive_loss(img, words, same, scale) < contrastive_loss(img, swapped, same, scale)
    # not symmetric: painting 0 carries the words of row 2 too (a part of its set), painting 2 not row 0's
    carries = same.clone()
    carries[0, 2] = True
    m = carries.float()
    by_image, by_words = m / m.sum(1, keepdim=True), m.T / m.T.sum(1, keepdim=True)
    by_hand = 0.5 * (-(by_image * logits.log_softmax(1)).sum(1).mean() - (by_words * logits.T.log_softmax(1)).sum(1).mean())
    assert torch.allclose(contrastive_loss(img, words, carries, scale), by_hand)


def test_a_painting_carries_the_words_of_every_part_of_its_set():
    from artgen.models.caption_picker import carries

    held = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # paintings' sets: {a, b}, {b, c}, {a, b, c}
    asked = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # rows: {a}, {b, c}, {a, b, c}
    expected = torch.tensor([[True, False, False],  # painting {a, b} carries {a} only
                             [False, True, False],  # {b, c} carries {b, c}
                             [True, True, True]])  # {a, b, c} carries all three
    assert torch.equal(carries(asked, held), expected)


def test_partial_words_cut_a_caption_to_a_non_empty_part_of_it():
    from artgen.models.caption_picker import partial_words

    g = torch.Generator().manual_seed(0)
    words = (torch.rand(200, 12, generator=g) < 0.3).float()
    words[:, 0] = 1.0  # every caption names a word
    assert torch.equal(partial_words(words, 0.0, 0.5, g), words)
    cut = partial_words(words, 1.0, 0.5, g)
    assert bool((cut <= words).all()) and bool((cut.sum(1) >= 1).all())  # a part, never empty
    assert float(cut.sum()) < float(words.sum())  # some words dropped
    half = partial_words(words, 0.5, 0.5, g)
    changed = (half != words).any(1).float().mean()
    assert 0.2 < float(changed) < 0.6  # about half the rows cut (a row may keep all its words)


def test_the_picker_learns_which_paintings_go_with_which_words(tmp_path):
    images, sets = two_kinds()
    vocabulary = ["cool", "dotted", "linear", "warm"]
    untrained = CaptionPicker(vocabulary, TINY)
    picker, record = train_caption_picker(images, sets, vocabulary, PickerConfig(**{**TINY.__dict__, "epochs": 15}))
    test_images, test_sets = two_kinds(40, seed=1)
    assert pair_accuracy(picker, test_images, test_sets) > 0.9
    assert record["updates"] == 15 * (96 // 32) and record["trained_on"] == 96
    words = picker.multi_hot([["warm", "linear"]] * 2)
    red, blue = test_images[1], test_images[0]
    scores = picker.score(np.stack([red, blue]), words)
    assert scores[0] > scores[1]  # the red stripes nearer "warm, linear"
    picker.save_pretrained(tmp_path / "p")
    loaded = CaptionPicker.from_pretrained(tmp_path / "p")
    words = picker.multi_hot(test_sets)
    assert np.allclose(loaded.score(test_images, words), picker.score(test_images, words))
    assert not np.allclose(untrained.score(test_images, words), picker.score(test_images, words))
    with pytest.raises(ArtgenError, match="artgen train picker"):
        CaptionPicker.from_pretrained(tmp_path / "none")


@pytest.fixture(scope="module")
def picked(trained_ar_workspace, tmp_path_factory):
    """A copy of the session's tiny AR workspace with a caption picker and a bundle of 3 candidates."""
    from artgen.generate import load_generator
    from artgen.training.picker import load_picker, train_picker
    from export.bundle import ExportConfig, export_bundle

    ws = copy_workspace(trained_ar_workspace[0], tmp_path_factory.mktemp("picker") / "ws")
    metrics = train_picker(ws, annotations="gt", cfg=TINY, show_progress=False)
    gen = load_generator(ws, "tiny-ar")
    meta = export_bundle(gen, ws.bundles / "best-of-3", ExportConfig(candidates=3))
    return ws, gen, load_picker(ws), meta, metrics


def test_the_picker_trains_into_its_folder(picked):
    ws, gen, picker, _, metrics = picked
    assert json.loads((ws.checkpoint("caption-picker") / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["annotations"] == "gt" and metrics["adjectives"] == len(picker.vocabulary) > 1
    assert 0.0 <= metrics["test_pair_accuracy"] <= 1.0
    assert gen.picker is not None  # load_generator attaches the workspace's picker


def test_the_bundle_carries_the_picker_in_the_scorers_stead(picked):
    from export.runtime import Runtime

    ws, gen, picker, meta, _ = picked
    assert meta["format"] == 6 and meta["sampling"]["candidates"] == 3
    assert "picker" in meta["graphs"] and "scorer" not in meta["graphs"] and "scorer" not in meta
    assert meta["picker"]["adjectives"] == picker.vocabulary and "picker" not in meta.get("int8_graphs", [])
    rt = Runtime(ws.bundles / "best-of-3")
    codes = torch.randint(0, 512, (4, gen.predictor.cfg.grid, gen.predictor.cfg.grid))
    images = gen.decode(codes)
    words = picker.multi_hot([["warm"], ["cool", "calm"], [], picker.vocabulary[:2]]).numpy()
    ort_scores = rt.sessions["picker"].run(None, {"images": images, "words": words})[0]
    assert np.allclose(ort_scores, picker.score(images, words), atol=1e-4)


def test_the_runtime_keeps_the_candidate_the_picker_prefers(picked):
    from export.runtime import Runtime, asked_words

    ws, gen, picker, _, _ = picked
    rt = Runtime(ws.bundles / "best-of-3")
    single = rt.sample_codes(PROMPTS, seed=7, candidates=1)
    states, mask = rt.encode(PROMPTS)
    d = rt.meta["sampling"]
    drawn = np.stack([rt._sample_ar(states, mask, [7, 8, 9], d["guidance"], d["temperature"], 0, j) for j in range(3)])
    assert np.array_equal(drawn[0], single)
    asked = asked_words(PROMPTS, picker.vocabulary, rt.meta["picker"]["synonyms"])
    scores = np.stack([picker.score(gen.decode(torch.from_numpy(drawn[j])), asked) for j in range(3)])  # (C, B)
    expected = scores.argmax(0)
    expected[2] = 0  # "zorblat" names no adjective: the single draw is kept
    best = rt.sample_codes(PROMPTS, seed=7)
    assert np.array_equal(best, drawn[expected, np.arange(3)])
    kept_another = sum(not np.array_equal(rt.sample_codes(PROMPTS[:2], seed=s), rt.sample_codes(PROMPTS[:2], seed=s, candidates=1))
                       for s in range(7, 13))
    assert kept_another > 0  # the picker chose a candidate other than the single draw somewhere
    # and PyTorch, with the workspace's picker, keeps the same
    assert np.array_equal(gen.sample_codes(PROMPTS, seed=7, candidates=3).numpy(), best)
    calls = []
    original = rt.decode
    rt.decode = lambda codes: calls.append(len(codes)) or original(codes)
    try:  # generate decodes the candidates once, for the picker (each in its own thread), and returns the kept ones' images
        assert np.array_equal(rt.generate(PROMPTS, seed=7), original(best)) and calls == [3, 3, 3]
    finally:
        rt.decode = original
    calls = []
    original = gen.decode
    gen.decode = lambda codes: calls.append(len(codes)) or original(codes)
    try:  # so does the torch generator: all candidates in one decode, the kept ones not decoded again
        assert np.array_equal(gen.generate(PROMPTS, seed=7, candidates=3), original(torch.from_numpy(best))) and calls == [9]
    finally:
        gen.decode = original


def test_attach_picker_swaps_it_into_a_scorer_bundle(picked, tmp_path):
    from artgen.training.scorer import ScorerConfig, train_scorer
    from export.bundle import ExportConfig, attach_picker, export_bundle
    from export.runtime import Runtime

    ws, gen, picker, _, _ = picked
    train_scorer(ws, annotations="gt", cfg=ScorerConfig(epochs=1, width=8, batch_size=32), show_progress=False)
    import copy

    scored = copy.copy(gen)
    scored.picker = None
    from artgen.generate import workspace_scorer

    scored.scorer = workspace_scorer(ws, gen.config["summary"]["vqvae_hash"])
    before = export_bundle(scored, tmp_path / "b", ExportConfig(candidates=2))
    assert before["format"] == 5 and "scorer" in before["graphs"]
    after = attach_picker(tmp_path / "b", picker)
    assert after["format"] == 6 and "picker" in after["graphs"] and "scorer" not in after["graphs"]
    assert not (tmp_path / "b" / "scorer.onnx").exists() and json.loads((tmp_path / "b" / "bundle.json").read_text()) == after
    rt = Runtime(tmp_path / "b")
    assert rt.chooser == "picker"
    assert np.array_equal(rt.sample_codes(PROMPTS, seed=3), Runtime(ws.bundles / "best-of-3").sample_codes(PROMPTS, seed=3,
                                                                                                         candidates=2))
    single = export_bundle(scored, tmp_path / "one")
    with pytest.raises(ArtgenError, match="one candidate"):
        attach_picker(tmp_path / "one", picker)
    r = run_cli("attach-picker", str(tmp_path / "nothing"), workdir=ws.root)
    assert_one_line_error(r, "not a bundle")
    assert single["format"] == 3


def test_bad_picker_bundles_are_named(picked, tmp_path):
    from export.runtime import BundleError, Runtime

    ws = picked[0]
    meta_path = tmp_path / "broken" / "bundle.json"
    shutil.copytree(ws.bundles / "best-of-3", meta_path.parent)
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": 5}))
    with pytest.raises(BundleError, match="format 6"):
        Runtime(meta_path.parent, verify="size")
    words = meta["picker"]["adjectives"]
    for adjectives in ([], [words[0], *words[1:-1], words[0]]):  # none, or one twice (the words' width still matches)
        meta_path.write_text(json.dumps({**meta, "picker": {"adjectives": adjectives}}))
        with pytest.raises(BundleError, match="picker.adjectives"):
            Runtime(meta_path.parent, verify="size")
    meta_path.write_text(json.dumps({**meta, "picker": ["warm"]}))
    with pytest.raises(BundleError, match="picker = "):
        Runtime(meta_path.parent, verify="size")


def test_train_picker_needs_two_sets_and_good_settings(picked, tmp_path):
    from artgen.training.picker import train_picker

    with pytest.raises(ArtgenError, match="at least 1 epoch"):
        train_picker(picked[0], annotations="gt", cfg=PickerConfig(epochs=0))
    with pytest.raises(ArtgenError, match="multiples of 8"):
        train_picker(picked[0], annotations="gt", cfg=PickerConfig(widths=(12,)))
    one_set = copy_workspace(picked[0], tmp_path / "one-set")
    from artgen.data.corpus import load_corpus

    ids = [i for split in load_corpus(one_set.data).values() for i in split["id"]]
    one_set.annotations.mkdir(parents=True, exist_ok=True)
    (one_set.annotations / "heuristic.jsonl").write_text(
        "".join(json.dumps({"id": i, "adjectives": ["warm", "calm", "vivid"]}) + "\n" for i in ids))
    with pytest.raises(ArtgenError, match="fewer than two sets"):
        train_picker(one_set, annotations="heuristic", cfg=TINY)
    bare = copy_workspace(picked[0], tmp_path / "bare")
    shutil.rmtree(bare.checkpoint("caption-picker"))
    assert_one_line_error(run_cli("attach-picker", str(picked[0].bundles / "best-of-3"), workdir=bare.root), "artgen train picker")


def test_the_picker_rule_is_the_highest_score_the_first_on_a_tie_and_0_without_words():
    from artgen.sampling import asked_words as torch_words
    from artgen.sampling import picked_candidates as torch_side
    from export.runtime import asked_words as runtime_words
    from export.runtime import picked_candidates as runtime_side

    adjectives = ["calm", "dark", "vivid"]
    prompts = ["Vibrant and calm", "dark, dark", "zorblat"]
    for words in (torch_words, runtime_words):  # "vibrant" is vivid through the synonyms; unknown words name nothing
        assert words(prompts, adjectives, {"vibrant": "vivid"}).tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    asked = runtime_words(prompts, adjectives, {"vibrant": "vivid"})
    scores = np.array([[0.1, 0.5, 0.9],    # candidate 0
                       [0.3, 0.5, 0.95]])  # candidate 1 (C=2, B=3)
    # image 0: candidate 1 scores higher; image 1: a tie, the first; image 2: names no word, candidate 0 however it scores
    for rule in (torch_side, runtime_side):
        assert rule(scores, asked).tolist() == [1, 0, 0]


def test_the_bundle_bench_draws_a_picker_bundles_candidates(picked, tmp_path):
    """`artgen bench --bundle B --candidates N` takes a bundle whose chooser is the picker."""
    from helpers import SMALL, PixelFeatures

    from bench.run import BenchConfig, run_bench

    ws, *_ = picked
    cfg = BenchConfig(**{**SMALL, "candidates": 2})
    run_bench(ws, cfg, out_dir=tmp_path, command="test", feature_net=PixelFeatures(), bundle=ws.bundles / "best-of-3")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["meta"]["config"]["candidates"] == 2 and saved["rows"][0]["fid"] > 0
    with pytest.raises(ArtgenError, match="does not fit"):  # one without a picker or scorer still refuses it
        meta = json.loads((ws.bundles / "best-of-3" / "bundle.json").read_text())
        meta["graphs"].pop("picker"), meta.pop("picker")
        meta["sampling"]["candidates"] = 1
        plain = tmp_path / "plain"
        shutil.copytree(ws.bundles / "best-of-3", plain)
        (plain / "bundle.json").write_text(json.dumps(meta))
        run_bench(ws, cfg, out_dir=tmp_path / "r2", command="test", feature_net=PixelFeatures(), bundle=plain)


@pytest.mark.parametrize("size, expected", [(32, 16), (48, 16), (40, 10), (100, 10), (64, 16)])
def test_the_input_size_pools_the_corpus_by_a_whole_factor(size, expected):
    from artgen.training.picker import fit_input_size

    assert fit_input_size(TINY, size).input_size == expected  # TINY reads at most 16 px
    assert fit_input_size(PickerConfig(), 48).input_size == 24 and fit_input_size(PickerConfig(), 100).input_size == 25


def test_a_corpus_no_factor_pools_to_the_input_is_one_line(tmp_path):
    from artgen.training.picker import fit_input_size

    with pytest.raises(ArtgenError, match="37 px"):
        fit_input_size(PickerConfig(), 37)


def test_a_damaged_picker_checkpoint_is_one_line(picked, tmp_path):
    from artgen.training.picker import PICKER, load_picker
    from artgen.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    shutil.copytree(picked[0].checkpoint(PICKER), ws.checkpoint(PICKER))
    config = (ws.checkpoint(PICKER) / "config.json").read_text()
    (ws.checkpoint(PICKER) / "config.json").write_text("{truncated")
    with pytest.raises(ArtgenError, match="cannot be read .*artgen train picker"):
        load_picker(ws)
    for size in (0, "32"):  # hand-edited: loads, then would divide by it
        edited = json.loads(config)
        edited["config"]["input_size"] = size
        (ws.checkpoint(PICKER) / "config.json").write_text(json.dumps(edited))
        with pytest.raises(ArtgenError, match="cannot be read .*artgen train picker"):
            load_picker(ws)


def test_attach_picker_takes_a_bundle_json_without_its_informative_fields(picked, tmp_path):
    """A hand-edited bundle.json that the runtime loads (no opset, weights or producer) still
    takes the picker, its README saying what was not recorded."""
    from export.bundle import attach_picker
    from export.runtime import Runtime

    ws, _, picker, _, _ = picked
    shutil.copytree(ws.bundles / "best-of-3", tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "bundle.json").read_text())
    for key in ("opset", "weights", "producer"):
        meta.pop(key, None)
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(meta))
    after = attach_picker(tmp_path / "b", picker)
    assert after["format"] == 6 and Runtime(tmp_path / "b").chooser == "picker"
    assert "not recorded" in (tmp_path / "b" / "README.md").read_text()


def test_a_picker_that_is_there_but_unusable_is_said_once(picked, tmp_path, capsys):
    from artgen.generate import load_generator
    from artgen.training.picker import PICKER

    ws = copy_workspace(picked[0], tmp_path / "ws")
    (ws.checkpoint(PICKER) / "config.json").write_text("{truncated")
    assert load_generator(ws, "tiny-ar").picker is None and load_generator(ws, "tiny-ar").picker is None
    err = capsys.readouterr().err
    assert err.count("the caption picker is not used") == 1 and "artgen train picker" in err
