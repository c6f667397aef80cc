"""What the autoregressive generator's probe scripts share (`ar_sampling_sweep.py`,
`ar_rerank_probe.py`, `ar_style_diagnosis.py`); not a command of its own.

`probe_set`: the test captions every probe reads — a seeded sample of test paintings, for
painting i a caption of 3-5 of its ground-truth adjectives (seed i), its style as the target,
and the bench's style judge (trained on real train paintings, cached in the workspace).
`add_probe_args` / `open_probe`: the options every probe takes (--workdir, --model or --checkpoint,
--captions)
and what they open: the workspace, its autoregressive generator and the probe set.
`drawn_styles`: the judge's style of each caption's guided image.
`add_swapped_network_args`: the options of the probes that train a network of their own.
`labelled_grids`, `cached_code_scorer`, `finetune`: the train and test grids with their
adjectives, the code scorer cached in a folder, and the fine-tuning of a trained AR model that
the self-training, CCA and reranking probes share.
`guided_codes`: the runtime's sampler (guided Gumbel-max, one cached step per position),
opened up for probes: the first `known` positions can be given, and the model's own text
agreement of the drawn codes comes back beside them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from artgen.data.captions import make_caption
from artgen.data.corpus import load_corpus
from artgen.generate import gumbel, load_generator, pick_codes
from artgen.sampling import AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE, AR_NOISE_STREAM
from artgen.workspace import Workspace
from bench.style import StyleJudge, style_judge


@dataclass
class ProbeSet:
    rows: object  # the sampled test paintings (a datasets.Dataset)
    captions: list[str]
    targets: list[str]  # each caption's painting's style
    judge: StyleJudge


def probe_set(ws: Workspace, captions: int) -> ProbeSet:
    dd = load_corpus(ws.data)
    train, test = dd["train"], dd["test"]
    idx = sorted(np.random.default_rng(0).choice(len(test), size=min(captions, len(test)), replace=False).tolist())
    rows = test.select(idx)
    texts = [make_caption(adj, np.random.default_rng([0, i])) for i, adj in enumerate(rows["gt_adjectives"])]
    judge, why = style_judge(ws.root / "cache" / "style", train)
    if judge is None:
        raise SystemExit(f"no style judge: {why}")
    return ProbeSet(rows, texts, list(rows["style"]), judge)


@torch.no_grad()
def guided_start(model, captions: list[str], seeds: list[int]):
    """What every guided AR sampler here starts from, for a generator or a `TextToCodes`: the
    text context of the prompt rows then the same rows with no text, an empty KV cache for
    both halves, and image i's Gumbel noise (N, K) drawn from seed i as the runtime does."""
    P = model.predictor
    N, K = P.cfg.positions, P.cfg.codebook_size
    states, mask = model.encoder.encode(model.encoder.tokenize(captions))
    context = P.context(torch.cat([states, states]), torch.cat([mask, torch.zeros_like(mask)]))
    past_k, past_v = P.empty_cache(2 * len(captions))
    noise = torch.from_numpy(np.stack([gumbel(s, AR_NOISE_STREAM, (N, K)) for s in seeds]).astype(np.float32))
    return context, past_k, past_v, noise


def draw_probe_codes(draw, model, probe: ProbeSet, batch: int) -> tuple[torch.Tensor, float]:
    """(codes, seconds): `draw(model, captions, seeds, guidance, temperature)` over the probe's
    captions in batches of `batch`, image i with seed i, at the AR default sampler."""
    n, start = len(probe.captions), time.perf_counter()
    codes = torch.cat([draw(model, probe.captions[s:s + batch], list(range(s, min(s + batch, n))),
                            AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE) for s in range(0, n, batch)])
    return codes, time.perf_counter() - start


def guided_codes(gen, captions: list[str], seeds: list[int], guidance: float | list[float],
                 temperature: float | list[float], given: torch.Tensor | None = None,
                 known: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes (B, N), text agreement (B,)): the sampler of `ARGenerator.codes_from_states` (no
    top-k), except that positions < `known` take `given`'s codes (B, N), and `guidance` and
    `temperature` may be one value per position (a schedule). The agreement is the sum over
    the drawn positions of log p(code | text) - log p(code | no text)."""
    P, B, N = gen.predictor, len(captions), gen.predictor.cfg.positions
    context, past_k, past_v, noise = guided_start(gen, captions, seeds)
    token = torch.full((2 * B, 1), P.cfg.start_id, dtype=torch.long)
    codes, agreement = torch.empty((B, N), dtype=torch.long), torch.zeros(B)
    guidance = [guidance] * N if np.isscalar(guidance) else list(guidance)
    temperature = [temperature] * N if np.isscalar(temperature) else list(temperature)
    for t in range(N):
        above = P.above_codes(codes, t).repeat(2, 1) if P.cfg.above else None
        logits, past_k, past_v = P.step(token, past_k, past_v, *context, above=above)
        cond, uncond = logits.chunk(2)
        if t < known:
            codes[:, t] = given[:, t]
        else:
            codes[:, t] = pick_codes(uncond + guidance[t] * (cond - uncond), noise[:, t], temperature[t], 0)
            drawn = codes[:, t:t + 1]
            agreement += (cond.log_softmax(-1).gather(1, drawn) - uncond.log_softmax(-1).gather(1, drawn))[:, 0]
        token = codes[:, t:t + 1].repeat(2, 1)
    return codes, agreement


def add_probe_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--model", default="tiny-ar")
    ap.add_argument("--checkpoint", default=None, help="a model folder instead of the workspace's --model")
    ap.add_argument("--captions", type=int, default=300)


def add_swapped_network_args(ap: argparse.ArgumentParser, folder: str, compile: bool = True) -> None:
    """The options every swapped-network probe takes (`train_swapped_network`): the workspace, the
    training steps, the probe captions and batch, the model whose VQ-VAE decodes, and scoring the
    model already in `folder` instead of training it (and `--compile` where the probe offers it)."""
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--captions", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--decoder-from", default="tiny-ar-base2000",
                    help="an AR model in the workspace whose generator decodes (only its VQ-VAE is used)")
    ap.add_argument("--skip-training", action="store_true", help=f"score the model already in {folder}")
    if compile:
        ap.add_argument("--compile", action="store_true", help="train through torch.compile (as the long preset)")


def open_probe(args: argparse.Namespace):
    """(workspace, autoregressive generator, probe set) for `add_probe_args`' options, on 2 threads."""
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    gen = load_generator(ws, args.model, checkpoint=args.checkpoint)
    if gen.kind != "ar":
        raise SystemExit(f"{args.checkpoint or args.model} is not an autoregressive model")
    return ws, gen, probe_set(ws, args.captions)


def drawn_styles(gen, captions: list[str], judge: StyleJudge, guidance: float | list[float],
                 temperature: float | list[float], batch: int, given: torch.Tensor | None = None,
                 known: int = 0) -> list[str]:
    """The judge's style of each caption's image from `guided_codes` (caption i drawn with seed i)."""
    grid = gen.predictor.cfg.grid
    codes = torch.cat([guided_codes(gen, captions[s:s + batch], list(range(s, min(s + batch, len(captions)))),
                                    guidance, temperature, None if given is None else given[s:s + batch], known)[0]
                       for s in range(0, len(captions), batch)])
    return judge.predict(list(gen.decode(codes.view(-1, grid, grid))))


def train_swapped_network(ws: Workspace, kind_factory, preset, steps: int, folder) -> None:
    """Train `preset` (an AR preset) with the autoregressive generator kind swapped for
    `kind_factory` (a probe's network), in the workspace's `tiny-ar` folder, then move the model
    to `folder`. Refuses when `tiny-ar` exists (a probe never overwrites a real model)."""
    import shutil

    import artgen.models.generators as generators
    from artgen.training.predictor import train_predictor

    plain = ws.checkpoint("tiny-ar")
    if plain.exists():
        raise SystemExit(f"{plain} exists: move it aside first (this probe trains there)")
    original = generators.GENERATORS["ar"]
    generators.GENERATORS["ar"] = kind_factory
    try:
        train_predictor(ws, "tiny", preset=preset, annotations="gt", generator="ar", steps=steps)
    finally:
        generators.GENERATORS["ar"] = original
    if folder.exists():
        shutil.rmtree(folder)
    shutil.move(plain, folder)


def load_swapped_network(folder, predictor_class, config_class):
    """(text-to-codes model in eval mode, its final metrics) of a model `train_swapped_network` wrote."""
    import json

    from safetensors.torch import load_file

    from artgen.models.encoders import encoder_from_directory
    from artgen.models.text_to_codes import TextToCodes

    config = json.loads((folder / "config.json").read_text())
    model = TextToCodes(encoder_from_directory(folder, load_weights=False), predictor_class(config_class(**config["predictor"])))
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.eval(), json.loads((folder / "metrics.json").read_text())


def print_style_row(name: str, decoder, probe: ProbeSet, codes: torch.Tensor, seconds: float) -> None:
    """The style judge's verdict on `codes` (B, h, w) decoded by `decoder` (a generator of the
    workspace, for its VQ-VAE), as a one-row Markdown table."""
    drawn = probe.judge.predict(list(decoder.decode(codes)))
    hits = float(np.mean([d == t for d, t in zip(drawn, probe.targets)]))
    counts = np.unique(drawn, return_counts=True)[1]
    print("| model | style consistency | styles / top share | sampling seconds |\n|---|---|---|---|")
    print(f"| {name} | {hits:.3f} | {len(counts)} / {counts.max() / len(drawn):.2f} | {seconds:.0f} |")


@dataclass
class LabelledGrids:
    train_codes: np.ndarray  # the train grids, then their mirror images
    train_labels: list[list[str]]  # each one's ground-truth adjectives
    originals: int  # how many of them are the paintings themselves (the first ones)
    test_codes: np.ndarray
    test_labels: list[list[str]]


def labelled_grids(ws: Workspace) -> LabelledGrids:
    """The workspace's train grids with their mirror images (encoded first if missing) and the
    test grids, each with its painting's ground-truth adjectives: what the fine-tuning probes
    and the code scorer train and evaluate on."""
    from artgen.data.captions import load_labels
    from artgen.data.latents import FLIPPED, ensure_latents, load_latents, painting_id

    ensure_latents(ws, flipped=True)
    labels_by_id, _ = load_labels(ws, "gt")
    (ids, codes), (fids, fcodes), (tids, tcodes) = (load_latents(ws, split) for split in ("train", FLIPPED, "test"))
    return LabelledGrids(np.concatenate([codes, fcodes]), [labels_by_id.get(painting_id(i), []) for i in ids + fids], len(ids),
                         tcodes, [labels_by_id.get(painting_id(i), []) for i in tids])


def cached_code_scorer(directory, grids, codebook_size: int, cfg):
    """(scorer, its stats): the code scorer saved in `directory` (stats in `<directory>.json`
    beside it), else one trained by `cfg` (a SelfTrainingConfig) on `grids()` (a callable
    returning LabelledGrids, called only then) and saved there."""
    import json
    from pathlib import Path

    from artgen.models.code_scorer import CodeScorer
    from artgen.training.self_training import train_code_scorer

    directory = Path(directory)
    stats_path = directory.with_name(directory.name + ".json")
    if (directory / "config.json").exists():
        return CodeScorer.from_pretrained(directory), json.loads(stats_path.read_text()) if stats_path.exists() else {}
    grids = grids()
    start = time.perf_counter()
    scorer, stats = train_code_scorer(grids.train_codes, grids.train_labels, grids.test_codes, grids.test_labels,
                                      codebook_size, cfg)
    stats["seconds"] = round(time.perf_counter() - start, 1)
    scorer.save_pretrained(directory)
    stats_path.write_text(json.dumps(stats, indent=1))
    return scorer, stats


def finetune(base_dir, out, grids: LabelledGrids, steps: int, lr: float, note_key: str, note: dict,
             make_task=None, description: str = "fine-tune") -> dict:
    """Fine-tune the AR model in `base_dir` for `steps` at peak LR `lr` (the default preset's
    batches, a 5 % warm-up, no evaluations until the end) into the model folder `out`, its run
    in `<out>.run`; `note` is recorded under `note_key` in the config's summary. `make_task`
    (default PredictorTask: plain CE) takes PredictorTask's arguments. Returns the final metrics."""
    import json
    from dataclasses import asdict

    from artgen.models.generators import generator_kind
    from artgen.models.text_to_codes import TextToCodes
    from artgen.training.predictor import AR_PRESETS, PredictorTask
    from artgen.training.trainer import TrainConfig, train

    model, config = TextToCodes.from_pretrained(base_dir)
    model.train()
    config = json.loads(json.dumps(config))
    config["summary"] = {**config["summary"], "preset": "custom", note_key: note}
    work = out.with_name(out.name + ".run")
    task = (make_task or PredictorTask)(model, grids.train_codes, grids.train_labels, grids.test_codes, grids.test_labels,
                                        config, work / "metrics.json", kind=generator_kind("ar"))
    p = AR_PRESETS["default"]["tiny"]
    tcfg = TrainConfig(**{**p.train, "steps": steps, "lr": lr, "warmup_steps": max(1, steps // 20),
                          "checkpoint_every": 0, "eval_every": 0, "seed": 0})
    result = train(task, tcfg, work, description=f"{description} {out.name}")
    out.mkdir(parents=True, exist_ok=True)
    result.model.save_pretrained(out, {**config, "train": asdict(tcfg)})
    final = {**config["summary"], **result.metrics, "steps": steps, "lr": lr,
             "train_seconds_this_run": round(result.seconds, 1)}
    (out / "metrics.json").write_text(json.dumps(final, indent=1))
    return final
