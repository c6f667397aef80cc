"""The offline annotator: measured image statistics -> vocabulary adjectives.

It sees only pixels. Two kinds of decision, both stored in `heuristic_model.json` beside
this file and refitted on the train split by `scripts/fit_heuristic.py`:

* **Threshold rules** for the facets one statistic measures directly (temperature,
  saturation, value, contrast, grain): e.g. `warm` when the chroma-weighted warm-cool
  balance is at least the fitted threshold. `RULES` names the statistic and direction;
  the threshold is the one that maximises the adjective's F1 on the train split.
* **Linear scores** for form, composition and mood words (geometric, wavy, splattered,
  calm ...), which no single statistic captures: a logistic regression over all
  standardised statistics, one per adjective, fitted on the train split.

An image gets every adjective whose score passes 0.5, most confident first, capped at 5;
when fewer than 3 pass, the next most likely words fill up to 3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from artgen.data.image_stats import STAT_INDEX, STAT_NAMES, statistics_matrix
from artgen.data.vocabulary import ADJECTIVES
from artgen.errors import ArtgenError

MODEL_PATH = Path(__file__).with_name("heuristic_model.json")

# (adjective, statistic, direction): the adjective holds when direction * stat >= direction * threshold.
RULES: tuple[tuple[str, str, int], ...] = (
    ("warm", "warm_cool_balance", +1),   # chroma mostly in reds..yellows
    ("cool", "warm_cool_balance", -1),   # chroma mostly in cyans..violets
    ("vivid", "saturation_p90", +1),     # the most saturated tenth is strongly saturated
    ("muted", "saturation_p90", -1),     # even the most saturated tenth is greyed
    ("bright", "value_mean", +1),        # mean HSV value
    ("dark", "value_mean", -1),
    ("contrasting", "value_std", +1),    # spread of HSV value
    ("textured", "fine_grain", +1),      # pixel-level (Nyquist) grain of the canvas
)
# A rule that fires ranks like a confident linear score: colour facets are the most
# reliable statements the annotator makes.
RULE_SCORE = 0.9
MIN_WORDS, MAX_WORDS = 3, 5


@dataclass
class HeuristicModel:
    thresholds: dict[str, float]  # rule adjective -> threshold
    mean: np.ndarray  # (F,) statistic means on the train split
    scale: np.ndarray  # (F,) statistic standard deviations
    words: list[str]  # adjectives with a linear score
    weights: np.ndarray  # (len(words), F)
    bias: np.ndarray  # (len(words),)
    fitted_on: str = ""

    def to_json(self) -> dict:
        return {
            "stat_names": list(STAT_NAMES), "fitted_on": self.fitted_on,
            "rules": [{"adjective": a, "statistic": s, "direction": d, "threshold": round(self.thresholds[a], 6)}
                      for a, s, d in RULES],
            "mean": self.mean.round(6).tolist(), "scale": self.scale.round(6).tolist(),
            "linear": {w: {"weights": self.weights[i].round(5).tolist(), "bias": round(float(self.bias[i]), 5)}
                       for i, w in enumerate(self.words)},
        }

    @classmethod
    def from_json(cls, d: dict) -> "HeuristicModel":
        if d.get("stat_names") != list(STAT_NAMES):
            raise ArtgenError("the heuristic model was fitted on other image statistics: "
                              "refit it with `python scripts/fit_heuristic.py`")
        words = list(d["linear"])
        return cls(
            thresholds={r["adjective"]: float(r["threshold"]) for r in d["rules"]},
            mean=np.asarray(d["mean"], np.float32), scale=np.asarray(d["scale"], np.float32),
            words=words,
            weights=np.asarray([d["linear"][w]["weights"] for w in words], np.float32).reshape(len(words), -1),
            bias=np.asarray([d["linear"][w]["bias"] for w in words], np.float32),
            fitted_on=d.get("fitted_on", ""),
        )

    def save(self, path: Path = MODEL_PATH) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        tmp.replace(path)


_CACHED: HeuristicModel | None = None


def load_model(path: Path | None = None) -> HeuristicModel:
    global _CACHED
    if path is None and _CACHED is not None:
        return _CACHED
    p = Path(path or MODEL_PATH)
    if not p.exists():
        raise ArtgenError(f"no heuristic model at {p}: fit one with `python scripts/fit_heuristic.py`")
    model = HeuristicModel.from_json(json.loads(p.read_text()))
    if path is None:
        _CACHED = model
    return model


def scores(stats: np.ndarray, model: HeuristicModel) -> np.ndarray:
    """(N, F) statistics -> (N, len(ADJECTIVES)) scores in [0, 1], ADJECTIVES order."""
    out = np.zeros((stats.shape[0], len(ADJECTIVES)), np.float32)
    z = (stats - model.mean) / model.scale  # (N, F)
    logits = z @ model.weights.T + model.bias  # (N, W)
    probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
    for i, w in enumerate(model.words):
        out[:, ADJECTIVES.index(w)] = probs[:, i]
    for adj, stat, direction in RULES:
        fires = direction * stats[:, STAT_INDEX[stat]] >= direction * model.thresholds[adj]
        out[:, ADJECTIVES.index(adj)] = np.where(fires, RULE_SCORE, 0.0)
    return out


def select(score_row: np.ndarray, threshold: float = 0.5) -> list[str]:
    """3-5 adjectives from one row of scores: all above threshold, best first."""
    order = np.argsort(-score_row, kind="stable")
    k = int(np.clip((score_row >= threshold).sum(), MIN_WORDS, MAX_WORDS))
    return [ADJECTIVES[i] for i in order[:k]]


def annotate_statistics(stats: np.ndarray, model: HeuristicModel | None = None) -> list[list[str]]:
    model = model or load_model()
    return [select(row) for row in scores(stats, model)]


def annotate_images(images: Sequence[np.ndarray], model: HeuristicModel | None = None) -> list[list[str]]:
    """Adjectives for (H, W, 3) uint8 paintings."""
    return annotate_statistics(statistics_matrix(images), model)


def fit_model(stats: np.ndarray, labels: Sequence[Sequence[str]], fitted_on: str = "") -> HeuristicModel:
    """Fit rule thresholds and linear scores on statistics (N, F) and their adjectives."""
    from sklearn.linear_model import LogisticRegression

    y = np.array([[a in set(lab) for a in ADJECTIVES] for lab in labels], dtype=np.int8)  # (N, V)
    thresholds = {}
    for adj, stat, direction in RULES:
        x, t = direction * stats[:, STAT_INDEX[stat]], y[:, ADJECTIVES.index(adj)]
        candidates = np.unique(np.quantile(x, np.linspace(0.01, 0.99, 197)))
        pred = x[None, :] >= candidates[:, None]  # (K, N)
        tp = (pred & (t[None, :] == 1)).sum(1)
        f1 = 2 * tp / np.maximum(pred.sum(1) + t.sum(), 1)
        thresholds[adj] = float(direction * candidates[int(np.argmax(f1))])
    mean = stats.mean(0)
    scale = stats.std(0) + 1e-6
    z = (stats - mean) / scale
    rule_words = {a for a, _, _ in RULES}
    words, weights, bias = [], [], []
    for j, adj in enumerate(ADJECTIVES):
        if adj in rule_words or y[:, j].sum() < 5 or y[:, j].sum() > len(y) - 5:
            continue  # too rare to fit: the annotator never says it
        m = LogisticRegression(C=1.0, max_iter=3000).fit(z, y[:, j])
        words.append(adj)
        weights.append(m.coef_[0])
        bias.append(m.intercept_[0])
    return HeuristicModel(thresholds, mean.astype(np.float32), scale.astype(np.float32), words,
                          np.asarray(weights, np.float32), np.asarray(bias, np.float32), fitted_on)
