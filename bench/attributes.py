"""Attribute control: does a generated image show the adjectives its prompt asked for?

The judge is `AttributeClassifier`: one logistic regression per adjective on the measured
image statistics of `artgen.data.image_stats` (colour, value, contrast, edges, symmetry,
texture, rhythm), trained on real annotated train paintings and validated on real test
paintings — its own accuracy, F1 and balanced accuracy are part of the report, so a reader
knows how far to trust it. An adjective counts as found when its probability is >= 0.5.

Metrics (torchmetrics-style objects, `update` / `compute` / `reset`):
- `AttributeAccuracy`: the share of requested adjectives the classifier finds in the
  images generated for them (`attribute_accuracy`; with held-out synonyms in the prompts,
  `unseen_attribute_accuracy`). `compute()` also gives `base_rate`, how often the classifier
  finds the same adjectives in real test paintings at large: the chance level to beat.

Prompt sets:
- `unseen_prompts`: test-label adjectives written as held-out synonyms ("fiery, tranquil").
- `unseen_pairs`: adjective pairs (different facets) never labelled together on one
  training painting, as prompts ("warm, minimal").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from artgen.data.vocabulary import BY_WORD, HELD_OUT_SYNONYMS, parse_prompt


@dataclass
class AttributeConfig:
    min_positives: int = 20  # adjectives with fewer positive train paintings get no classifier
    C: float = 1.0  # inverse L2 strength of the logistic regressions
    max_iter: int = 2000
    threshold: float = 0.5  # probability at which an adjective counts as present


def image_features(images: Sequence[np.ndarray]) -> np.ndarray:
    """(N, F) measured statistics the classifier reads, for (H, W, 3) uint8 images."""
    from artgen.data.image_stats import statistics_matrix

    return statistics_matrix(images)


class AttributeClassifier:
    """Per-adjective logistic regressions on standardised image statistics."""

    def __init__(self, cfg: AttributeConfig | None = None):
        self.cfg = cfg or AttributeConfig()
        self.adjectives: list[str] = []
        self.skipped: dict[str, int] = {}  # adjective -> positives, too few to train on
        self._models: dict = {}
        self.validation: dict = {}

    def fit(self, features: np.ndarray, labels: Sequence[Sequence[str]]) -> "AttributeClassifier":
        """`features` (N, F) of real train paintings, `labels` their vocabulary adjectives."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        features = np.asarray(features, dtype=np.float64)
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows but {len(labels)} label lists")
        counts = Counter(a for adj in labels for a in set(adj) if a in BY_WORD)
        self.adjectives, self.skipped, self._models = [], {}, {}
        for adj in sorted(counts):
            positives = counts[adj]
            if positives < self.cfg.min_positives or len(labels) - positives < self.cfg.min_positives:
                self.skipped[adj] = positives
                continue
            y = np.array([adj in a for a in labels])
            model = make_pipeline(StandardScaler(), LogisticRegression(C=self.cfg.C, max_iter=self.cfg.max_iter))
            self._models[adj] = model.fit(features, y)
            self.adjectives.append(adj)
        if not self.adjectives:
            raise ValueError(f"no adjective has {self.cfg.min_positives} positive and negative train paintings")
        return self

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, A) probability of each of `self.adjectives`."""
        features = np.asarray(features, dtype=np.float64)
        return np.stack([self._models[a].predict_proba(features)[:, 1] for a in self.adjectives], 1)

    def present(self, features: np.ndarray) -> np.ndarray:
        """(N, A) bool: the adjectives found in each image."""
        return self.probabilities(features) >= self.cfg.threshold

    def validate(self, features: np.ndarray, labels: Sequence[Sequence[str]]) -> dict:
        """Accuracy, precision, recall, F1 and balanced accuracy per adjective on real test
        paintings, and their means over adjectives (macro)."""
        from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_score, recall_score

        found = self.present(features)
        per: dict[str, dict] = {}
        for j, adj in enumerate(self.adjectives):
            y = np.array([adj in a for a in labels])
            p = found[:, j]
            per[adj] = {
                "accuracy": float(accuracy_score(y, p)),
                "precision": float(precision_score(y, p, zero_division=0)),
                "recall": float(recall_score(y, p, zero_division=0)),
                "f1": float(f1_score(y, p, zero_division=0)),
                "balanced_accuracy": float(balanced_accuracy_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
                "test_positives": int(y.sum()),
            }
        macro = {k: float(np.nanmean([v[k] for v in per.values()]))
                 for k in ("accuracy", "precision", "recall", "f1", "balanced_accuracy")}
        self.validation = {"macro": macro, "per_adjective": per, "n_test": len(labels),
                           "adjectives": len(self.adjectives), "skipped": dict(self.skipped)}
        self.base_rates = dict(zip(self.adjectives, found.mean(0).tolist()))
        return self.validation


class AttributeAccuracy:
    """Share of requested adjectives found in the generated images (update/compute/reset).

    Requested adjectives the classifier does not cover are counted in `unjudged`, not
    scored. `base_rate` needs `classifier.validate` to have run on real test paintings.
    """

    def __init__(self, classifier: AttributeClassifier):
        self.classifier = classifier
        self.index = {a: j for j, a in enumerate(classifier.adjectives)}
        self.reset()

    def reset(self) -> None:
        self.requested = 0
        self.found = 0
        self.unjudged = 0
        self.base = 0.0
        self.per_adjective: dict[str, list[int]] = {}  # adjective -> [found, requested]

    def update(self, features: np.ndarray, requested: Sequence[Sequence[str]]) -> None:
        """`features` (N, F) of N generated images; `requested[i]` the adjectives image i was asked for."""
        present = self.classifier.present(features)
        base_rates = getattr(self.classifier, "base_rates", {})
        for row, adjectives in zip(present, requested):
            for adj in dict.fromkeys(adjectives):
                j = self.index.get(adj)
                if j is None:
                    self.unjudged += 1
                    continue
                hit = int(row[j])
                self.requested += 1
                self.found += hit
                self.base += base_rates.get(adj, float("nan"))
                stats = self.per_adjective.setdefault(adj, [0, 0])
                stats[0] += hit
                stats[1] += 1

    def compute(self) -> dict:
        if self.requested == 0:
            return {"accuracy": float("nan"), "base_rate": float("nan"), "judged": 0, "unjudged": self.unjudged}
        return {"accuracy": self.found / self.requested, "base_rate": self.base / self.requested,
                "judged": self.requested, "unjudged": self.unjudged,
                "per_adjective": {a: f / n for a, (f, n) in sorted(self.per_adjective.items())}}


def requested_adjectives(prompts: Sequence[str]) -> list[list[str]]:
    """The vocabulary adjectives each prompt asks for (synonyms and held-out synonyms mapped)."""
    return [parse_prompt(p).adjectives for p in prompts]


def unseen_prompts(labels: Sequence[Sequence[str]], n: int, seed: int = 0, per_prompt: int = 3) -> list[str]:
    """Up to `n` prompts of held-out synonyms only, each for adjectives of one real test
    painting that have a held-out synonym ("fiery, tranquil, gloomy")."""
    by_target: dict[str, list[str]] = {}
    for word, target in HELD_OUT_SYNONYMS.items():
        by_target.setdefault(target, []).append(word)
    rng = np.random.default_rng(seed)
    prompts = []
    for i in rng.permutation(len(labels)):
        usable = [a for a in labels[i] if a in by_target]
        if not usable:
            continue
        chosen = [usable[k] for k in rng.permutation(len(usable))[:per_prompt]]
        prompts.append(", ".join(by_target[a][int(rng.integers(len(by_target[a])))] for a in chosen))
        if len(prompts) == n:
            break
    return prompts


def unseen_pairs(train_labels: Sequence[Sequence[str]], adjectives: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """Up to `n` prompts "a, b" for pairs of `adjectives` from different facets that are
    never labelled together on one training painting."""
    together = Counter(pair for adj in train_labels for pair in combinations(sorted(set(adj)), 2))
    pairs = [(a, b) for a, b in combinations(sorted(adjectives), 2)
             if BY_WORD[a].facet != BY_WORD[b].facet and together[(a, b)] == 0]
    rng = np.random.default_rng(seed)
    return [f"{pairs[i][0]}, {pairs[i][1]}" for i in sorted(rng.permutation(len(pairs))[:n])]
