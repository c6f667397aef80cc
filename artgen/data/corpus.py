"""The painting corpus on disk: a `datasets.DatasetDict` with `train` and `test` splits under
`<workspace>/data/`, columns `id`, `image`, `style`, `gt_adjectives`, `params` (JSON text).

`synthesize` builds the procedural corpus; `load_corpus` opens whatever is there (synthetic
or imported) with a clear error when nothing is.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from artgen.data.paintings import paint
from artgen.errors import ArtgenError
from artgen.files import replace_dir
from artgen.progress import progress_bar

# The reference corpus: 9,735 abstract paintings, 7,602 train / 2,133 test.
REFERENCE_COUNT = 9735
REFERENCE_TEST = 2133
TEST_FRACTION = REFERENCE_TEST / REFERENCE_COUNT


def split_sizes(count: int) -> tuple[int, int]:
    """(train, test) for `count` images in the reference corpus's proportions."""
    test = int(round(count * TEST_FRACTION))
    if count >= 2:
        test = min(max(test, 1), count - 1)
    return count - test, test


def features():
    import datasets

    seq = getattr(datasets, "List", None) or datasets.Sequence
    return datasets.Features({
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "style": datasets.Value("string"),
        "gt_adjectives": seq(datasets.Value("string")),
        "params": datasets.Value("string"),
    })


def encode_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def decode_image(value) -> np.ndarray:
    """(H, W, 3) uint8 from a dataset `image` cell (PIL image or {'bytes': ...})."""
    if isinstance(value, dict):
        value = Image.open(io.BytesIO(value["bytes"]))
    return np.asarray(value.convert("RGB"), dtype=np.uint8)


@dataclass
class SynthConfig:
    count: int = REFERENCE_COUNT
    size: int = 64
    seed: int = 0
    workers: int = 0  # 0: one per CPU core


def _paint_chunk(args: tuple[int, int, list[int]]) -> list[dict]:
    seed, size, indices = args
    rows = []
    for i in indices:
        pixels, params, adjectives = paint(seed, i, size)
        rows.append({
            "id": f"synth-{seed}-{i:05d}",
            "image": {"bytes": encode_png(pixels), "path": None},
            "style": params.style,
            "gt_adjectives": adjectives,
            "params": json.dumps(params.to_dict(), sort_keys=True),
        })
    return rows


def check_corpus_target(data_dir: Path, force: bool = False) -> None:
    """`data_dir` may receive a new corpus: its workspace is a folder, and it holds no corpus
    yet — or `force` says to replace it. The refusal names what was made from the old one."""
    data_dir = Path(data_dir)
    for parent in [data_dir, *data_dir.parents]:
        if parent.exists() and not parent.is_dir():
            raise ArtgenError(f"{parent} is a file, not a folder: choose another --workdir")
    if force or not (data_dir / "dataset_dict.json").exists():
        return
    root = data_dir.parent
    made = sorted(p.name for p in (root / "checkpoints").glob("*") if (p / "config.json").exists())
    made += ["latents"] if (root / "latents").exists() else []
    uses = f" (made from it: {', '.join(made)})" if made else ""
    kept = ("; annotations are kept for the paintings it still holds (they are keyed by painting)"
            if any((root / "annotations").glob("*.jsonl")) else "")
    raise ArtgenError(f"{data_dir} already holds a corpus{uses}: pass --force to replace it (models and latents made from "
                      f"it will need to be made again{kept}), or choose another --workdir")


def check_image_size(size: int) -> None:
    """A corpus image side the VQ-VAE can cut into code cells (4 px, or 8 with --downsample 8),
    refused before any image is made rather than at `train vqvae`."""
    if not 16 <= size <= 1024:
        raise ArtgenError(f"--size must be between 16 and 1024 pixels (got {size})")
    if size % 4:
        raise ArtgenError(f"--size {size} is not a multiple of 4, the VQ-VAE's code cell: use {4 * round(size / 4)} (64 is the default)")


def synthesize(out_dir: Path, cfg: SynthConfig, show_progress: bool = True) -> dict[str, int]:
    """Draw `cfg.count` paintings and save them as a DatasetDict at `out_dir`."""
    if cfg.count < 2:
        raise ArtgenError(f"--count must be at least 2 (got {cfg.count}): the corpus needs a train and a test split")
    check_image_size(cfg.size)
    n_train, n_test = split_sizes(cfg.count)
    # Which paintings are held out depends only on the seed, never on worker count.
    order = np.random.default_rng([cfg.seed, 2**31 - 1]).permutation(cfg.count)
    test_ids = set(order[:n_test].tolist())

    chunk = 128
    jobs = [(cfg.seed, cfg.size, list(range(s, min(s + chunk, cfg.count)))) for s in range(0, cfg.count, chunk)]
    workers = cfg.workers or os.cpu_count() or 1
    rows: list[dict] = []
    with progress_bar("synth paintings", total=cfg.count, enabled=show_progress) as advance:
        if workers == 1:
            results = map(_paint_chunk, jobs)
            for r in results:
                rows.extend(r)
                advance(len(r))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for r in pool.map(_paint_chunk, jobs):
                    rows.extend(r)
                    advance(len(r))
    train = [r for i, r in enumerate(rows) if i not in test_ids]
    test = [r for i, r in enumerate(rows) if i in test_ids]
    save_corpus(out_dir, train, test)
    return {"train": len(train), "test": len(test)}


def save_corpus(out_dir: Path, train: list[dict], test: list[dict]) -> None:
    """Write rows as a DatasetDict, atomically: a finished corpus is never half-replaced."""
    import datasets

    datasets.disable_progress_bars()  # our own rich bar already covered the slow part
    feats = features()

    def build(rows):
        cols = {k: [r[k] for r in rows] for k in feats}
        return datasets.Dataset.from_dict(cols, features=feats)

    dd = datasets.DatasetDict({"train": build(train), "test": build(test)})
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dd.save_to_disk(str(tmp))
    replace_dir(tmp, out_dir)


def load_corpus(data_dir: Path):
    """The DatasetDict at `data_dir`, or a one-line error saying how to make one."""
    import datasets

    data_dir = Path(data_dir)
    if not (data_dir / "dataset_dict.json").exists():
        raise ArtgenError(
            f"no painting corpus at {data_dir}: run `artgen data synth` or `artgen data import SOURCE` first"
        )
    try:
        dd = datasets.load_from_disk(str(data_dir))
    except Exception as e:  # a damaged arrow file must not surface as a traceback
        raise ArtgenError(f"the corpus at {data_dir} cannot be read ({type(e).__name__}): rebuild it with `artgen data synth` or "
                          "`artgen data import`") from e
    for split in ("train", "test"):
        if split not in dd or len(dd[split]) == 0:
            raise ArtgenError(f"the corpus at {data_dir} has no {split!r} images: rebuild it with `artgen data synth` or `artgen data "
                              "import`")
    return dd
