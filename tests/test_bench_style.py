"""Style consistency: a style judge trained on real train paintings of a small synthetic
corpus tells the styles apart far above chance; in the bench's reference rows the real test
paintings are of their own style, random codes are near chance, and retrieval finds train
paintings with the captions' adjectives. A corpus without styles is "not measured", and why."""

import numpy as np
import pytest

from artgen.data.corpus import SynthConfig, decode_image, load_corpus, synthesize
from artgen.workspace import Workspace
from bench.retrieval import retrieve
from bench.style import StyleConsistency, StyleJudgeConfig, corpus_styles, style_judge

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ~20 s on one thread for the 547 train paintings of a 700-painting corpus
JUDGE = StyleJudgeConfig(epochs=30, batch_size=32)


@pytest.fixture(scope="module")
def styled(tmp_path_factory):
    """A 700-painting synthetic corpus at 32 px (547 train / 153 test, 14 styles) and its judge."""
    ws = Workspace(tmp_path_factory.mktemp("styled"))
    synthesize(ws.data, SynthConfig(count=700, size=32, seed=3, workers=1), show_progress=False)
    dd = load_corpus(ws.data)
    judge, why = style_judge(ws.root / "cache" / "style", dd["train"], JUDGE)
    assert judge is not None, why
    return ws, dd, judge


def test_the_style_judge_scores_far_above_chance_on_real_test_paintings(styled):
    _, dd, judge = styled
    test = dd["test"]
    out = judge.validate([decode_image(im) for im in test["image"]], test["style"])
    assert out["styles"] == 14 and out["n_test"] == len(test)
    assert out["chance"] == pytest.approx(1 / 14)
    # 0.78 when written (chance 0.07, always the commonest style 0.12)
    assert out["accuracy"] > 0.6 and out["accuracy"] > 5 * out["majority_share"], out


def test_the_judge_is_cached_per_corpus_and_reloads_identically(styled):
    ws, dd, judge = styled
    again, _ = style_judge(ws.root / "cache" / "style", dd["train"], JUDGE)
    assert again.info["cached"] and judge.info["cached"] is None  # loaded, not retrained
    images = [decode_image(im) for im in dd["test"].select(range(40))["image"]]
    assert again.predict(images) == judge.predict(images)
    other, _ = style_judge(ws.root / "cache" / "style", dd["train"].select(range(300)), StyleJudgeConfig(epochs=1))
    assert other.info["cached"] is None  # another train split or config is another judge


def test_a_corpus_without_styles_is_not_measured_and_says_why(styled):
    _, dd, _ = styled
    test = dd["test"]
    styles, why = corpus_styles(test.remove_columns("style"))
    assert styles is None and "no `style` column" in why
    imported = test.map(lambda row: {"style": "imported"})
    styles, why = corpus_styles(imported)
    assert styles is None and "single value" in why and "imported" in why
    assert style_judge(None, imported) == (None, why)


class _Named:
    """A judge that reads the style off the image: red channel value = style index."""

    styles = ["a", "b", "c", "d"]

    def predict(self, images):
        return [self.styles[int(im[0, 0, 0])] for im in images]


def test_style_consistency_counts_matches_styles_and_the_top_share():
    metric = StyleConsistency(_Named())
    images = np.zeros((8, 2, 2, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = [0, 0, 0, 0, 0, 1, 2, 0]
    metric.update(images[:4], ["a", "b", "a", "a"])
    metric.update(images[4:], ["a", "b", "c", "d"])
    out = metric.compute()
    assert out["style_consistency"] == 6 / 8
    assert out["styles_covered"] == 3 and out["styles_total"] == 4
    assert out["top_style"] == "a" and out["top_style_share"] == 6 / 8
    assert out["style_counts"] == {"a": 6, "b": 1, "c": 1}
    metric.reset()
    metric.update(images[:2])  # no targets: coverage only
    assert metric.compute()["style_consistency"] is None


def test_retrieval_takes_an_exact_adjective_set_else_the_closest():
    pool = [["warm", "calm"], ["warm", "calm"], ["cool", "dark", "wavy"], [], ["cool", "dark"]]
    picked, exact = retrieve([["calm", "warm"], ["cool", "dark", "wavy", "bold"], ["pale"]], pool,
                             np.random.default_rng(0))
    assert picked[0] in (0, 1) and exact[0]
    assert picked[1] == 2 and not exact[1]  # Jaccard 3/4 beats 2/4
    assert picked[2] != 3 and not exact[2]  # nothing shared: any painting with adjectives
    seen = {retrieve([["warm", "calm"]], pool, np.random.default_rng(s))[0][0] for s in range(20)}
    assert seen == {0, 1}  # a random one among the exact matches


def test_reference_rows_real_paintings_near_one_random_codes_near_chance(styled, tmp_path):
    """The bench's stages on the styled corpus: the real test paintings behind the captions are
    judged of their own style (as often as the judge is right), random codes near chance."""
    import shutil

    from helpers import PixelFeatures

    from artgen.models.vqvae import VQVAE
    from artgen.training.vqvae import train_vqvae
    from bench.run import BenchConfig, _prepare, _reference_rows, _vqvae_decode

    src, dd, judge = styled
    ws = Workspace(tmp_path)
    shutil.copytree(src.data, ws.data)
    shutil.copytree(src.root / "cache", ws.root / "cache")  # the judge trained above
    train_vqvae(ws, preset="quick", steps=2, batch_size=8, device="cpu", show_progress=False)
    cfg = BenchConfig(threads=1, captions=100, real_images=0, kid_subsets=3, labels="gt", style=JUDGE,
                      show_progress=False).resolved()
    ctx = _prepare(ws, cfg, PixelFeatures())
    assert ctx.style_report["measured"] and ctx.style_report["cached"]
    assert ctx.style_report["accuracy"] == pytest.approx(judge.validation["accuracy"])  # all 153 test paintings
    vqvae = VQVAE.from_pretrained(ws.checkpoint("vqvae"))
    rows, missing = _reference_rows(ctx, lambda c: _vqvae_decode(vqvae, c, 64), vqvae.cfg.grid,
                                    vqvae.cfg.quantizer.codebook_size, vqvae)
    assert missing == []
    by = {r["name"].split(" (")[0].split(":")[0]: r for r in rows}
    real, random = by["real test paintings behind the captions"], by["random codes"]
    assert real["style_consistency"] > 0.6 and real["styles_covered"] == 14
    assert real["style_consistency"] == pytest.approx(
        np.mean([p == ctx.caption_styles[i] for i, p in enumerate(judge.predict(ctx.caption_images))]))
    assert random["style_consistency"] < 0.25 and real["style_consistency"] - random["style_consistency"] > 0.4
    retrieval = by["retrieval"]
    assert retrieval["exact_adjective_match"] > 0.3 and retrieval["style_consistency"] > 0.4
    assert 0.4 < retrieval["true_style_match"] <= 1  # the corpus's own labels: the words nearly fix the style
    for r in (retrieval, random, by["VQ-VAE reconstructions"]):
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and r["pr_k"] == 3
    assert "fid" not in real and "style_consistency" not in by["real train vs real test"]


def test_the_bench_says_why_style_is_not_measured_on_a_corpus_without_styles(small_corpus, tmp_path):
    """An imported corpus (every painting "imported"): no judge, no style columns, and the
    report's "not measured" list and judge line give the reason."""
    from helpers import PixelFeatures

    from bench.report import _not_measured, _style_line
    from bench.run import BenchConfig, _prepare, _reference_rows

    ws = Workspace(tmp_path)
    dd = load_corpus(small_corpus / "data")
    dd.map(lambda row: {"style": "imported"}).save_to_disk(str(ws.data))
    cfg = BenchConfig(threads=1, captions=8, real_images=12, kid_subsets=3, labels="gt", show_progress=False).resolved()
    ctx = _prepare(ws, cfg, PixelFeatures())
    assert ctx.style is None and not ctx.style_report["measured"]
    rows, missing = _reference_rows(ctx, lambda codes: np.zeros((len(codes), 32, 32, 3), np.uint8), 8, 512)
    assert all("style_consistency" not in r for r in rows)
    assert "VQ-VAE reconstructions" in missing[0]["what"] and "style_consistency" in missing[1]["what"]
    report = {"style_judge": ctx.style_report, "not_measured": missing}
    assert "not measured" in _style_line(report["style_judge"]) and "'imported'" in _style_line(report["style_judge"])
    assert any("single value ('imported')" in line for line in _not_measured(report))
    assert not (ws.root / "cache" / "style").exists()  # nothing trained
