"""Attribute classifier and metrics on paintings whose adjectives we know, and the
interpolation smoothness ratio on known walks."""

import numpy as np
import pytest

from artgen.data.vocabulary import HELD_OUT_SYNONYMS, parse_prompt
from bench.attributes import (
    AttributeAccuracy,
    AttributeClassifier,
    AttributeConfig,
    image_features,
    requested_adjectives,
    unseen_pairs,
    unseen_prompts,
)
from bench.interpolation import smoothness


def _warm_cool(n, seed):
    """n paintings, half warm (reds) half cool (blues), with noise; labels say which."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        im = rng.integers(0, 60, size=(16, 16, 3)).astype(np.uint8)
        warm = i % 2 == 0
        im[..., 0 if warm else 2] += np.uint8(150 + rng.integers(0, 40))
        images.append(im)
        labels.append(["warm"] if warm else ["cool"])
    return images, labels


@pytest.fixture(scope="module")
def classifier():
    images, labels = _warm_cool(80, seed=0)
    clf = AttributeClassifier(AttributeConfig(min_positives=10)).fit(image_features(images), labels)
    test_images, test_labels = _warm_cool(40, seed=1)
    clf.validate(image_features(test_images), test_labels)
    return clf


def test_classifier_learns_and_reports_its_own_validation(classifier):
    assert classifier.adjectives == ["cool", "warm"]
    v = classifier.validation
    assert v["n_test"] == 40 and v["per_adjective"]["warm"]["test_positives"] == 20
    assert v["macro"]["accuracy"] > 0.9 and v["macro"]["f1"] > 0.9
    assert classifier.base_rates["warm"] == pytest.approx(0.5, abs=0.1)


def test_attribute_accuracy_counts_found_requested_adjectives(classifier):
    images, _ = _warm_cool(20, seed=2)
    feats = image_features(images)
    metric = AttributeAccuracy(classifier)
    # Ask for what each painting shows: all found. Ask for the opposite: none found.
    metric.update(feats, [["warm"] if i % 2 == 0 else ["cool"] for i in range(20)])
    assert metric.compute()["accuracy"] > 0.9
    metric.reset()
    metric.update(feats, [["cool", "dense"] if i % 2 == 0 else ["warm"] for i in range(20)])
    out = metric.compute()
    assert out["accuracy"] < 0.1
    assert out["judged"] == 20 and out["unjudged"] == 10  # no classifier for "dense"
    assert out["base_rate"] == pytest.approx(0.5, abs=0.1)


def test_too_rare_adjectives_get_no_classifier():
    images, labels = _warm_cool(40, seed=3)
    labels[0] = ["warm", "dotted"]
    clf = AttributeClassifier(AttributeConfig(min_positives=5)).fit(image_features(images), labels)
    assert "dotted" not in clf.adjectives and clf.skipped == {"dotted": 1}
    with pytest.raises(ValueError):
        AttributeClassifier(AttributeConfig(min_positives=50)).fit(image_features(images), labels)


def test_unseen_prompts_use_only_held_out_synonyms_of_the_labels():
    labels = [["warm", "calm", "geometric"], ["hazy"], ["dark", "dense"]]
    prompts = unseen_prompts(labels, n=10, seed=0)
    assert len(prompts) == 2  # "hazy" has no held-out synonym
    for p in prompts:
        parsed = parse_prompt(p)
        assert parsed.held_out and not parsed.in_vocabulary and not parsed.synonyms
        assert set(parsed.held_out) <= set(HELD_OUT_SYNONYMS)
    asked = {tuple(sorted(a)) for a in requested_adjectives(prompts)}
    assert asked == {("calm", "geometric", "warm"), ("dark", "dense")}


def test_unseen_pairs_never_appear_together_in_training():
    train = [["warm", "calm"], ["cool", "chaotic"], ["warm", "geometric"]]
    prompts = unseen_pairs(train, ["warm", "cool", "calm", "chaotic", "geometric"], n=100)
    pairs = {tuple(sorted(p.split(", "))) for p in prompts}
    # warm-cool share a facet; warm-calm, cool-chaotic and warm-geometric were seen together.
    assert pairs == {("calm", "cool"), ("chaotic", "warm"), ("calm", "geometric"),
                     ("chaotic", "geometric"), ("cool", "geometric")}
    assert len(unseen_pairs(train, ["warm", "cool", "calm", "chaotic", "geometric"], n=2)) == 2


def test_smoothness_of_known_walks():
    even = np.outer(np.arange(9), np.ones(4))  # equal steps
    assert smoothness(even)["ratio"] == pytest.approx(1.0)
    jump = np.array([[0.0], [1.0], [2.0], [3.0], [8.0]])  # steps 1, 1, 1, 5
    out = smoothness(jump)
    assert out["steps"] == pytest.approx([1, 1, 1, 5])
    assert out["ratio"] == pytest.approx(5 / 2)
    with pytest.raises(ValueError):
        smoothness(np.zeros((2, 4)))
