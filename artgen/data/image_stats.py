"""Measured image statistics: colour, value, contrast, edges, symmetry, texture, rhythm.

`image_statistics(pixels)` gives one painting's statistics as a dict of named floats;
`statistics_matrix(images)` gives an (N, F) float32 matrix in `STAT_NAMES` order for many
paintings at once (the offline annotator and the bench's attribute classifier use it).
Everything is vectorised over a batch of same-sized images, so a 64 px corpus of ~10k
paintings is measured in seconds. Statistics depend only on pixels and are (mostly)
independent of the image size.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

# Hue ranges (degrees) counted as warm and cool: reds through yellows, cyans through violets.
WARM_HUES = (310.0, 80.0)  # wraps around 0
COOL_HUES = (140.0, 290.0)
HUE_BINS = 12
EDGE_THRESHOLD = 0.08  # gradient magnitude (lightness units per pixel) that counts as an edge
FLAT_THRESHOLD = 0.02

STAT_NAMES: tuple[str, ...] = (
    # colour and temperature (chroma-weighted hue statistics)
    *(f"hue_hist_{i:02d}" for i in range(HUE_BINS)),
    "warm_fraction", "cool_fraction", "warm_cool_balance", "hue_concentration", "hue_entropy",
    "chroma_mean", "chromatic_fraction",
    # saturation and value (HSV) and lightness (luma)
    "saturation_mean", "saturation_std", "saturation_p90",
    "value_mean", "value_std", "value_p10", "value_p90",
    "lightness_mean", "dark_fraction", "light_fraction",
    # contrast
    "contrast_rms", "contrast_range",
    # edges and their orientation
    "edge_density", "edge_strength", "flat_fraction",
    "edges_vertical", "edges_horizontal", "edges_diagonal", "orientation_entropy", "axis_alignment",
    "radial_alignment",
    # colours
    "colour_count", "palette_entropy",
    # symmetry (correlation with the mirrored image, and how exact the mirror is)
    "symmetry_lr", "symmetry_ud", "symmetry_rot", "mirror_error_lr", "mirror_error_ud",
    # texture
    "texture_energy", "fine_grain", "laplacian_energy",
    # layout and rhythm
    "row_structure", "column_structure", "diagonal_structure", "block_structure",
    "spectral_low", "spectral_high", "spectral_peak", "extrema_density",
    "centre_contrast",
)
STAT_INDEX = {name: i for i, name in enumerate(STAT_NAMES)}


def _box3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur over the last two axes with edge padding. (N, H, W) -> (N, H, W)"""
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows = p[:, :-2] + p[:, 1:-1] + p[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation per image of two (N, P) arrays."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 1e-9, (a * b).sum(1) / np.maximum(den, 1e-9), 1.0)


def _explained(x: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Share of the pixel variance of x (N, P, C) explained by group means (groups: (P,) ids)."""
    n, p, c = x.shape
    flat = x - x.mean(1, keepdims=True)
    total = (flat ** 2).sum((1, 2))
    counts = np.bincount(groups, minlength=n_groups).astype(np.float32)
    # (N, C, G) group sums with one bincount (no BLAS: its threads fight other work for the CPU)
    vals = flat.transpose(0, 2, 1).reshape(n * c, p)
    idx = (groups[None, :] + n_groups * np.arange(n * c)[:, None]).ravel()
    sums = np.bincount(idx, weights=vals.ravel(), minlength=n * c * n_groups).reshape(n, c, n_groups)
    between = ((sums ** 2) / np.maximum(counts, 1.0)).sum((1, 2))
    return np.where(total > 1e-9, between / np.maximum(total, 1e-9), 0.0)


def _batch_statistics(pixels: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, F) float32 in STAT_NAMES order."""
    n, h, w, _ = pixels.shape
    x = pixels.astype(np.float32) / 255.0  # (N, H, W, 3)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = x.max(-1), x.min(-1)
    chroma = mx - mn  # (N, H, W)
    sat = np.where(mx > 1e-6, chroma / np.maximum(mx, 1e-6), 0.0)
    val = mx
    # hue in degrees, standard HSV formula
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(mx == r, ((g - b) / safe) % 6.0, np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    hue = np.where(chroma > 1e-6, hue, 0.0)
    out: dict[str, np.ndarray] = {}

    cw = chroma.reshape(n, -1)
    hflat = hue.reshape(n, -1)
    csum = cw.sum(1)
    ok = csum > 1e-6
    bins = np.minimum((hflat / (360.0 / HUE_BINS)).astype(np.int64), HUE_BINS - 1)
    hist = np.zeros((n, HUE_BINS), np.float32)
    for k in range(HUE_BINS):
        hist[:, k] = (cw * (bins == k)).sum(1)
    hist = np.where(ok[:, None], hist / np.maximum(csum, 1e-6)[:, None], 0.0)
    for k in range(HUE_BINS):
        out[f"hue_hist_{k:02d}"] = hist[:, k]
    warm = (hflat >= WARM_HUES[0]) | (hflat < WARM_HUES[1])
    cool = (hflat >= COOL_HUES[0]) & (hflat < COOL_HUES[1])
    out["warm_fraction"] = np.where(ok, (cw * warm).sum(1) / np.maximum(csum, 1e-6), 0.0)
    out["cool_fraction"] = np.where(ok, (cw * cool).sum(1) / np.maximum(csum, 1e-6), 0.0)
    out["warm_cool_balance"] = out["warm_fraction"] - out["cool_fraction"]
    rad = np.deg2rad(hflat)
    out["hue_concentration"] = np.where(
        ok, np.hypot((cw * np.cos(rad)).sum(1), (cw * np.sin(rad)).sum(1)) / np.maximum(csum, 1e-6), 1.0)
    p = np.clip(hist, 1e-9, 1.0)
    out["hue_entropy"] = np.where(ok, -(hist * np.log(p)).sum(1) / np.log(HUE_BINS), 0.0)
    out["chroma_mean"] = cw.mean(1)
    out["chromatic_fraction"] = ((sat > 0.2) & (val > 0.2)).reshape(n, -1).mean(1)

    sflat, vflat = sat.reshape(n, -1), val.reshape(n, -1)
    out["saturation_mean"], out["saturation_std"] = sflat.mean(1), sflat.std(1)
    out["saturation_p90"] = np.quantile(sflat, 0.9, axis=1)
    out["value_mean"], out["value_std"] = vflat.mean(1), vflat.std(1)
    out["value_p10"], out["value_p90"] = np.quantile(vflat, [0.1, 0.9], axis=1)

    lum = 0.299 * r + 0.587 * g + 0.114 * b  # (N, H, W)
    lflat = lum.reshape(n, -1)
    out["lightness_mean"] = lflat.mean(1)
    out["dark_fraction"] = (lflat < 0.25).mean(1)
    out["light_fraction"] = (lflat > 0.75).mean(1)
    out["contrast_rms"] = lflat.std(1)
    q05, q95 = np.quantile(lflat, [0.05, 0.95], axis=1)
    out["contrast_range"] = q95 - q05

    # Edges on a lightly blurred image, so canvas grain does not count as structure.
    sm = _box3(lum)
    gx = sm[:, 1:-1, 2:] - sm[:, 1:-1, :-2]  # (N, H-2, W-2)
    gy = sm[:, 2:, 1:-1] - sm[:, :-2, 1:-1]
    mag = np.hypot(gx, gy)
    mflat = mag.reshape(n, -1)
    edge = mflat > EDGE_THRESHOLD
    out["edge_density"] = edge.mean(1)
    out["edge_strength"] = mflat.mean(1)
    out["flat_fraction"] = (mflat < FLAT_THRESHOLD).mean(1)
    ang = np.arctan2(gy, gx).reshape(n, -1) % np.pi  # gradient direction in [0, pi)
    wgt = mflat * edge
    wsum = np.maximum(wgt.sum(1), 1e-6)
    obin = np.round(ang / (np.pi / 8)).astype(np.int64) % 8  # 8 bins of 22.5 degrees
    ohist = np.stack([(wgt * (obin == k)).sum(1) for k in range(8)], 1) / wsum[:, None]
    # a gradient along x (bin 0) marks a vertical edge; along y (bin 4) a horizontal one
    out["edges_vertical"] = ohist[:, 0]
    out["edges_horizontal"] = ohist[:, 4]
    out["edges_diagonal"] = ohist[:, 2] + ohist[:, 6]
    op = np.clip(ohist, 1e-9, 1.0)
    out["orientation_entropy"] = -(ohist * np.log(op)).sum(1) / np.log(8)
    axis = (np.minimum(ang % (np.pi / 2), np.pi / 2 - ang % (np.pi / 2)) < np.deg2rad(8)).astype(np.float32)
    out["axis_alignment"] = (wgt * axis).sum(1) / wsum
    # concentric structure: gradients pointing to / from the brightest-structure centre
    yy, xx = np.mgrid[1:h - 1, 1:w - 1].astype(np.float32)
    cy = (wgt.reshape(n, h - 2, w - 2) * yy).sum((1, 2)) / wsum
    cx = (wgt.reshape(n, h - 2, w - 2) * xx).sum((1, 2)) / wsum
    dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
    dn = np.maximum(np.hypot(dx, dy), 1e-6)
    cosang = np.abs(gx * dx + gy * dy) / (dn * np.maximum(mag, 1e-6))
    out["radial_alignment"] = (wgt * cosang.reshape(n, -1)).sum(1) / wsum

    # colours: 4 levels per channel (64 bins) of the blurred image
    q = np.minimum((x * 4).astype(np.int64), 3)
    idx = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(n, -1)
    counts = np.bincount((idx + 64 * np.arange(n)[:, None]).ravel(), minlength=64 * n).reshape(n, 64)
    frac = counts / float(h * w)
    out["colour_count"] = (frac >= 0.01).sum(1).astype(np.float32)
    fp = np.clip(frac, 1e-12, 1.0)
    out["palette_entropy"] = -(frac * np.log(fp)).sum(1) / np.log(64)

    smf = sm.reshape(n, -1)
    out["symmetry_lr"] = _corr(smf, sm[:, :, ::-1].reshape(n, -1))
    out["symmetry_ud"] = _corr(smf, sm[:, ::-1, :].reshape(n, -1))
    out["symmetry_rot"] = _corr(smf, sm[:, ::-1, ::-1].reshape(n, -1))
    # exactness of a mirror: mismatch relative to the image's own spread (0 = exact mirror)
    spread = np.maximum(np.abs(smf - smf.mean(1, keepdims=True)).mean(1), 1e-3)
    out["mirror_error_lr"] = np.abs(sm - sm[:, :, ::-1]).reshape(n, -1).mean(1) / spread
    out["mirror_error_ud"] = np.abs(sm - sm[:, ::-1, :]).reshape(n, -1).mean(1) / spread

    resid = (lum - sm).reshape(n, -1)
    out["texture_energy"] = np.median(np.abs(resid), axis=1)
    checker = ((np.add.outer(np.arange(h), np.arange(w)) % 2) * 2 - 1).astype(np.float32).reshape(-1)
    out["fine_grain"] = np.abs(((lflat - lflat.mean(1, keepdims=True)) * checker).sum(1)) / (h * w)
    lap = 4 * lum[:, 1:-1, 1:-1] - lum[:, :-2, 1:-1] - lum[:, 2:, 1:-1] - lum[:, 1:-1, :-2] - lum[:, 1:-1, 2:]
    out["laplacian_energy"] = np.abs(lap).reshape(n, -1).mean(1)

    # layout: how much colour variance is explained by rows, columns, diagonals, 8x8 blocks
    xc = x.reshape(n, h * w, 3)
    ys, xs = np.divmod(np.arange(h * w), w)
    out["row_structure"] = _explained(xc, ys, h)
    out["column_structure"] = _explained(xc, xs, w)
    d1 = _explained(xc, ys + xs, h + w - 1)
    d2 = _explained(xc, ys - xs + w - 1, h + w - 1)
    out["diagonal_structure"] = np.maximum(d1, d2)
    bs = max(h // 8, 1)
    blocks = (ys // bs) * ((w + bs - 1) // bs) + xs // bs
    out["block_structure"] = _explained(xc, blocks, int(blocks.max()) + 1)

    spec = np.abs(np.fft.rfft2(lum - lum.mean((1, 2), keepdims=True))) ** 2  # (N, H, W//2+1)
    fy = np.abs(np.fft.fftfreq(h))[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    fr = np.hypot(fy, fx)  # cycles per pixel
    total = np.maximum(spec.sum((1, 2)), 1e-9)
    out["spectral_low"] = (spec * (fr <= 2.5 / max(h, w))).sum((1, 2)) / total
    out["spectral_high"] = (spec * (fr >= 0.25)).sum((1, 2)) / total
    out["spectral_peak"] = spec.reshape(n, -1).max(1) / total

    c = sm[:, 1:-1, 1:-1]
    nb = np.stack([sm[:, :-2, 1:-1], sm[:, 2:, 1:-1], sm[:, 1:-1, :-2], sm[:, 1:-1, 2:]], 0)
    is_ext = ((c > nb.max(0) + 0.01) | (c < nb.min(0) - 0.01))
    out["extrema_density"] = is_ext.reshape(n, -1).mean(1) * 100.0

    ch, cw_ = h // 4, w // 4
    centre = x[:, ch:h - ch, cw_:w - cw_].reshape(n, -1, 3).mean(1)
    border_mask = np.ones((h, w), bool)
    border_mask[ch:h - ch, cw_:w - cw_] = False
    border = x[:, border_mask].mean(1)
    out["centre_contrast"] = np.abs(centre - border).sum(1)

    return np.stack([np.asarray(out[k], np.float32) for k in STAT_NAMES], 1)


def image_statistics(pixels: np.ndarray) -> dict[str, float]:
    """Named statistics of one painting: pixels (H, W, 3) uint8 -> {name: float}."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 8:
        raise ValueError(f"expected (H, W, 3) pixels with H, W >= 8, got shape {pixels.shape}")
    row = _batch_statistics(pixels.astype(np.uint8)[None])[0]
    return {k: float(v) for k, v in zip(STAT_NAMES, row)}


def statistics_matrix(images: Iterable[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """(N, F) float32 statistics in STAT_NAMES order; images are (H, W, 3) uint8 arrays.

    Images of the same size are measured in batches; mixed sizes are fine.
    """
    images = [np.asarray(im, np.uint8) for im in images]
    out = np.zeros((len(images), len(STAT_NAMES)), np.float32)
    by_shape: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        if im.ndim != 3 or im.shape[2] != 3 or min(im.shape[:2]) < 8:
            raise ValueError(f"image {i}: expected (H, W, 3) pixels with H, W >= 8, got shape {im.shape}")
        by_shape.setdefault(im.shape, []).append(i)
    for idx in by_shape.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            out[chunk] = _batch_statistics(np.stack([images[i] for i in chunk]))
    return out
