"""`artgen demo` (what `make demo` runs): the whole pipeline for a new user, stage by stage.

    synth corpus -> heuristic annotation -> VQ-VAE (quick) -> tiny encoder + predictor (quick)
    -> sample grid -> int8 ONNX bundle -> bench --quick -> one image through the torch-free runtime

Each stage is skipped when its output is already there and valid, so a second run only
re-does what is missing. Part of the CLI layer: it wires `annotate`, `bench` and `export`,
which the core `artgen` modules never import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.table import Table

from artgen.errors import ArtgenError
from artgen.files import is_newer
from artgen.progress import console
from artgen.workspace import SHIPPED_MODEL, Workspace

SAMPLE_PROMPTS = (
    "warm, chaotic, vivid", "cool, calm, minimal", "warm, calm, smooth", "cool, chaotic, textured",
    "dark, dramatic, contrasting", "bright, soft, gradient", "geometric, blocky, colorful", "organic, fluid, curved",
)
RUNTIME_PROMPT = "warm, chaotic, vivid"
PRESET_RANK = {"custom": 0, "quick": 1, "default": 2}


@dataclass
class DemoConfig:
    corpus_count: int = 9735
    image_size: int = 64
    vqvae_preset: str = "quick"
    encoder_preset: str = "quick"
    generator: str = "masked"  # masked | ar: the tiny model's generator (artgen.models.generators)
    annotations: str = "heuristic"  # caption labels for the tiny model (gt: the corpus's ground truth)
    vqvae_steps: int | None = None  # overrides for tests on tiny corpora
    encoder_steps: int | None = None
    bench_quick: bool = True
    bench_captions: int | None = None
    bench_latency_runs: int | None = None
    encoder_overrides: dict = field(default_factory=dict)  # small predictor/encoder configs for tests

    def __post_init__(self) -> None:
        """Bad settings are named before any stage runs (not after minutes of training)."""
        from artgen.data.captions import LABEL_SOURCES
        from artgen.models.generators import generator_kind
        from artgen.training.predictor import PRESETS
        from artgen.training.vqvae import PRESETS as VQVAE_PRESETS

        generator_kind(self.generator)
        if self.annotations not in LABEL_SOURCES:
            raise ArtgenError(f"unknown label source {self.annotations!r}: use one of {', '.join(LABEL_SOURCES)}")
        for flag, value, known in (("--preset", self.vqvae_preset, VQVAE_PRESETS), ("--preset", self.encoder_preset, PRESETS)):
            if value not in known:
                raise ArtgenError(f"unknown preset {value!r}: use {flag} {' or '.join(known)}")


@dataclass
class StageResult:
    stage: str
    status: str  # "ran" | "skipped"
    artefact: Path
    headline: str
    seconds: float


class Demo:
    def __init__(self, ws: Workspace, cfg: DemoConfig):
        self.ws, self.cfg = ws, cfg
        self.results: list[StageResult] = []

    def stage(self, name: str, done: Callable[[], bool], run: Callable[[], None],
              artefact: Path, headline: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        if done():
            status = "skipped"
            console.print(f"[dim]demo: {name}: already done ({artefact}), skipping[/dim]")
        else:
            console.rule(f"demo: {name}")
            run()
            status = "ran"
        self.results.append(StageResult(name, status, artefact, headline(), time.perf_counter() - t0))

    # -- the stages, in pipeline order -------------------------------------------------------
    def run(self) -> list[StageResult]:
        ws, cfg = self.ws, self.cfg
        from artgen.data.corpus import SynthConfig, load_corpus, synthesize

        def corpus_ok() -> bool:
            try:
                load_corpus(ws.data)
                return True
            except ArtgenError:
                return False

        def corpus_headline() -> str:
            dd = load_corpus(ws.data)
            return f"{len(dd['train'])} train / {len(dd['test'])} test paintings"

        self.stage("corpus", corpus_ok, lambda: synthesize(ws.data, SynthConfig(count=cfg.corpus_count, size=cfg.image_size)),
                   ws.data, corpus_headline)

        from annotate.pipeline import AnnotateConfig, run_annotation

        ann_file = ws.annotations / "heuristic.jsonl"
        summary: dict = {}

        def annotate() -> None:  # resumable: a rerun only labels what is missing
            s = run_annotation(ws, AnnotateConfig(backend="heuristic"))
            summary["done"], summary["skipped"], summary["failed"] = s.done, s.skipped, s.failed

        def annotations_complete() -> bool:
            if not ann_file.exists():
                return False
            ids = {json.loads(line).get("id") for line in ann_file.read_text().splitlines() if line.strip().endswith("}")}
            dd = load_corpus(ws.data)
            return all(i in ids for split in ("train", "test") for i in dd[split]["id"])

        self.stage("annotate (heuristic)", annotations_complete, annotate, ann_file,
                   lambda: f"{sum(1 for _ in ann_file.open())} labelled paintings")

        from artgen.models.vqvae import VQVAE
        from artgen.training.vqvae import train_vqvae

        vq_dir = ws.checkpoint("vqvae")

        def trained_with(metrics: Path, preset: str) -> bool:
            """Done when trained with the preset asked for or a bigger one (a default-preset
            model serves the demo too); a test's custom settings count as their own preset."""
            if not metrics.exists():
                return False
            got = json.loads(metrics.read_text()).get("preset")
            return PRESET_RANK.get(got, -1) >= PRESET_RANK[preset]

        def vqvae_ok() -> bool:
            try:
                VQVAE.from_pretrained(vq_dir)
            except ArtgenError:
                return False
            return trained_with(vq_dir / "metrics.json", cfg.vqvae_preset)

        def vq_headline() -> str:
            m = json.loads((vq_dir / "metrics.json").read_text())
            return (f"codebook_usage {m['codebook_usage']:.3f}, perplexity {m['perplexity']:.0f}, "
                    f"recon_mse {m['recon_mse']:.4f}")

        self.stage(f"VQ-VAE ({cfg.vqvae_preset})", vqvae_ok,
                   lambda: train_vqvae(ws, preset=cfg.vqvae_preset, steps=cfg.vqvae_steps), vq_dir, vq_headline)

        from artgen.generate import generate_to_png, load_generator
        from artgen.models.generators import model_name
        from artgen.training.predictor import presets_for, train_predictor

        model = model_name("tiny", cfg.generator)  # tiny or tiny-ar
        tiny_dir = ws.checkpoint(model)

        def tiny_ok() -> bool:
            if not trained_with(tiny_dir / "metrics.json", "custom" if cfg.encoder_overrides else cfg.encoder_preset):
                return False
            try:
                load_generator(ws, model)  # also checks it was trained on this VQ-VAE's codes
                return True
            except ArtgenError:
                return False

        def train_tiny() -> None:
            preset = cfg.encoder_preset  # by name, so the checkpoint records which preset made it
            if cfg.encoder_overrides:
                from dataclasses import replace

                preset = replace(presets_for(cfg.generator)[cfg.encoder_preset]["tiny"], **cfg.encoder_overrides)
            train_predictor(ws, "tiny", preset=preset, annotations=cfg.annotations, steps=cfg.encoder_steps,
                            generator=cfg.generator)

        def tiny_headline() -> str:
            m = json.loads((tiny_dir / "metrics.json").read_text())
            return (f"test CE {m['ce']:.2f} with text vs {m['ce_no_text']:.2f} without; token_accuracy "
                    f"{m['token_accuracy']:.3f} (most-frequent-code baseline {m['baseline_accuracy']:.3f})")

        self.stage(f"{model} encoder + generator ({cfg.encoder_preset})", tiny_ok, train_tiny, tiny_dir, tiny_headline)

        suffix = "" if model == "tiny" else f"-{model}"  # a second generator's demo keeps the first one's pictures
        samples = ws.reports / "demo" / f"samples{suffix}.png"
        self.stage("sample grid", lambda: is_newer(samples, tiny_dir / "model.safetensors"),
                   lambda: generate_to_png(ws, list(SAMPLE_PROMPTS), samples, encoder=model, n=4),
                   samples, lambda: f"{len(SAMPLE_PROMPTS)} prompts x 4 seeds")

        from export.bundle import ExportConfig, bundle_is_current, export_bundle

        bundle = ws.bundles / f"{model}-int8"
        self.stage("export int8 bundle", lambda: bundle_is_current(bundle, tiny_dir),
                   lambda: export_bundle(load_generator(ws, model), bundle, ExportConfig(int8=True)),
                   bundle, lambda: f"{json.loads((bundle / 'bundle.json').read_text())['size_bytes'] / 1e6:.2f} MB")

        from bench.run import BenchConfig, run_bench

        bench_json = demo_bench_dir(ws, model) / "report.json"

        def bench_headline() -> str:
            report = json.loads(bench_json.read_text())
            row = next((r for r in report.get("rows", []) if isinstance(r, dict) and r.get("name") == model), {})
            parts = [f"{label} {row[key]:.3g}" for key, label in (("fid", "FID"), ("codebook_usage", "codebook usage"))
                     if isinstance(row.get(key), (int, float))]
            return ", ".join(parts) or "see report.md"

        # After the export, so the bench times the int8 bundle itself (bundles/tiny-int8).
        def bench_done() -> bool:  # this model's bench, as quick or full as asked, newer than its bundle
            if not is_newer(bench_json, bundle / "bundle.json"):
                return False
            config = json.loads(bench_json.read_text()).get("meta", {}).get("config", {})
            return config.get("encoders") == [model] and config.get("quick") == cfg.bench_quick

        self.stage("bench --quick" if cfg.bench_quick else "bench", bench_done,
                   lambda: run_bench(ws, BenchConfig(encoders=(model,), quick=cfg.bench_quick, captions=cfg.bench_captions,
                                                     latency_runs=cfg.bench_latency_runs, labels=cfg.annotations),
                                     out_dir=bench_json.parent),
                   bench_json, bench_headline)

        runtime_png = ws.reports / "demo" / f"runtime{suffix}.png"

        def run_runtime() -> None:  # a separate process: the bundle runs without torch
            r = subprocess.run([sys.executable, "-m", "export.runtime", str(bundle), RUNTIME_PROMPT, "-o",
                                str(runtime_png), "-n", "4"], capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parents[2])
            if r.returncode != 0:
                raise ArtgenError(f"the torch-free runtime failed on {bundle}: {r.stderr.strip()[:200]}")

        self.stage("generate via torch-free runtime", lambda: is_newer(runtime_png, bundle / "bundle.json"),
                   run_runtime, runtime_png, lambda: f"{RUNTIME_PROMPT!r}, 4 seeds")

        beside = ws.reports / "demo" / f"shipped_vs_quick{suffix}.png"
        if (SHIPPED_MODEL / "bundle.json").exists() and SHIPPED_MODEL.resolve() != bundle.resolve():
            self.stage("the shipped model beside the one just trained", lambda: is_newer(beside, bundle / "bundle.json"),
                       lambda: shipped_beside_trained(ws, model, SHIPPED_MODEL, beside), beside,
                       lambda: f"{len(SAMPLE_PROMPTS)} prompts x 4 seeds; left: {SHIPPED_MODEL.name} (shipped), right: {model}")
        return self.results


def demo_bench_dir(ws: Workspace, model: str) -> Path:
    """Where the demo writes the bench of `model` (`release-model` ships the report from there)."""
    return ws.reports / "bench" if model == "tiny" else ws.reports / f"bench-{model}"


def shipped_beside_trained(ws: Workspace, model: str, shipped: Path, out: Path, n: int = 4) -> None:
    """One row per sample prompt: `n` paintings of the shipped bundle (through the torch-free
    runtime), a gap, then `n` of the model just trained, with the same seeds."""
    import numpy as np
    from PIL import Image, ImageDraw

    from artgen.generate import load_generator
    from artgen.images import image_grid
    from export.runtime import Runtime

    rt, gen = Runtime(shipped, threads=2), load_generator(ws, model)
    rows = []
    for prompt in SAMPLE_PROMPTS:
        left = image_grid(rt.generate([prompt] * n, seed=0), columns=n)
        right = image_grid(gen.generate([prompt] * n, seed=0), columns=n)
        if right.shape[0] != left.shape[0]:  # another image size: scale the trained model's row to the shipped one's
            right = np.asarray(Image.fromarray(right).resize((left.shape[0] * right.shape[1] // right.shape[0], left.shape[0]),
                                                             Image.NEAREST))
        rows.append(np.concatenate([left, np.full((left.shape[0], 12, 3), 255, np.uint8), right], axis=1))
    body = np.concatenate(rows)
    canvas = Image.new("RGB", (body.shape[1], body.shape[0] + 14), "white")
    canvas.paste(Image.fromarray(body), (0, 14))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 1), f"shipped ({shipped.name})", fill="black")
    draw.text((left.shape[1] + 14, 1), f"just trained ({model})", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.resize((canvas.width * 2, canvas.height * 2), Image.NEAREST).save(out)


def summary_table(results: list[StageResult]) -> Table:
    table = Table(title="artgen demo: artefacts")
    for col in ("stage", "", "artefact", "headline", "s"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(r.stage, r.status, str(r.artefact), r.headline, f"{r.seconds:.0f}")
    return table


def run_demo(ws: Workspace, cfg: DemoConfig | None = None) -> list[StageResult]:
    t0 = time.perf_counter()
    results = Demo(ws, cfg or DemoConfig()).run()
    console.print(summary_table(results))
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; workspace {ws.root}")
    return results
