"""`artgen train align`: Condition Contrastive Alignment of a trained autoregressive generator
(CCA; Chen et al. 2024, "Toward Guidance-Free AR Visual Generation via Condition Contrastive
Alignment").

Cross-entropy teaches the generator the codes of a painting given its caption, but nothing in it
asks the caption to matter: a grid that is likely with any caption costs the same as one that is
likely only with its own. CCA fine-tunes the trained model against a frozen copy of itself (the
reference): each train grid is made likelier than under the reference with its own caption, and
less likely with another painting's caption (the batch's captions rolled by one),

    loss = -log sigmoid(beta * gap(x, c)) - lambda * log sigmoid(-beta * gap(x, c_other)),
    gap(x, c) = log p(x | c) - log p_ref(x | c), summed over the grid's positions,

divided by lambda (by 1 when lambda < 1). The samples trained without text (`text_drop`) keep the unconditional model
that guidance needs: both their terms push their likelihood up, with weight 1, as does a sample
whose neighbour's caption was written from the same adjectives. On the 2,000-step model the
probe of this loss (`scripts/ar_cca_probe.py`, then with the encoder's dropout on in the trained
copy and neighbours compared by their token ids) moved the style drawn at every guidance
(docs/generation.md, "Condition Contrastive Alignment"): without guidance 0.269 -> 0.477, at
the best guidance 0.492 -> 0.534, and the best guidance fell from 2.5 to 1.5, which the aligned
model records as its default (`config.json` "sampling").

The fine-tuned model replaces the one in `checkpoints/<encoder>-ar` only when the run completes;
its metrics keep the cross-entropy stage's and add an "alignment" record.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from artgen.errors import ArtgenError
from artgen.files import atomic_write_json
from artgen.locks import stage_lock
from artgen.models.encoders import ENCODERS, unknown_encoder
from artgen.models.generators import generator_kind, model_name
from artgen.models.text_to_codes import TextToCodes
from artgen.progress import console
from artgen.tracking import NO_TRACKER, Tracker, checkpoint_files
from artgen.training.predictor import PredictorTask, training_grids
from artgen.training.trainer import (
    ResumeRefused,
    TrainConfig,
    find_checkpoint,
    publish_run,
    resolve_device,
    run_dir,
    staging_dir,
    train,
)
from artgen.workspace import Workspace

NEGATIVES = ("next", "closest")


@dataclass
class AlignmentConfig:
    # ~42 min on 2 CPU cores for the 128 x 3 generator (four passes of the network per step). On the
    # 12,000-step model 2,000 steps drew the asked style more than 1,000 (0.695 -> 0.718 on 1,000 test
    # captions; 1,000 steps at twice the LR: 0.694); 3,000 no more (0.709, best of 2 0.736 vs 0.730;
    # docs/generation.md)
    steps: int = 2000
    lr: float = 1e-4  # peak, after a 5 % warm-up; cosine down to a tenth
    # the paper's beta 0.02 let the model drift far from its frozen copy at this LR (its own captions'
    # likelihood fell 0.65 nats per position within 60 steps); 0.05 keeps it within ~0.1
    beta: float = 0.05
    lam: float = 50.0  # weight of the other caption's term; 10 moved the style drawn without guidance less
    batch_size: int = 32
    guidance: float = 1.5  # the sampling guidance the aligned model records as its default (best at 2,000 steps)
    # whose caption is each grid's negative: "next", the next sample's in the batch (the paper's random
    # caption); "closest", the batch's caption whose adjectives are nearest its own (most shared
    # of all, Jaccard) without being the same set: a harder negative that differs in a word or two.
    # Closest drew the style far less (2,000 steps: 0.718 -> 0.605, one draw; the text's help to the
    # test CE 0.115 -> 0.008 nats): pushed down under its neighbours' words, the model leans on words less
    negatives: str = "next"
    # other captions per grid, each its own negative term (weight lambda / this): with "next", the
    # next `negative_captions` samples' captions; a lower-variance estimate of the same push for
    # ~(1 + n) / 2 of one negative's time per step. 2 drew what 1 drew (2,000 steps: 0.718 -> 0.712
    # one draw, best of 2 0.730 -> 0.742; docs/generation.md) in 65 min instead of 42
    negative_captions: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ArtgenError(f"alignment batch_size must be at least 2, a grid and another's caption (got {self.batch_size})")
        check_negatives(self.negatives, self.negative_captions, self.batch_size)
        if self.steps < 1:
            raise ArtgenError(f"alignment --steps must be at least 1 (got {self.steps})")
        for name in ("lr", "beta", "lam"):
            if not getattr(self, name) > 0:
                raise ArtgenError(f"alignment --{name} must be above 0 (got {getattr(self, name)})")
        if not self.guidance >= 1:
            raise ArtgenError(f"alignment --guidance must be at least 1 (1: none; got {self.guidance})")


def check_negatives(negatives: str, negative_captions: int, batch_size: int | None) -> None:
    """A one-line ArtgenError for negative captions that a batch of `batch_size` (None: any) cannot give."""
    if negatives not in NEGATIVES:
        raise ArtgenError(f"alignment --negatives must be one of {', '.join(NEGATIVES)} (got {negatives!r})")
    if negative_captions < 1:
        raise ArtgenError(f"alignment --negative-captions must be at least 1 (got {negative_captions})")
    if batch_size is not None and negative_captions > batch_size - 1:
        raise ArtgenError(f"alignment --negative-captions must be from 1 to {batch_size - 1}, the batch size less one "
                          f"(got {negative_captions})")
    if negatives == "closest" and negative_captions != 1:
        raise ArtgenError("alignment --negatives closest takes one negative caption per grid: leave --negative-captions at 1")


def closest_others(words: list[frozenset], generator: torch.Generator) -> torch.Tensor:
    """(B,): for each sample, the index of another sample of the batch whose adjective set shares
    the most with its own (Jaccard) without being the same set, ties broken at random; the next
    sample where no other has a different, non-empty set."""
    n = len(words)
    noise = torch.rand(n, n, generator=generator).tolist()
    others = []
    for i, own in enumerate(words):
        best, best_key = (i + 1) % n, None
        for j, theirs in enumerate(words):
            if j == i or not theirs or theirs == own:
                continue
            key = (len(own & theirs) / len(own | theirs), noise[i][j])
            if best_key is None or key > best_key:
                best, best_key = j, key
        others.append(best)
    return torch.tensor(others)


def sequence_logp(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(B,): log p of each whole grid (B, N) under `logits` (B, N, K), the sum over its positions."""
    return logits.log_softmax(-1).gather(2, codes.unsqueeze(2)).squeeze(2).sum(1)


def disable_dropout(model: torch.nn.Module) -> None:
    """Set every dropout of `model` to 0 (torch's Dropout modules and the attention layers' own rates)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        elif isinstance(getattr(module, "dropout", None), float):
            module.dropout = 0.0


class AlignmentTask(PredictorTask):
    """PredictorTask whose loss is CCA's against a frozen reference copy of the model as it starts."""

    def __init__(self, *args, beta: float, lam: float, negatives: str = "next", negative_captions: int = 1, **kwargs):
        check_negatives(negatives, negative_captions, None)  # against the batch size in `batch`
        super().__init__(*args, **kwargs)
        # no dropout in the trained copy (TRL's DPO does the same): the gap to the reference must
        # read the weights, not the noise of one dropout mask (the tiny encoder's 0.1)
        disable_dropout(self.model)
        self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.beta, self.lam, self.negatives, self.negative_captions = beta, lam, negatives, negative_captions

    def config(self) -> dict:  # an alignment's checkpoint is not a cross-entropy run's, nor another alignment's
        return {**super().config(), "alignment": {"beta": self.beta, "lam": self.lam, "negatives": self.negatives,
                                                  "negative_captions": self.negative_captions}}

    def batch(self, step: int, generator: torch.Generator, batch_size: int) -> dict:
        check_negatives(self.negatives, self.negative_captions, batch_size)
        b = super().batch(step, generator, batch_size)
        dropped = ~b["text_mask"].any(1)  # the samples trained without text (or with none to give)
        words = [frozenset(self.train_labels[r]) for r in b["rows"].tolist()]
        # (n * B,): negative k of sample i at row k * B + i; with "next", the k + 1-th next sample's
        if self.negatives == "closest":
            other = closest_others(words, generator)
        else:
            other = torch.cat([torch.roll(torch.arange(batch_size), -(k + 1)) for k in range(self.negative_captions)])
        own = torch.arange(len(other)) % batch_size  # the sample each negative row belongs to
        # the other sample's caption, whole even where that sample's own text was dropped. One written
        # from the same adjectives as the sample's own (the same painting, its mirror image, or a painting
        # labelled alike) is no negative: it counts as a positive, as the dropped samples do. A neighbour
        # without labels has only a placeholder caption: no term at all (weight 0), unless dropped.
        same = torch.tensor([words[i] == words[j] for i, j in zip(own.tolist(), other.tolist())])
        unlabelled = torch.tensor([not words[j] for j in other.tolist()])
        b.update(other=other, other_ids=b["ids"][other], other_mask=b["mask"][other],
                 other_text_mask=b["mask"][other] & ~dropped[own, None], positive_other=dropped[own] | same,
                 unused_other=unlabelled & ~dropped[own])
        return b

    def _both_logp(self, model, b) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,), (n * B,): each grid's log p with its own caption, then with each other caption (one batch of (1 + n) B)."""
        n = len(b["other"]) // len(b["codes"])
        two = lambda a, c: torch.cat([a, c])  # noqa: E731
        again = lambda a: a.repeat(1 + n, *[1] * (a.dim() - 1))  # noqa: E731
        logits = model(again(b["inputs"]), two(b["ids"], b["other_ids"]), two(b["mask"], b["other_mask"]),
                       two(b["text_mask"], b["other_text_mask"]))
        logp = sequence_logp(logits, again(b["codes"]))
        return logp[:len(b["codes"])], logp[len(b["codes"]):]

    def loss(self, model, b):
        logp, other_logp = self._both_logp(model, b)
        device = logp.device
        if next(self.reference.parameters()).device != device:
            self.reference.to(device)
        with torch.no_grad():
            ref, other_ref = self._both_logp(self.reference, b)
        own = torch.arange(len(other_logp), device=device) % len(logp)
        gap, other_gap = logp - ref, other_logp - other_ref
        positive = b["positive_other"]
        sign = positive.float() * 2 - 1  # -1: push another caption's likelihood down; +1: a dropped sample's up
        weight = torch.where(positive, torch.ones_like(other_gap), torch.full_like(other_gap, self.lam))
        weight = torch.where(b["unused_other"], torch.zeros_like(other_gap), weight)
        loss = -F.logsigmoid(self.beta * gap).mean() - (weight * F.logsigmoid(sign * self.beta * other_gap)).mean()
        with torch.no_grad():
            n = b["codes"].shape[1]
            negatives = ~positive & ~b["unused_other"]
            margin = (gap[own] - other_gap)[negatives].mean() if negatives.any() else torch.zeros((), device=device)
        return loss / max(self.lam, 1.0), {"margin_per_position": margin / n, "gap_per_position": gap.mean() / n}


ALIGN_CHECKPOINT_EVERY = 250  # steps: an interrupted alignment (~42 min for the tiny model) loses at most these


def is_alignment(ckpt) -> bool:
    """Whether the staged checkpoint `ckpt` is an alignment's (its task config says so)."""
    try:
        return "alignment" in json.loads((ckpt / "config.json").read_text()).get("task", {})
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def discard_staged_alignment(out_dir: Path) -> bool:
    """Delete the staged alignment of the model in `out_dir` (one that will not be continued), saying
    so; a staged cross-entropy run is left alone. Whether one was deleted."""
    stage = staging_dir(out_dir)
    if not is_alignment(find_checkpoint(stage)):
        return False
    console.print(f"discarding the unfinished alignment in {stage}: its settings or length are not this one's")
    shutil.rmtree(stage)
    return True


def align_predictor(ws: Workspace, encoder: str = "tiny", cfg: AlignmentConfig | None = None, device: str = "auto",
                    show_progress: bool = True, tracker: Tracker = NO_TRACKER, resume: bool = False) -> dict:
    """Align the trained autoregressive model `checkpoints/<encoder>-ar` in place (the finished
    model stays until the run completes); returns its new metrics. One process per model.
    `resume` continues an interrupted alignment with the same settings from its last checkpoint."""
    if encoder not in ENCODERS:
        raise unknown_encoder(encoder)
    resolve_device(device)
    name = model_name(encoder, "ar")
    with stage_lock(ws, f"checkpoint-{name}", f"the {name} model"):
        return align_unlocked(ws, encoder, cfg or AlignmentConfig(), device, show_progress, tracker, resume)


def align_unlocked(ws: Workspace, encoder: str, cfg: AlignmentConfig, device: str = "auto", show_progress: bool = True,
                   tracker: Tracker = NO_TRACKER, resume: bool = False) -> dict:
    """`align_predictor` for a caller that holds the model's lock already (`train_predictor`)."""
    from artgen.data.captions import load_labels
    from artgen.data.latents import ensure_latents
    from artgen.models.vqvae import checkpoint_hash

    name = model_name(encoder, "ar")
    out_dir = ws.checkpoint(name)
    hint = f"artgen train --encoder {encoder} --generator ar"
    model, config = TextToCodes.from_pretrained(out_dir, retrain_hint=hint)
    summary = config["summary"]
    if "alignment" in summary:
        raise ArtgenError(f"{out_dir} is aligned already ({summary['alignment']['steps']} steps): a second alignment "
                          f"would start from the aligned model; train it again with `{hint}` first")
    vq_dir = ws.checkpoint("vqvae")
    if not (vq_dir / "model.safetensors").exists() or checkpoint_hash(vq_dir) != summary["vqvae_hash"]:
        raise ArtgenError(f"{out_dir} was trained on the codes of another VQ-VAE than {vq_dir}: train it again with `{hint}`")
    labels, source = load_labels(ws, summary["annotations"])
    flipped, rotated = summary.get("flipped_paintings", False), summary.get("rotated_paintings", False)
    ensure_latents(ws, show_progress=show_progress, flipped=flipped, rotated=rotated)
    grids = training_grids(ws, labels, source, flipped, rotated)
    before = json.loads((out_dir / "metrics.json").read_text()) if (out_dir / "metrics.json").exists() else {}

    pending = staging_dir(out_dir)
    ckpt = find_checkpoint(pending)
    if resume and ckpt is None:
        raise ArtgenError(f"nothing to resume: no unfinished alignment of {name} in {pending}: run again without --resume")
    if resume and not is_alignment(ckpt):
        raise ResumeRefused(f"the unfinished run in {pending} is a training run, not an alignment: finish it with "
                            f"`{hint} --resume` (or delete that folder)")
    if ckpt is not None and not resume:
        if is_alignment(ckpt):
            raise ArtgenError(f"an unfinished alignment of {name} waits in {pending}: continue it with `artgen train align "
                              f"--encoder {encoder} --resume` (or delete that folder)")
        raise ArtgenError(f"an unfinished training run of {name} waits in {pending}: finish it with `{hint} --resume` "
                          "(or delete that folder) before aligning")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ArtgenError("the alignment runs in one process: run `artgen train align` without torchrun")
    work = run_dir(out_dir, resume=resume)  # the finished model stays until this run completes
    model.train()
    task = AlignmentTask(model, grids.train_codes, grids.train_labels, grids.test_codes, grids.test_labels, config, None,
                         kind=generator_kind("ar"), beta=cfg.beta, lam=cfg.lam,
                         negatives=cfg.negatives, negative_captions=cfg.negative_captions)
    tcfg = replace(TrainConfig(**{k: v for k, v in config.get("train", {}).items() if k in TrainConfig.__dataclass_fields__}),
                   steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, warmup_steps=max(1, cfg.steps // 20),
                   checkpoint_every=ALIGN_CHECKPOINT_EVERY, eval_every=0, seed=0, compile=False, ema_decay=0.0, device=device,
                   optimizer="adamw", show_progress=show_progress)  # its LR is AdamW's, whatever trained the model
    console.print(f"align {name} (Condition Contrastive Alignment against its frozen copy): {cfg.steps} steps at peak LR "
                  f"{cfg.lr:g}, beta {cfg.beta:g}, lambda {cfg.lam:g}, {cfg.negatives} captions as negatives "
                  f"({cfg.negative_captions} per grid), {len(grids.train_codes)} train grids, "
                  f"captions from {source} labels")
    tracker.log_params({"stage": f"{name} alignment", "alignment": asdict(cfg)})
    result = train(task, tcfg, work, resume=resume, description=f"align {name}", on_log=tracker.log_metrics)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return result.metrics
    m = result.metrics
    record = {**asdict(cfg), "ce_before": before.get("ce"), "ce_no_text_before": before.get("ce_no_text"),
              "seconds": round(result.seconds, 1), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    aligned = {**config, "summary": {**summary, "alignment": record},
               "sampling": {**config.get("sampling", {}), "guidance": cfg.guidance}, "alignment_train": asdict(tcfg)}
    result.model.save_pretrained(work, aligned)
    if (out_dir / "train_log.jsonl").exists():  # the cross-entropy stage's learning curve stays with the model
        shutil.copy(out_dir / "train_log.jsonl", work / "ce_train_log.jsonl")
    final = {**before, **aligned["summary"], **m}
    atomic_write_json(work / "metrics.json", final)
    publish_run(work, out_dir)
    tracker.log_metrics({f"aligned_{k}": v for k, v in m.items() if isinstance(v, (int, float))})
    tracker.log_files(checkpoint_files(out_dir), folder="checkpoint")
    console.print(f"{name} aligned: test ce {m['ce']:.3f} with text vs {m['ce_no_text']:.3f} without (before: "
                  f"{_fmt(before.get('ce'))} vs {_fmt(before.get('ce_no_text'))}); samples with guidance {cfg.guidance:g} "
                  f"by default; saved to {out_dir}")
    return final


def _fmt(value) -> str:
    return "?" if value is None else f"{value:.3f}"
