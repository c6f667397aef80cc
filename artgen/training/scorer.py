"""`artgen train scorer`: the code scorer (`artgen.models.code_scorer`) that a bundle exported
with `--candidates N` keeps the best of N drawn grids by, trained on the workspace's train
grids (with their mirror images) and their adjectives, into `checkpoints/code-scorer/`.

It reads the VQ-VAE's codes, so it belongs to that VQ-VAE (its hash is in `metrics.json`), and
never pixels or the corpus's `style` column: the bench's style judge stays an independent view
of what reranking does (the attribute judge learns the same adjectives from pixels, so its rise
is not). ~1.5 min on 2 CPU cores at the defaults.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from artgen.errors import ArtgenError
from artgen.files import replace_model_dir
from artgen.locks import stage_lock
from artgen.models.code_scorer import CodeScorer
from artgen.progress import console
from artgen.workspace import Workspace

SCORER = "code-scorer"  # its folder under checkpoints/


@dataclass
class ScorerConfig:
    epochs: int = 4  # 12 epochs of a 96-wide scorer found more adjectives (recall 0.58 -> 0.70) but kept
    width: int = 48  # grids no better by style (best of 2: 0.705 -> 0.712; docs/generation.md)
    batch_size: int = 128

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.width < 1 or self.batch_size < 1:
            raise ArtgenError("the code scorer needs at least one epoch, a width and a batch size of at least 1")


def train_scorer(ws: Workspace, annotations: str = "auto", cfg: ScorerConfig | None = None,
                 show_progress: bool = True) -> dict:
    """Train the code scorer into `checkpoints/code-scorer/`; returns its metrics."""
    with stage_lock(ws, f"checkpoint-{SCORER}", "the code scorer"):
        return _train_scorer(ws, annotations, cfg or ScorerConfig(), show_progress)


def _train_scorer(ws: Workspace, annotations: str, cfg: ScorerConfig, show_progress: bool) -> dict:
    from artgen.data.captions import load_labels
    from artgen.data.corpus import load_corpus
    from artgen.data.latents import ensure_latents
    from artgen.models.vqvae import VQVAE, checkpoint_hash
    from artgen.training.predictor import training_grids
    from artgen.training.self_training import SelfTrainingConfig, train_code_scorer

    load_corpus(ws.data)
    vq_dir = ws.checkpoint("vqvae")
    if not (vq_dir / "model.safetensors").exists():
        raise ArtgenError(f"no VQ-VAE at {vq_dir}: the scorer reads its codes; run `artgen train vqvae` first")
    codebook_size = VQVAE.from_pretrained(vq_dir).cfg.quantizer.codebook_size
    labels, source = load_labels(ws, annotations)
    ensure_latents(ws, show_progress=show_progress, flipped=True)
    grids = training_grids(ws, labels, source, flipped=True, rotated=False)
    start = time.perf_counter()
    scorer, stats = train_code_scorer(grids.train_codes, grids.train_labels, grids.test_codes, grids.test_labels,
                                      codebook_size, SelfTrainingConfig(scorer_epochs=cfg.epochs, scorer_width=cfg.width,
                                                                        scorer_batch=cfg.batch_size),
                                      show_progress=show_progress)
    out = ws.checkpoint(SCORER)
    metrics = {**stats, "annotations": source, "config": asdict(cfg), "vqvae_hash": checkpoint_hash(vq_dir),
               "seconds": round(time.perf_counter() - start, 1), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    replace_model_dir(out, scorer, metrics)
    console.print(f"code scorer: {stats['adjectives']} adjectives from {stats['train_grids']} train grids ({source} labels); "
                  f"test recall {stats.get('test_recall', float('nan')):.2f}, precision {stats.get('test_precision', float('nan')):.2f}; "
                  f"saved to {out}")
    return metrics


def load_scorer(ws: Workspace, vqvae_hash: str | None) -> CodeScorer:
    """The workspace's code scorer, checked against the VQ-VAE whose codes it is to read."""
    out = ws.checkpoint(SCORER)
    if not (out / "metrics.json").is_file():
        raise ArtgenError(f"no code scorer at {out}: run `artgen train scorer` first (~1.5 min)")
    trained_on = json.loads((out / "metrics.json").read_text()).get("vqvae_hash")
    if vqvae_hash is not None and trained_on != vqvae_hash:  # before the weights are read
        raise ArtgenError(f"the code scorer at {out} reads another VQ-VAE's codes than the model's: run `artgen train scorer` again")
    return CodeScorer.from_pretrained(out)
