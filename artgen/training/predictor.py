"""`artgen train --encoder tiny|clip|distilbert`: train a text encoder + the direct index
predictor on the cached VQ-VAE latents, through the shared loop in `artgen.training.trainer`.

Data: each training painting's code grid (B, 16, 16) and a caption drawn afresh from its
adjectives at every step (`artgen.data.captions.make_caption`: 3-5 vocabulary words in a random
template; held-out synonyms never appear). Loss: cross-entropy on the masked positions.
Evaluation (the whole test split, one fixed caption per painting, grid fully masked = the
one-shot prediction): `ce` and `token_accuracy` with the text, `ce_no_text` with the text
dropped, and the baselines every model must beat - the most frequent training code
(`baseline_accuracy`) and the training code histogram as a predictor (`baseline_ce`).

The checkpoint directory `checkpoints/<encoder>/` describes itself: `config.json` (encoder,
weight source or "trained from scratch", predictor config, vocabulary hash, VQ-VAE hash),
`model.safetensors` (`encoder.*` and `predictor.*`), `encoder.json`, `tokenizer/`,
`metrics.json`; the trainer's resumable state sits in `train_state/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from artgen.data.captions import load_labels, make_caption, make_captions
from artgen.data.corpus import load_corpus
from artgen.data.latents import FLIPPED, ROTATED, ensure_latents, labels_of, load_latents
from artgen.data.vocabulary import vocabulary_hash
from artgen.errors import ArtgenError
from artgen.files import atomic_write_json
from artgen.locks import stage_lock
from artgen.models.encoders import ENCODERS, Tokens, encoder_from_directory, load_encoder, unknown_encoder
from artgen.models.generators import GeneratorKind, generator_kind, model_name
from artgen.models.text_to_codes import TextToCodes
from artgen.models.vqvae import checkpoint_hash
from artgen.progress import console
from artgen.tracking import NO_TRACKER, Tracker, checkpoint_files
from artgen.training.trainer import (
    ResumeRefused,
    TrainConfig,
    find_checkpoint,
    publish_run,
    resolve_device,
    resume_dir,
    run_dir,
    train,
)
from artgen.training.vqvae import train_vqvae
from artgen.workspace import Workspace

CHECKPOINT_FORMAT = "artgen-text-to-codes-1"


@dataclass
class PredictorPreset:
    predictor: dict = field(default_factory=dict)  # PredictorConfig fields
    encoder: dict = field(default_factory=dict)  # encoder config overrides (small test configs)
    train: dict = field(default_factory=dict)  # TrainConfig fields
    eval_images: int = 0  # test paintings evaluated (0: the whole test split)
    flipped: bool = False  # also train on the mirror images of the train paintings (4x the grids)
    rotated: bool = False  # also train on their quarter-turned images, orientation words swapped (4x more)
    # --generator ar only: AlignmentConfig fields (artgen.training.alignment) of a Condition Contrastive
    # Alignment stage run after the cross-entropy one; None: no alignment
    alignment: dict | None = None


_QUICK_TRAIN = dict(batch_size=32, lr=1e-3, warmup_steps=30, weight_decay=0.01, checkpoint_every=100, log_every=10)
PRESETS: dict[str, dict[str, PredictorPreset]] = {
    # <= 10 minutes per encoder on the 2-core build machine: tests, the demo, the comparison.
    "quick": {
        "tiny": PredictorPreset(predictor=dict(width=128, layers=3, heads=4), train=dict(_QUICK_TRAIN, steps=300)),
        "clip": PredictorPreset(predictor=dict(width=128, layers=3, heads=4),
                                train=dict(_QUICK_TRAIN, steps=120, lr=3e-4)),
        "distilbert": PredictorPreset(predictor=dict(width=128, layers=3, heads=4),
                                      train=dict(_QUICK_TRAIN, steps=120, lr=3e-4)),
    },
    # The shipped model: PredictorConfig's default 128-wide, 4-layer predictor (0.58 s per
    # batch of 32 on 2 idle cores; 192 wide 1.16 s and ~2.25x the work per sampling step:
    # see scripts/bench_predictor_step.py), 3,500 steps (~15 epochs) in under an hour for
    # tiny. The large encoders get the same predictor and step budget.
    "default": {
        name: PredictorPreset(train=dict(batch_size=32, lr=(1e-3 if name == "tiny" else 3e-4), warmup_steps=200,
                                         weight_decay=0.01, steps=3500, checkpoint_every=250, log_every=10,
                                         eval_every=1000))
        for name in ENCODERS
    },
}


# The autoregressive generator (`--generator ar`): 128 wide x 3 layers, because its 256 cached
# steps must fit the latency budget (scripts/bench_ar_step.py on the quiet 2-core machine, int8,
# one guided image: 128x3 53 ms, 128x4 72 ms for the step loop alone). The quick preset takes
# the masked one's steps; the default one as many steps as fit the masked default's hour.
AR_PRESETS: dict[str, dict[str, PredictorPreset]] = {
    "quick": {name: replace(p, predictor=dict(width=128, layers=3, heads=4)) for name, p in PRESETS["quick"].items()},
    # the default also trains on the paintings' mirror images (--flipped): at the same 6,000 steps the
    # test CE fell from 2.379 to 2.211 and style consistency rose 0.457 -> 0.507 (docs/generation.md);
    # the pooled text modulates every block's norms (text_modulation, adaLN); and the self-attention
    # reads 2-D relative positions (rope: test CE 2.722 -> 2.644 at step 1,000). Peak LR 2e-3 lowered the
    # test CE (2.100 -> 2.064) but not the style drawn, and a moving average of the weights drew it worse
    # (docs/generation.md, quality levers): neither is in the preset
    "default": {name: replace(p, predictor=dict(width=128, layers=3, heads=4, text_modulation=True, rope=True),
                              train={**p.train, "steps": 6000}, flipped=True)
                for name, p in PRESETS["default"].items()},
}
# twice the default's steps, through torch.compile: the test CE was still falling at 6,000 steps
# (2.117 -> 2.100 over the last 1,000) with the train loss level with it (2.07), so the default is
# short of steps rather than of capacity (docs/generation.md, "training steps")
# then Condition Contrastive Alignment (`artgen train align`, AlignmentConfig's defaults: 2,000 steps,
# ~42 min): on the 12,000-step model it moved the style drawn and the words' accuracy at the lower
# guidance it records (docs/generation.md, "Condition Contrastive Alignment")
AR_PRESETS["long"] = {name: replace(p, train={**p.train, "steps": 12000, "compile": True}, alignment={})
                      for name, p in AR_PRESETS["default"].items()}


def presets_for(generator: str) -> dict[str, dict[str, PredictorPreset]]:
    return AR_PRESETS if generator == "ar" else PRESETS


def preset_label(preset: PredictorPreset, presets: dict[str, dict[str, PredictorPreset]], encoder: str) -> str:
    """The name a preset given as an object is recorded under: that of the named preset it
    equals (a script that changes nothing trains the default preset), else "custom"."""
    return next((name for name, by_encoder in presets.items() if by_encoder.get(encoder) == preset), "custom")


def caption_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


class PredictorTask:
    """The `artgen.training.trainer` task: batches of (captions, code grids), CE on the positions the
    generator predicts (the masked ones, or every one for the autoregressive generator)."""

    def __init__(self, model: TextToCodes, train_codes: np.ndarray, train_labels: list[list[str]],
                 test_codes: np.ndarray, test_labels: list[list[str]], config: dict, metrics_path: Path | None,
                 eval_images: int = 0, kind: GeneratorKind | None = None):
        self.model = model
        self.kind = kind or generator_kind("masked")
        self.cfg = model.predictor.cfg
        self.make_caption = make_caption
        self.train_codes = torch.from_numpy(train_codes.astype(np.int64)).flatten(1)  # (N, h*w)
        self.train_labels = train_labels
        n_test = len(test_codes) if not eval_images else min(eval_images, len(test_codes))
        self.test_codes = torch.from_numpy(test_codes[:n_test].astype(np.int64)).flatten(1)
        # one fixed caption per test painting, so every evaluation reads the same text
        self.test_captions = [make_caption(a, caption_rng(i)) if a else "" for i, a in enumerate(test_labels[:n_test])]
        self.test_has_text = torch.tensor([bool(a) for a in test_labels[:n_test]])
        counts = torch.bincount(self.train_codes.flatten(), minlength=self.cfg.codebook_size).double()
        self.code_logprob = (counts / counts.sum()).clamp_min(1e-12).log()  # unigram "model" of the codes
        self.most_frequent = int(counts.argmax())
        self._config = config
        self.metrics_path = metrics_path
        self.evaluations: list[dict] = []
        self.steps_done = 0

    def config(self) -> dict:
        return self._config

    def _tokens(self, captions: list[str]) -> Tokens:
        # a painting without labels still needs some tokens; its text is dropped (masked) anyway
        return self.model.encoder.tokenize([c or "painting" for c in captions])

    def batch(self, step: int, generator: torch.Generator, batch_size: int) -> dict:
        idx = torch.randint(0, len(self.train_codes), (batch_size,), generator=generator)
        rng = caption_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
        labels = [self.train_labels[i] for i in idx.tolist()]
        captions = [self.make_caption(a, rng) if a else "" for a in labels]
        has_text = torch.tensor([bool(a) for a in labels])
        tokens = self._tokens(captions)
        codes = self.train_codes[idx]  # (B, N)
        inputs, masked, text_mask = self.kind.training_inputs(codes, tokens.mask & has_text[:, None], self.cfg, generator)
        self.steps_done = step + 1
        return {"codes": codes, "inputs": inputs, "masked": masked, "ids": tokens.ids, "mask": tokens.mask,
                "text_mask": text_mask, "rows": idx}  # rows: which train grids (for tasks that add per-grid data)

    def loss(self, model, b):
        logits = model(b["inputs"], b["ids"], b["mask"], b["text_mask"])  # (B, N, K)
        ce = F.cross_entropy(logits.transpose(1, 2), b["codes"], reduction="none")  # (B, N)
        m = b["masked"].float()
        loss = (ce * m).sum() / m.sum()
        with torch.no_grad():
            acc = ((logits.argmax(-1) == b["codes"]).float() * m).sum() / m.sum()
        return loss, {"acc": acc}

    def evaluate(self, model: TextToCodes, raw_model: TextToCodes | None = None) -> dict:
        """Every test grid's CE with and without the text: the one-shot prediction for the masked
        generator, the full teacher-forced CE for the autoregressive one (`kind.test_ce`). With
        `raw_model` (the raw weights, when `model` is their moving average) its scores come too,
        as `raw_ce`, `raw_ce_no_text` and `raw_token_accuracy`."""
        row = {"step": self.steps_done, **self._scores(model), "test_images": len(self.test_codes)}
        if raw_model is not None:
            raw = self._scores(raw_model)
            row.update({f"raw_{k}": raw[k] for k in ("ce", "ce_no_text", "token_accuracy")})
        self.evaluations.append(row)
        if self.metrics_path is not None:
            atomic_write_json(self.metrics_path, {**self._config["summary"], "evaluations": self.evaluations, **row})
        return row

    def _scores(self, model: TextToCodes) -> dict:
        device = next(model.parameters()).device
        sums = {"ce": 0.0, "acc": 0.0, "ce_no_text": 0.0, "acc_no_text": 0.0, "baseline_ce": 0.0, "baseline_acc": 0.0}
        n = 0
        bs = 64
        for s in range(0, len(self.test_codes), bs):
            codes = self.test_codes[s:s + bs].to(device)  # (B, N)
            tokens = self._tokens(self.test_captions[s:s + bs]).to(device)
            inputs = self.kind.evaluation_inputs(codes, self.cfg)
            states = model.encoder(tokens.ids, tokens.mask)
            has = self.test_has_text[s:s + bs].to(device)[:, None]
            for key, text_mask in (("", tokens.mask & has), ("_no_text", torch.zeros_like(tokens.mask))):
                logits = model.predictor(inputs, states, text_mask)  # (B, N, K)
                sums["ce" + key] += F.cross_entropy(logits.transpose(1, 2), codes, reduction="sum").item()
                sums["acc" + key] += (logits.argmax(-1) == codes).sum().item()
            sums["baseline_ce"] += -self.code_logprob.to(device)[codes].sum().item()
            sums["baseline_acc"] += (codes == self.most_frequent).sum().item()
            n += codes.numel()
        return {
            "ce": sums["ce"] / n, "ce_no_text": sums["ce_no_text"] / n,
            "token_accuracy": sums["acc"] / n, "token_accuracy_no_text": sums["acc_no_text"] / n,
            "baseline_accuracy": sums["baseline_acc"] / n, "baseline_ce": sums["baseline_ce"] / n,
        }


def _labels_for(ids: list[str], labels: dict[str, list[str]]) -> list[list[str]]:
    return [labels_of(i, labels) for i in ids]


@dataclass
class TrainingGrids:
    """The cached code grids a generator trains and is evaluated on, each with its painting's labels."""
    train_ids: list[str]
    train_codes: np.ndarray  # (N, h, w): the train paintings, then their mirror and quarter-turned images when asked
    train_labels: list[list[str]]
    paintings: int  # how many of the train grids are the paintings themselves (the first ones)
    test_ids: list[str]
    test_codes: np.ndarray
    test_labels: list[list[str]]


def training_grids(ws: Workspace, labels: dict[str, list[str]], label_source: str, flipped: bool,
                   rotated: bool) -> TrainingGrids:
    """The workspace's cached latents (already encoded) with `labels`; an ArtgenError when no
    train painting has one."""
    train_ids, train_codes = load_latents(ws, "train")
    n_paintings = len(train_ids)  # before the mirror images: the tokenizer learns from each painting once
    if flipped:
        flip_ids, flip_codes = load_latents(ws, FLIPPED)
        train_ids, train_codes = train_ids + flip_ids, np.concatenate([train_codes, flip_codes])
    if rotated:
        turned_ids, turned_codes = load_latents(ws, ROTATED)
        train_ids, train_codes = train_ids + turned_ids, np.concatenate([train_codes, turned_codes])
    test_ids, test_codes = load_latents(ws, "test")
    train_labels = _labels_for(train_ids, labels)
    if not any(train_labels):
        raise ArtgenError(f"none of the {len(train_ids)} training paintings has {label_source} labels: "
                          "run `artgen annotate` or choose --annotations gt")
    return TrainingGrids(train_ids, train_codes, train_labels, n_paintings, test_ids, test_codes, _labels_for(test_ids, labels))


def _ensure_vqvae(ws: Workspace, device: str, show_progress: bool, flipped: bool = False, rotated: bool = False) -> Path:
    ckpt = ws.checkpoint("vqvae")
    if not (ckpt / "model.safetensors").exists():
        load_corpus(ws.data)  # a missing corpus is named before any training starts
        console.print(f"no VQ-VAE at {ckpt}: training one first (`artgen train vqvae --preset quick`)")
        train_vqvae(ws, preset="quick", device=device, show_progress=show_progress)
    ensure_latents(ws, show_progress=show_progress, flipped=flipped, rotated=rotated)
    return ckpt


def train_predictor(ws: Workspace, encoder: str = "tiny", preset: str | PredictorPreset = "quick",
                    annotations: str = "auto", pretrained: str | None = None, finetune: bool = False,
                    resume: bool = False, device: str = "auto", steps: int | None = None,
                    show_progress: bool = True, generator: str = "masked", flipped: bool | None = None,
                    tracker: Tracker = NO_TRACKER, rotated: bool | None = None) -> dict:
    """Train `encoder` + a generator (`masked`: the direct index predictor, `ar`: the
    autoregressive one) into `checkpoints/<model>/` (tiny, tiny-ar, ...); returns the final metrics.
    `flipped` (default: the preset's) adds the mirror images of the train paintings, `rotated`
    their quarter-turned images with horizontal and vertical swapped. `tracker`
    (`artgen.tracking`) gets the configs, every logged step and evaluation, the final metrics and
    the checkpoint's JSON files.

    One process at a time per model (a workspace lock), and a new run trains in a staging
    folder that replaces the finished model only when it is complete."""
    if encoder not in ENCODERS:
        raise unknown_encoder(encoder)
    resolve_device(device)  # an unknown device is named before anything is built
    name = model_name(encoder, generator)
    with stage_lock(ws, f"checkpoint-{name}", f"the {name} model"):
        return _train_predictor(ws, encoder, preset, annotations, pretrained, finetune, resume, device, steps,
                                show_progress, generator, flipped, tracker, rotated)


def _saved_summary(model_dir) -> dict:
    """The "summary" of the model's config.json ({} when there is none or it does not read)."""
    try:
        return json.loads((Path(model_dir) / "config.json").read_text()).get("summary", {})
    except (OSError, ValueError, AttributeError):
        return {}


def _train_predictor(ws: Workspace, encoder: str, preset: str | PredictorPreset, annotations: str,
                     pretrained: str | None, finetune: bool, resume: bool, device: str, steps: int | None,
                     show_progress: bool, generator: str, flipped: bool | None,
                     tracker: Tracker = NO_TRACKER, rotated: bool | None = None) -> dict:
    kind = generator_kind(generator)
    if isinstance(preset, str):
        presets = presets_for(generator)
        if preset not in presets:
            raise ArtgenError(f"unknown preset {preset!r}: use one of {', '.join(presets)}")
        preset_name, p = preset, presets[preset][encoder]
    else:
        preset_name, p = preset_label(preset, presets_for(generator), encoder), preset
    if finetune and not pretrained:
        raise ArtgenError("--finetune needs --pretrained DIR_OR_HUB_ID: without weights the encoder is trained from scratch anyway")
    load_corpus(ws.data)  # a missing corpus is named before missing annotations
    name = model_name(encoder, generator)
    out_dir = ws.checkpoint(name)
    resumed = resume_dir(out_dir) if resume else None
    if resume and resumed is None:
        raise ArtgenError(f"nothing to resume: no checkpoint of {name} in {out_dir.parent}: run again without --resume")
    if resumed == out_dir and "alignment" in _saved_summary(out_dir):
        raise ArtgenError(f"nothing to resume: {out_dir} finished its cross-entropy run and was then aligned "
                          "(`artgen train align`); train it again without --resume (then align it)")
    if resumed is not None and resumed != out_dir:
        from artgen.training.alignment import AlignmentConfig, align_unlocked, is_alignment

        if is_alignment(find_checkpoint(resumed)):  # the cross-entropy run finished; its preset's alignment did not
            if p.alignment is None or generator != "ar":
                raise ArtgenError(f"the unfinished run in {resumed} is an alignment: continue it with `artgen train align "
                                  f"--encoder {encoder} --resume`")
            try:
                return align_unlocked(ws, encoder, AlignmentConfig(**p.alignment), device, show_progress, tracker,
                                      resume=True)
            except ResumeRefused:  # its "train again without --resume" would throw the finished training run away too
                raise ResumeRefused(f"the unfinished alignment in {resumed} was made with other settings than this preset's: "
                                    f"continue it with `artgen train align --encoder {encoder} --resume` and its own settings, "
                                    f"or delete that folder and run `artgen train align --encoder {encoder}`") from None
    tcfg = TrainConfig(**{**p.train, "device": device, "show_progress": show_progress})
    if steps is not None:
        tcfg = replace(tcfg, steps=steps, warmup_steps=min(tcfg.warmup_steps, max(1, steps // 10)))

    if flipped is not None:
        p = replace(p, flipped=flipped)
    if rotated is not None:
        p = replace(p, rotated=rotated)
    labels, label_source = load_labels(ws, annotations)  # a missing annotation file is named early
    vq_dir = _ensure_vqvae(ws, device, show_progress, flipped=p.flipped, rotated=p.rotated)
    grids = training_grids(ws, labels, label_source, p.flipped, p.rotated)
    train_ids, train_codes, train_labels = grids.train_ids, grids.train_codes, grids.train_labels
    test_ids, test_codes, test_labels = grids.test_ids, grids.test_codes, grids.test_labels
    n_paintings = grids.paintings

    work = run_dir(out_dir, resume)  # a new run never touches the finished model until it is done
    torch.manual_seed(0)  # the model is built deterministically: a resumed run rebuilds the same one
    if resume and (work / "encoder.json").exists():
        text_encoder = encoder_from_directory(work, load_weights=False)  # the same tokenizer as before
    else:
        if resume:
            raise ArtgenError(f"nothing to resume: no encoder description in {work}: run again without --resume")
        texts = [c for i, a in enumerate(train_labels[:n_paintings]) if a for c in make_captions(a, seed=i, n=2)]
        text_encoder = load_encoder(encoder, texts=texts, pretrained=pretrained, finetune=finetune, overrides=p.encoder)
    grid = train_codes.shape[1]
    pcfg = kind.config(**{**p.predictor, "grid": grid, "text_width": text_encoder.width})
    torch.manual_seed(p.train.get("seed", 0))  # the training seed also draws the initial weights
    model = TextToCodes(text_encoder, kind.build(pcfg))

    n_enc, n_pred = text_encoder.num_parameters(), model.predictor.num_parameters()
    summary = {
        "encoder": encoder, "generator": generator, "model": name, "test_ce_kind": kind.test_ce_kind,
        "weights": text_encoder.describe_source(), "source": text_encoder.source,
        "tokenizer": text_encoder.tokenizer_kind, "preset": preset_name, "annotations": label_source,
        "flipped_paintings": p.flipped, "rotated_paintings": p.rotated,
        "encoder_parameters": n_enc, "predictor_parameters": n_pred, "vocabulary_hash": vocabulary_hash(),
        "vqvae_hash": checkpoint_hash(vq_dir),
    }
    config = {"kind": CHECKPOINT_FORMAT, "generator": generator, "summary": summary, "predictor": asdict(pcfg),
              "encoder_spec": {k: v for k, v in text_encoder.spec().items()}, "frozen": text_encoder.frozen}
    config = json.loads(json.dumps(config))
    text_encoder.save_description(work)
    if work != out_dir and (out_dir / "config.json").exists():
        console.print(f"training in {work}: the finished {name} model in {out_dir} stays until this run completes")
    console.print(f"train {name} ({kind.description}): encoder {n_enc / 1e6:.2f}M ({text_encoder.describe_source()}), "
                  f"predictor {n_pred / 1e6:.2f}M, {len(train_ids)} train / {len(test_ids)} test grids of "
                  f"{grid}x{grid}, captions from {label_source} labels, preset {preset_name}")

    task = PredictorTask(model, train_codes, train_labels, test_codes, test_labels, config,
                         work / "metrics.json", eval_images=p.eval_images, kind=kind)
    if resume and (work / "metrics.json").exists():
        task.evaluations = json.loads((work / "metrics.json").read_text()).get("evaluations", [])
    tracker.log_params({"stage": name, "resumed": resume, "train_grids": len(train_ids), "test_grids": len(test_ids),
                        **config, "train": asdict(tcfg)})
    result = train(task, tcfg, work, resume=resume,
                   description=f"train {name} ({text_encoder.describe_source()})", on_log=tracker.log_metrics)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return result.metrics
    result.model.save_pretrained(work, {**config, "train": asdict(tcfg)})
    final = {**summary, "evaluations": task.evaluations, **result.metrics,
             "steps": tcfg.steps, "batch_size": tcfg.batch_size, "train_seconds_this_run": round(result.seconds, 1),
             "train_samples_per_s": round(result.images_per_s, 2), "threads": torch.get_num_threads(),
             "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    atomic_write_json(work / "metrics.json", final)
    publish_run(work, out_dir)
    tracker.log_metrics(final, step=tcfg.steps)
    tracker.log_files(checkpoint_files(out_dir), folder="checkpoint")
    m = result.metrics
    console.print(
        f"{name} ({text_encoder.describe_source()}): test ce {m['ce']:.3f} with text vs {m['ce_no_text']:.3f} "
        f"without; token_accuracy {m['token_accuracy']:.3f} vs most-frequent-code baseline "
        f"{m['baseline_accuracy']:.3f}; saved to {out_dir}"
    )
    if p.alignment is not None and generator == "ar" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        console.print(f"the preset's alignment runs in one process: run `artgen train align --encoder {encoder}` now")
    elif p.alignment is not None and generator == "ar":
        from artgen.training.alignment import AlignmentConfig, align_unlocked

        return align_unlocked(ws, encoder, AlignmentConfig(**p.alignment), device, show_progress, tracker)
    return final

