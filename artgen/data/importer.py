"""`artgen data import SOURCE`: real paintings into the corpus format.

SOURCE is an image folder (searched recursively), a dataset saved with `save_to_disk`, or
a Hugging Face hub id. Every image is RGB-converted, centre-cropped and resized; the split
is decided by a hash of the image content, so it does not depend on file order or names
(when a handful of images all hash to one side, the one nearest the split line crosses over).
Unreadable, truncated and empty files are skipped and listed in a log, as are files whose
suffix is not an image's; exact duplicates (same content hash) are dropped, the first one's
labels kept. Images are turned upright by their EXIF orientation, transparent ones laid on
white, 16-bit ones scaled to 8 bits.

Labels follow the Hugging Face `imagefolder` conventions. In a folder, a painting's style is
its parent folder's name when every image lies in a sub-folder at one depth and there are at
least two such names (paintings/cubism/a.jpg is "cubism"); images directly in the root beside
sub-folders, or at mixed depths, make every style "imported" (the log's header says why). Hidden
files and folders (".*") and "__*" folders (__MACOSX) are skipped and counted. A top level of split
folders only (train, test, validation/valid/val, dev) is the split layout: styles are the folders
below them (paintings/train/cubism/a.jpg is "cubism"), and the source's split is not kept. A
`metadata.csv` or `metadata.jsonl` in any folder (a `file_name` column, the image's path relative to
that folder; matched in Unicode NFC, a leading "/" or "./" ignored; per field, the file nearer the root wins) sets
`style` (over folder names) and `adjectives` (a list, a comma/semicolon-separated string, or a
string holding a list, "['warm', 'vivid']"); a malformed one is an error before any image is read. A dataset keeps its
`style` column (strings or a ClassLabel), else a ClassLabel `label` column (what
`load_dataset("imagefolder")` builds from folder names), and its `gt_adjectives` or `adjectives`
(strings, or a Sequence of ClassLabel). Styles are NFC and stripped; an empty, NaN or "imported" one
is no label, a whole-number float (3.0) is "3"; the None items of an adjective list are left out.
Adjectives go through `vocabulary_words`, as label files do: words outside the vocabulary are
dropped and counted in the log. A painting without a style label is "imported". `--style-column`
names the one column to read styles from, sub-folder names left aside (`none`: no styles).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import math
import os
import re
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artgen.data.captions import vocabulary_words
from artgen.data.corpus import TEST_FRACTION, check_image_size, encode_png, save_corpus
from artgen.errors import ArtgenError
from artgen.progress import progress_bar

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif")
MAX_PIXELS = 100_000_000  # Pillow warns above it and refuses above twice it (a decompression bomb): a 200 MP museum scan is read
NO_STYLE_COLUMN = "none"  # `--style-column none`: take no style labels at all
METADATA_FILES = ("metadata.csv", "metadata.jsonl")  # at the folder's root, as `imagefolder` reads them
UNLABELLED_STYLE = "imported"  # the style of a painting that came without one
SPLIT_NAMES = ("train", "test", "validation", "valid", "val", "dev")  # top folders of the `imagefolder` split layout


class Item(NamedTuple):
    """One painting of a source and the labels it came with."""

    name: str  # for the log: the path below the folder, or split[row]
    data: bytes | str | None  # the encoded image; None: an empty cell; a str: why it cannot be read
    style: str | None = None  # None: no style label
    adjectives: tuple[str, ...] = ()  # raw words, not yet put through `vocabulary_words`
    origin: str | None = None  # the source file's SHA-256 an artgen corpus recorded (`params.sha256`): its id and split kept


@dataclass
class Source:
    """The paintings of a source, and where their labels come from (None: nowhere)."""

    total: int | None
    items: Iterator[Item]
    left_out: list[str] = field(default_factory=list)  # files left out for their suffix
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (folder or link, why): what a walk could not enter
    style_origin: str | None = None  # e.g. "sub-folder names", "metadata.csv", "the dataset's `style` column"
    no_style_reason: str = ""  # why a folder's sub-folders are not styles, when they are not
    adjective_origin: str | None = None
    notes: list[str] = field(default_factory=list)  # more header lines for the log
    log_lines: list[str] = field(default_factory=list)  # more listed lines for the log (metadata rows naming no image)


@dataclass
class ImportReport:
    train: int = 0
    test: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source name, reason)
    log_path: Path | None = None
    labels: str = ""  # one line: where the styles and adjectives came from
    styles: int = 0  # distinct styles of the imported paintings ("imported" included): style consistency needs 2
    upscaled: int = 0  # paintings whose shorter side was under --size: enlarged, so blurrier than the rest
    dropped_words: Counter = field(default_factory=Counter)  # {adjective outside the vocabulary: paintings that had it}
    left_out: Counter = field(default_factory=Counter)  # {suffix: files left out for it}
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (painting, what the decoder warned of)

    def left_out_line(self) -> str | None:
        """One line for the summary: files left out for their suffix, commonest suffixes first."""
        if not self.left_out:
            return None
        common = sorted(self.left_out.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
        kinds = ", ".join(f"{n} {s or '(no suffix)'}" for s, n in common)
        return (f"{_count(sum(self.left_out.values()), 'file')} left out for their suffix ({kinds}"
                f"{', ...' if len(self.left_out) > 4 else ''}): only {', '.join(IMAGE_SUFFIXES)} are read")


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
    if img.mode in ("P", "L", "RGB") and "transparency" in img.info:  # a palette entry or a colour key (tRNS) that is transparent
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


def _hidden(name: str, is_dir: bool) -> bool:
    """A hidden file or folder (".DS_Store", ".ipynb_checkpoints") or a `__*` folder ("__MACOSX"), which
    `imagefolder` skips."""
    return name.startswith(".") or (is_dir and name.startswith("__"))


def _folder_files(folder: Path, exclude: Path | None = None) -> tuple[list[Path], int, list[tuple[str, str]]]:
    """(every file under `folder`, following linked folders (each real folder once: no loops), the
    number of hidden files and folders skipped with all they hold, (path, why) of each folder it
    could not read and each link that leads nowhere). `exclude`: a folder left out with all it
    holds (the workspace, when the paintings folder holds it)."""
    seen, files, hidden, unreadable = set(), [], 0, []
    skip = os.path.realpath(exclude) if exclude is not None else None

    def failed(e: OSError) -> None:
        where = Path(e.filename) if e.filename else folder
        unreadable.append((_relative(where, folder), f"cannot read the folder ({type(e).__name__}: {e.strerror or e})"))

    for root, dirs, names in os.walk(folder, followlinks=True, onerror=failed):
        real = os.path.realpath(root)
        if real in seen or real == skip:
            dirs[:] = []
            continue
        seen.add(real)
        kept = sorted(d for d in dirs if not _hidden(d, True))
        hidden += len(dirs) - len(kept) + sum(_hidden(n, False) for n in names)
        dirs[:] = kept
        for n in names:
            p = Path(root) / n
            if _hidden(n, False):
                continue
            if p.is_file():
                files.append(p)
            elif p.is_symlink():  # is_file follows links: this one leads nowhere (or round in a loop)
                unreadable.append((_relative(p, folder), "a link to nothing (its target is missing, or links back to itself)"))
    return sorted(files), hidden, unreadable


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(Path(path).relative_to(folder))
    except ValueError:
        return str(path)


def _nfc(name: str) -> str:
    """A path below a folder as metadata and files are matched: NFC, "/" separators, no leading "./" or "/"."""
    name = unicodedata.normalize("NFC", name.strip().replace("\\", "/")).lstrip("/")
    return str(PurePosixPath(name)) if name else ""


def _clean_style(value) -> str | None:
    """A style cell as a name: NFC and stripped; None, NaN, empty and "imported" are no label; a
    whole-number float (3.0) is "3"."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        value = int(value) if value.is_integer() else value
    name = str(value)
    if re.search("[\udc80-\udcff]", name):  # a folder name that was not UTF-8 (an old zip, a Windows share): read as cp1252
        name = os.fsencode(name).decode("cp1252", errors="replace")
    name = unicodedata.normalize("NFC", name).strip()
    return name if name and name != UNLABELLED_STYLE else None


def _folder_items(files: list[Path], folder: Path, labels: dict[str, tuple[str | None, tuple[str, ...]]]) -> Iterator[Item]:
    """Each file's Item, its labels looked up by its path below `folder`; a file that cannot be read
    (permissions, I/O errors) comes with why."""
    for path in files:
        name = str(path.relative_to(folder))
        style, adjectives = labels.get(name, (None, ()))
        try:
            data = path.read_bytes()
        except OSError as e:
            data = f"cannot read the file ({type(e).__name__}: {e.strerror or e})"
        yield Item(name, data, style, adjectives)


def _folder_styles(names: list[str], itself: str = "the folder itself") -> tuple[dict[str, str], str]:
    """{image: style} by the `imagefolder` convention: when every image lies in a sub-folder at one
    depth and there are at least 2 parent-folder names, the style is the parent folder's name.
    Else ({}, why not, or "" when the images are simply all in the root)."""
    paths = [PurePosixPath(n) for n in names]
    depths = Counter(len(p.parts) - 1 for p in paths)  # 0: directly in the root
    if len(depths) > 1:
        if depths[0]:
            return {}, f"{_count(depths[0], 'image')} in {itself}, beside sub-folders: put every image in a style sub-folder"
        return {}, "images at different sub-folder depths: keep every style folder at one depth"
    if 0 in depths:
        return {}, ""
    styles = {n: _clean_style(p.parent.name) for n, p in zip(names, paths)}
    styles = {n: s for n, s in styles.items() if s is not None}
    if len(set(styles.values())) < 2:
        if not styles:
            return {}, f"every image is in a folder named {UNLABELLED_STYLE!r}: give each style a sub-folder"
        return {}, f"every image is in a folder named {next(iter(styles.values()))!r}: give each style a sub-folder"
    return styles, ""


def _adjective_words(value) -> tuple[str, ...] | None:
    """A list of words (its strings: None and other items left out), a comma/semicolon-separated string,
    or a string holding a list ("['warm', 'vivid']"), as a tuple of words; () for no value; None for anything else."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, str) and value.strip().startswith("["):  # "['warm', 'vivid']": a list as pandas writes it
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
    if isinstance(value, str):
        return tuple(w for w in re.split(r"[,;\n]", value) if w.strip())  # a spreadsheet cell may hold one word per line
    if isinstance(value, (list, tuple)):  # strings kept, None and other items left out
        return tuple(w for w in value if isinstance(w, str))
    return None


def _read_text(path: Path, kind: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV export may start with a BOM
    except UnicodeDecodeError:
        raise ArtgenError(f"{path} is not UTF-8 text: save it as UTF-8 {kind}, or remove it to import without labels") from None
    except OSError as e:
        raise ArtgenError(f"cannot read {path} ({type(e).__name__}: {e.strerror or e}): fix its permissions, "
                          "or remove it to import without labels") from None


def _csv_records(path: Path) -> list[tuple[int, dict]]:
    """(line number, {column: cell}) of a metadata.csv whose first line names the columns."""
    records: list[tuple[int, dict]] = []
    header: list[str] | None = None
    reader = csv.reader(io.StringIO(_read_text(path, "CSV"), newline=""))
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                if "file_name" not in header:
                    raise ArtgenError(f"{path} has no `file_name` column (its first line reads {','.join(header)[:60]!r}): "
                                      "start it with a header line such as file_name,style,adjectives")
                continue
            if len(row) > len(header):
                raise ArtgenError(f"{path} line {reader.line_num} has {len(row)} fields for {len(header)} columns: "
                                  'quote a value that holds commas ("warm, bold") or separate adjectives with semicolons')
            records.append((reader.line_num, dict(zip(header, row))))
    except csv.Error as e:
        raise ArtgenError(f"{path} is not a CSV file (line {reader.line_num}: {e}): save it as CSV with a file_name column, "
                          "or remove it to import without labels") from None
    if header is None:
        raise ArtgenError(f"{path} is empty: give it a header line such as file_name,style,adjectives, or remove it")
    return records


def _jsonl_records(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) of a metadata.jsonl, one JSON object with a `file_name` per line."""
    records: list[tuple[int, dict]] = []
    for n, line in enumerate(_read_text(path, "JSON lines").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or "file_name" not in obj:
            raise ArtgenError(f"{path} line {n} is not a JSON object with a \"file_name\": write one per line, "
                              'e.g. {"file_name": "cubism/a.jpg", "style": "cubism", "adjectives": ["warm", "bold"]}')
        records.append((n, obj))
    return records


def _metadata_labels(path: Path, style_column: str | None = "style") -> tuple[dict[str, tuple[str | None, tuple[str, ...]]], bool, bool]:
    """({image path below the folder: (style or None, adjective words)}, has the `style_column`
    (None: styles are not read), has an `adjectives` column) of a metadata file; the first row of an image wins."""
    records = _csv_records(path) if path.suffix == ".csv" else _jsonl_records(path)
    labels: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for n, rec in records:
        name = rec.get("file_name")
        if not isinstance(name, str) or not _nfc(name):
            raise ArtgenError(f"{path} line {n} has no file name: give each row the image's path below {path.parent}")
        adjectives = _adjective_words(rec.get("adjectives") or None)
        if adjectives is None:
            raise ArtgenError(f"{path} line {n}: `adjectives` must be a list of words or a comma-separated string")
        labels.setdefault(_nfc(name), (_clean_style(rec.get(style_column)) if style_column else None, adjectives))
    has = {column: bool(column) and any(column in rec for _, rec in records) for column in (style_column, "adjectives")}
    return labels, has[style_column], has["adjectives"]


def _metadata_folders(others: list[str]) -> list[str]:
    """The folders ("" for the root) that hold a metadata file, given the folder's non-image files
    (paths below it): the root first, then by depth, so that where two files name one image the
    one nearer the root wins, as the first row of an image does within a file."""
    folders = {str(PurePosixPath(o).parent) for o in others if PurePosixPath(o).name in METADATA_FILES}
    return sorted(("" if f == "." else f for f in folders), key=lambda f: (len(PurePosixPath(f).parts), f))


def _split_layout(names: list[str]) -> list[str]:
    """The split folders ("train", "test", ...) when every image lies below one: the `imagefolder`
    split layout, whose styles are the folders below them; else []."""
    tops = {PurePosixPath(n).parts[0] for n in names if len(PurePosixPath(n).parts) > 1}
    if all(len(PurePosixPath(n).parts) > 1 for n in names) and all(t.lower() in SPLIT_NAMES for t in tops):
        return sorted(tops)
    return []


def _folder_source(path: Path, style_column: str | None = None, exclude: Path | None = None) -> Source:
    """An image folder, its styles from sub-folder names and its metadata files (checked here, before
    any image is read); `style_column`: the metadata column styles are read from (None: `style`;
    NO_STYLE_COLUMN: no styles, not even from folder names); `exclude`: a folder under it to leave out."""
    every, hidden, unreadable = _folder_files(path, exclude)
    files = [p for p in every if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        why = f"; {unreadable[0][0]}: {unreadable[0][1]}" if unreadable else ""
        raise ArtgenError(
            f"no images found in {path} (looked recursively for {', '.join(IMAGE_SUFFIXES)}{why}): point at a folder of paintings"
        )
    names = [str(p.relative_to(path)) for p in files]
    splits = _split_layout(names)
    hidden_what = "file or folder" if hidden == 1 else "files or folders"
    notes = [f'{hidden} hidden {hidden_what} skipped (names starting with ".", folders with "__")'] if hidden else []
    if style_column is not None:  # a column named (or none): the sub-folder names are not styles
        folder_styles, why_not = {}, f"--style-column {style_column} was given"
    elif splits:  # paintings/train/cubism/a.jpg: the styles are the folders below the split folders
        below = {n: str(PurePosixPath(*PurePosixPath(n).parts[1:])) for n in names}
        styles_below, why_not = _folder_styles(list(below.values()), itself="a split folder itself")
        folder_styles = {n: styles_below[b] for n, b in below.items() if b in styles_below}
        notes.append(f"split folders {', '.join(splits)} (the Hugging Face split layout): styles from the folders below them; "
                     "the source's split is not kept (split by content hash)")
    else:
        folder_styles, why_not = _folder_styles(names)
    style_origin = "sub-folder names" if folder_styles else None
    adjective_origin, log_lines, metadata_files = None, [], []
    metadata: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    style_files, adjective_files = [], []
    others = [str(p.relative_to(path)) for p in every if p.suffix.lower() not in IMAGE_SUFFIXES]
    for where in _metadata_folders(others):  # every folder's metadata file, root first (file_name relative to its folder)
        found = [str(PurePosixPath(where, m)) for m in METADATA_FILES if (path / where / m).is_file()]
        if len(found) > 1:
            raise ArtgenError(f"{path / where} holds both {' and '.join(found)}: keep one metadata file")
        if not found:
            continue
        column = None if style_column == NO_STYLE_COLUMN else style_column or "style"
        labels, has_style, has_adjectives = _metadata_labels(path / found[0], column)
        for name, (style, adjectives) in labels.items():  # field by field: a root row without a style leaves a deeper file's
            key = _nfc(str(PurePosixPath(where, name)))
            had_style, had_adjectives = metadata.get(key, (None, ()))
            metadata[key] = (had_style or style, had_adjectives or adjectives)
        metadata_files.append(found[0])
        style_files += found[:has_style]
        adjective_files += found[:has_adjectives]
    if style_column not in (None, NO_STYLE_COLUMN) and not style_files:
        where = ", ".join(metadata_files) if metadata_files else f"no metadata.csv or metadata.jsonl in {path}"
        raise ArtgenError(f"--style-column {style_column}: no such column ({where}): name a column of the metadata file, "
                          "or leave the option out to take `style`, else the sub-folder names")
    if metadata_files:
        if style_files:
            style_origin = f"{', '.join(style_files)}, else sub-folder names" if folder_styles else ", ".join(style_files)
        adjective_origin = ", ".join(adjective_files) or None
        known, stray = {_nfc(n) for n in names}, {_nfc(o) for o in others}
        missing = sorted(set(metadata) - known - stray)
        not_images = sorted(set(metadata) & stray)
        notes.append(f"{', '.join(metadata_files)}: {_count(sum(_nfc(n) not in metadata for n in names), 'image')} without a row, "
                     f"{_count(len(missing), 'row')} naming no image"
                     + (f", {_count(len(not_images), 'row')} naming a file that is not an image file" if not_images else "")
                     + (" (listed below)" if missing or not_images else ""))
        log_lines = ([f"metadata row without an image\t{name}" for name in missing]
                     + [f"metadata row naming a file that is not an image file\t{name}" for name in not_images])
    labels = {}
    for name in names:
        style, adjectives = metadata.get(_nfc(name), (None, ()))
        labels[name] = (style or folder_styles.get(name), adjectives)
    return Source(len(files), _folder_items(files, path, labels), left_out=[o for o in others if o not in metadata_files],
                  unreadable=unreadable, style_origin=style_origin, no_style_reason=why_not, adjective_origin=adjective_origin,
                  notes=notes, log_lines=log_lines)


def _label_columns(features, style_column: str | None = None) -> tuple[str | None, str | None]:
    """The columns a split's style and adjectives come from: `style_column` when given (None if the
    split lacks it; NO_STYLE_COLUMN: none), else `style` (strings or a ClassLabel), else a ClassLabel
    `label` (what `load_dataset("imagefolder")` builds from folder names); `gt_adjectives`, else `adjectives`."""
    import datasets

    if style_column:
        style = style_column if style_column != NO_STYLE_COLUMN and style_column in features else None
    else:
        style = "style" if "style" in features else "label" if isinstance(features.get("label"), datasets.ClassLabel) else None
    return style, next((c for c in ("gt_adjectives", "adjectives") if c in features), None)


def _style_name(feature, value) -> str | None:
    """A style cell as a name: a ClassLabel's index as its class name (-1, no label: None)."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return _clean_style(feature.int2str(value)) if isinstance(value, int) and 0 <= value < feature.num_classes else None
    return _clean_style(value)


def _dataset_adjectives(feature, value) -> tuple[str, ...]:
    """An adjectives cell as words: a Sequence of ClassLabel through its class names, else as `_adjective_words` reads it."""
    import datasets

    inner = getattr(feature, "feature", None)
    if isinstance(inner, datasets.ClassLabel) and isinstance(value, (list, tuple)):
        value = [inner.int2str(v) if isinstance(v, int) and 0 <= v < inner.num_classes else None for v in value]
    return _adjective_words(value) or ()


def _dataset_items(splits: list[tuple[str, object]], style_column: str | None = None) -> Iterator[Item]:
    """Items (image bytes, None for an empty cell, or why the file cannot be read) from the
    (name, datasets.Dataset) splits, each with an Image column."""
    import datasets

    for split_name, split in splits:
        column = next((k for k, f in split.features.items() if isinstance(f, datasets.Image)), None)
        if column is None:
            raise ArtgenError(f"the dataset split {split_name!r} has no image column: import a dataset with a `datasets.Image` feature")
        style_from, adjective_column = _label_columns(split.features, style_column)
        split = split.cast_column(column, datasets.Image(decode=False))
        for i, row in enumerate(split):
            cell = row[column]
            data = cell.get("bytes") if cell else None
            if data is None and cell and cell.get("path"):
                try:
                    data = Path(cell["path"]).read_bytes()
                except OSError as e:
                    data = f"cannot read {cell['path']} ({type(e).__name__}: {e.strerror or e})"
            style = _style_name(split.features[style_from], row[style_from]) if style_from else None
            adjectives = _dataset_adjectives(split.features[adjective_column], row[adjective_column]) if adjective_column else ()
            yield Item(f"{split_name}[{i}]", data, style, adjectives, _recorded_sha256(row))


def _recorded_sha256(row: dict) -> str | None:
    """The original file's SHA-256 of a row of a corpus artgen imported (`id` img-<its first 16>,
    `params` {"sha256": ...}): re-importing it (at another --size) keeps ids, which annotations
    are keyed by, and the split. None for any other row."""
    try:
        digest = json.loads(row.get("params") or "{}").get("sha256")
    except (ValueError, AttributeError, TypeError):
        return None
    ok = isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest) and row.get("id") == f"img-{digest[:16]}"
    return digest if ok else None


def _dataset_source(ds, style_column: str | None = None) -> Source:
    """A datasets.Dataset or DatasetDict as a source; `style_column` as `_label_columns` reads it."""
    import datasets

    splits = list(ds.items()) if isinstance(ds, datasets.DatasetDict) else [("data", ds)]
    columns = [_label_columns(split.features, style_column) for _, split in splits]
    style = next((s for s, _ in columns if s), None)
    if style_column not in (None, NO_STYLE_COLUMN) and style is None:
        names = sorted({c for _, split in splits for c in split.features})
        raise ArtgenError(f"--style-column {style_column}: the dataset has no such column (its columns: {', '.join(names)}): "
                          "name one of them, or leave the option out to take `style`, else a ClassLabel `label`")
    adjectives = next((a for _, a in columns if a), None)
    lacking = [name for (name, _), (s, _) in zip(splits, columns) if s is None]
    notes = [f"split{'s' if len(lacking) > 1 else ''} {', '.join(lacking)} without the `{style}` column: "
             "no style labels there"] if style is not None and lacking else []
    return Source(
        sum(len(split) for _, split in splits), _dataset_items(splits, style_column),
        style_origin=None if style is None else f"the dataset's `{style}` column",
        adjective_origin=None if adjectives is None else f"the dataset's `{adjectives}` column", notes=notes,
    )


def _open_source(source: str, style_column: str | None = None, exclude: Path | None = None) -> Source:
    """The paintings of SOURCE: a dataset saved with `save_to_disk`, an image folder or a hub id."""
    if not source.strip():
        raise ArtgenError("the source is empty: give an image folder, a dataset saved with save_to_disk, or a hub id like user/name")
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
            import datasets

            return _dataset_source(datasets.load_from_disk(str(path)), style_column)
        return _folder_source(path, style_column, exclude)
    if path.exists():
        raise ArtgenError(f"{path} is a file, not a folder: give an image folder, a saved dataset or a hub id")
    if source.startswith((".", "/", "~")) or "/" not in source:
        raise ArtgenError(f"{source} does not exist: give an image folder, a dataset saved with save_to_disk, or a hub id like user/name")
    first = Path(source.split("/")[0])
    if first.is_dir():  # `my_paintings/cubsim`: a path mistyped under a folder that is here, not a hub id
        raise ArtgenError(f"no folder {source} here ({first} exists, {source} does not): check the path "
                          f"(a hub id whose owner is also a local folder name: import ./{first}/... or run it elsewhere)")
    return _dataset_source(_load_hub_dataset(source), style_column)


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_variable() -> str | None:
    """The standard Hugging Face offline variable that is set (to 1/true/yes/on), if any."""
    return next((v for v in OFFLINE_VARIABLES if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")), None)


def _load_hub_dataset(hub_id: str):
    """Load (download, or read from the cache) before any progress is shown: errors come first."""
    import datasets

    offline = offline_variable()
    if offline:  # the local cache only: never a network lookup
        datasets.config.HF_HUB_OFFLINE = True
    try:
        return datasets.load_dataset(hub_id)
    except Exception as e:
        if offline:
            raise ArtgenError(f"{hub_id!r} is not in the local Hugging Face cache and {offline}=1 forbids downloading it: "
                              f"unset {offline}, or import a local folder") from None
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ArtgenError(
            f"no folder {hub_id} here, and cannot load {hub_id!r} from the Hugging Face hub ({msg[:160]}): check the path or the "
            "hub id and the network, or download it and import the folder"
        ) from e


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _labels_line(src: Source, train: list[dict], label_styles: set[str], unstyled: int, labelled: int, dropped: int) -> str:
    """One line for the summary and the log: where the styles and adjectives came from, and whether
    the bench can measure style consistency (it needs 2 labelled styles among the train paintings, as
    bench/style.py `corpus_styles` reads them)."""
    if src.style_origin is None:
        styles = "no style labels" + (f" ({src.no_style_reason})" if src.no_style_reason else "")
    else:
        styles = f"styles from {src.style_origin}: {_count(len(label_styles), 'style')}"
        if unstyled:
            styles += f" ({_count(unstyled, 'painting')} without one: {UNLABELLED_STYLE!r})"
    if len({r["style"] for r in train} - {UNLABELLED_STYLE}) < 2:
        styles += ", so style consistency will not be measured" if src.style_origin else ": style consistency will not be measured"
    if src.adjective_origin is None:
        adjectives = "no adjectives (label them with `artgen annotate`)"
    else:
        adjectives = f"adjectives from {src.adjective_origin}: {_count(labelled, 'painting')} labelled"
        if dropped:
            adjectives += f", {_count(dropped, 'word')} outside the vocabulary dropped (listed in the log)"
    return f"{styles}; {adjectives}"


def _decode(data: bytes, size: int) -> tuple[Image.Image, bool, list[str]]:
    """(the painting as `centre_square` makes it, whether it was smaller than `size`, what the
    decoder warned of: corrupt EXIF, a very large image). A JPEG is decoded at the smallest
    power-of-two scale that keeps 4x `size` (draft): a 48 MP photo in 0.1 s instead of 1 s."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
        try:
            with Image.open(io.BytesIO(data)) as img:
                small = min(img.size) < size
                if img.format == "JPEG":
                    img.draft("RGB", (4 * size, 4 * size))
                img.load()  # forces a full decode: truncated files fail here
                pixels = centre_square(img, size)
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    return pixels, small, [" ".join(str(w.message).split())[:160] for w in caught]


def upscaled_note(n: int, size: int) -> str:
    return (f"{_count(n, 'painting')} smaller than {size} px on the shorter side enlarged to it (blurrier than the rest; "
            "import at a smaller --size to avoid it)")


def import_paintings(source: str, out_dir: Path, log_path: Path, size: int = 64, show_progress: bool = True,
                     style_column: str | None = None, exclude: Path | None = None) -> ImportReport:
    """`style_column`: where styles come from, when not `style` (or a dataset's ClassLabel `label`,
    or the sub-folder names): a metadata file's or dataset's column, or NO_STYLE_COLUMN for none.
    `exclude`: a folder an image folder may hold that is not paintings (the workspace itself,
    when `artgen data import .` runs in the paintings folder)."""
    check_image_size(size)
    src = _open_source(source, style_column, exclude)
    report = ImportReport(log_path=log_path, skipped=list(src.unreadable),
                          left_out=Counter(PurePosixPath(o).suffix.lower() for o in src.left_out))
    seen: set[str] = set()
    train, test = [], []
    label_styles: set[str] = set()
    unstyled = labelled = 0
    with progress_bar("import paintings", total=src.total or 0, enabled=show_progress) as advance:
        for name, data, style, adjectives, origin in src.items:
            advance(1)
            if isinstance(data, str):  # why the item could not be read
                report.skipped.append((name, data))
                continue
            if not data:
                report.skipped.append((name, "empty file (0 bytes)" if data == b"" else "no image in this row"))
                continue
            digest = origin or hashlib.sha256(data).hexdigest()
            if digest in seen:  # the first one's labels are kept
                report.duplicates += 1
                continue
            try:
                pixels, small, warned = _decode(data, size)
                report.warnings += [(name, w) for w in warned]
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
            report.upscaled += small
            words = vocabulary_words(adjectives)  # as label files are read: "Warm " is warm, other words dropped
            report.dropped_words.update({str(a).strip().lower() for a in adjectives if str(a).strip() and not vocabulary_words([a])})
            labelled += bool(words)
            if style is None:
                unstyled += 1
            else:
                label_styles.add(style)
            row = {
                "id": f"img-{digest[:16]}",
                "image": {"bytes": encode_png(np.asarray(pixels)), "path": None},
                "style": UNLABELLED_STYLE if style is None else style,
                "gt_adjectives": words,
                "params": json.dumps({"source": name, "sha256": digest}),
            }
            (test if is_test(digest) else train).append(row)
    if len(train) > 1 and not test:  # a handful of paintings can all hash to one side: the one nearest the split line crosses
        test.append(train.pop(train.index(min(train, key=lambda r: r["id"]))))
    elif len(test) > 1 and not train:
        train.append(test.pop(test.index(max(test, key=lambda r: r["id"]))))
    report.styles = len({r["style"] for r in train + test})
    report.labels = _labels_line(src, train, label_styles, unstyled, labelled, len(report.dropped_words))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # file names that are not valid UTF-8 (old drives, zip extracts) are written escaped, not fatal
    with open(log_path, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(f"# import of {source}: {len(train)} train, {len(test)} test, "
                f"{report.duplicates} duplicates dropped, {len(report.skipped)} skipped, "
                f"{len(src.left_out)} other files left out (not {', '.join(IMAGE_SUFFIXES)})\n")
        for line in (report.labels, *src.notes, *([upscaled_note(report.upscaled, size)] if report.upscaled else [])):
            f.write(f"# {line}\n")
        for name, reason in report.skipped:
            f.write(f"skipped\t{name}\t{reason}\n")
        for name in src.left_out:
            f.write(f"not an image file\t{name}\n")
        for name, warning in report.warnings:
            f.write(f"warning\t{name}\t{warning}\n")
        for word, n in sorted(report.dropped_words.items(), key=lambda kv: (-kv[1], kv[0])):
            f.write(f"adjective not in the vocabulary, dropped\t{word}\t{_count(n, 'painting')}\n")
        for line in src.log_lines:
            f.write(f"{line}\n")
    if not train or not test:
        raise ArtgenError(
            f"only {len(train) + len(test)} usable images in {source} ({report.duplicates} duplicates dropped, "
            f"{len(report.skipped)} skipped, see {log_path}): "
            "the corpus needs images in both splits, import at least 2 (a few dozen to train anything useful)"
        )
    save_corpus(out_dir, train, test)
    report.train, report.test = len(train), len(test)
    return report
