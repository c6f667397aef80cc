import json

import datasets
import numpy as np
import pytest

from artgen.data.corpus import REFERENCE_COUNT, SynthConfig, decode_image, load_corpus, split_sizes, synthesize
from artgen.data.paintings import STYLES, paint
from artgen.data.vocabulary import BY_WORD
from artgen.errors import ArtgenError


def test_reference_split_and_ratio():
    assert split_sizes(REFERENCE_COUNT) == (7602, 2133)
    train, test = split_sizes(1000)
    assert (train, test) == (781, 219)


def test_at_least_twelve_styles_and_all_drawn():
    assert len(STYLES) >= 12
    drawn = {paint(0, i, 32)[1].style for i in range(300)}
    assert drawn == set(STYLES)


def test_corpus_is_deterministic_and_loadable(small_corpus, tmp_path):
    synthesize(tmp_path / "data", SynthConfig(count=120, size=32, seed=7, workers=2), show_progress=False)
    a = datasets.load_from_disk(str(small_corpus / "data"))
    b = load_corpus(tmp_path / "data")
    assert (len(a["train"]), len(a["test"])) == split_sizes(120)
    for split in ("train", "test"):
        a_img = a[split].cast_column("image", datasets.Image(decode=False))["image"]
        b_img = b[split].cast_column("image", datasets.Image(decode=False))["image"]
        assert [x["bytes"] for x in a_img] == [x["bytes"] for x in b_img]
        assert a[split]["id"] == b[split]["id"]
    other = synthesize(tmp_path / "other", SynthConfig(count=120, size=32, seed=8, workers=1), show_progress=False)
    assert other == {"train": 94, "test": 26}
    c = load_corpus(tmp_path / "other")
    assert decode_image(c["train"][0]["image"]).tobytes() != decode_image(a["train"][0]["image"]).tobytes()


def test_rows_have_columns_and_valid_adjectives(small_corpus):
    ds = load_corpus(small_corpus / "data")["train"]
    assert {"id", "image", "style", "gt_adjectives", "params"} <= set(ds.column_names)
    for row in ds.select(range(30)):
        assert 3 <= len(row["gt_adjectives"]) <= 5
        assert all(a in BY_WORD for a in row["gt_adjectives"])
        assert json.loads(row["params"])["style"] == row["style"]
        assert decode_image(row["image"]).shape == (32, 32, 3)


def test_ground_truth_follows_the_drawing_parameters():
    warm_red_minus_blue, cool_red_minus_blue = [], []
    for i in range(400):
        pixels, p, adjectives = paint(3, i, 32)
        rgb = pixels.reshape(-1, 3).astype(float).mean(0)
        if p.temperature == "warm":
            assert "warm" in adjectives and "cool" not in adjectives
            warm_red_minus_blue.append(rgb[0] - rgb[2])
        if p.temperature == "cool":
            assert "cool" in adjectives and "warm" not in adjectives
            cool_red_minus_blue.append(rgb[0] - rgb[2])
        if p.saturation >= 0.7:
            assert "vivid" in adjectives
        if p.value <= 0.32 and p.style not in ("ink_wash", "op_art_waves", "neoplastic_grid", "suprematist"):
            assert "dark" in adjectives
            assert pixels.mean() < 110
        if p.symmetry != "none":
            assert "symmetric" in adjectives
    # the pixels agree with the labels: warm paintings are redder than cool ones
    assert np.mean(warm_red_minus_blue) > 40 > -40 > np.mean(cool_red_minus_blue)


def test_missing_corpus_names_the_fix(tmp_path):
    with pytest.raises(ArtgenError, match="artgen data synth"):
        load_corpus(tmp_path / "nothing")


def test_bad_synth_arguments(tmp_path):
    with pytest.raises(ArtgenError, match="--count"):
        synthesize(tmp_path / "d", SynthConfig(count=1))
    with pytest.raises(ArtgenError, match="--size"):
        synthesize(tmp_path / "d", SynthConfig(count=10, size=4))
    with pytest.raises(ArtgenError, match=r"--size 50 is not a multiple of 4.*use 48"):
        synthesize(tmp_path / "d", SynthConfig(count=10, size=50))
    assert not (tmp_path / "d").exists()
