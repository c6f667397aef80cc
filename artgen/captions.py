"""Labels and training captions.

`load_labels(ws)` reads the adjectives of every painting from an annotation file written by
`artgen annotate` (or the corpus ground truth); `make_caption` / `make_captions` turn one
painting's adjectives into varied training captions: a random subset of 3-5 adjectives in
random order, set in one of a few templates. Only vocabulary words ever reach a caption, so
the held-out synonyms (`artgen.vocabulary.HELD_OUT_SYNONYMS`) stay unseen in training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from artgen.errors import ArtgenError
from artgen.vocabulary import BY_WORD
from artgen.workspace import Workspace

LABEL_SOURCES = ("auto", "heuristic", "openai", "gt")

# {list} is the adjectives joined with commas; {and_list} ends in "and"; {article} agrees
# with the first word ("a warm ..." / "an energetic ...").
TEMPLATES: tuple[str, ...] = (
    "{article} {list} painting",
    "{and_list}",
    "{list}",
    "an abstract painting, {list}",
    "{article} {and_list} abstract painting",
    "{list} abstract art",
)


def read_records(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file, one per line.

    A torn last line (a writer killed mid-write) is skipped, never an error; a damaged line
    anywhere else is an error, because it means the file is not one of ours.
    """
    path = Path(path)
    records: list[dict] = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:  # the unterminated last line of an interrupted write
                break
            raise ArtgenError(f"{path} line {i + 1} is not JSON: delete the file and rerun `artgen annotate`")
        if isinstance(obj, dict):
            records.append(obj)
    return records


def annotation_path(ws: Workspace, backend: str) -> Path:
    return ws.annotations / f"{backend}.jsonl"


def load_labels(ws: Workspace, source: str = "auto") -> tuple[dict[str, list[str]], str]:
    """{image id: vocabulary adjectives} and the source they came from.

    source: "auto" (annotations/openai.jsonl if present, else annotations/heuristic.jsonl),
    "heuristic", "openai" (that annotation file) or "gt" (the corpus ground truth).
    """
    if source not in LABEL_SOURCES:
        raise ArtgenError(f"unknown label source {source!r}: use one of {', '.join(LABEL_SOURCES)}")
    if source == "gt":
        from artgen.corpus import load_corpus

        dd = load_corpus(ws.data)
        labels = {}
        for split in dd:
            for i, adj in zip(dd[split]["id"], dd[split]["gt_adjectives"]):
                labels[i] = [a for a in adj if a in BY_WORD]
        if not any(labels.values()):
            raise ArtgenError(f"the corpus at {ws.data} has no ground-truth adjectives (imported paintings): "
                              "label it with `artgen annotate --backend heuristic`")
        return labels, "gt"
    if source == "auto":
        source = "openai" if annotation_path(ws, "openai").exists() else "heuristic"
    path = annotation_path(ws, source)
    if not path.exists():
        raise ArtgenError(f"no annotations at {path}: run `artgen annotate --backend {source}` first")
    labels = {}
    for rec in read_records(path):
        if "id" in rec and rec.get("adjectives"):
            labels.setdefault(str(rec["id"]), [a for a in rec["adjectives"] if a in BY_WORD])
    if not labels:
        raise ArtgenError(f"{path} holds no annotations: rerun `artgen annotate --backend {source}`")
    return labels, source


def _vocabulary_words(adjectives: Sequence[str]) -> list[str]:
    words: list[str] = []
    for a in adjectives:
        a = str(a).strip().lower()
        if a in BY_WORD and a not in words:  # held-out and training synonyms are dropped
            words.append(a)
    return words


def make_caption(adjectives: Sequence[str], rng: np.random.Generator) -> str:
    """One caption: 3-5 of the painting's vocabulary adjectives (all if fewer), shuffled."""
    words = _vocabulary_words(adjectives)
    if not words:
        raise ArtgenError(f"no vocabulary adjectives in {list(adjectives)!r}: annotate the painting first")
    k = min(len(words), int(rng.integers(3, 6)))
    chosen = [words[i] for i in rng.permutation(len(words))[:k]]
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    and_list = chosen[0] if len(chosen) == 1 else ", ".join(chosen[:-1]) + " and " + chosen[-1]
    article = "an" if chosen[0][0] in "aeiou" else "a"
    return template.format(list=", ".join(chosen), and_list=and_list, article=article)


def make_captions(adjectives: Sequence[str], seed: int, n: int) -> list[str]:
    """`n` captions for one painting, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return [make_caption(adjectives, rng) for _ in range(n)]
