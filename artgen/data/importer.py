"""`artgen data import SOURCE`: real paintings into the corpus format.

SOURCE is an image folder (searched recursively), a dataset saved with `save_to_disk`, or
a Hugging Face hub id. Every image is RGB-converted, centre-cropped and resized; the split
is decided by a hash of the image content, so it does not depend on file order or names
(when a handful of images all hash to one side, the one nearest the split line crosses over).
Unreadable, truncated and empty files are skipped and listed in a log, as are files whose
suffix is not an image's; exact duplicates (same content hash) are dropped. Images are turned
upright by their EXIF orientation, transparent ones laid on white, 16-bit ones scaled to 8 bits.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artgen.data.corpus import TEST_FRACTION, encode_png, save_corpus
from artgen.errors import ArtgenError
from artgen.progress import progress_bar

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass
class ImportReport:
    train: int = 0
    test: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source name, reason)
    log_path: Path | None = None


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB as a viewer shows the file: turned by its EXIF orientation (phone photos),
    16-bit and 32-bit grey scaled to 8 bits (a plain convert clips them to white), and
    transparent pixels laid on white (a plain convert shows whatever colour lies under them)."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        grey = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or grey.max() > 255 else 255.0
        if img.mode == "F":  # floating-point images: their own range
            grey, top = grey - grey.min(), max(float(grey.max() - grey.min()), 1e-12)
        img = Image.fromarray(np.clip(np.rint(grey / top * 255), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


def centre_square(img: Image.Image, size: int) -> Image.Image:
    """RGB (`to_rgb`), centre-cropped to a square, resized to (size, size)."""
    img = to_rgb(img)
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.LANCZOS)


def is_test(content_hash: str) -> bool:
    """Deterministic split from the content hash, in the reference 7,602 : 2,133 ratio."""
    return int(content_hash[:15], 16) / 16**15 < TEST_FRACTION


def _folder_files(folder: Path) -> list[Path]:
    """Every file under `folder`, following linked folders (each real folder once: no loops)."""
    seen, files = set(), []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        files.extend(Path(root) / n for n in names if (Path(root) / n).is_file())
    return sorted(files)


def _folder_items(files: list[Path], folder: Path) -> Iterator[tuple[str, bytes | None | str]]:
    """(name, bytes), or (name, why) for a file that cannot be read (permissions, I/O errors)."""
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as e:
            yield str(path.relative_to(folder)), f"cannot read the file ({type(e).__name__}: {e.strerror or e})"
            continue
        yield str(path.relative_to(folder)), data


def _dataset_items(ds) -> Iterator[tuple[str, bytes | None | str]]:
    """(name, encoded image bytes, None for an empty cell, or why the file cannot be read)
    from a datasets.Dataset with an Image column."""
    import datasets

    splits = ds.items() if isinstance(ds, datasets.DatasetDict) else [("data", ds)]
    for split_name, split in splits:
        column = next((k for k, f in split.features.items() if isinstance(f, datasets.Image)), None)
        if column is None:
            raise ArtgenError(f"the dataset split {split_name!r} has no image column: import a dataset with a `datasets.Image` feature")
        split = split.cast_column(column, datasets.Image(decode=False))
        for i, row in enumerate(split):
            cell = row[column]
            data = cell.get("bytes") if cell else None
            if data is None and cell and cell.get("path"):
                try:
                    data = Path(cell["path"]).read_bytes()
                except OSError as e:
                    data = f"cannot read {cell['path']} ({type(e).__name__}: {e.strerror or e})"
            yield f"{split_name}[{i}]", data


def _open_source(source: str) -> tuple[int | None, Iterator[tuple[str, bytes | None | str]], list[str]]:
    """(item count, items, names of the files left out for their suffix)."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
            import datasets

            ds = datasets.load_from_disk(str(path))
            total = sum(len(s) for s in ds.values()) if isinstance(ds, datasets.DatasetDict) else len(ds)
            return total, _dataset_items(ds), []
        every = _folder_files(path)
        files = [p for p in every if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise ArtgenError(
                f"no images found in {path} (looked recursively for {', '.join(IMAGE_SUFFIXES)}): point at a folder of paintings"
            )
        others = [str(p.relative_to(path)) for p in every if p.suffix.lower() not in IMAGE_SUFFIXES]
        return len(files), _folder_items(files, path), others
    if path.exists():
        raise ArtgenError(f"{path} is a file, not a folder: give an image folder, a saved dataset or a hub id")
    if source.startswith((".", "/", "~")) or "/" not in source:
        raise ArtgenError(f"{source} does not exist: give an image folder, a dataset saved with save_to_disk, or a hub id like user/name")
    return (*_hub_items(source), [])


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_variable() -> str | None:
    """The standard Hugging Face offline variable that is set (to 1/true/yes/on), if any."""
    return next((v for v in OFFLINE_VARIABLES if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")), None)


def _hub_items(hub_id: str) -> tuple[int, Iterator[tuple[str, bytes | None]]]:
    """Load (download, or read from the cache) before any progress is shown: errors come first."""
    import datasets

    offline = offline_variable()
    if offline:  # the local cache only: never a network lookup
        datasets.config.HF_HUB_OFFLINE = True
    try:
        ds = datasets.load_dataset(hub_id)
    except Exception as e:
        if offline:
            raise ArtgenError(f"{hub_id!r} is not in the local Hugging Face cache and {offline}=1 forbids downloading it: "
                              f"unset {offline}, or import a local folder") from None
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ArtgenError(
            f"cannot load {hub_id!r} from the Hugging Face hub ({msg[:160]}): check the id and the network, or download it and import "
            "the folder"
        ) from e
    total = sum(len(s) for s in ds.values()) if isinstance(ds, datasets.DatasetDict) else len(ds)
    return total, _dataset_items(ds)


def import_paintings(source: str, out_dir: Path, log_path: Path, size: int = 64, show_progress: bool = True) -> ImportReport:
    if not 16 <= size <= 1024:
        raise ArtgenError(f"--size must be between 16 and 1024 pixels (got {size})")
    total, items, others = _open_source(source)
    report = ImportReport(log_path=log_path)
    seen: set[str] = set()
    train, test = [], []
    with progress_bar("import paintings", total=total or 0, enabled=show_progress) as advance:
        for name, data in items:
            advance(1)
            if isinstance(data, str):  # why the item could not be read
                report.skipped.append((name, data))
                continue
            if not data:
                report.skipped.append((name, "empty file (0 bytes)" if data == b"" else "no image in this row"))
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                report.duplicates += 1
                continue
            try:
                with Image.open(io.BytesIO(data)) as img:
                    img.load()  # forces a full decode: truncated files fail here
                    pixels = centre_square(img, size)
            except Image.DecompressionBombError as e:  # a pixel count beyond PIL's safety limit
                report.skipped.append((name, f"too large to decode safely ({str(e)[:80]})"))
                continue
            except UnidentifiedImageError:
                report.skipped.append((name, "not an image Pillow can read"))
                continue
            except (OSError, ValueError, SyntaxError, MemoryError) as e:
                report.skipped.append((name, f"unreadable image ({type(e).__name__}: {str(e)[:80]})"))
                continue
            seen.add(digest)
            row = {
                "id": f"img-{digest[:16]}",
                "image": {"bytes": encode_png(np.asarray(pixels)), "path": None},
                "style": "imported",
                "gt_adjectives": [],
                "params": json.dumps({"source": name, "sha256": digest}),
            }
            (test if is_test(digest) else train).append(row)
    if len(train) > 1 and not test:  # a handful of paintings can all hash to one side: the one nearest the split line crosses
        test.append(train.pop(train.index(min(train, key=lambda r: r["id"]))))
    elif len(test) > 1 and not train:
        train.append(test.pop(test.index(max(test, key=lambda r: r["id"]))))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # file names that are not valid UTF-8 (old drives, zip extracts) are written escaped, not fatal
    with open(log_path, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(f"# import of {source}: {len(train)} train, {len(test)} test, "
                f"{report.duplicates} duplicates dropped, {len(report.skipped)} skipped, "
                f"{len(others)} other files left out (not {', '.join(IMAGE_SUFFIXES)})\n")
        for name, reason in report.skipped:
            f.write(f"skipped\t{name}\t{reason}\n")
        for name in others:
            f.write(f"not an image file\t{name}\n")
    if not train or not test:
        raise ArtgenError(
            f"only {len(train) + len(test)} usable images in {source} ({report.duplicates} duplicates dropped, "
            f"{len(report.skipped)} skipped, see {log_path}): "
            "the corpus needs images in both splits, import at least 2 (a few dozen to train anything useful)"
        )
    save_corpus(out_dir, train, test)
    report.train, report.test = len(train), len(test)
    return report
