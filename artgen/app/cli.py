"""The `artgen` command line. Commands are thin: parse, then call one library function.

Every bad input ends as one line on stderr, `error: <problem>: <fix>`, with exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click
import typer

from artgen.errors import ArtgenError
from artgen.files import check_output_file, check_writable_folder, write_output
from artgen.locks import path_lock_name, stage_lock
from artgen.progress import console
from artgen.sampling import AR_DEFAULT_TEMPERATURE, DEFAULT_GUIDANCE, DEFAULT_STEPS, DEFAULT_TEMPERATURE, MAX_CANDIDATES, MAX_STEPS
from artgen.tracking import Tracker, check_tracker, start_tracking
from artgen.workspace import SHIPPED_MODEL, Workspace

app = typer.Typer(
    name="artgen",
    help="Generate abstract art from a few adjectives: data, annotate, train, generate, bench, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="The painting corpus: synthesise, import, look at it.", no_args_is_help=True)
app.add_typer(data_app, name="data")
# `artgen train vqvae` is a sub-command; `artgen train --encoder tiny` (no sub-command)
# trains encoder + predictor through the group's callback.
train_app = typer.Typer(help="Train the VQ-VAE (`artgen train vqvae`), its adversarial decoder (`artgen train decoder`) or an "
                             "encoder + predictor (`artgen train --encoder tiny`), or align a trained autoregressive one to "
                             "its words (`artgen train align`), or what keeps the best of N candidates: the caption picker "
                             "(`artgen train picker`) or the code scorer (`artgen train scorer`).",
                        invoke_without_command=True)
app.add_typer(train_app, name="train")
# `artgen annotate` runs the annotator (the group's callback); `artgen annotate report` measures it.
from annotate.cli import annotate_app  # noqa: E402  (the CLI module is where artgen wires other packages)

app.add_typer(annotate_app, name="annotate")


def workspace(ctx: typer.Context) -> Workspace:
    return ctx.find_root().obj


TRACK_HELP = ("Experiment tracker: mlflow logs params, per-step and final metrics and artifacts to <workdir>/mlruns or "
              "MLFLOW_TRACKING_URI (needs pip install 'artgen[track]').")


def _print_version(value: bool) -> None:
    if value:
        import platform

        from artgen import __version__

        print(f"artgen {__version__} (Python {platform.python_version()})")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    workdir: Optional[Path] = typer.Option(
        None, "--workdir", envvar="ARTGEN_HOME",
        help="Workspace folder every command reads and writes (env ARTGEN_HOME; default ./artgen-work).",
    ),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = Workspace.resolve(workdir)
    if ctx.obj.root.exists() and not ctx.obj.root.is_dir():
        raise ArtgenError(f"--workdir {ctx.obj.root} is a file, not a folder: choose another --workdir")


@data_app.command("synth")
def data_synth(
    ctx: typer.Context,
    count: int = typer.Option(9735, min=2, help="Number of paintings (split 7,602:2,133 in proportion)."),
    size: int = typer.Option(64, min=16, max=1024, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Corpus seed: the same seed gives the same images."),
    workers: int = typer.Option(0, min=0, help="Worker processes (0: one per CPU core)."),
    force: bool = typer.Option(False, "--force", help="Replace a corpus that is already there."),
) -> None:
    """Draw the procedural abstract-painting corpus into <workdir>/data."""
    from artgen.data.corpus import SynthConfig, check_corpus_target, synthesize

    ws = workspace(ctx)
    check_corpus_target(ws.data, force=force)
    with stage_lock(ws, "data", "the corpus"):
        counts = synthesize(ws.data, SynthConfig(count=count, size=size, seed=seed, workers=workers))
    console.print(f"wrote {counts['train']} train + {counts['test']} test paintings to {ws.data}")


@data_app.command("import")
def data_import(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="Image folder, a dataset saved with save_to_disk, or a Hugging Face hub id."),
    size: int = typer.Option(64, min=16, max=1024, help="Image side in pixels after centre crop."),
    force: bool = typer.Option(False, "--force", help="Replace a corpus that is already there."),
    style_column: Optional[str] = typer.Option(
        None, "--style-column", help="The metadata or dataset column that holds each painting's style, and the only source "
        "of styles (default: `style`, else a dataset's ClassLabel `label`, else the sub-folder names); `none` takes no styles."),
) -> None:
    """Import real paintings (RGB, centre-cropped, resized; content-hash split)."""
    from artgen.data.corpus import check_corpus_target
    from artgen.data.importer import import_paintings

    ws = workspace(ctx)
    check_corpus_target(ws.data, force=force)
    with stage_lock(ws, "data", "the corpus"):
        report = import_paintings(source, ws.data, ws.root / "logs" / "import.log", size=size,
                                  style_column=style_column_option(style_column), exclude=ws.root)
    console.print(
        f"imported {report.train} train + {report.test} test paintings to {ws.data}; "
        f"{report.duplicates} duplicates dropped, {len(report.skipped)} skipped (listed in {report.log_path})"
    )
    console.print(report.labels, markup=False, highlight=False)  # folder names are not rich markup
    if (line := report.left_out_line()) is not None:
        console.print(line, markup=False, highlight=False)
    if report.upscaled:
        from artgen.data.importer import upscaled_note

        console.print(upscaled_note(report.upscaled, size), markup=False, highlight=False)


def style_column_option(value: str | None) -> str | None:
    """`--style-column`: a column name as given (stripped), `none` in any case for no styles, None when not given."""
    from artgen.data.importer import NO_STYLE_COLUMN

    value = (value or "").strip()
    return None if not value else NO_STYLE_COLUMN if value.lower() == NO_STYLE_COLUMN else value


@data_app.command("show")
def data_show(
    ctx: typer.Context,
    split: str = typer.Option("train", help="Split to show: train or test."),
    n: int = typer.Option(64, min=1, max=1024, help="Number of paintings."),
    columns: int = typer.Option(8, min=1, max=64, help="Paintings per row."),
    out: Optional[Path] = typer.Option(None, "-o", "--out",
                                       help="PNG path (default <workdir>/reports/contact_sheet.png; missing folders are created)."),
) -> None:
    """Write a contact sheet of paintings labelled with their adjectives."""
    from artgen.app.contact_sheet import contact_sheet
    from artgen.data.corpus import decode_image, load_corpus

    ws = workspace(ctx)
    if split not in ("train", "test"):
        raise ArtgenError(f"unknown split {split!r}: use --split train or --split test")
    out = check_output_file(out or ws.reports / "contact_sheet.png")
    ds = load_corpus(ws.data)[split]
    rows = ds.select(range(min(n, len(ds))))
    images = [decode_image(im) for im in rows["image"]]
    labels = [", ".join(adj) if adj else style for adj, style in zip(rows["gt_adjectives"], rows["style"])]
    contact_sheet(images, labels, columns=columns, out=out)
    console.print(f"wrote a contact sheet of {len(images)} {split} paintings to {out}")


@train_app.command("vqvae")
def train_vqvae_cmd(
    ctx: typer.Context,
    preset: str = typer.Option("quick", help="quick (minutes, for the demo and tests) or default (best; the shipped model's: "
                                             "~6 min on 2 CPU cores)."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly from <workdir>/checkpoints/vqvae/train_state."),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda."),
    threads: int = typer.Option(0, min=0, help="torch CPU threads (0: torch's default; 1 is faster on a busy machine)."),
    steps: Optional[int] = typer.Option(None, min=1, help="Override the preset's number of optimiser steps."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Override the preset's batch size (per process)."),
    variant: Optional[str] = typer.Option(None, help="Quantiser variant (default: the preset's, ema-kmeans-restart)."),
    mirror: Optional[bool] = typer.Option(None, "--mirror/--no-mirror", help="Also train on horizontal mirror images "
                                                                             "(default: the preset's)."),
    grain_weight: Optional[float] = typer.Option(None, "--grain-weight", min=0.0,
                                                 help="Weight of the noise-scale head that teaches the codes where the "
                                                      "canvas grain is (0: none; default: the preset's)."),
    downsample: Optional[int] = typer.Option(None, "--downsample", min=2,
                                             help="Pixels per code cell side, a power of two (default 4: 64 px images "
                                                  "give a 16 x 16 code grid; 8 gives 8 x 8, fewer and coarser codes)."),
    track: Optional[str] = typer.Option(None, "--track", help=TRACK_HELP),
) -> None:
    """Train the VQ-VAE (512 x 64 codebook) and cache the corpus latents."""
    track = track or ctx.meta.get("artgen.track")  # `artgen train --track mlflow vqvae` too
    check_tracker(track)  # before any work
    from artgen.training.vqvae import train_vqvae

    ws = workspace(ctx)
    with start_tracking(track, ws, run_name=f"train vqvae ({preset})") as tracker:
        train_vqvae(ws, preset=preset, resume=resume, device=device, threads=threads, steps=steps,
                    batch_size=batch_size, variant=variant, tracker=tracker, mirror=mirror, grain_weight=grain_weight,
                    model_overrides={"downsample": downsample} if downsample else None)


@train_app.command("decoder")
def train_decoder_cmd(
    ctx: typer.Context,
    preset: str = typer.Option("default", help="quick (a minute, for tests) or default (~10 min on 2 CPU cores)."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly from the interrupted run's train_state."),
    threads: int = typer.Option(0, min=0, help="torch CPU threads (0: torch's default)."),
    steps: Optional[int] = typer.Option(None, min=1, help="Override the preset's number of optimiser steps."),
    track: Optional[str] = typer.Option(None, "--track", help=TRACK_HELP),
) -> None:
    """Retrain the VQ-VAE's decoder adversarially on the same codes (sharper edges, a grain
    branch for texture; every model trained on the codes stays valid)."""
    track = track or ctx.meta.get("artgen.track")
    check_tracker(track)
    from artgen.training.decoder import train_decoder

    ws = workspace(ctx)
    with start_tracking(track, ws, run_name=f"train decoder ({preset})") as tracker:
        train_decoder(ws, preset=preset, resume=resume, threads=threads, steps=steps, tracker=tracker)


@train_app.command("align")
def train_align_cmd(
    ctx: typer.Context,
    encoder: str = typer.Option("tiny", "--encoder", help="Whose autoregressive model to align (checkpoints/<encoder>-ar)."),
    steps: int = typer.Option(2000, min=1, help="Fine-tuning steps (~42 min on 2 CPU cores for the tiny model)."),
    lr: float = typer.Option(1e-4, help="Peak learning rate."),
    beta: float = typer.Option(0.05, help="CCA's beta: how far from its frozen copy the model may move (smaller: further)."),
    lam: float = typer.Option(50.0, "--lambda", help="Weight of the other caption's term."),
    guidance: float = typer.Option(1.5, help="The guidance the aligned model samples with by default (1: none)."),
    negatives: str = typer.Option("next", help="Each grid's negative caption: next (the batch's next sample's) or closest "
                                              "(the batch's nearest in adjectives, another set)."),
    negative_captions: int = typer.Option(1, help="Negative captions per grid (with next: the next n samples'), each "
                                                  "weighted lambda / n."),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted alignment with the same settings from its "
                                                        "last checkpoint (every 250 steps)."),
    track: Optional[str] = typer.Option(None, "--track", help=TRACK_HELP),
) -> None:
    """Fine-tune a trained autoregressive model to follow its words more (Condition Contrastive
    Alignment against a frozen copy of itself); the model is replaced when the run completes."""
    track = track or ctx.meta.get("artgen.track")
    check_tracker(track)
    from artgen.training.alignment import AlignmentConfig, align_predictor

    # bad values named before any work
    cfg = AlignmentConfig(steps=steps, lr=lr, beta=beta, lam=lam, guidance=guidance, negatives=negatives,
                          negative_captions=negative_captions)
    ws = workspace(ctx)
    with start_tracking(track, ws, run_name=f"align {encoder}-ar") as tracker:
        align_predictor(ws, encoder=encoder, cfg=cfg, device=device, tracker=tracker, resume=resume)


@train_app.command("scorer")
def train_scorer_cmd(
    ctx: typer.Context,
    annotations: str = typer.Option("auto", help="Adjective labels: auto (the most complete annotation file), heuristic, openai or gt."),
    epochs: int = typer.Option(4, min=1, help="Passes over the train grids (~20 s each on 2 CPU cores)."),
    width: int = typer.Option(48, min=1, help="Channels of the scorer's first convolution stage."),
) -> None:
    """Train the code scorer that a bundle exported with --candidates N keeps the best of N
    grids by when the workspace has no caption picker (it reads the VQ-VAE's codes, into
    checkpoints/code-scorer)."""
    from artgen.training.scorer import ScorerConfig, train_scorer

    train_scorer(workspace(ctx), annotations=annotations, cfg=ScorerConfig(epochs=epochs, width=width))


@train_app.command("picker")
def train_picker_cmd(
    ctx: typer.Context,
    annotations: str = typer.Option("auto", help="Adjective labels: auto (the most complete annotation file), heuristic, openai or gt."),
    epochs: int = typer.Option(30, min=1, help="Passes over the train paintings (~6 s each on 2 CPU cores)."),
) -> None:
    """Train the caption picker that best-of-N sampling keeps a candidate by (it reads decoded
    pixels and the prompt's adjectives, into checkpoints/caption-picker; `artgen export
    --candidates N` takes it in the code scorer's stead)."""
    from artgen.models.caption_picker import PickerConfig
    from artgen.training.picker import train_picker

    train_picker(workspace(ctx), annotations=annotations, cfg=PickerConfig(epochs=epochs))


@app.command("attach-picker")
def attach_picker_cmd(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="An exported autoregressive bundle that draws several candidates per image."),
) -> None:
    """Make the workspace's caption picker (`artgen train picker`) what keeps a candidate in an
    exported bundle: picker.onnx replaces scorer.onnx, bundle.json is rewritten (format 6), and
    the folder is replaced only once the new bundle loads."""
    from artgen.training.picker import load_picker
    from export.bundle import attach_picker
    from export.runtime import BundleError

    ws = workspace(ctx)
    picker = load_picker(ws)
    if not (bundle / "bundle.json").is_file():
        raise ArtgenError(f"{bundle} is not a bundle (no bundle.json): give the folder `artgen export` wrote")
    # the new bundle is written beside the old one, which it replaces whole
    check_writable_folder(bundle.resolve().parent, f"cannot rewrite the bundle {bundle}")
    with stage_lock(ws, path_lock_name("bundle", bundle), f"the bundle {bundle}"):
        try:
            meta = attach_picker(bundle, picker)
        except BundleError as e:
            raise ArtgenError(str(e)) from None
        except OSError as e:  # a full disk part-way: the old bundle is untouched
            raise ArtgenError(f"could not rewrite the bundle {bundle} ({e.strerror or e}): free space or choose a writable "
                              "copy of it; the bundle is unchanged") from None
    console.print(f"{bundle} now keeps the best of {meta['sampling']['candidates']} candidates by the caption picker: "
                  f"{meta['size_bytes'] / 1e6:.2f} MB")


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """The whole pipeline for a new user: corpus, annotation, VQ-VAE, tiny model, samples,
    int8 bundle, bench --quick, one image via the torch-free runtime. Finished stages are skipped."""
    from artgen.app.demo import run_demo

    ws = workspace(ctx)
    run_demo(ws)
    ctx.invoke(data_show, ctx=ctx, split="train", n=64, columns=8, out=None)


@train_app.callback()
def train_encoder_cmd(
    ctx: typer.Context,
    encoder: Optional[str] = typer.Option(None, "--encoder", help="Text encoder to train with the index predictor: tiny, clip or "
                                                                  "distilbert."),
    preset: str = typer.Option("quick", help="quick (<= 10 min per encoder on 2 CPU cores), default, or long (--generator ar "
                                              "only: twice the default's steps, then `artgen train align`'s "
                                              "alignment)."),
    annotations: str = typer.Option("auto", help="Caption labels: auto (the most complete of the openai and heuristic files), "
                                                 "heuristic, openai or gt."),
    pretrained: Optional[str] = typer.Option(None, help="Folder or hub id with real clip/distilbert weights (frozen unless --finetune)."),
    finetune: bool = typer.Option(False, "--finetune", help="Train the pretrained encoder's weights too."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly from <workdir>/checkpoints/<encoder>/train_state."),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda."),
    steps: Optional[int] = typer.Option(None, min=1, help="Override the preset's number of optimiser steps."),
    generator: str = typer.Option("masked", "--generator", help="masked (the direct index predictor, checkpoints/<encoder>) or ar "
                                                                "(autoregressive, checkpoints/<encoder>-ar)."),
    flipped: Optional[bool] = typer.Option(None, "--flipped/--no-flipped", help="Also train on the mirror images of the train "
                                                                                "paintings (default: the preset's)."),
    rotated: Optional[bool] = typer.Option(None, "--rotated/--no-rotated", help="Also train on their quarter-turned images, "
                                                                                "horizontal and vertical swapped (default: the preset's)."),
    track: Optional[str] = typer.Option(None, "--track", help=TRACK_HELP),
) -> None:
    """Train an encoder + a generator (`--encoder`), or the VQ-VAE (`artgen train vqvae`)."""
    check_tracker(track)  # before any work
    if ctx.invoked_subcommand is not None:
        ctx.meta["artgen.track"] = track
        return
    if encoder is None:
        raise ArtgenError("no encoder chosen: use `artgen train --encoder tiny|clip|distilbert`, or `artgen train vqvae`")
    from artgen.models.generators import model_name
    from artgen.training.predictor import train_predictor

    ws = workspace(ctx)
    with start_tracking(track, ws, run_name=f"train {model_name(encoder, generator)} ({preset})") as tracker:
        train_predictor(ws, encoder=encoder, preset=preset, annotations=annotations, pretrained=pretrained, finetune=finetune,
                        resume=resume, device=device, steps=steps, generator=generator, flipped=flipped,
                        rotated=rotated, tracker=tracker)


@app.command("generate")
def generate_cmd(
    ctx: typer.Context,
    prompt: Optional[str] = typer.Argument(None, help='A few adjectives, e.g. "warm, chaotic, vivid".'),
    encoder: str = typer.Option("tiny", "--encoder", help="Which trained encoder to use: tiny, clip or distilbert."),
    n: int = typer.Option(4, "-n", min=1, max=64, help="Images per prompt (seeds seed .. seed+n-1)."),
    seed: int = typer.Option(0, min=0, help="Seed of the first image: the same seed gives the same bytes."),
    generator: Optional[str] = typer.Option(None, "--generator", help="masked (checkpoints/<encoder>, the default) or ar (the "
                                                                      "autoregressive model, checkpoints/<encoder>-ar). For "
                                                                      "tiny, while the asked model is untrained, the shipped "
                                                                      "model (ar) stands in, unless masked was asked for."),
    steps: Optional[int] = typer.Option(None, min=1, max=MAX_STEPS, help="Parallel decoding steps of the masked generator (default "
                                                                         f"{DEFAULT_STEPS}; 1: one-shot prediction of the whole grid)."),
    guidance: Optional[float] = typer.Option(None, min=0.0, max=20.0, help=f"Classifier-free guidance scale (default: the masked "
                                                                          f"generator's {DEFAULT_GUIDANCE}, the autoregressive "
                                                                          "model's own, 1.5 for the shipped one; 1: none)."),
    temperature: Optional[float] = typer.Option(None, min=0.0, help=f"Sampling temperature (default: the masked generator's "
                                                                    f"{DEFAULT_TEMPERATURE}, the autoregressive one's "
                                                                    f"{AR_DEFAULT_TEMPERATURE}; 0: most likely code)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=0, help="Autoregressive generator only: sample among the k most likely "
                                                                     "codes (0: all)."),
    candidates: Optional[int] = typer.Option(None, "--candidates", min=1, max=MAX_CANDIDATES,
                                             help="Autoregressive generator only: draw this many per image and keep the one the "
                                                  "caption picker (`artgen train picker`), else the code scorer, finds closest "
                                                  "to the words (default 1; the shipped bundle: its own)."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="UTF-8 text file with one prompt per line (one row each; "
                                                                   "blank lines and # comments are skipped)."),
    out: Path = typer.Option(Path("generated.png"), "-o", "--out", help="PNG grid to write (missing folders are created)."),
) -> None:
    """Generate abstract paintings from adjectives and write them as a PNG grid."""
    from artgen.generate import generate_to_png, read_prompts

    texts = ([prompt] if prompt is not None else []) + (read_prompts(prompts) if prompts else [])
    out = check_output_file(out)  # before any work
    ws = workspace(ctx)
    from artgen.models.generators import model_name

    model = model_name(encoder, generator or "masked")
    from artgen.app.release import shipped_generator

    # Before any training, the model shipped in the package stands in, unless another generator was asked for.
    if (encoder == "tiny" and not (ws.checkpoint(model) / "config.json").exists() and (SHIPPED_MODEL / "bundle.json").exists()
            and generator in (None, shipped_generator())):
        _generate_with_shipped_model(ws, texts, out, n=n, seed=seed, steps=steps, guidance=guidance, temperature=temperature,
                                     top_k=top_k, candidates=candidates)
        return
    notes = generate_to_png(ws, texts, out, encoder=model, n=n, seed=seed, steps=steps,
                            guidance=guidance, temperature=temperature, top_k=top_k, candidates=candidates)
    for note in notes:
        console.print(note)
    console.print(f"wrote {len(texts)} x {n} images to {out}")


def _generate_with_shipped_model(ws: Workspace, texts: list[str], out: Path, n: int, seed: int, steps: int | None,
                                 guidance: float | None, temperature: float | None, top_k: int | None = None,
                                 candidates: int | None = None) -> None:
    """`artgen generate` before any training: the int8 tiny bundle shipped in the package,
    through the torch-free runtime, laid out like `generate_to_png` (a row per prompt)."""
    import numpy as np

    from artgen.data.vocabulary import parse_prompt
    from artgen.images import grid_png
    from export.runtime import BundleError, Runtime

    if not texts:
        raise ArtgenError("no prompt given: pass a prompt such as \"warm, chaotic, vivid\" or --prompts FILE")
    for t in texts:
        parsed = parse_prompt(t)
        if parsed.unknown:
            console.print(f"note: {', '.join(repr(w) for w in parsed.unknown)} are not in the vocabulary; read as sub-words")
    console.print(f"no trained tiny model in {ws.root / 'checkpoints'}: using the shipped int8 model at {SHIPPED_MODEL} "
                  "(train your own with `artgen train --encoder tiny`)")
    try:
        rt = Runtime(SHIPPED_MODEL)
        rows = [rt.generate([t] * n, seed=seed, steps=steps, guidance=guidance, temperature=temperature, top_k=top_k,
                            candidates=candidates) for t in texts]
    except BundleError as e:
        raise ArtgenError(str(e)) from None
    write_output(out, grid_png(np.concatenate(rows), columns=n))
    console.print(f"wrote {len(texts)} x {n} images to {out}")


@app.command("release-model")
def release_model_cmd(
    ctx: typer.Context,
    preset: str = typer.Option("default", help="Preset for the VQ-VAE, the decoder and the tiny model (default: the shipped one)."),
    model_preset: Optional[str] = typer.Option(None, "--model-preset", help="Preset for the tiny encoder + generator only "
                                                                           "(default: --preset; long: the AR generator's "
                                                                           "12,000 steps, then its alignment)."),
    quick_bench: bool = typer.Option(False, "--quick-bench", help="Bench with --quick instead of the full run."),
    annotations: str = typer.Option("gt", help="Caption labels: gt (the synthetic corpus's ground truth), heuristic, openai, auto."),
    generator: Optional[str] = typer.Option(None, "--generator", help="masked or ar (default: the shipped model's generator)."),
    candidates: Optional[int] = typer.Option(None, "--candidates", min=1, max=MAX_CANDIDATES,
                                             help="--generator ar: the bundle keeps the best of N by the caption picker (trained "
                                                  "here first; default: the shipped bundle's)."),
) -> None:
    """Train (default presets), bench, export int8 and copy the tiny model into artgen/assets/tiny."""
    from artgen.app.release import release_model

    release_model(workspace(ctx), preset=preset, quick_bench=quick_bench, annotations=annotations, generator=generator,
                  model_preset=model_preset, candidates=candidates)


@app.command("encoders")
def encoders_cmd(ctx: typer.Context) -> None:
    """List the text encoders: parameters, tokenizer and where the weights come from."""
    from artgen.app.encoder_table import encoder_table

    console.print(encoder_table(workspace(ctx)))


@app.command("bench")
def bench_cmd(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="150 test captions and 20 latency runs (tests, the demo)."),
    encoders: Optional[str] = typer.Option(None, "--encoders", help="Comma-separated encoders, e.g. tiny,clip (default: every trained "
                                                                    "one)."),
    captions: Optional[int] = typer.Option(None, min=4, help="Test captions, one generated image each (default 1000; quick 150)."),
    latency_runs: Optional[int] = typer.Option(None, min=1, help="Timed runs per latency figure (default 100; quick 20)."),
    threads: int = typer.Option(2, min=1, help="Threads for torch, ONNX Runtime and the FID network."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Report folder (default <workdir>/reports/bench)."),
    labels: str = typer.Option("auto", help="Caption labels: auto (openai, else heuristic, else gt), heuristic, openai or gt (use the "
                                            "ones the models were trained on)."),
    bundle: Optional[Path] = typer.Option(
        None, "--bundle", help="Bench this exported bundle by itself (e.g. artgen/assets/tiny) through the torch-free "
                               "runtime, against the workspace's corpus, instead of the trained encoders."),
    candidates: Optional[int] = typer.Option(None, "--candidates", min=1, max=MAX_CANDIDATES,
                                             help="Autoregressive models: best of N kept by the caption picker or code scorer "
                                                  "(default: 1 for a trained model, a bundle's own)."),
    track: Optional[str] = typer.Option(None, "--track", help=TRACK_HELP),
) -> None:
    """Compare every trained encoder (or one exported bundle): size, latency, FID, precision/recall,
    codebook usage, attribute control, style consistency."""
    check_tracker(track)  # before any work
    from bench.run import BenchConfig, run_bench

    names = tuple(e.strip() for e in encoders.split(",") if e.strip()) if encoders else None
    if encoders is not None and not names:
        raise ArtgenError("--encoders is empty: give names such as --encoders tiny,clip")
    if bundle is not None and names:
        raise ArtgenError("--bundle benches one exported bundle: drop --encoders, or drop --bundle to bench trained encoders")
    cfg = BenchConfig(encoders=names, quick=quick, captions=captions, latency_runs=latency_runs, threads=threads,
                      labels=labels, candidates=candidates)
    where = out or workspace(ctx).reports / "bench"
    with start_tracking(track, workspace(ctx), run_name="bench") as tracker:
        report = run_bench(workspace(ctx), cfg, out_dir=out, bundle=bundle)
        log_bench_report(tracker, where)
    for c in report["criteria"]:
        verdict = {True: "PASS", False: "FAIL", None: "not measured"}[c["pass"]]
        console.print(f"{verdict:>12}  {c['target']}: {c['measured'] if c['measured'] is not None else c['note']}")
    console.print(f"wrote report.json, report.md and report.html to {where} in {report['meta']['seconds']:.0f} s")


def log_bench_report(tracker: Tracker, report_dir: Path) -> None:
    """Hand a finished bench to `tracker` (`artgen.tracking`): its config as parameters, every
    row's numbers as `<model>/<metric>` (the reference rows as `reference/<name>/<metric>`), the
    criteria passed and failed, and report.json/.md/.html and the sample grids as artifacts."""
    import json

    report = json.loads((Path(report_dir) / "report.json").read_text())
    meta = report.get("meta", {})
    tracker.log_params({"config": meta.get("config", {}), "label_source": meta.get("label_source"),
                        "versions": meta.get("versions", {})})
    for group, prefix in (("rows", ""), ("references", "reference/")):
        for row in report.get(group) or []:
            if isinstance(row, dict) and row.get("name"):
                tracker.log_metrics({f"{prefix}{row['name']}/{k}": v for k, v in row.items() if k != "name"})
    verdicts = [c.get("pass") for c in report.get("criteria", []) if isinstance(c, dict)]
    tracker.log_metrics({"criteria_passed": verdicts.count(True), "criteria_failed": verdicts.count(False),
                         "bench_seconds": meta.get("seconds")})
    files = [Path(report_dir) / f"report.{ext}" for ext in ("json", "md", "html")]
    tracker.log_files(files + sorted(Path(report_dir).glob("samples_*.png")), folder="report")


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    encoder: str = typer.Option("tiny", help="Trained encoder to export: tiny, clip or distilbert."),
    generator: str = typer.Option("masked", "--generator", help="masked (checkpoints/<encoder>) or ar (checkpoints/<encoder>-ar)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Bundle folder (default <workdir>/bundles/<model>[-int8])."),
    int8: bool = typer.Option(False, "--int8", help="Quantise the transformer graphs to int8 (onnxruntime dynamic quantisation)."),
    opset: int = typer.Option(17, help="ONNX opset."),
    check: bool = typer.Option(False, "--check", help="Compare the bundle with PyTorch on 64 prompts (parity.json)."),
    force: bool = typer.Option(False, "--force", help="Replace --out even when it holds something other than a bundle."),
    candidates: int = typer.Option(1, "--candidates", min=1, help="--generator ar: draw this many per image by default and "
                                                                   "keep the one the caption picker (`artgen train picker`; "
                                                                   "adds picker.onnx, ~0.6 MB) finds nearest the prompt's words, "
                                                                   "else the code scorer (`artgen train scorer`; scorer.onnx)."),
) -> None:
    """Write an ONNX bundle (graphs, tokenizer, bundle.json, runtime.py) that runs without torch."""
    from artgen.models.generators import model_name
    from export.bundle import check_bundle_target, check_candidates

    check_candidates(generator, candidates, scorer=True)  # the count and the generator, before any work
    ws = workspace(ctx)
    model = model_name(encoder, generator)
    out = out or ws.bundles / (model + ("-int8" if int8 else ""))
    check_bundle_target(out, force=force)  # before any work: never replace a folder of other files
    check_writable_folder(out.parent, f"--out {out}")
    with stage_lock(ws, path_lock_name("bundle", out), f"the bundle {out}"):
        _export(ws, model, out, int8, opset, check, candidates)


def _export(ws: Workspace, model: str, out: Path, int8: bool, opset: int, check: bool, candidates: int = 1) -> None:
    import json

    from artgen.generate import load_generator
    from export.bundle import ExportConfig, bundle_size, export_bundle
    from export.parity import check_parity

    gen = load_generator(ws, model)  # with the workspace's code scorer, where there is one for its VQ-VAE
    meta = export_bundle(gen, out, ExportConfig(opset=opset, int8=int8, candidates=candidates))
    console.print(f"wrote the {meta['precision']} {model} bundle ({gen.source}) to {out}: "
                  f"{meta['size_bytes'] / 1e6:.2f} MB")
    if check:
        report = check_parity(gen, out)
        (out / "parity.json").write_text(json.dumps(report.to_dict(), indent=2))
        sampled = (f"{report.sampled_agreement_all_steps:.2%} (all positions)" if report.generator == "ar" else
                   f"{report.sampled_agreement_1_step:.2%} (1 step) / {report.sampled_agreement_8_steps:.2%} (8 steps)")
        console.print(
            f"parity ({report.precision}, {report.prompts} prompts): logits max abs diff {report.logits_max_abs_diff:.2e}, "
            f"argmax agreement {report.code_agreement:.2%}, mean abs pixel diff {report.pixel_mean_abs_diff:.2f}, "
            f"sampled codes agree {sampled}")
        if not report.passed:
            raise ArtgenError(f"the {report.precision} bundle at {out} fails parity ({report.criteria}): see {out / 'parity.json'}")
        console.print(f"parity passed: {report.criteria}; bundle now {bundle_size(out) / 1e6:.2f} MB")


@app.command("serve")
def serve_cmd(
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Bundle folder from `artgen export` (default: the shipped tiny model)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (default: this machine only; 0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    max_batch: int = typer.Option(16, "--max-batch", min=1, max=64, help="Images per merged runtime call (1: no merging)."),
    batch_window_ms: float = typer.Option(5.0, "--batch-window-ms", min=0.0, help="How long to wait for more requests to merge."),
    queue: int = typer.Option(64, min=1, help="Requests that may wait; beyond them: 503 with Retry-After."),
    threads: Optional[int] = typer.Option(None, min=1, help="ONNX Runtime threads (default: ONNX Runtime's choice)."),
    timeout_s: float = typer.Option(30.0, "--timeout-s", min=0.001, help="Seconds a request may wait and run; beyond: 504."),
    body_timeout_s: float = typer.Option(30.0, "--body-timeout-s", min=0.001, max=3600.0,
                                         help="Seconds a request body may pause between its parts; beyond: 408."),
    batching: str = typer.Option("exact", help="exact: merge requests only where no image can change (fp32 bundles); merge: always."),
    web: Optional[Path] = typer.Option(None, "--web", help="A folder served at / (a page built by `artgen web`)."),
    cors_origin: Optional[list[str]] = typer.Option(
        None, "--cors-origin", metavar="ORIGIN", help="Let pages on this origin call the API (CORS), e.g. http://localhost:3000; "
        "repeat it or separate with commas; * for any. Default: none."),
    keep_alive_s: float = typer.Option(75.0, "--keep-alive-s", min=1.0, max=3600.0,
                                       help="Seconds an idle connection stays open; keep it above a reverse proxy's (nginx: 60)."),
) -> None:
    """Serve a bundle over HTTP: POST /v1/images, GET /v1/model, GET /healthz (docs/serve.md)."""
    from artgen.app.serve import ServeConfig, serve

    config = ServeConfig(max_batch=max_batch, batch_window_ms=batch_window_ms, queue=queue, timeout_s=timeout_s,
                         body_timeout_s=body_timeout_s, threads=threads, batching=batching, cors_origins=tuple(cors_origin or ()))
    serve(bundle if bundle is not None else SHIPPED_MODEL, config, host=host, port=port, static_dir=web, keep_alive_s=keep_alive_s)


@app.command("web")
def web_cmd(
    ctx: typer.Context,
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Exported bundle folder (default: the shipped tiny model)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder to write (default <workdir>/web); a page built there before is "
                                                           "replaced."),
) -> None:
    """Write a static page that generates in the browser on onnxruntime-web (needs `make web` once)."""
    from artgen.app.web import build_web

    out = out or workspace(ctx).root / "web"
    manifest = build_web(out, bundle)
    if not manifest["runs_in_page"]:
        console.print(f"note: the page cannot run this bundle's {manifest['tokenizer']} tokenizer yet and says so; "
                      "tiny-encoder bundles run")
    console.print(f"wrote the page for the {manifest['encoder']} {manifest['generator']} bundle to {out}")
    console.print(f"open it: python -m http.server -d {out} 8000, then http://localhost:8000/")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _exception_types(name: str) -> tuple[type, ...]:
    """`name` from click and from the click copy newer typer releases vendor."""
    modules = [click.exceptions, typer]
    try:
        from typer._click import exceptions as vendored

        modules.append(vendored)
    except ImportError:
        pass
    return tuple({getattr(m, name) for m in modules if isinstance(getattr(m, name, None), type)})


_EXIT, _USAGE, _ABORT = _exception_types("Exit"), _exception_types("UsageError"), _exception_types("Abort")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning every expected failure into one line and exit 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="artgen", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):  # click hands back `typer.Exit(code)` as its code
            return rv
    except _EXIT as e:
        return e.exit_code
    except _USAGE as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
            print(e.format_message())
            return 0
        where = e.ctx.command_path if e.ctx else "artgen"
        print(f"error: {_one_line(e.format_message())} (see `{where} --help`)", file=sys.stderr)
        return 2
    except _ABORT:
        print("error: interrupted", file=sys.stderr)
        return 130
    except ArtgenError as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: close other programs, or use a smaller --batch-size / --size / -n", file=sys.stderr)
        return 1
    except OSError as e:  # the machine's, not a bug: a full disk or quota, a read-only or failing disk, a permission
        import errno

        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"error: the disk is full ({e.filename or 'writing'}): free some space and run the command again "
                  "(finished stages and checkpoints are kept)", file=sys.stderr)
        else:
            where = f" ({e.filename})" if e.filename else ""
            print(f"error: {e.strerror or type(e).__name__}{where}: check that path, its permissions and the disk, "
                  "then run the command again", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line, the traceback in a file (ARTGEN_DEBUG=1: on the terminal)
        return _crash(e)
    return 0


def _crash(e: Exception) -> int:
    """An unexpected error: one line naming it and where its traceback was written."""
    import os
    import tempfile
    import traceback

    if os.environ.get("ARTGEN_DEBUG", "").strip() not in ("", "0"):
        raise e
    text = "".join(traceback.format_exception(e))
    try:
        fd, path = tempfile.mkstemp(prefix="artgen-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"artgen {' '.join(sys.argv[1:])}\n\n{text}")
        where = f"the traceback is in {path}"
    except OSError:
        where = "rerun with ARTGEN_DEBUG=1 for the traceback"
    print(f"error: internal error ({type(e).__name__}: {_one_line(str(e))[:200]}): a bug in artgen, not in what you typed; "
          f"{where}: please report it", file=sys.stderr)
    return 1
