"""`artgen train picker`: the caption picker (`artgen.models.caption_picker`) that best-of-N
sampling keeps a candidate by, trained on the workspace's real train paintings (pixels) and their
adjectives, into `checkpoints/caption-picker/`.

It reads decoded pixels, not codes, so it belongs to no VQ-VAE: one picker serves every model
of the workspace's corpus. It never reads the corpus's `style` column, so the bench's style judge
(trained on those labels) stays an independent view of what the pick does; the attribute judge
learns the same adjectives from pixels, so its rise is not independent. ~2.7 min on 2 CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from datetime import datetime, timezone

import numpy as np

from artgen.errors import ArtgenError
from artgen.files import replace_model_dir
from artgen.locks import stage_lock
from artgen.models.caption_picker import CaptionPicker, PickerConfig, pair_accuracy, train_caption_picker
from artgen.progress import console
from artgen.workspace import Workspace

PICKER = "caption-picker"  # its folder under checkpoints/


def check_config(cfg: PickerConfig) -> PickerConfig:
    if (cfg.epochs < 1 or cfg.batch_size < 2 or cfg.input_size < 8 or not cfg.widths
            or any(w < 8 or w % 8 for w in cfg.widths) or not 0 <= cfg.partial_share <= 1 or not 0 < cfg.word_keep <= 1):
        raise ArtgenError("the caption picker needs at least 1 epoch, a batch of at least 2, an input of at least 8 px, conv "
                          "widths that are multiples of 8, a partial share in [0, 1] and a word-keep chance in (0, 1]: fix "
                          "the picker settings")
    return cfg


def fit_input_size(cfg: PickerConfig, image_size: int) -> PickerConfig:
    """`cfg` with the largest input size of at most `cfg.input_size` (and at least 8) that pools the
    corpus's `image_size` px paintings by a whole factor, as picker.onnx must (48 px: 24; 100 px: 25)."""
    sizes = [s for s in range(min(cfg.input_size, image_size), 7, -1) if image_size % s == 0]
    if not sizes:
        raise ArtgenError(f"the caption picker pools paintings by a whole factor to 8–{cfg.input_size} px, and no factor of "
                          f"this corpus's {image_size} px does: import the paintings at a size such as 32, 64 or 128")
    return replace(cfg, input_size=sizes[0])


def train_picker(ws: Workspace, annotations: str = "auto", cfg: PickerConfig | None = None, show_progress: bool = True) -> dict:
    """Train the caption picker into `checkpoints/caption-picker/`; returns its metrics."""
    cfg = check_config(cfg or PickerConfig())
    with stage_lock(ws, f"checkpoint-{PICKER}", "the caption picker"):
        return _train_picker(ws, annotations, cfg, show_progress)


def _split(split, labels: dict[str, list[str]]) -> tuple[np.ndarray, list[list[str]]]:
    """The labelled paintings of a corpus split: (N, H, W, 3) uint8 and their adjectives."""
    from artgen.data.corpus import decode_image

    keep = [i for i, pid in enumerate(split["id"]) if labels.get(pid)]
    rows = split.select(keep)
    images = np.stack([decode_image(im) for im in rows["image"]]) if keep else np.zeros((0, 1, 1, 3), np.uint8)
    return images, [labels[pid] for pid in rows["id"]]


def _train_picker(ws: Workspace, annotations: str, cfg: PickerConfig, show_progress: bool) -> dict:
    from artgen.data.captions import load_labels
    from artgen.data.corpus import load_corpus

    dd = load_corpus(ws.data)
    labels, source = load_labels(ws, annotations)
    train_images, train_sets = _split(dd["train"], labels)
    if len({frozenset(s) for s in train_sets}) < 2:
        raise ArtgenError(f"the caption picker learns to tell adjective sets apart, and the train paintings labelled by "
                          f"{source} carry {len(train_sets)} painting(s) of fewer than two sets: annotate more paintings first")
    cfg = fit_input_size(cfg, train_images.shape[1])
    vocabulary = sorted({a for s in train_sets for a in s})
    start = time.perf_counter()
    picker, record = train_caption_picker(train_images, train_sets, vocabulary, cfg, show_progress=show_progress)
    test_images, test_sets = _split(dd["test"], labels) if "test" in dd else (np.zeros((0, 1, 1, 3), np.uint8), [])
    metrics = {**record, "adjectives": len(vocabulary), "annotations": source,
               "test_pair_accuracy": pair_accuracy(picker, test_images, test_sets) if len(test_sets) else float("nan"),
               "train_pair_accuracy": pair_accuracy(picker, train_images[:2000], train_sets[:2000]),
               "seconds": round(time.perf_counter() - start, 1), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               "config": asdict(cfg)}
    out = ws.checkpoint(PICKER)
    replace_model_dir(out, picker, metrics)
    console.print(f"caption picker: {len(train_sets)} train paintings, {len(vocabulary)} adjectives ({source} labels); "
                  f"a test painting is nearer its own words than another's {metrics['test_pair_accuracy']:.2f} of the time "
                  f"(chance 0.50); saved to {out}")
    return metrics


def load_picker(ws: Workspace) -> CaptionPicker:
    out = ws.checkpoint(PICKER)
    if not (out / "metrics.json").is_file():
        raise ArtgenError(f"no caption picker at {out}: run `artgen train picker` first (~2 min)")
    try:
        picker = CaptionPicker.from_pretrained(out)
        if type(picker.cfg.input_size) is not int:  # (True is not an int here)
            raise TypeError(f"input_size {picker.cfg.input_size!r} is not a whole number")
        check_config(picker.cfg)
        return picker
    except Exception as e:  # a truncated or hand-edited checkpoint: one line, and the fix
        why = (str(e).splitlines() or [""])[0]
        raise ArtgenError(f"the caption picker at {out} cannot be read ({type(e).__name__}: {why}): run `artgen train picker` "
                          "again") from None
