"""The retrieval reference: for each test caption, a real train painting carrying the same
adjectives — what a generator that only looked the words up in the training set would draw.

`retrieve(queries, pool, rng)` picks, for each query adjective set, a random pool painting
whose adjective set is exactly the query's; where none is, a random one among those whose set
is closest by Jaccard similarity (|A ∩ B| / |A ∪ B|).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _bits(sets: Sequence[Sequence[str]], words: dict[str, int]) -> np.ndarray:
    """(N, V) 0/1 matrix of which words each set holds."""
    out = np.zeros((len(sets), len(words)), dtype=np.float32)
    for i, s in enumerate(sets):
        for w in s:
            out[i, words[w]] = 1
    return out


def retrieve(queries: Sequence[Sequence[str]], pool: Sequence[Sequence[str]],
             rng: np.random.Generator) -> tuple[list[int], list[bool]]:
    """(index into `pool` for each query, whether its adjective set equals the query's).
    Empty pool sets are never picked."""
    candidates = [i for i, s in enumerate(pool) if s]
    if not candidates:
        raise ValueError("no painting in the pool has adjectives")
    words = {w: j for j, w in enumerate(sorted({w for s in [*queries, *pool] for w in s}))}
    distinct = sorted({frozenset(pool[i]) for i in candidates}, key=sorted)
    members: dict[frozenset, list[int]] = {}
    for i in candidates:
        members.setdefault(frozenset(pool[i]), []).append(i)
    P = _bits([sorted(s) for s in distinct], words)  # (S, V) distinct pool sets
    Q = _bits([sorted(set(q)) for q in queries], words)  # (N, V)
    inter = Q @ P.T  # (N, S)
    union = Q.sum(1, keepdims=True) + P.sum(1)[None, :] - inter
    jaccard = np.where(union > 0, inter / np.maximum(union, 1), 0.0)  # (N, S)
    picked, exact = [], []
    for n, q in enumerate(queries):
        best = np.flatnonzero(jaccard[n] == jaccard[n].max())
        pool_idx = [i for s in best for i in members[distinct[s]]]
        picked.append(int(pool_idx[rng.integers(len(pool_idx))]))
        exact.append(frozenset(q) in members)
    return picked, exact
