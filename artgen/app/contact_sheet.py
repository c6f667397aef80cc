"""Contact sheets: a grid of paintings, each labelled underneath (adjectives or a caption)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from artgen.files import write_output
from artgen.images import png_bytes


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a single bitmap size
        return ImageFont.load_default()


def _wrap(text: str, width_px: int, draw: ImageDraw.ImageDraw, font) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width_px or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines[:2]


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str] | None, columns: int = 8,
                  cell: int = 128, out: Path | None = None) -> Image.Image:
    """Lay (H, W, 3) uint8 images out in a grid, upscaled to `cell` px, labels below each."""
    rows = (len(images) + columns - 1) // columns
    label_h = 30 if labels else 0
    pad = 4
    sheet = Image.new("RGB", (columns * (cell + pad) + pad, rows * (cell + label_h + pad) + pad), (250, 250, 248))
    draw = ImageDraw.Draw(sheet)
    font = _font(11)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        x, y = pad + c * (cell + pad), pad + r * (cell + label_h + pad)
        sheet.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (x, y))
        if labels:
            for i, line in enumerate(_wrap(labels[k], cell, draw, font)):
                draw.text((x, y + cell + 2 + i * 13), line, fill=(30, 30, 30), font=font)
    if out is not None:
        write_output(Path(out), png_bytes(sheet))
    return sheet
