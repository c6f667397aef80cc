"""Self-training of the autoregressive generator: the code scorer learns adjectives from code
grids and round-trips through its folder; drafts are drawn by the generator's own sampler and
the best-scoring one is kept; the mixed training set holds the kept drafts at about the share
asked for."""

import numpy as np
import pytest
import torch

from artgen.errors import ArtgenError
from artgen.models.code_scorer import CodeScorer
from artgen.training.self_training import Drafts, SelfTrainingConfig, caption_words, draw_drafts, mixed_training_set, train_code_scorer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grids(n: int, seed: int) -> tuple[np.ndarray, list[list[str]]]:
    """Grids whose adjectives follow their codes: a block of codes 0-9 in the top half is
    "stormy", codes 500-509 anywhere is "calm", neither is "plain"; the rest is noise from codes
    100-400. (Every grid has a word: a painting without labels is unlabelled, not a negative.)"""
    rng = np.random.default_rng(seed)
    grids = rng.integers(100, 400, (n, 8, 8))
    labels = []
    for g in grids:
        words = []
        if rng.random() < 0.5:
            g[:4] = rng.integers(0, 10, (4, 8))
            words.append("stormy")
        if rng.random() < 0.5:
            r, c = rng.integers(0, 6, 2)
            g[r:r + 3, c:c + 3] = rng.integers(500, 510, (3, 3))
            words.append("calm")
        labels.append(words or ["plain"])
    return grids.astype(np.uint16), labels


def test_the_code_scorer_learns_adjectives_from_codes_and_round_trips(tmp_path):
    train_codes, train_labels = _grids(600, 0)
    test_codes, test_labels = _grids(200, 1)
    cfg = SelfTrainingConfig(scorer_epochs=8, scorer_width=16, scorer_batch=32)
    scorer, stats = train_code_scorer(train_codes, train_labels, test_codes, test_labels, 512, cfg, show_progress=False)
    assert scorer.cfg.adjectives == ["calm", "plain", "stormy"] and stats["train_grids"] == 600
    assert stats["test_recall"] > 0.9 and stats["test_precision"] > 0.9
    t = torch.from_numpy(test_codes.astype(np.int64))
    # a grid agrees more with the words it carries than with the words it does not
    agree_own = scorer.agreement(t, test_labels)
    agree_other = scorer.agreement(t, [["calm"] if a == ["stormy"] else ["stormy"] for a in test_labels])
    has_one = torch.tensor([a in (["stormy"], ["calm"]) for a in test_labels])
    assert (agree_own[has_one] > agree_other[has_one]).float().mean() > 0.9

    scorer.save_pretrained(tmp_path / "scorer")
    again = CodeScorer.from_pretrained(tmp_path / "scorer")
    assert torch.equal(again(t[:5]), scorer(t[:5]))
    with pytest.raises(ArtgenError, match="no code scorer"):
        CodeScorer.from_pretrained(tmp_path / "missing")


def test_the_config_refuses_a_share_outside_zero_one():
    for share in (0.0, 1.0, 1.5):
        with pytest.raises(ArtgenError, match="share"):
            SelfTrainingConfig(share=share)


def test_caption_words_are_whole_words():
    assert caption_words("a warm, vivid and calm painting", ["warm", "calm", "dark"]) == ["warm", "calm"]
    assert caption_words("lukewarm tones", ["warm"]) == []


def test_the_kept_draft_is_the_best_scoring_and_the_mix_holds_the_share():
    codes = np.arange(3 * 2 * 4).reshape(3, 2, 2, 2).astype(np.uint16)
    drafts = Drafts(codes, np.array([[0.1, 0.9], [0.5, -1.0], [-3.0, -2.0]]), ["a", "b", "c"],
                    [["warm"], ["calm"], ["dark"]])
    kept = drafts.kept()
    assert np.array_equal(kept, codes[[0, 1, 2], [1, 0, 1]])
    assert drafts.summary()["agreement_kept"] == pytest.approx((0.9 + 0.5 - 2.0) / 3, abs=1e-4)
    real = np.zeros((90, 2, 2), np.uint16)
    mixed, labels = mixed_training_set(real, [["x"]] * 90, drafts, share=0.25)
    drafted = len(mixed) - len(real)
    assert drafted / len(mixed) == pytest.approx(0.25, abs=0.05)
    assert labels[len(real):len(real) + drafted // 3] == [["warm"]] * (drafted // 3)
    assert np.array_equal(mixed[len(real)], kept[0])


def test_drafts_come_from_the_generators_own_sampler(trained_ar_workspace):
    """A tiny trained AR model: each draft is what `ARGenerator.sample_codes` draws for its
    caption and seed, and the scores are the scorer's agreement with the caption's words."""
    from artgen.data.captions import load_labels
    from artgen.data.latents import load_latents
    from artgen.generate import load_generator
    from artgen.training.self_training import DRAFT_SEED

    ws = trained_ar_workspace[0]  # read only
    gen = load_generator(ws, "tiny-ar")
    gen.config["sampling"] = {"guidance": 1.5}  # as an aligned model records: drafts follow the model's own default
    labels_by_id, _ = load_labels(ws, "gt")
    ids, codes = load_latents(ws, "train")
    labels = [labels_by_id.get(i, []) for i in ids]
    cfg = SelfTrainingConfig(captions=3, candidates=2, scorer_epochs=1, scorer_width=8, scorer_batch=16)
    scorer, _ = train_code_scorer(codes, labels, codes[:0], [], 512, cfg, show_progress=False)
    drafts = draw_drafts(gen, scorer, labels, cfg, batch=2, show_progress=False)
    assert drafts.codes.shape == (3, 2, *codes.shape[1:]) and drafts.scores.shape == (3, 2)
    assert all(set(a) <= set(scorer.cfg.adjectives) and a for a in drafts.asked)
    again = gen.sample_codes([drafts.captions[1]], seeds=[DRAFT_SEED + 1 * 2 + 1])
    assert np.array_equal(again[0].numpy(), drafts.codes[1, 1])
    expected = scorer.agreement(torch.from_numpy(drafts.codes[1].astype(np.int64)), [drafts.asked[1]] * 2)
    assert np.allclose(expected.numpy(), drafts.scores[1], atol=1e-5)
