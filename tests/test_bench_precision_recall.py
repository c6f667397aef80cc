"""Precision and recall (Kynkäänniemi et al. 2019, k = 3) on feature sets whose answer is known."""

import numpy as np
import pytest

from bench.quality import PrecisionRecall


def _cluster(center: float, n: int, seed: int, dim: int = 16) -> np.ndarray:
    return center + np.random.default_rng(seed).normal(size=(n, dim))


def test_a_set_against_itself_is_fully_precise_and_fully_recalled():
    real = _cluster(0.0, 200, seed=0)
    metric = PrecisionRecall(real, k=3)
    metric.update(real[:120])
    metric.update(real[120:])  # updates accumulate, as in torchmetrics
    assert metric.compute() == {"precision": 1.0, "recall": 1.0, "pr_k": 3}


def test_disjoint_clusters_score_zero_and_reset_forgets_the_fake_set():
    real = _cluster(0.0, 200, seed=0)
    metric = PrecisionRecall(real)
    metric.update(_cluster(50.0, 150, seed=1))
    out = metric.compute()
    assert out["precision"] == pytest.approx(0.0, abs=0.01) and out["recall"] == pytest.approx(0.0, abs=0.01)
    metric.reset()
    metric.update(_cluster(0.0, 150, seed=2))  # another sample of the real distribution
    out = metric.compute()
    assert out["precision"] > 0.8 and out["recall"] > 0.8


def test_repetitive_and_unrealistic_sets_read_differently():
    real = _cluster(0.0, 300, seed=0)
    metric = PrecisionRecall(real)
    # realistic but repetitive: 150 images close to 5 real ones
    repetitive = np.repeat(real[:5], 30, axis=0) + 0.01 * np.random.default_rng(3).normal(size=(150, 16))
    metric.update(repetitive)
    out = metric.compute()
    assert out["precision"] > 0.9 and out["recall"] < 0.2
    # varied but unrealistic: around the same centre, three times as spread out
    metric.reset()
    metric.update(3 * _cluster(0.0, 300, seed=4))
    out = metric.compute()
    assert out["precision"] < 0.2 and out["recall"] > 0.5


def test_too_few_samples_are_an_error():
    with pytest.raises(ValueError, match="more than k = 3"):
        PrecisionRecall(np.zeros((3, 4)))
    metric = PrecisionRecall(_cluster(0.0, 10, seed=0, dim=4))
    metric.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="more than k = 3 generated"):
        metric.compute()
