"""Self-training of the autoregressive generator on its own best drafts (rejection-sampling
fine-tuning: RAFT, Dong et al. 2023; ReST, Gulcehre et al. 2023).

Teacher forcing only ever shows the generator true prefixes, so it never learns to keep a
form going after its own draws; the drift measured in docs/generation.md (a field asked for,
begun, and lost lower down the grid) is that gap. Here the trained generator drafts several
grids for captions of train paintings with the default sampler, a code scorer
(`artgen.models.code_scorer`, trained on the train grids and their adjectives) keeps the
draft most consistent with the caption's words, and the generator is fine-tuned on the real
grids with the kept drafts as a share of the samples.

1. `train_code_scorer`: the scorer, on the train grids (their mirror images included).
2. `draw_drafts`: `captions` train captions x `candidates` drafts, each with its agreement.
3. `mixed_training_set`: the real grids plus the kept drafts, repeated to `share` of the samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from artgen.data.captions import make_caption
from artgen.errors import ArtgenError
from artgen.models.code_scorer import CodeScorer, CodeScorerConfig
from artgen.progress import progress_bar
from artgen.sampling import AR_DEFAULT_TEMPERATURE

DRAFT_SEED = 10_000_000  # draft seeds start here: far from the seeds users and the bench draw


@dataclass
class SelfTrainingConfig:
    captions: int = 2000  # train captions drafted (each from a different train painting)
    candidates: int = 4  # drafts per caption; the scorer keeps one
    share: float = 0.25  # of the fine-tuning samples that are kept drafts (the rest real grids)
    steps: int = 1000  # fine-tuning steps, at the preset's batch size
    lr: float = 3e-4  # peak learning rate of the fine-tuning (warm-up 5 %, cosine down)
    scorer_epochs: int = 4
    scorer_width: int = 48
    scorer_batch: int = 128

    def __post_init__(self) -> None:
        if self.captions < 1 or self.candidates < 1 or self.steps < 1 or self.scorer_epochs < 1:
            raise ArtgenError("self-training needs at least one caption, one candidate, one step and one scorer epoch")
        if not 0.0 < self.share < 1.0:
            raise ArtgenError(f"the drafts' share of the fine-tuning samples must be between 0 and 1 (got {self.share})")


@dataclass
class Drafts:
    codes: np.ndarray  # (captions, candidates, h, w)
    scores: np.ndarray  # (captions, candidates): the scorer's agreement with the caption's words
    captions: list[str]
    asked: list[list[str]]  # each caption's vocabulary words

    def kept(self) -> np.ndarray:
        """(captions, h, w): each caption's best-scoring draft."""
        return self.codes[np.arange(len(self.codes)), self.scores.argmax(1)]

    def summary(self) -> dict:
        best = self.scores.max(1)
        return {"captions": len(self.codes), "candidates": self.codes.shape[1],
                "agreement_first_draft": round(float(self.scores[:, 0].mean()), 4),
                "agreement_kept": round(float(best.mean()), 4)}


def train_code_scorer(train_codes: np.ndarray, train_labels: list[list[str]], test_codes: np.ndarray,
                      test_labels: list[list[str]], codebook_size: int, cfg: SelfTrainingConfig,
                      show_progress: bool = True) -> tuple[CodeScorer, dict]:
    """(scorer in eval mode, its stats): trained with binary cross-entropy on every train grid
    that has labels; `test_recall` is the share of the test paintings' adjectives it finds
    (probability > 0.5), `test_precision` the share of its finds that are right."""
    words = sorted({a for labels in train_labels for a in labels})
    if not words:
        raise ArtgenError("no train painting has adjectives: the code scorer has nothing to learn")
    labelled = np.array([bool(a) for a in train_labels])
    torch.manual_seed(0)
    model = CodeScorer(CodeScorerConfig(codebook_size=codebook_size, adjectives=words, width=cfg.scorer_width))
    codes = torch.from_numpy(train_codes[labelled].astype(np.int64))
    y = model.targets([a for a, keep in zip(train_labels, labelled) if keep])
    batch = min(cfg.scorer_batch, len(codes))
    per_epoch = len(codes) // batch
    steps = cfg.scorer_epochs * per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(0)
    model.train()
    with progress_bar("code scorer", total=steps, enabled=show_progress) as advance:
        for _ in range(cfg.scorer_epochs):
            order = torch.randperm(len(codes), generator=g)
            for s in range(per_epoch):
                idx = order[s * batch:(s + 1) * batch]
                loss = F.binary_cross_entropy_with_logits(model(codes[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                advance(1)
    model.eval()
    stats = {"train_grids": len(codes), "adjectives": len(words), "epochs": cfg.scorer_epochs,
             "final_loss": round(float(loss.detach()), 4)}
    if len(test_codes):
        with torch.no_grad():
            t = torch.from_numpy(test_codes.astype(np.int64))
            found = torch.cat([model(t[s:s + 256]).sigmoid() for s in range(0, len(t), 256)]) > 0.5
        asked = model.targets(test_labels).bool()
        stats["test_recall"] = round(float((found & asked).sum() / asked.sum().clamp_min(1)), 4)
        stats["test_precision"] = round(float((found & asked).sum() / found.sum().clamp_min(1)), 4)
    return model, stats


def caption_words(caption: str, words: list[str]) -> list[str]:
    """The words of `words` that `caption` holds (as whole words)."""
    return [w for w in words if re.search(rf"\b{re.escape(w)}\b", caption)]


@torch.no_grad()
def draw_drafts(sampler, scorer: CodeScorer, train_labels: list[list[str]], cfg: SelfTrainingConfig,
                seed: int = 0, batch: int = 32, show_progress: bool = True) -> Drafts:
    """`cfg.captions` captions of distinct labelled train paintings (a seeded sample; 3-5 of
    their adjectives, as training draws them), `cfg.candidates` drafts each by `sampler`'s
    default sampling (an `ARGenerator`: its own default guidance, an aligned model's lower one;
    the default temperature), scored by `scorer`."""
    labelled = [i for i, a in enumerate(train_labels) if a]
    if not labelled:
        raise ArtgenError("no train painting has adjectives: there is nothing to draft from")
    rng = np.random.default_rng([seed, 12345])
    rows = rng.choice(labelled, size=min(cfg.captions, len(labelled)), replace=False)
    captions = [make_caption(train_labels[r], rng) for r in rows]
    asked = [caption_words(c, train_labels[r]) for c, r in zip(captions, rows)]
    c = cfg.candidates
    codes, scores = [], []
    with progress_bar("self-training drafts", total=len(captions), enabled=show_progress) as advance:
        for s in range(0, len(captions), batch):
            chunk = captions[s:s + batch]
            prompts = [t for t in chunk for _ in range(c)]
            seeds = [DRAFT_SEED + (s + i) * c + j for i in range(len(chunk)) for j in range(c)]
            states, mask = sampler.encoder.encode(sampler.encoder.tokenize(prompts))
            drawn = sampler.codes_from_states(states, mask, seeds, sampler.default_guidance, AR_DEFAULT_TEMPERATURE)
            score = scorer.agreement(drawn, [a for a in asked[s:s + batch] for _ in range(c)])
            codes.append(drawn.view(len(chunk), c, *drawn.shape[1:]).numpy().astype(np.uint16))
            scores.append(score.view(len(chunk), c).numpy())
            advance(len(chunk))
    return Drafts(np.concatenate(codes), np.concatenate(scores), captions, asked)


def mixed_training_set(train_codes: np.ndarray, train_labels: list[list[str]], drafts: Drafts,
                       share: float) -> tuple[np.ndarray, list[list[str]]]:
    """The real grids and labels, then the kept drafts (labelled with their captions' words),
    repeated so that they are about `share` of the samples."""
    kept = drafts.kept()
    repeat = max(1, round(share * len(train_codes) / ((1 - share) * len(kept))))
    codes = np.concatenate([train_codes, np.repeat(kept, repeat, 0).astype(train_codes.dtype)])
    labels = list(train_labels) + [a for a in drafts.asked for _ in range(repeat)]
    return codes, labels
