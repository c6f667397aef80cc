"""`artgen demo` (what `make demo` runs): the whole pipeline for a new user, stage by stage.

    synth corpus -> heuristic annotation -> VQ-VAE (quick) -> tiny encoder + predictor (quick)
    -> sample grid -> int8 ONNX bundle -> bench --quick -> one image through the torch-free runtime

The pipeline is a list of `Stage`s (`demo_stages`), each a name, the artefact it makes, and
three functions of the shared `DemoContext`: `done` (is the artefact already there and
valid?), `run` (make it) and `headline` (its number for the summary table). `Demo.run` walks
the list: a stage whose output is there is skipped, so a second run only re-does what is
missing, and a stage that fails stops the walk with its error while every finished artefact
stays on disk. Part of the CLI layer: it wires `annotate`, `bench` and `export`, which the
core `artgen` modules never import.
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
PRESET_RANK = {"custom": 0, "quick": 1, "default": 2, "long": 3}  # "long": the AR generator's twice-as-long preset


@dataclass
class DemoConfig:
    corpus_count: int = 9735
    image_size: int = 64
    vqvae_preset: str = "quick"
    encoder_preset: str = "quick"
    generator: str = "masked"  # masked | ar: the tiny model's generator (artgen.models.generators)
    annotations: str = "heuristic"  # caption labels for the tiny model (gt: the corpus's ground truth)
    decoder_preset: str | None = None  # the adversarial decoder (`artgen train decoder`): None skips it
    vqvae_steps: int | None = None  # overrides for tests on tiny corpora
    decoder_steps: int | None = None
    encoder_steps: int | None = None
    bench_quick: bool = True
    bench_captions: int | None = None
    bench_latency_runs: int | None = None
    encoder_overrides: dict = field(default_factory=dict)  # small predictor/encoder configs for tests
    encoder_preset_flag: str = "--preset"  # the option that set encoder_preset, named in its error
    candidates: int = 1  # --generator ar: the bundle keeps the best of N by the caption picker (`artgen train picker`)

    def __post_init__(self) -> None:
        """Bad settings are named before any stage runs (not after minutes of training)."""
        from artgen.data.captions import LABEL_SOURCES
        from artgen.models.generators import generator_kind
        from artgen.training.predictor import presets_for
        from artgen.training.vqvae import PRESETS as VQVAE_PRESETS

        generator_kind(self.generator)
        from artgen.sampling import MAX_CANDIDATES

        if not 1 <= self.candidates <= MAX_CANDIDATES or (self.candidates > 1 and self.generator != "ar"):
            raise ArtgenError(f"--candidates {self.candidates}: the autoregressive generator keeps the best of 1 to "
                              f"{MAX_CANDIDATES} (use --generator ar), the masked one draws once")
        if self.annotations not in LABEL_SOURCES:
            raise ArtgenError(f"unknown label source {self.annotations!r}: use one of {', '.join(LABEL_SOURCES)}")
        from artgen.training.decoder import PRESETS as DECODER_PRESETS

        model_presets = presets_for(self.generator)
        if self.vqvae_preset not in VQVAE_PRESETS and self.vqvae_preset in model_presets:
            raise ArtgenError(f"{self.vqvae_preset!r} is a preset of the tiny model only, not of the VQ-VAE: use "
                              f"--preset default --model-preset {self.vqvae_preset}")
        checks = [("--preset", self.vqvae_preset, VQVAE_PRESETS),
                  (self.encoder_preset_flag, self.encoder_preset, model_presets)]
        if self.decoder_preset is not None:
            checks.append(("--preset", self.decoder_preset, DECODER_PRESETS))
        for flag, value, known in checks:
            if value not in known:
                raise ArtgenError(f"unknown preset {value!r}: use {flag} {' or '.join(known)}")


@dataclass
class DemoContext:
    """What every stage reads: the workspace, the settings, and where each artefact goes."""

    ws: Workspace
    cfg: DemoConfig
    model: str = field(init=False)  # tiny or tiny-ar
    annotations: Path = field(init=False)
    vqvae: Path = field(init=False)
    decoder: Path = field(init=False)  # the VQ-VAE's adversarial decoder (`artgen train decoder`)
    tiny: Path = field(init=False)  # the tiny model's checkpoint
    samples: Path = field(init=False)
    bundle: Path = field(init=False)
    bench_json: Path = field(init=False)
    runtime_png: Path = field(init=False)
    beside: Path = field(init=False)

    def __post_init__(self) -> None:
        from artgen.models.generators import model_name
        from artgen.models.vqvae import DECODER_FILE

        ws = self.ws
        self.model = model_name("tiny", self.cfg.generator)
        suffix = "" if self.model == "tiny" else f"-{self.model}"  # a second generator's demo keeps the first one's pictures
        self.annotations = ws.annotations / "heuristic.jsonl"
        self.vqvae = ws.checkpoint("vqvae")
        self.decoder = self.vqvae / DECODER_FILE
        self.tiny = ws.checkpoint(self.model)
        self.samples = ws.reports / "demo" / f"samples{suffix}.png"
        self.bundle = ws.bundles / f"{self.model}-int8"
        self.bench_json = demo_bench_dir(ws, self.model) / "report.json"
        self.runtime_png = ws.reports / "demo" / f"runtime{suffix}.png"
        self.beside = ws.reports / "demo" / f"shipped_vs_quick{suffix}.png"


@dataclass(frozen=True)
class Stage:
    """One step of the demo: `done` says whether its artefact is already there and valid,
    `run` makes it, `headline` reads its number for the summary table."""

    name: str
    artefact: Path
    done: Callable[[DemoContext], bool]
    run: Callable[[DemoContext], None]
    headline: Callable[[DemoContext], str]


@dataclass
class StageResult:
    stage: str
    status: str  # "ran" | "skipped"
    artefact: Path
    headline: str
    seconds: float


# -- the stages, in pipeline order ---------------------------------------------------------------

def corpus_done(ctx: DemoContext) -> bool:
    from artgen.data.corpus import load_corpus

    try:
        load_corpus(ctx.ws.data)
        return True
    except ArtgenError:
        return False


def synth_corpus(ctx: DemoContext) -> None:
    from artgen.data.corpus import SynthConfig, synthesize

    synthesize(ctx.ws.data, SynthConfig(count=ctx.cfg.corpus_count, size=ctx.cfg.image_size))


def corpus_headline(ctx: DemoContext) -> str:
    from artgen.data.corpus import load_corpus

    dd = load_corpus(ctx.ws.data)
    return f"{len(dd['train'])} train / {len(dd['test'])} test paintings"


def annotations_done(ctx: DemoContext) -> bool:
    from artgen.data.corpus import load_corpus

    if not ctx.annotations.exists():
        return False
    ids = {json.loads(line).get("id") for line in ctx.annotations.read_text().splitlines() if line.strip().endswith("}")}
    dd = load_corpus(ctx.ws.data)
    return all(i in ids for split in ("train", "test") for i in dd[split]["id"])


def label_corpus(ctx: DemoContext) -> None:  # resumable: a rerun only labels what is missing
    from annotate.pipeline import AnnotateConfig, run_annotation

    run_annotation(ctx.ws, AnnotateConfig(backend="heuristic"))


def annotations_headline(ctx: DemoContext) -> str:
    return f"{sum(1 for _ in ctx.annotations.open())} labelled paintings"


def trained_with(metrics: Path, preset: str, steps: int | None = None) -> bool:
    """Done when trained with the preset asked for or a bigger one (a default-preset
    model serves the demo too), and for at least `steps` steps when given: `artgen train
    --preset default --steps 300` records the preset's name, but it is not the default model.
    A test's custom settings count as their own preset."""
    if not metrics.exists():
        return False
    m = json.loads(metrics.read_text())
    trained = m.get("steps")
    return PRESET_RANK.get(m.get("preset"), -1) >= PRESET_RANK[preset] and (steps is None or trained is None or trained >= steps)


def _preset_steps(presets: dict, preset: str, override: int | None, pick=lambda p: p) -> int | None:
    """The steps a stage asks for: its override, else its named preset's."""
    if override is not None:
        return override
    return pick(presets[preset]).train.get("steps") if preset in presets else None


def vqvae_done(ctx: DemoContext) -> bool:
    from artgen.models.vqvae import VQVAE

    try:
        VQVAE.from_pretrained(ctx.vqvae)
    except ArtgenError:
        return False
    from artgen.training.vqvae import PRESETS

    steps = _preset_steps(PRESETS, ctx.cfg.vqvae_preset, ctx.cfg.vqvae_steps)
    return trained_with(ctx.vqvae / "metrics.json", ctx.cfg.vqvae_preset, steps)


def train_vqvae_model(ctx: DemoContext) -> None:
    from artgen.training.vqvae import PRESETS, train_vqvae

    steps = _preset_steps(PRESETS, ctx.cfg.vqvae_preset, ctx.cfg.vqvae_steps)
    continue_or_start(ctx.ws, ctx.vqvae, steps, lambda resume: train_vqvae(ctx.ws, preset=ctx.cfg.vqvae_preset,
                                                                          steps=ctx.cfg.vqvae_steps, resume=resume))


def vqvae_headline(ctx: DemoContext) -> str:
    m = json.loads((ctx.vqvae / "metrics.json").read_text())
    return (f"codebook_usage {m['codebook_usage']:.3f}, perplexity {m['perplexity']:.0f}, "
            f"recon_mse {m['recon_mse']:.4f}")


def decoder_done(ctx: DemoContext) -> bool:
    from artgen.models.vqvae import DECODER_METRICS_FILE, VQVAE

    if not ctx.decoder.is_file():
        return False
    try:
        VQVAE.from_pretrained(ctx.vqvae)  # also checks it decodes this VQ-VAE's codes
    except ArtgenError:
        return False
    from artgen.training.decoder import PRESETS

    steps = _preset_steps(PRESETS, ctx.cfg.decoder_preset, ctx.cfg.decoder_steps)
    return trained_with(ctx.vqvae / DECODER_METRICS_FILE, ctx.cfg.decoder_preset, steps)


def train_decoder_model(ctx: DemoContext) -> None:
    from artgen.training.decoder import PRESETS, STAGE, train_decoder

    steps = _preset_steps(PRESETS, ctx.cfg.decoder_preset, ctx.cfg.decoder_steps)
    continue_or_start(ctx.ws, ctx.ws.checkpoint(STAGE), steps, lambda resume: train_decoder(
        ctx.ws, preset=ctx.cfg.decoder_preset, steps=ctx.cfg.decoder_steps, resume=resume))


def decoder_headline(ctx: DemoContext) -> str:
    from artgen.models.vqvae import DECODER_METRICS_FILE

    m = json.loads((ctx.vqvae / DECODER_METRICS_FILE).read_text())
    return f"test PSNR {m['squared_error_decoder']['psnr']:.2f} -> {m['psnr']:.2f} dB"


def tiny_done(ctx: DemoContext) -> bool:
    from artgen.generate import load_generator

    cfg = ctx.cfg
    from artgen.training.predictor import presets_for

    preset = "custom" if cfg.encoder_overrides else cfg.encoder_preset
    steps = _preset_steps(presets_for(cfg.generator), preset, cfg.encoder_steps, pick=lambda by_encoder: by_encoder["tiny"])
    if not trained_with(ctx.tiny / "metrics.json", preset, steps):
        return False
    tiny_preset = _tiny_preset(cfg)
    if tiny_preset.alignment is not None and _alignment(ctx, tiny_preset) is not True:
        return False
    try:
        load_generator(ctx.ws, ctx.model)  # also checks it was trained on this VQ-VAE's codes
        return True
    except ArtgenError:
        return False


def _tiny_preset(cfg: DemoConfig):
    from dataclasses import replace

    from artgen.training.predictor import presets_for

    preset = presets_for(cfg.generator)[cfg.encoder_preset]["tiny"]
    return replace(preset, **cfg.encoder_overrides) if cfg.encoder_overrides else preset


def _loads(ctx: DemoContext) -> bool:
    from artgen.generate import load_generator

    try:
        load_generator(ctx.ws, ctx.model)
        return True
    except ArtgenError:
        return False


def _alignment(ctx: DemoContext, preset) -> bool | None:
    """None when the tiny model is not aligned; else whether its alignment (`artgen train align`)
    ran with the settings `preset.alignment` asks for."""
    from dataclasses import asdict

    from artgen.training.alignment import AlignmentConfig

    try:
        record = json.loads((ctx.tiny / "metrics.json").read_text()).get("alignment")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(record, dict):
        return None
    wanted = asdict(AlignmentConfig(**(preset.alignment or {})))  # steps, lr, beta, lam, batch_size, guidance, negatives, ...
    return all(record.get(k, v) == v for k, v in wanted.items())  # a setting the record predates counts as the default


def train_tiny_model(ctx: DemoContext) -> None:
    from artgen.training.predictor import train_predictor

    cfg = ctx.cfg
    preset = _tiny_preset(cfg)
    # a model trained by the preset but not yet aligned (an interrupted run) is only aligned
    steps = preset.train.get("steps") if cfg.encoder_steps is None else cfg.encoder_steps
    label = "custom" if cfg.encoder_overrides else cfg.encoder_preset
    # (one aligned with other settings is trained again: an alignment starts from the cross-entropy model)
    if (preset.alignment is not None and trained_with(ctx.tiny / "metrics.json", label, steps)
            and _alignment(ctx, preset) is None and _loads(ctx)):  # trained on this VQ-VAE's codes: else it is trained again
        from artgen.training.alignment import AlignmentConfig, align_predictor, discard_staged_alignment

        alignment = AlignmentConfig(**preset.alignment)

        def align(resume: bool) -> None:
            if not resume:  # a staged alignment this one cannot continue (other settings or length) would block it
                discard_staged_alignment(ctx.tiny)
            align_predictor(ctx.ws, "tiny", alignment, resume=resume)

        continue_or_start(ctx.ws, ctx.tiny, alignment.steps, align, alignment=True)
        return
    # by name, so the checkpoint records which preset made it
    run = dict(preset=preset if cfg.encoder_overrides else cfg.encoder_preset, annotations=cfg.annotations,
               steps=cfg.encoder_steps, generator=cfg.generator)
    continue_or_start(ctx.ws, ctx.tiny, steps, lambda resume: train_predictor(ctx.ws, "tiny", resume=resume, **run))


def continue_or_start(ws: Workspace, final: Path, steps: int | None, train_stage: Callable[[bool], object],
                      alignment: bool = False) -> None:
    """`train_stage(resume)` for the model in `final`: continuing, exactly, the run a killed demo or
    release left in its staging folder when that run was of this kind (`alignment` or a training
    run) and as many steps and its last checkpoint is newer than `ws`'s corpus and annotation files
    (a corpus replaced or paintings annotated since would be mixed into it), else from the start
    (also when the trainer refuses that checkpoint, which it does before any step)."""
    from artgen.training.trainer import DamagedCheckpoint, ResumeRefused

    inputs = [ws.data / "dataset_dict.json", *ws.annotations.glob("*.jsonl")]  # what every stage reads besides models
    partial = interrupted_run(final, steps, alignment)
    if partial is not None and not all(is_newer(partial.checkpoint / "config.json", p) for p in inputs if p.exists()):
        console.print(f"not continuing the interrupted run in {partial.parent}: the corpus or its annotations changed since")
        partial = None
    if partial is not None:
        console.print(f"continuing the interrupted training run in {partial.parent} from step {partial.step}")
        try:
            train_stage(True)
            return
        except ResumeRefused as e:  # another preset's or settings' run
            console.print(f"not continuing it ({e}); training from the start")
        except DamagedCheckpoint as e:  # starting afresh would delete it: the user decides (the demo has no --resume)
            raise ArtgenError(f"the interrupted training run in {partial.parent} has a damaged checkpoint "
                              f"({type(e.__cause__ or e).__name__}): delete {partial.parent} to train that stage from the start") from None
    train_stage(False)


@dataclass(frozen=True)
class InterruptedRun:
    parent: Path  # the staging folder (`.NAME.partial`) that holds the checkpoint
    checkpoint: Path  # its train_state folder
    step: int


def interrupted_run(final: Path, steps: int | None, alignment: bool = False) -> InterruptedRun | None:
    """The checkpoint a killed training run of `final` left in its staging folder, when it was
    training for `steps` steps (a run of another length would continue on another schedule) and
    was an alignment or not, as `alignment` says."""
    from artgen.training.alignment import is_alignment
    from artgen.training.trainer import find_checkpoint, staging_dir

    stage = staging_dir(final)
    ckpt = find_checkpoint(stage)
    if ckpt is None or is_alignment(ckpt) != alignment:
        return None
    try:
        saved = json.loads((ckpt / "config.json").read_text())
        if saved["train"]["steps"] != steps:
            return None
        return InterruptedRun(stage, ckpt, int(saved["step"]))
    except (OSError, ValueError, KeyError, TypeError) as e:  # starting afresh would delete it: the user decides
        raise ArtgenError(f"the interrupted training run in {stage} has an unreadable checkpoint ({type(e).__name__}): "
                          f"delete {stage} to train that stage from the start") from None


def tiny_headline(ctx: DemoContext) -> str:
    m = json.loads((ctx.tiny / "metrics.json").read_text())
    return (f"test CE {m['ce']:.2f} with text vs {m['ce_no_text']:.2f} without; token_accuracy "
            f"{m['token_accuracy']:.3f} (most-frequent-code baseline {m['baseline_accuracy']:.3f})")


def samples_done(ctx: DemoContext) -> bool:
    """Drawn after the generator, and after the decoder they were decoded with; without one,
    after the VQ-VAE folder last changed (deleting a decoder changes it: its pictures are stale)."""
    decoded_with = ctx.decoder if ctx.decoder.exists() else ctx.vqvae
    return is_newer(ctx.samples, ctx.tiny / "model.safetensors") and is_newer(ctx.samples, decoded_with)


def draw_samples(ctx: DemoContext) -> None:
    from artgen.generate import generate_to_png

    generate_to_png(ctx.ws, list(SAMPLE_PROMPTS), ctx.samples, encoder=ctx.model, n=4)


def samples_headline(ctx: DemoContext) -> str:
    return f"{len(SAMPLE_PROMPTS)} prompts x 4 seeds"


def picker_done(ctx: DemoContext) -> bool:
    from artgen.generate import workspace_picker
    from artgen.models.vqvae import VQVAE

    return workspace_picker(ctx.ws, VQVAE.from_pretrained(ctx.vqvae).cfg.image_size) is not None


def train_picker_model(ctx: DemoContext) -> None:
    from artgen.training.picker import train_picker

    train_picker(ctx.ws, annotations=ctx.cfg.annotations)


def picker_headline(ctx: DemoContext) -> str:
    m = json.loads((ctx.ws.checkpoint("caption-picker") / "metrics.json").read_text())
    return f"{m['adjectives']} adjectives, test pair accuracy {m.get('test_pair_accuracy', float('nan')):.2f}"


def bundle_done(ctx: DemoContext) -> bool:
    from export.bundle import bundle_is_current

    return bundle_is_current(ctx.bundle, ctx.tiny, ctx.vqvae, candidates=ctx.cfg.candidates,
                             scorer=ctx.ws.checkpoint("code-scorer"), picker=ctx.ws.checkpoint("caption-picker"))


def export_int8(ctx: DemoContext) -> None:
    from artgen.generate import load_generator
    from export.bundle import ExportConfig, export_bundle

    export_bundle(load_generator(ctx.ws, ctx.model), ctx.bundle, ExportConfig(int8=True, candidates=ctx.cfg.candidates))


def bundle_headline(ctx: DemoContext) -> str:
    return f"{json.loads((ctx.bundle / 'bundle.json').read_text())['size_bytes'] / 1e6:.2f} MB"


# After the export, so the bench times the int8 bundle itself (bundles/tiny-int8).
def bench_done(ctx: DemoContext) -> bool:  # this model's bench, as quick or full as asked, newer than its bundle
    if not is_newer(ctx.bench_json, ctx.bundle / "bundle.json"):
        return False
    config = json.loads(ctx.bench_json.read_text()).get("meta", {}).get("config", {})
    candidates = ctx.cfg.candidates if ctx.cfg.generator == "ar" else None
    return (config.get("encoders") == [ctx.model] and config.get("quick") == ctx.cfg.bench_quick
            and config.get("candidates") == candidates)


def bench_model(ctx: DemoContext) -> None:
    from bench.run import BenchConfig, run_bench

    cfg = ctx.cfg
    run_bench(ctx.ws, BenchConfig(encoders=(ctx.model,), quick=cfg.bench_quick, captions=cfg.bench_captions,
                                  latency_runs=cfg.bench_latency_runs, labels=cfg.annotations,
                                  candidates=cfg.candidates if cfg.generator == "ar" else None),
              out_dir=ctx.bench_json.parent)


def bench_headline(ctx: DemoContext) -> str:
    report = json.loads(ctx.bench_json.read_text())
    row = next((r for r in report.get("rows", []) if isinstance(r, dict) and r.get("name") == ctx.model), {})
    parts = [f"{label} {row[key]:.3g}" for key, label in (("fid", "FID"), ("codebook_usage", "codebook usage"))
             if isinstance(row.get(key), (int, float))]
    return ", ".join(parts) or "see report.md"


def runtime_done(ctx: DemoContext) -> bool:
    return is_newer(ctx.runtime_png, ctx.bundle / "bundle.json")


def run_runtime(ctx: DemoContext) -> None:  # a separate process: the bundle runs without torch
    r = subprocess.run([sys.executable, "-m", "export.runtime", str(ctx.bundle), RUNTIME_PROMPT, "-o",
                        str(ctx.runtime_png), "-n", "4"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2])
    if r.returncode != 0:
        raise ArtgenError(f"the torch-free runtime failed on {ctx.bundle}: {r.stderr.strip()[:200]}")


def runtime_headline(ctx: DemoContext) -> str:
    return f"{RUNTIME_PROMPT!r}, 4 seeds"


def beside_done(ctx: DemoContext) -> bool:
    return is_newer(ctx.beside, ctx.bundle / "bundle.json")


def draw_beside(ctx: DemoContext) -> None:
    shipped_beside_trained(ctx.ws, ctx.model, SHIPPED_MODEL, ctx.beside)


def beside_headline(ctx: DemoContext) -> str:
    return f"{len(SAMPLE_PROMPTS)} prompts x 4 seeds; left: {SHIPPED_MODEL.name} (shipped), right: {ctx.model}"


def demo_stages(ctx: DemoContext) -> list[Stage]:
    """The demo's stages in pipeline order (the last only where a shipped model is there to compare)."""
    cfg = ctx.cfg
    stages = [
        Stage("corpus", ctx.ws.data, corpus_done, synth_corpus, corpus_headline),
        Stage("annotate (heuristic)", ctx.annotations, annotations_done, label_corpus, annotations_headline),
        Stage(f"VQ-VAE ({cfg.vqvae_preset})", ctx.vqvae, vqvae_done, train_vqvae_model, vqvae_headline),
        *([Stage(f"adversarial decoder ({cfg.decoder_preset})", ctx.decoder, decoder_done,
                 train_decoder_model, decoder_headline)] if cfg.decoder_preset else []),
        Stage(f"{ctx.model} encoder + generator ({cfg.encoder_preset})", ctx.tiny, tiny_done, train_tiny_model, tiny_headline),
        *([Stage("caption picker (best of candidates)", ctx.ws.checkpoint("caption-picker"), picker_done, train_picker_model,
                 picker_headline)] if cfg.candidates > 1 else []),
        Stage("sample grid", ctx.samples, samples_done, draw_samples, samples_headline),
        Stage("export int8 bundle", ctx.bundle, bundle_done, export_int8, bundle_headline),
        Stage("bench --quick" if cfg.bench_quick else "bench", ctx.bench_json, bench_done, bench_model, bench_headline),
        Stage("generate via torch-free runtime", ctx.runtime_png, runtime_done, run_runtime, runtime_headline),
    ]
    if (SHIPPED_MODEL / "bundle.json").exists() and SHIPPED_MODEL.resolve() != ctx.bundle.resolve():
        stages.append(Stage("the shipped model beside the one just trained", ctx.beside, beside_done, draw_beside,
                            beside_headline))
    return stages


class Demo:
    def __init__(self, ws: Workspace, cfg: DemoConfig, stages: list[Stage] | None = None):
        self.ws, self.cfg = ws, cfg
        self.ctx = DemoContext(ws, cfg)
        self.stages = demo_stages(self.ctx) if stages is None else stages
        self.results: list[StageResult] = []  # the stages finished so far, also when a later one fails

    def run_stage(self, stage: Stage) -> StageResult:
        t0 = time.perf_counter()
        if stage.done(self.ctx):
            status = "skipped"
            console.print(f"[dim]demo: {stage.name}: already done ({stage.artefact}), skipping[/dim]")
        else:
            console.rule(f"demo: {stage.name}")
            stage.run(self.ctx)
            status = "ran"
        return StageResult(stage.name, status, stage.artefact, stage.headline(self.ctx), time.perf_counter() - t0)

    def run(self) -> list[StageResult]:
        for stage in self.stages:
            self.results.append(self.run_stage(stage))
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
