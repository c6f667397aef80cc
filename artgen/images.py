"""Laying generated images out and encoding them as PNG (numpy + Pillow, no torch): the one
grid of `artgen generate`, the shipped-model path, the demo and `artgen serve`."""

from __future__ import annotations

import io
import math

import numpy as np


def image_grid(images: np.ndarray, columns: int, pad: int = 2) -> np.ndarray:
    """(rows*H, columns*W, 3) uint8 grid of (B, H, W, 3) images on a white background."""
    B, H, W, _ = images.shape
    rows = math.ceil(B / columns)
    grid = np.full((rows * (H + pad) + pad, columns * (W + pad) + pad, 3), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        grid[pad + r * (H + pad): pad + r * (H + pad) + H, pad + c * (W + pad): pad + c * (W + pad) + W] = im
    return grid


def png_bytes(image, scale: int = 1) -> bytes:
    """An (H, W, 3) uint8 array or a PIL image as PNG bytes, upscaled `scale`x (nearest)."""
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def grid_png(images: np.ndarray, columns: int, scale: int = 2) -> bytes:
    """The PNG `artgen generate` writes: `image_grid` of the images, upscaled `scale`x."""
    return png_bytes(image_grid(images, columns=columns), scale=scale)
