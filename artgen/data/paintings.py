"""Procedural abstract paintings: one drawing function per style, each driven by shared
palette / density / contrast / texture / symmetry parameters, and the ground-truth
adjectives that follow from the parameters that drew the picture.

`paint(seed, index, size)` is deterministic: the same (seed, index, size) gives the same
pixels on every machine, because all randomness comes from one numpy Generator seeded with
(seed, index) and drawing happens in integer pixel space with Pillow.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 2  # draw at 2x and downsample: anti-aliased edges at small sizes


@dataclass
class PaintingParams:
    """The knobs shared by every style. Floats are in [0, 1]."""

    style: str
    temperature: str  # "warm" | "cool" | "mixed"
    hue: float  # base hue in degrees
    saturation: float
    value: float  # mean lightness the palette aims for
    contrast: float  # spread of lightness inside the palette
    density: float  # how many elements the style draws
    texture: float  # strength of the canvas grain added at the end
    symmetry: str  # "none" | "mirror" | "quad"
    n_colors: int
    extra: dict = field(default_factory=dict)  # style-specific choices (orientation, ...)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- palette


def _hsv(h_deg: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((h_deg % 360) / 360.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def make_palette(p: PaintingParams, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """`p.n_colors` colours: hues around `p.hue` (spread wide when mixed), lightness spread by contrast."""
    spread = 150.0 if p.temperature == "mixed" else 28.0
    values = np.linspace(p.value - p.contrast / 2, p.value + p.contrast / 2, p.n_colors)
    rng.shuffle(values)
    colors = []
    for i in range(p.n_colors):
        hue = p.hue + rng.uniform(-spread, spread)
        sat = p.saturation + rng.uniform(-0.08, 0.08)
        colors.append(_hsv(hue, sat, float(np.clip(values[i], 0.04, 0.98))))
    return colors


def _sample_params(style: str, rng: np.random.Generator) -> PaintingParams:
    temperature = str(rng.choice(["warm", "cool", "mixed"], p=[0.4, 0.4, 0.2]))
    if temperature == "warm":
        hue = float(rng.uniform(-22, 50))  # reds, oranges, yellows
    elif temperature == "cool":
        hue = float(rng.uniform(170, 260))  # cyans, blues, violets
    else:
        hue = float(rng.uniform(0, 360))
    sat_kind = rng.choice(["vivid", "mid", "muted"], p=[0.4, 0.25, 0.35])
    saturation = {"vivid": rng.uniform(0.72, 0.95), "mid": rng.uniform(0.4, 0.65), "muted": rng.uniform(0.1, 0.3)}[sat_kind]
    val_kind = rng.choice(["bright", "mid", "dark"], p=[0.35, 0.35, 0.3])
    value = {"bright": rng.uniform(0.72, 0.88), "mid": rng.uniform(0.45, 0.62), "dark": rng.uniform(0.14, 0.3)}[val_kind]
    return PaintingParams(
        style=style,
        temperature=temperature,
        hue=round(hue % 360, 2),
        saturation=round(float(saturation), 3),
        value=round(float(value), 3),
        contrast=round(float(rng.uniform(0.15, 0.75)), 3),
        density=round(float(rng.uniform(0.0, 1.0)), 3),
        texture=round(float(rng.choice([0.0, rng.uniform(0.05, 0.3), rng.uniform(0.55, 1.0)], p=[0.45, 0.25, 0.3])), 3),
        symmetry="none",
        n_colors=int(rng.integers(3, 6)),
    )


# ---------------------------------------------------------------- noise helpers


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a (cells x cells) random grid upsampled bicubically. (size, size)."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    img = Image.fromarray(grid, "L").resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def fractal_noise(rng: np.random.Generator, size: int, octaves: int = 4, base: int = 3) -> np.ndarray:
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        out += amp * smooth_noise(rng, size, base * 2**o)
        total += amp
        amp *= 0.5
    out /= total
    return (out - out.min()) / max(float(out.max() - out.min()), 1e-6)


def _blend(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a * (1 - t[..., None]) + b * t[..., None]


# ---------------------------------------------------------------- styles
# Each style draws on an (S, S) canvas (S = size * SUPERSAMPLE) and returns an RGB Image.
# It may record its own choices in p.extra and adjust shared params where the style
# demands it (an ink wash is monochrome, an op-art piece is high-contrast).


def color_field(p, rng, S, pal):
    # Rothko: two or three soft-edged rectangles stacked on a ground
    img = Image.new("RGB", (S, S), pal[0])
    d = ImageDraw.Draw(img)
    n = 2 + int(p.density > 0.5)
    margin = int(S * rng.uniform(0.06, 0.12))
    heights = rng.dirichlet(np.ones(n) * 4) * (S - margin * (n + 1))
    y = margin
    for i in range(n):
        h = int(heights[i])
        d.rectangle([margin, y, S - margin, y + h], fill=pal[1 + i % (len(pal) - 1)])
        y += h + margin
    p.extra["bands"] = n
    return img.filter(ImageFilter.GaussianBlur(S * 0.025))


def neoplastic_grid(p, rng, S, pal):
    # Mondrian: a ground, some cells filled with colour, black bars between them
    ground = _hsv(p.hue, 0.05, 0.93)
    img = Image.new("RGB", (S, S), ground)
    d = ImageDraw.Draw(img)
    n_lines = 2 + int(p.density * 5)
    xs = sorted({0, S, *rng.integers(S // 8, S - S // 8, n_lines).tolist()})
    ys = sorted({0, S, *rng.integers(S // 8, S - S // 8, n_lines).tolist()})
    for x0, x1 in zip(xs, xs[1:]):
        for y0, y1 in zip(ys, ys[1:]):
            if rng.random() < 0.35:
                d.rectangle([x0, y0, x1, y1], fill=pal[int(rng.integers(len(pal)))])
    w = max(2, S // 40)
    for x in xs[1:-1]:
        d.rectangle([x - w // 2, 0, x + w // 2, S], fill=(15, 15, 15))
    for y in ys[1:-1]:
        d.rectangle([0, y - w // 2, S, y + w // 2], fill=(15, 15, 15))
    p.extra["lines"] = len(xs) + len(ys) - 4
    p.contrast = max(p.contrast, 0.8)
    return img


def suprematist(p, rng, S, pal):
    # Malevich: a few rotated bars, squares and circles floating on a pale ground
    img = Image.new("RGB", (S, S), _hsv(p.hue, 0.06, 0.94))
    n = 2 + int(p.density * 7)
    angle = rng.uniform(-60, 60)
    for _ in range(n):
        layer = Image.new("RGBA", (S, S), (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        cx, cy = rng.uniform(0.15, 0.85, 2) * S
        color = pal[int(rng.integers(len(pal)))]
        kind = rng.choice(["bar", "square", "circle"], p=[0.5, 0.3, 0.2])
        if kind == "circle":
            r = rng.uniform(0.04, 0.14) * S
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
        else:
            w = rng.uniform(0.1, 0.5) * S
            h = w * (rng.uniform(0.08, 0.25) if kind == "bar" else rng.uniform(0.8, 1.2))
            d.rectangle([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=color)
            layer = layer.rotate(angle + rng.uniform(-15, 15), center=(cx, cy), resample=Image.BICUBIC)
        img.paste(layer, (0, 0), layer)
    p.extra["shapes"] = n
    return img


def concentric_circles(p, rng, S, pal):
    img = Image.new("RGB", (S, S), pal[0])
    d = ImageDraw.Draw(img)
    rings = 3 + int(p.density * 9)
    centered = rng.random() < 0.7
    cx, cy = (S / 2, S / 2) if centered else tuple(rng.uniform(0.3, 0.7, 2) * S)
    r_max = S * rng.uniform(0.45, 0.75)
    for i in range(rings):
        r = r_max * (1 - i / rings)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=pal[(i + 1) % len(pal)])
    p.extra.update(rings=rings, centered=bool(centered))
    return img


def drip(p, rng, S, pal):
    # Pollock: random-walk skeins of paint and splatter over a ground
    img = Image.new("RGB", (S, S), pal[0])
    d = ImageDraw.Draw(img)
    strokes = 6 + int(p.density * 40)
    for _ in range(strokes):
        color = pal[1 + int(rng.integers(len(pal) - 1))]
        pos = rng.uniform(0, S, 2)
        heading = rng.uniform(0, 2 * math.pi)
        pts = [tuple(pos)]
        for _ in range(int(rng.integers(8, 30))):
            heading += rng.normal(0, 0.6)
            pos = pos + np.array([math.cos(heading), math.sin(heading)]) * rng.uniform(2, 8) * S / 128
            pts.append(tuple(pos))
        d.line(pts, fill=color, width=int(rng.integers(1, 4)) * S // 128 + 1, joint="curve")
    for _ in range(int(strokes * 3)):
        x, y = rng.uniform(0, S, 2)
        r = rng.exponential(1.2) * S / 128 + 0.5
        d.ellipse([x - r, y - r, x + r, y + r], fill=pal[1 + int(rng.integers(len(pal) - 1))])
    p.extra["strokes"] = strokes
    return img


def hard_edge_stripes(p, rng, S, pal):
    orientation = str(rng.choice(["vertical", "horizontal", "diagonal", "chevron"]))
    n = 4 + int(p.density * 14)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    coord = {"vertical": xx, "horizontal": yy, "diagonal": (xx + yy) / 2,
             "chevron": np.abs(xx - 0.5) + yy / 2}[orientation]
    idx = np.floor(coord * n).astype(int) % len(pal)
    arr = np.array(pal, np.uint8)[idx]
    p.extra.update(orientation=orientation, stripes=n)
    return Image.fromarray(arr, "RGB")


def op_art_waves(p, rng, S, pal):
    # Bridget Riley: high-contrast stripes bent by sine waves
    n = 6 + int(p.density * 14)
    amp = rng.uniform(0.02, 0.08)
    freq = rng.uniform(1.5, 4)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    horizontal = rng.random() < 0.5
    a, b = (yy, xx) if horizontal else (xx, yy)
    phase = a + amp * np.sin(2 * np.pi * freq * b + rng.uniform(0, 6.28))
    band = (np.floor(phase * n).astype(int) % 2).astype(np.float32)
    c0 = np.array(_hsv(p.hue, p.saturation, 0.08), np.float32)
    c1 = np.array(_hsv(p.hue + rng.uniform(-40, 40), p.saturation * 0.6, 0.93), np.float32)
    p.contrast = 0.9
    p.extra.update(stripes=n, horizontal=bool(horizontal))
    return Image.fromarray(_blend(c0, c1, band).astype(np.uint8), "RGB")


def gradient(p, rng, S, pal):
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    radial = rng.random() < 0.4
    if radial:
        t = np.sqrt((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.71
    else:
        ang = rng.uniform(0, 2 * math.pi)
        t = (xx - 0.5) * math.cos(ang) + (yy - 0.5) * math.sin(ang)
        t = (t - t.min()) / (t.max() - t.min())
    c = [np.array(x, np.float32) for x in pal[:3]]
    lo = _blend(c[0], c[1], np.clip(t * 2, 0, 1))
    out = _blend(lo, c[2], np.clip(t * 2 - 1, 0, 1))
    p.extra["radial"] = bool(radial)
    return Image.fromarray(out.astype(np.uint8), "RGB")


def shards(p, rng, S, pal):
    # Cubist shards: random triangles filling the canvas
    img = Image.new("RGB", (S, S), pal[0])
    d = ImageDraw.Draw(img)
    n = 8 + int(p.density * 50)
    for _ in range(n):
        c = rng.uniform(-0.1, 1.1, 2) * S
        pts = [tuple(c + rng.normal(0, S * 0.15, 2)) for _ in range(3)]
        d.polygon(pts, fill=pal[int(rng.integers(len(pal)))])
    p.extra["shards"] = n
    return img


def organic_blobs(p, rng, S, pal):
    # Arp / Miro: soft biomorphic blobs from thresholded smooth noise
    img = np.empty((S, S, 3), np.float32)
    img[:] = pal[0]
    layers = 1 + int(p.density * 3)
    for i in range(layers):
        field = smooth_noise(rng, S, int(rng.integers(3, 6)))
        mask = np.clip((field - rng.uniform(0.55, 0.7)) * 40, 0, 1)
        img = _blend(img, np.array(pal[1 + i % (len(pal) - 1)], np.float32), mask)
    p.extra["layers"] = layers
    return Image.fromarray(img.astype(np.uint8), "RGB")


def ink_wash(p, rng, S, pal):
    # sumi-e style wash: one hue, fractal noise shading from paper to ink
    p.saturation = min(p.saturation, 0.25)
    t = fractal_noise(rng, S, octaves=4, base=2)
    t = np.clip((t - 0.5) * (1 + 3 * p.contrast) + 0.5, 0, 1)
    paper = np.array(_hsv(p.hue, p.saturation * 0.4, min(0.97, p.value + 0.3)), np.float32)
    ink = np.array(_hsv(p.hue, p.saturation, max(0.05, p.value - 0.35)), np.float32)
    out = _blend(paper, ink, t)
    return Image.fromarray(out.astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(S / 90))


def dots(p, rng, S, pal):
    img = Image.new("RGB", (S, S), pal[0])
    d = ImageDraw.Draw(img)
    grid = rng.random() < 0.5
    n = 4 + int(p.density * 10)
    if grid:
        step = S / n
        r = step * rng.uniform(0.2, 0.42)
        for i in range(n):
            for j in range(n):
                cx, cy = (i + 0.5) * step, (j + 0.5) * step
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=pal[1 + int(rng.integers(len(pal) - 1))])
    else:
        for _ in range(n * n // 2):
            cx, cy = rng.uniform(0, S, 2)
            r = rng.uniform(0.015, 0.06) * S
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=pal[1 + int(rng.integers(len(pal) - 1))])
    p.extra.update(grid=bool(grid), per_side=n)
    return img


def mosaic(p, rng, S, pal):
    # tiles of colour on a regular grid, each a little jittered
    n = 3 + int(p.density * 9)
    base = rng.integers(len(pal), size=(n, n))
    arr = np.array(pal, np.float32)[base]
    arr += rng.normal(0, 10, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").resize((S, S), Image.NEAREST)
    p.extra["tiles"] = n
    return img


def arcs(p, rng, S, pal):
    # Kandinsky-like sweeping arcs of thick colour
    img = Image.new("RGB", (S, S), pal[0])
    d = ImageDraw.Draw(img)
    n = 3 + int(p.density * 12)
    for _ in range(n):
        cx, cy = rng.uniform(-0.2, 1.2, 2) * S
        r = rng.uniform(0.15, 0.6) * S
        start = rng.uniform(0, 360)
        d.arc([cx - r, cy - r, cx + r, cy + r], start, start + rng.uniform(60, 200),
              fill=pal[1 + int(rng.integers(len(pal) - 1))], width=int(rng.uniform(0.015, 0.05) * S))
    p.extra["arcs"] = n
    return img


STYLES: dict[str, Callable] = {f.__name__: f for f in (
    color_field, neoplastic_grid, suprematist, concentric_circles, drip, hard_edge_stripes,
    op_art_waves, gradient, shards, organic_blobs, ink_wash, dots, mosaic, arcs,
)}

# Styles a mirror / four-fold symmetry suits (a stripe or gradient mirrored looks the same).
_SYMMETRY_STYLES = {"suprematist", "drip", "shards", "organic_blobs", "dots", "arcs", "mosaic"}

# What each style shows, with how salient it is (0..1). Temperature is ranked 0.9, so a
# warm palette always lands in the labels; these stay at or below 0.95.
_STYLE_ADJECTIVES: dict[str, list[tuple[str, float]]] = {
    "color_field": [("horizontal", 0.75), ("calm", 0.75), ("blocky", 0.6)],
    "neoplastic_grid": [("geometric", 0.95), ("blocky", 0.7), ("contrasting", 0.6)],
    "suprematist": [("geometric", 0.95), ("diagonal", 0.7)],
    "concentric_circles": [("circular", 0.95), ("rhythmic", 0.55)],
    "drip": [("splattered", 0.95), ("chaotic", 0.75), ("energetic", 0.55)],
    "hard_edge_stripes": [("linear", 0.95), ("geometric", 0.75)],
    "op_art_waves": [("wavy", 0.95), ("contrasting", 0.85), ("rhythmic", 0.6)],
    "gradient": [("gradient", 0.95), ("smooth", 0.8), ("calm", 0.7)],
    "shards": [("fragmented", 0.95), ("angular", 0.75)],
    "organic_blobs": [("organic", 0.95), ("curved", 0.7)],
    "ink_wash": [("fluid", 0.95), ("monochrome", 0.85), ("hazy", 0.6)],
    "dots": [("dotted", 0.95), ("circular", 0.6), ("playful", 0.5)],
    "mosaic": [("blocky", 0.95), ("repetitive", 0.7), ("geometric", 0.55)],
    "arcs": [("curved", 0.95), ("energetic", 0.6)],
}

# Styles whose element count is set by density (so "dense"/"minimal" describe them).
_DENSITY_STYLES = {"suprematist", "drip", "shards", "dots", "arcs", "mosaic", "neoplastic_grid"}


def ground_truth_adjectives(p: PaintingParams) -> list[str]:
    """3-5 vocabulary adjectives that follow from the parameters, most salient first."""
    scores: dict[str, float] = {}

    def add(word: str, score: float) -> None:
        scores[word] = max(scores.get(word, 0.0), score)

    for word, s in _STYLE_ADJECTIVES[p.style]:
        add(word, s)
    if p.temperature in ("warm", "cool"):
        add(p.temperature, 0.9)
    elif p.saturation >= 0.4:
        add("colorful", 0.6)
    if p.saturation >= 0.7:
        add("vivid", 0.85)
    elif p.saturation <= 0.32:
        add("muted", 0.82)
    if p.value >= 0.7:
        add("bright", 0.78)
    elif p.value <= 0.32:
        add("dark", 0.8)
    if p.symmetry != "none":
        add("symmetric", 0.88)
    if p.texture >= 0.5:
        add("textured", 0.76)
    if p.style in _DENSITY_STYLES:
        if p.density >= 0.8:
            add("dense", 0.7)
        elif p.density <= 0.15:
            add("minimal", 0.7)
    if p.contrast >= 0.8:
        add("contrasting", 0.6)
    if p.texture >= 0.3:
        scores.pop("smooth", None)  # grain was added on top of a smooth style
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    chosen = [w for w, s in ranked if s >= 0.5][:5]
    for w, _ in ranked:  # fewer than 3 salient: fill from the rest
        if len(chosen) >= 3:
            break
        if w not in chosen:
            chosen.append(w)
    return chosen


# ---------------------------------------------------------------- finishing


def _apply_symmetry(img: np.ndarray, mode: str) -> np.ndarray:
    h, w = img.shape[:2]
    if mode in ("mirror", "quad"):
        img[:, w - w // 2:] = img[:, : w // 2][:, ::-1]
    if mode == "quad":
        img[h - h // 2:] = img[: h // 2][::-1]
    return img


def _apply_texture(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Canvas grain: fine noise plus a faint weave, scaled by `strength`."""
    if strength <= 0:
        return img
    h, w = img.shape[:2]
    grain = rng.normal(0, 1, (h, w, 1)).astype(np.float32) * 13 * strength
    yy, xx = np.mgrid[0:h, 0:w]
    weave = ((xx + yy) % 2 * 2 - 1)[..., None].astype(np.float32) * 5 * strength
    return np.clip(img.astype(np.float32) + grain + weave, 0, 255).astype(np.uint8)


def paint(seed: int, index: int, size: int = 64) -> tuple[np.ndarray, PaintingParams, list[str]]:
    """Draw painting `index` of corpus `seed`: (H, W, 3) uint8 pixels, params, adjectives."""
    rng = np.random.default_rng([seed, index])
    names = list(STYLES)
    style = names[int(rng.integers(len(names)))]
    p = _sample_params(style, rng)
    if style in _SYMMETRY_STYLES and rng.random() < 0.3:
        p.symmetry = str(rng.choice(["mirror", "quad"]))
    pal = make_palette(p, rng)
    S = size * SUPERSAMPLE
    canvas = STYLES[style](p, rng, S, pal)
    img = np.asarray(canvas.resize((size, size), Image.BOX), dtype=np.uint8).copy()
    img = _apply_symmetry(img, p.symmetry)
    img = _apply_texture(img, p.texture, rng)
    return img, p, ground_truth_adjectives(p)
