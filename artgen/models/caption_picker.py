"""The caption picker: which of several drawn images looks most like the paintings of its words.

A dual encoder trained contrastively (CLIP's objective, Radford et al. 2021, at toy scale) on the
real train paintings and their adjectives: an image tower (a small CNN over the decoded 32 px
pixels) and a words tower (an MLP over the multi-hot adjectives the caption names) map into one
space where a painting lies near the words it was labelled with and far from other paintings'
words. Best-of-N sampling keeps the candidate whose image is nearest its prompt's words.

Why not the code scorer alone: the scorer predicts each adjective independently from the codes, so
its pick is a sum over words, and the misses of the shipped sampler are forms confused *within one
set of words* (arcs drawn as gradients, shards as dots). The words tower is non-linear in the set,
and the contrastive loss asks the image tower for whatever tells one set's paintings from
another's: in this corpus that is mostly form. It learns from captions only, never from a corpus's
`style` column, so the bench's style judge (trained on those labels) stays an independent judge.

    picker = train_caption_picker(images, adjective_sets, vocabulary, PickerConfig())
    scores = picker.score(candidate_images, asked_multi_hot)   # (N,) cosine; higher is better
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from artgen.data.vocabulary import multi_hot
from artgen.errors import ArtgenError
from artgen.files import atomic_save_safetensors, atomic_write_json

CONFIG, WEIGHTS = "config.json", "model.safetensors"


@dataclass
class PickerConfig:
    input_size: int = 32  # images are area-averaged to this side first
    widths: tuple[int, ...] = (32, 64, 128)  # conv stages, 2x2 average pooling between them
    embed: int = 64  # the shared space
    words_hidden: int = 128  # the words tower's hidden width
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    # each caption's words are cut to a random non-empty part of them for this share of a batch's rows
    # (each word kept with probability word_keep), so prompts of one or two words, far from the
    # 3-5-word captions, meet a words tower that has seen such parts
    partial_share: float = 0.5
    word_keep: float = 0.5


class ImageTower(nn.Module):
    """(B, 3, S, S) pixels in [0, 1] -> (B, embed), unit length."""

    def __init__(self, widths: Sequence[int], embed: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for i, w in enumerate(widths):
            if i:
                layers.append(nn.AvgPool2d(2))
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.GroupNorm(8, w), nn.GELU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * c, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x * 2 - 1)
        return nn.functional.normalize(self.proj(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)), dim=-1)


class WordsTower(nn.Module):
    """(B, V) multi-hot adjectives -> (B, embed), unit length; non-linear, so a set can mean more
    than the sum of its words."""

    def __init__(self, vocabulary: int, hidden: int, embed: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(vocabulary, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, embed))

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(words), dim=-1)


class CaptionPicker(nn.Module):
    """Both towers and the learned temperature; `forward(images, words)` is the cosine of each
    image to its own row's words (what the bundle's picker graph computes)."""

    def __init__(self, vocabulary: Sequence[str], cfg: PickerConfig):
        super().__init__()
        if not vocabulary:
            raise ArtgenError("a caption picker needs at least one adjective")
        self.vocabulary, self.cfg = list(vocabulary), cfg
        self.image = ImageTower(cfg.widths, cfg.embed)
        self.words = WordsTower(len(self.vocabulary), cfg.words_hidden, cfg.embed)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def pixels(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(np.stack(list(images)))).permute(0, 3, 1, 2).float() / 255
        return nn.functional.interpolate(x, size=(self.cfg.input_size,) * 2, mode="area")

    def multi_hot(self, sets: Sequence[Sequence[str]]) -> torch.Tensor:
        return torch.from_numpy(multi_hot(sets, self.vocabulary))

    def forward(self, x: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        return (self.image(x) * self.words(words)).sum(-1)

    @torch.no_grad()
    def score(self, images: np.ndarray, words: np.ndarray | torch.Tensor, batch: int = 500) -> np.ndarray:
        """(N,) cosine of image i to words row i; images (N, H, W, 3) uint8, words (N, V) multi-hot."""
        self.eval()
        words = torch.as_tensor(np.asarray(words, dtype=np.float32))
        return np.concatenate([self(self.pixels(images[s:s + batch]), words[s:s + batch]).numpy()
                               for s in range(0, len(images), batch)])

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        atomic_save_safetensors(self.state_dict(), directory / WEIGHTS)
        atomic_write_json(directory / CONFIG, {"vocabulary": self.vocabulary, "config": asdict(self.cfg)})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "CaptionPicker":
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG).is_file() or not (directory / WEIGHTS).is_file():
            raise ArtgenError(f"no caption picker at {directory} (no {CONFIG} + {WEIGHTS}): run `artgen train picker`")
        config = json.loads((directory / CONFIG).read_text())
        cfg = config["config"]
        model = cls(config["vocabulary"], PickerConfig(**{**cfg, "widths": tuple(cfg["widths"])}))
        model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
        return model.eval()


@torch.no_grad()
def pair_accuracy(picker: CaptionPicker, images: np.ndarray, sets: Sequence[Sequence[str]], seed: int = 0) -> float:
    """How often a painting is nearer its own words than another painting's (one drawn at random
    among those of another adjective set): 0.5 is chance. Nan with fewer than two sets."""
    keys = [frozenset(s) for s in sets]
    rng = np.random.default_rng(seed)
    other = []
    for i, k in enumerate(keys):
        pool = [j for j in rng.permutation(len(keys))[:64] if keys[j] != k]
        other.append(pool[0] if pool else -1)
    keep = [i for i, j in enumerate(other) if j >= 0]
    if not keep:
        return float("nan")
    words = picker.multi_hot(sets).numpy()
    own = picker.score(images[keep], words[keep])
    foreign = picker.score(images[keep], words[[other[i] for i in keep]])
    return float(np.mean(own > foreign))


def contrastive_loss(img: torch.Tensor, words: torch.Tensor, same: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy where every painting that carries row j's words is a positive
    of them (a batch holds many paintings of one set: they are not each other's negatives).
    img/words (B, d) unit rows; same (B, B) bool, same[i, j]: painting i carries words j (each row
    and column holds at least its diagonal)."""
    logits = log_scale.exp().clamp(max=100) * img @ words.T  # (B, B): image i vs words j
    m = same.float()
    by_image, by_words = m / m.sum(1, keepdim=True), m.T / m.T.sum(1, keepdim=True)
    return 0.5 * (-(by_image * logits.log_softmax(1)).sum(1).mean() - (by_words * logits.T.log_softmax(1)).sum(1).mean())


def carries(asked: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    """(B, B) bool, [i, j]: painting i (its words `held[i]`, multi-hot) carries every word of row j
    of `asked` (multi-hot): the positives of `contrastive_loss`."""
    return (asked @ (1 - held).T).T == 0


def partial_words(words: torch.Tensor, share: float, keep: float, g: torch.Generator) -> torch.Tensor:
    """(B, V) multi-hot with `share` of its rows cut to a random non-empty part of their words."""
    if share <= 0:
        return words
    cut = (torch.rand(words.shape, generator=g) < keep).float() * words
    empty = cut.sum(1, keepdim=True) == 0
    first = torch.zeros_like(words).scatter_(1, words.argmax(1, keepdim=True), 1.0)  # the first word: never an empty prompt
    cut = torch.where(empty, first * words, cut)
    rows = torch.rand(len(words), 1, generator=g) < share
    return torch.where(rows, cut, words)


def train_caption_picker(images: Sequence[np.ndarray] | np.ndarray, sets: Sequence[Sequence[str]], vocabulary: Sequence[str],
                         cfg: PickerConfig | None = None, show_progress: bool = False) -> tuple[CaptionPicker, dict]:
    """Fit a `CaptionPicker` to paintings (N, H, W, 3) uint8 and their adjective sets: AdamW,
    one-cycle LR, a random mirror per batch (every adjective survives one). Returns it and its
    training record."""
    from artgen.progress import progress_bar

    cfg = cfg or PickerConfig()
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = CaptionPicker(vocabulary, cfg)
    x_all = torch.cat([model.pixels(images[s:s + 1000]) for s in range(0, len(images), 1000)])
    w_all = model.multi_hot(sets)
    steps_per_epoch = max(1, len(x_all) // cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    start, losses = time.perf_counter(), []
    model.train()
    with progress_bar("train the caption picker", total=cfg.epochs * steps_per_epoch, enabled=show_progress) as advance:
        for _ in range(cfg.epochs):
            perm = torch.randperm(len(x_all), generator=g)
            for s in range(steps_per_epoch):
                b = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
                x = x_all[b]
                if bool(torch.randint(2, (1,), generator=g)):
                    x = x.flip(3)
                asked = partial_words(w_all[b], cfg.partial_share, cfg.word_keep, g)
                loss = contrastive_loss(model.image(x), model.words(asked), carries(asked, w_all[b]), model.log_scale)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                advance(1)
    model.eval()
    record = {"config": asdict(cfg), "trained_on": len(x_all), "updates": cfg.epochs * steps_per_epoch,
              "train_seconds": round(time.perf_counter() - start, 1), "final_loss": float(np.mean(losses[-20:]))}
    return model, record
