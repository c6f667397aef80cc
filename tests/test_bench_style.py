"""Style consistency: a style judge trained on real train paintings of a small synthetic
corpus tells the styles apart far above chance; in the bench's reference rows the real test
paintings are of their own style, random codes are near chance, and retrieval finds train
paintings with the captions' adjectives. A corpus without styles is "not measured", and why;
in a partly labelled corpus the "imported" paintings (no style label) are neither learnt nor
scored against."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from artgen.data.corpus import SynthConfig, decode_image, load_corpus, synthesize
from artgen.data.importer import UNLABELLED_STYLE
from artgen.workspace import Workspace
from bench.retrieval import retrieve
from bench.style import StyleConsistency, StyleJudge, StyleJudgeConfig, StyleNet, corpus_styles, style_judge

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ~20 s on one thread for the 547 train paintings of a 700-painting corpus
JUDGE = StyleJudgeConfig(epochs=30, batch_size=32, min_steps=0)


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
    other, _ = style_judge(ws.root / "cache" / "style", dd["train"].select(range(300)), StyleJudgeConfig(epochs=1, min_steps=0))
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


def _partly_imported(ds):
    """Every third painting "imported" (`artgen data import` found no style for it), the rest keep theirs."""
    return ds.map(lambda row, i: {"style": UNLABELLED_STYLE if i % 3 == 0 else row["style"]}, with_indices=True)


def test_a_partly_labelled_corpus_trains_the_judge_on_the_labelled_paintings_only(styled, tmp_path):
    _, dd, judge = styled
    train = _partly_imported(dd["train"].select(range(300)))
    styles, why = corpus_styles(train)
    labelled = [s for s in train["style"] if s != UNLABELLED_STYLE]
    assert why == "" and styles.count(None) == 100 and [s for s in styles if s is not None] == labelled
    quick = StyleJudgeConfig(epochs=1, min_steps=0)
    partly, _ = style_judge(tmp_path, train, quick)
    assert partly.styles == sorted(set(labelled)) and UNLABELLED_STYLE not in partly.styles
    assert partly.info["trained_on"] == 200

    # a judge cached before "imported" meant unlabelled, under the same key, learnt it as a style: retrained
    where = next(tmp_path.iterdir())
    stale = partly.styles + [UNLABELLED_STYLE]
    StyleJudge(StyleNet(len(stale), quick.widths), stale, quick.input_size, dict(partly.info)).save(where)
    again, _ = style_judge(tmp_path, train, quick)
    assert again.info["cached"] is None and again.styles == partly.styles
    assert style_judge(tmp_path, train, quick)[0].info["cached"] == str(where)  # and cached again

    # validated on the labelled test paintings only (a second wrapper: the module's judge keeps its validation)
    judge = StyleJudge(judge.net, judge.styles, judge.input_size)
    test = _partly_imported(dd["test"])
    images = [decode_image(im) for im in test["image"]]
    targets = [None if i % 6 == 3 else s for i, s in enumerate(test["style"])]  # None: no label either
    out = judge.validate(images, targets)
    keep = [i for i, s in enumerate(targets) if s not in (None, UNLABELLED_STYLE)]
    assert out["n_test"] == len(keep) and out["n_unlabelled"] == len(test) - len(keep) > 0
    predicted = judge.predict(images)
    assert out["accuracy"] == pytest.approx(np.mean([predicted[i] == targets[i] for i in keep]))


def test_one_style_label_beside_imported_paintings_is_not_measured(styled):
    _, dd, _ = styled
    test = dd["test"]
    one = test.map(lambda row, i: {"style": "cubism" if i % 2 else UNLABELLED_STYLE}, with_indices=True)
    styles, why = corpus_styles(one)
    assert styles is None and "single style label ('cubism'" in why and "'imported'" in why
    assert f"{len(test) // 2} of {len(test)} paintings" in why and "no styles to tell apart" in why
    styles, why = corpus_styles(test.map(lambda row: {"style": "cubism"}))
    assert styles is None and "single value ('cubism')" in why


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
    # per prompted style: a 4 of 4; b asked twice, drawn as a then b; c drawn as c; d as a
    assert out["style_consistency_by_style"] == {"a": 1.0, "b": 0.5, "c": 1.0, "d": 0.0}
    assert out["style_confusion"] == {"a": {"a": 4}, "b": {"a": 1, "b": 1}, "c": {"c": 1}, "d": {"a": 1}}
    metric.reset()
    metric.update(images[:2])  # no targets: coverage only
    assert metric.compute()["style_consistency"] is None


def test_style_consistency_counts_only_targets_with_a_style_label():
    metric = StyleConsistency(_Named())
    images = np.zeros((6, 2, 2, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = [0, 1, 2, 3, 3, 3]
    metric.update(images[:3], ["a", None, "b"])  # None: the caption's painting has no style label
    metric.update(images[3:], [UNLABELLED_STYLE, "d", "d"])
    out = metric.compute()
    assert out["style_consistency"] == 3 / 4 and out["style_judged"] == 4 and out["style_images"] == 6
    assert out["styles_covered"] == 4 and out["top_style"] == "d" and out["top_style_share"] == 3 / 6  # every image
    metric.reset()
    metric.update(images[:2], [None, UNLABELLED_STYLE])
    out = metric.compute()
    assert out["style_consistency"] is None and out["style_judged"] == 0 and out["styles_covered"] == 2


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


def test_the_bench_judges_style_consistency_on_the_labelled_captions_only(small_corpus, tmp_path):
    """A partly imported corpus (every third painting "imported", the rest of 14 styles): the
    judge learns the labelled styles, is validated on the labelled real test paintings, and
    every reference row scores style_consistency on the captions whose painting has a label,
    coverage on all of them; the report says on how many."""
    from helpers import PixelFeatures

    from bench.report import _style_line
    from bench.run import BenchConfig, _prepare, _reference_rows

    ws = Workspace(tmp_path)
    dd = load_corpus(small_corpus / "data")
    dd.map(lambda row, i: {"style": UNLABELLED_STYLE if i % 3 == 0 else row["style"]}, with_indices=True
           ).save_to_disk(str(ws.data))
    cfg = BenchConfig(threads=1, captions=12, real_images=0, kid_subsets=3, labels="gt", style=StyleJudgeConfig(epochs=1, min_steps=0),
                      show_progress=False).resolved()
    ctx = _prepare(ws, cfg, PixelFeatures())
    train_styles, test_styles = ctx.train_ds["style"], ctx.test_ds["style"]
    assert ctx.style.styles == sorted(set(train_styles) - {UNLABELLED_STYLE})
    report = ctx.style_report
    assert report["n_test"] == sum(s != UNLABELLED_STYLE for s in test_styles) and report["n_unlabelled"] > 0
    judged = sum(test_styles[i] != UNLABELLED_STYLE for i in ctx.cap_idx)
    assert 0 < judged < len(ctx.cap_idx) == 12 and report["captions_judged"] == judged and report["captions"] == 12
    assert f"judged on the {judged} of 12 captions" in _style_line(report) and "'imported' left out" in report["trained_on"]

    rows, missing = _reference_rows(ctx, lambda codes: np.zeros((len(codes), 32, 32, 3), np.uint8), 8, 512)
    assert [m["what"] for m in missing] == ["VQ-VAE reconstructions (ceiling)"]
    predicted = ctx.style.predict(ctx.caption_images)
    for r in rows[1:]:  # all but the FID noise floor
        assert r["style_judged"] == judged and r["style_images"] == 12 and sum(r["style_counts"].values()) == 12, r["name"]
    real = rows[1]
    assert real["style_consistency"] == pytest.approx(
        np.mean([p == test_styles[i] for p, i in zip(predicted, ctx.cap_idx) if test_styles[i] != UNLABELLED_STYLE]))


def test_a_judge_of_few_paintings_still_gets_its_minimum_of_updates():
    from bench.style import StyleJudgeConfig, train_style_judge

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(20)]
    cfg = StyleJudgeConfig(input_size=8, widths=(4, 4), epochs=1, batch_size=8, min_steps=12)
    judge = train_style_judge(images, ["a", "b"] * 10, cfg)
    assert judge.info["updates"] == 12  # 2 updates an epoch: 6 epochs, not the configured 1
    assert train_style_judge(images, ["a", "b"] * 10, replace(cfg, min_steps=0)).info["updates"] == 2


def test_the_style_targets_are_left_unjudged_by_a_judge_near_chance():
    from bench.run import _quality_targets

    def targets(accuracy, retrieval=0.9):
        report = {"references": [{"name": "VQ-VAE reconstructions (ceiling)", "fid": 100.0},
                                 {"name": "retrieval: a train painting", "style_consistency": retrieval}],
                  "style_judge": {"measured": True, "accuracy": accuracy, "chance": 1 / 14, "trained_on": "192 real train paintings"}}
        tiny = {"name": "tiny-ar", "fid": 120.0, "style_consistency": 0.6, "styles_covered": 14, "styles_total": 14,
                "top_style_share": 0.1, "attribute_accuracy": 0.6}
        out = {}
        _quality_targets(report, tiny, lambda target, measured, ok, note: out.__setitem__(target.split(" (")[0], (measured, ok, note)))
        return out

    good = targets(0.93)
    assert good["style_consistency / retrieval >= 0.8"][:2] == ("0.67", False)
    assert good["styles covered: all, top style share <= 0.25"][1] is True
    blind = targets(0.09)
    for name in ("style_consistency / retrieval >= 0.8", "styles covered: all, top style share <= 0.25"):
        measured, ok, note = blind[name]
        assert measured is None and ok is None and "0.09" in note and "chance 0.07" in note
    assert targets(0.30)["style_consistency / retrieval >= 0.8"][1] is None  # 0.30 < 1/14 + 0.25 * 13/14 = 0.304
    assert targets(0.31)["style_consistency / retrieval >= 0.8"][1] is False
    measured, ok, note = targets(0.93, retrieval=0.0)["style_consistency / retrieval >= 0.8"]
    assert measured is None and "is 0" in note


def test_a_style_only_the_test_paintings_have_is_not_scored_against(small_corpus, tmp_path):
    """A style no labelled train painting has: the judge cannot name it, so its test paintings
    are left out of validation and style_consistency like unlabelled ones, and the report names it."""
    from bench.run import BenchConfig, _prepare

    ws = Workspace(tmp_path)
    dd = load_corpus(small_corpus / "data")
    gone = sorted(set(dd["test"]["style"]))[0]
    dd["train"] = dd["train"].map(lambda row: {"style": UNLABELLED_STYLE if row["style"] == gone else row["style"]})
    dd.save_to_disk(str(ws.data))
    cfg = BenchConfig(threads=1, captions=12, real_images=0, kid_subsets=3, labels="gt",
                      style=StyleJudgeConfig(epochs=1, min_steps=0), show_progress=False).resolved()
    ctx = _prepare(ws, cfg, None)
    test_styles = ctx.test_ds["style"]
    assert gone not in ctx.style.styles and ctx.style_report["styles_only_in_test"] == [gone]
    assert ctx.style_report["n_test"] == sum(s != gone for s in test_styles)
    assert ctx.style_report["captions_judged"] == sum(test_styles[i] != gone for i in ctx.cap_idx)
    assert all(s != gone for s in ctx.caption_styles)


def test_the_report_tabulates_and_plots_style_consistency_per_prompted_style(tmp_path):
    from bench.report import render_markdown, write_reports

    metric = StyleConsistency(_Named())
    images = np.zeros((6, 2, 2, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = [0, 0, 1, 0, 1, 3]  # a a b a b d
    shipped = json.loads((Path(__file__).parents[1] / "artgen/assets/tiny/bench/report.json").read_text())
    metric.update(images, ["a", "a", "b", "b", "c", "d"])
    row = {**shipped["rows"][0], "name": "tiny-ar", **metric.compute()}
    metric.reset()
    metric.update(images[[0, 1, 2, 2, 0, 5]], ["a", "a", "b", "b", "c", "d"])  # a a b b a d
    ref = {"name": "retrieval", **metric.compute()}
    report = {**shipped, "rows": [row], "references": [ref],
              "style_judge": {**shipped["style_judge"], "per_style": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}}}
    md = render_markdown(report)
    table = md.split("## Style consistency by prompted style")[1].split("\n\n## ")[0]
    assert "| prompted style | captions | judge on real test | tiny-ar | retrieval |" in table
    assert "| b | 2 | 0.80 | 0.50 | 1.00 |" in table and "| c | 1 | 0.70 | 0.00 | 0.00 |" in table
    assert "| d | 1 | 0.60 | 1.00 | 1.00 |" in table
    write_reports(report, {}, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "Style consistency by prompted style" in page and 'alt="style confusion: tiny-ar"' in page
