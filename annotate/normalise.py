"""Normalisation of annotator output onto the controlled vocabulary.

Lower-case, strip punctuation, map synonyms (training and held-out) to their vocabulary
word, drop duplicates; a negated phrase ("not geometric", "non-geometric") is never read as
the word it negates. Words that are not in the vocabulary are kept in `extra`, never lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from artgen.data.vocabulary import canonical

_PUNCT = re.compile(r"[^\w\s-]")
_SPACE = re.compile(r"\s+")
NEGATIONS = frozenset({"not", "non", "no", "never", "without", "un", "less", "lacking"})  # "not-geometric" is not geometric


@dataclass
class Normalised:
    adjectives: list[str] = field(default_factory=list)  # vocabulary words, first-seen order
    extra: list[str] = field(default_factory=list)  # cleaned words outside the vocabulary


def clean(word: str) -> str:
    """'  Warm!' -> 'warm'; 'High Contrast' -> 'high-contrast'."""
    word = _PUNCT.sub("", str(word).lower()).strip().strip("-")
    return _SPACE.sub("-", word)


def normalise(words: Iterable[str] | str) -> Normalised:
    """Map raw words (a list, or a comma-separated string) onto the vocabulary."""
    if isinstance(words, str):
        words = re.split(r"[,;\n]", words)
    out = Normalised()
    for raw in words:
        if not isinstance(raw, str):
            raw = str(raw)
        w = clean(raw)
        if not w:
            continue
        negated = "-" in w and any(p in NEGATIONS for p in w.split("-"))  # kept as said, in extra, never as its opposite
        word = None if negated else canonical(w) or canonical(w.replace("-", " ")) or canonical(w.replace("-", ""))
        if word is None and "-" in w and not negated:
            # "very-warm", "warm-toned": a phrase is accepted when exactly one part is a vocabulary word
            hits = {c for c in (canonical(p) for p in w.split("-")) if c}
            word = hits.pop() if len(hits) == 1 else None
        if word is None:
            if w not in out.extra:
                out.extra.append(w)
        elif word not in out.adjectives:
            out.adjectives.append(word)
    return out
