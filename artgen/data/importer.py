"""`artgen data import SOURCE`: real paintings into the corpus format.

SOURCE is an image folder (searched recursively), a dataset saved with `save_to_disk`, or
a Hugging Face hub id. Every image is RGB-converted, centre-cropped and resized; the split
is decided by a hash of the image content, so it does not depend on file order or names.
Unreadable, truncated and empty files are skipped and listed in a log; exact duplicates
(same content hash) are dropped.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from artgen.data.corpus import TEST_FRACTION, encode_png, save_corpus
from artgen.errors import ArtgenError
from artgen.progress import progress_bar

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass
class ImportReport:
    train: int = 0
    test: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source name, reason)
    log_path: Path | None = None


def centre_square(img: Image.Image, size: int) -> Image.Image:
    """RGB, centre-cropped to a square, resized to (size, size)."""
    img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.LANCZOS)


def is_test(content_hash: str) -> bool:
    """Deterministic split from the content hash, in the reference 7,602 : 2,133 ratio."""
    return int(content_hash[:15], 16) / 16**15 < TEST_FRACTION


def _folder_items(folder: Path) -> Iterator[tuple[str, bytes | None]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            yield str(path.relative_to(folder)), path.read_bytes()


def _dataset_items(ds) -> Iterator[tuple[str, bytes | None]]:
    """(name, encoded image bytes) from a datasets.Dataset with an Image column."""
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
                except OSError:
                    data = None
            yield f"{split_name}[{i}]", data


def _open_source(source: str) -> tuple[int | None, Iterator[tuple[str, bytes | None]]]:
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
            import datasets

            ds = datasets.load_from_disk(str(path))
            total = sum(len(s) for s in ds.values()) if isinstance(ds, datasets.DatasetDict) else len(ds)
            return total, _dataset_items(ds)
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise ArtgenError(
                f"no images found in {path} (looked recursively for {', '.join(IMAGE_SUFFIXES)}): point at a folder of paintings"
            )
        return len(files), _folder_items(path)
    if path.exists():
        raise ArtgenError(f"{path} is a file, not a folder: give an image folder, a saved dataset or a hub id")
    if source.startswith((".", "/", "~")) or "/" not in source:
        raise ArtgenError(f"{source} does not exist: give an image folder, a dataset saved with save_to_disk, or a hub id like user/name")
    return _hub_items(source)


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_variable() -> str | None:
    """The standard Hugging Face offline variable that is set (to 1/true/yes/on), if any."""
    import os

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
    total, items = _open_source(source)
    report = ImportReport(log_path=log_path)
    seen: set[str] = set()
    train, test = [], []
    with progress_bar("import paintings", total=total or 0, enabled=show_progress) as advance:
        for name, data in items:
            advance(1)
            if not data:
                report.skipped.append((name, "empty file (0 bytes)"))
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
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError, MemoryError) as e:
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
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as f:
        f.write(f"# import of {source}: {len(train)} train, {len(test)} test, "
                f"{report.duplicates} duplicates dropped, {len(report.skipped)} skipped\n")
        for name, reason in report.skipped:
            f.write(f"skipped\t{name}\t{reason}\n")
    if not train or not test:
        raise ArtgenError(
            f"only {len(train) + len(test)} usable images in {source} ({len(report.skipped)} skipped, see {log_path}): "
            "the corpus needs images in both splits, import at least a few dozen"
        )
    save_corpus(out_dir, train, test)
    report.train, report.test = len(train), len(test)
    return report
