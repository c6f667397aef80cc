"""Measured image statistics: each one moves the way its name says."""
import numpy as np
import pytest

from artgen.data.image_stats import STAT_NAMES, image_statistics, statistics_matrix


def _solid(rgb, size=32):
    return np.tile(np.array(rgb, np.uint8), (size, size, 1))


def test_temperature_saturation_and_value_follow_the_colours():
    red, blue, grey = (image_statistics(_solid(c)) for c in ((220, 40, 20), (30, 60, 210), (120, 120, 120)))
    assert red["warm_fraction"] > 0.9 and red["cool_fraction"] < 0.1
    assert blue["cool_fraction"] > 0.9 and blue["warm_cool_balance"] < -0.9
    assert red["saturation_mean"] > 0.8 > 0.05 > grey["saturation_mean"]
    dark, light = image_statistics(_solid((20, 20, 30))), image_statistics(_solid((240, 235, 230)))
    assert dark["value_mean"] < 0.2 and light["value_mean"] > 0.9 and dark["dark_fraction"] == 1.0


def test_edges_orientation_symmetry_and_texture():
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::8] = 255
    stripes[:, 1::8] = 255
    s = image_statistics(stripes)
    assert s["edges_vertical"] > 0.9 and s["column_structure"] > 0.95 and s["row_structure"] < 0.05
    h = image_statistics(stripes.transpose(1, 0, 2).copy())
    assert h["edges_horizontal"] > 0.9 and h["row_structure"] > 0.95

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mirrored = noise.copy()
    mirrored[:, 16:] = noise[:, :16][:, ::-1]
    assert image_statistics(mirrored)["symmetry_lr"] > 0.95 > 0.3 > image_statistics(noise)["symmetry_lr"]

    flat = _solid((120, 90, 60)).astype(np.int16)
    grainy = np.clip(flat + rng.normal(0, 12, flat.shape), 0, 255).astype(np.uint8)
    assert image_statistics(grainy)["texture_energy"] > 10 * image_statistics(flat.astype(np.uint8))["texture_energy"] + 1e-3


def test_matrix_matches_single_images_for_mixed_sizes():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (s, s, 3), dtype=np.uint8) for s in (32, 48, 32, 16)]
    m = statistics_matrix(images)
    assert m.shape == (4, len(STAT_NAMES)) and m.dtype == np.float32 and np.isfinite(m).all()
    for row, im in zip(m, images):
        np.testing.assert_allclose(row, [image_statistics(im)[k] for k in STAT_NAMES], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        image_statistics(np.zeros((32, 32), np.uint8))
