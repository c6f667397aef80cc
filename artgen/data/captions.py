"""Labels and training captions.

`load_labels(ws)` reads the adjectives of every painting from an annotation file written by
`artgen annotate` (or the corpus ground truth); `make_caption` / `make_captions` turn one
painting's adjectives into varied training captions: a random subset of 3-5 adjectives in
random order, set in one of a few templates. Only vocabulary words ever reach a caption, so
the held-out synonyms (`artgen.data.vocabulary.HELD_OUT_SYNONYMS`) stay unseen in training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from artgen.data.corpus import load_corpus
from artgen.data.vocabulary import BY_WORD
from artgen.errors import ArtgenError
from artgen.progress import console
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
            if not records:  # not one record read: the wrong kind of file (CSV, pretty-printed JSON), not a damaged line
                raise ArtgenError(f"{path} is not a JSONL annotation file (line {i + 1} is not JSON): give a file of one JSON "
                                  "object per line, as `artgen annotate` writes")
            raise ArtgenError(f"{path} line {i + 1} is not JSON (one UTF-8 JSON object per line): fix or delete that line "
                              "(the other lines are finished labels)")
        if isinstance(obj, dict):
            records.append(obj)
    return records


def annotation_path(ws: Workspace, backend: str) -> Path:
    return ws.annotations / f"{backend}.jsonl"


MIN_AUTO_COVERAGE = 0.5  # `auto` refuses a labelling that covers fewer of the corpus's paintings


def load_labels(ws: Workspace, source: str = "auto") -> tuple[dict[str, list[str]], str]:
    """{image id: vocabulary adjectives} and the source they came from.

    source: "auto" (the most complete of annotations/openai.jsonl and heuristic.jsonl, openai
    on a tie), "heuristic", "openai" (that annotation file) or "gt" (the corpus ground truth).
    The coverage (labelled paintings of the corpus) is printed; `auto` refuses one under half.
    """
    if source not in LABEL_SOURCES:
        raise ArtgenError(f"unknown label source {source!r}: use one of {', '.join(LABEL_SOURCES)}")
    if source == "gt":
        dd = load_corpus(ws.data)
        labels = {}
        for split in dd:
            for i, adj in zip(dd[split]["id"], dd[split]["gt_adjectives"]):
                labels[i] = vocabulary_words(adj)
        if not any(labels.values()):
            raise ArtgenError(f"the corpus at {ws.data} has no ground-truth adjectives (imported paintings): "
                              "label it with `artgen annotate --backend heuristic`")
        return labels, "gt"
    corpus_ids = _corpus_ids(ws)
    if source == "auto":
        found = {name: read_labels(annotation_path(ws, name)) for name in ("openai", "heuristic")
                 if annotation_path(ws, name).exists()}
        if not found:
            raise ArtgenError(f"no annotations in {ws.annotations}: run `artgen annotate --backend heuristic` first")
        covered = {name: _covered(labels, corpus_ids) for name, labels in found.items()}
        source = max(found, key=lambda name: (covered[name], name == "openai"))
        labels = found[source]
        share = covered[source] / len(corpus_ids) if corpus_ids else 1.0
        if share < MIN_AUTO_COVERAGE:
            raise ArtgenError(f"the most complete annotations ({source}) label only {covered[source]:,} of "
                              f"{len(corpus_ids):,} paintings ({share:.0%}): finish them with `artgen annotate "
                              f"--backend {source}` (it resumes), or choose --annotations heuristic|openai|gt")
    else:
        path = annotation_path(ws, source)
        if not path.exists():
            raise ArtgenError(f"no annotations at {path}: run `artgen annotate --backend {source}` first")
        labels = read_labels(path)
    if not labels:
        raise ArtgenError(f"{annotation_path(ws, source)} holds no annotations: rerun `artgen annotate --backend {source}`")
    if corpus_ids:
        n = _covered(labels, corpus_ids)
        console.print(f"captions from {source} labels: {n:,} of {len(corpus_ids):,} paintings ({n / len(corpus_ids):.1%})")
    return labels, source


def read_labels(path: Path) -> dict[str, list[str]]:
    """{id: vocabulary adjectives} of one annotation file. The first record of an id with a
    vocabulary word wins (a file written by two runs at once holds duplicates: how many were
    dropped is printed); records whose adjectives are not a list of words, or hold no vocabulary
    word, are skipped and counted (the painting stays unlabelled)."""
    labels: dict[str, list[str]] = {}
    duplicates = malformed = 0
    unknown: list[str] = []  # records none of whose words is a vocabulary adjective
    for rec in read_records(path):
        adjectives = rec.get("adjectives")
        if "id" not in rec or not adjectives:
            continue
        if not isinstance(adjectives, list) or not all(isinstance(a, str) for a in adjectives):
            malformed += 1
            continue
        key = str(rec["id"])
        if key in labels:
            duplicates += 1
            continue
        words = vocabulary_words(adjectives)  # "Warm " is warm; held-out synonyms never reach a caption
        if not words:
            unknown.append(adjectives[0])
            continue
        labels[key] = words
    if duplicates:
        console.print(f"note: {path} labels {duplicates:,} paintings more than once: kept the first label of each")
    if malformed:
        console.print(f"note: skipped {malformed:,} records of {path} whose adjectives are not a list of words")
    if unknown:
        console.print(f"note: skipped {len(unknown):,} records of {path} with no vocabulary adjective (e.g. {unknown[0]!r}): "
                      "they count as unlabelled")
    return labels


def _corpus_ids(ws: Workspace) -> list[str]:
    """The ids of every painting in the workspace's corpus ([] when there is none yet)."""
    if not (ws.data / "dataset_dict.json").exists():
        return []
    dd = load_corpus(ws.data)
    return [i for split in dd for i in dd[split]["id"]]


def _covered(labels: dict[str, list[str]], corpus_ids: list[str]) -> int:
    return sum(1 for i in corpus_ids if labels.get(i)) if corpus_ids else sum(1 for v in labels.values() if v)


def vocabulary_words(adjectives: Sequence[str]) -> list[str]:
    """The vocabulary adjectives among raw label words, first-seen order: each stripped and
    lower-cased ("Warm " is warm); words outside the vocabulary, synonyms too, are dropped.
    Label files, the corpus ground truth and imported labels (`artgen data import`) all go through it."""
    words: list[str] = []
    for a in adjectives:
        a = str(a).strip().lower()
        if a in BY_WORD and a not in words:  # held-out and training synonyms are dropped
            words.append(a)
    return words


def make_caption(adjectives: Sequence[str], rng: np.random.Generator) -> str:
    """One caption: 3-5 of the painting's vocabulary adjectives (all if fewer), shuffled."""
    words = vocabulary_words(adjectives)
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
