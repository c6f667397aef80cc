"""The shared training loop: AdamW (or Muon, `optimizers.py`), warm-up + cosine, rich progress, atomic checkpoints,
exact resume, DDP under `torchrun`.

A task plugs in by being an object with these members (see `Task`):

    class MyTask:
        def __init__(self, ...):
            torch.manual_seed(0)               # the task builds its own model, deterministically
            self.model = MyModel(cfg)

        def batch(self, step: int, generator: torch.Generator, batch_size: int):
            # Draw the batch for `step` with `generator` ONLY (never the global RNG or
            # numpy's): the trainer seeds it from (seed, step, rank), so a resumed run
            # sees exactly the batches an uninterrupted run would.
            idx = torch.randint(0, len(self.data), (batch_size,), generator=generator)
            return self.data[idx]

        def loss(self, model, batch):
            # `model` may be DDP-wrapped: call it (`model(x)`), do not reach into `.module`
            # for the forward pass, or gradients are not synchronised across ranks.
            out = model(batch)
            return out.loss, {"acc": out.acc}   # scalars shown on the progress bar

        def evaluate(self, model) -> dict:     # optional; rank 0 only, model unwrapped, eval mode
            return {"test_loss": ...}

        def config(self) -> dict:              # JSON-able; saved in config.json, checked on resume
            return {"kind": "my-task", ...}

    result = train(MyTask(...), TrainConfig(steps=1000, batch_size=32), out_dir, resume=False)
    result.model        # the trained (unwrapped) model; result.metrics: last evaluate() output

Every logged row (every `log_every` steps: loss, lr and the task's scalars; and each evaluate()
output) lands in `result.history` and, when given, goes to `on_log(row, step)` as it happens:
`on_log=tracker.log_metrics` streams them to an experiment tracker (`artgen.tracking`).

Checkpoints go to `out_dir/train_state/` every `checkpoint_every` steps and at the end:
`config.json` (task config, train config, step), `model.safetensors`, `optimizer.safetensors`
(the optimiser's moments, tensors only) and `rng.safetensors` (torch RNG states). The learning rate is a
pure function of the step, so no scheduler state is needed. Each checkpoint is written to a
temporary directory and renamed into place: a crash mid-save leaves the previous one intact.
With `ema_decay` > 0 an exponential moving average of the weights (torch's `AveragedModel`,
buffers included) is updated after every optimiser step and saved as `ema.safetensors`; it is
what `evaluate()` sees and what `TrainResult.model` holds, and each evaluation row also carries
the raw weights' scores (`raw_*`, when the task's `evaluate` takes `raw_model`), so one run
measures what the average buys. `compile` runs the training forward through `torch.compile`
(Inductor); where it cannot compile (no C++ compiler) Dynamo falls back to eager by itself.
`resume=True` loads it and continues exactly; a damaged checkpoint is an `ArtgenError`, never
a silent fresh start. The stage trainers run in `run_dir(final, resume)` — a `.NAME.partial`
folder for a new run — and `publish_run` swaps it over the finished model only at the end.

Under `torchrun --nproc_per_node N` the same code runs data-parallel (gloo on CPU, nccl on
CUDA); each rank draws its own batch, only rank 0 writes files and shows progress. Model
buffers (e.g. an EMA codebook) are broadcast from rank 0 at every forward (DDP default).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from rich.progress import TextColumn
from torch import nn

from artgen.errors import ArtgenError
from artgen.files import replace_dir
from artgen.progress import make_progress
from artgen.training.optimizers import build_optimizer

STATE_DIR = "train_state"


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64            # per rank
    lr: float = 1e-3                # peak learning rate, after warm-up
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 100         # linear warm-up from 0 to lr
    min_lr_ratio: float = 0.1       # cosine decays to lr * min_lr_ratio at the last step
    grad_clip: float = 1.0          # max global grad norm; 0 disables clipping
    checkpoint_every: int = 500     # steps between checkpoints (0: only at the end)
    log_every: int = 10             # steps between progress-bar metric updates
    eval_every: int = 0             # steps between evaluate() calls (0: only at the end)
    seed: int = 0
    device: str = "auto"            # "auto" (CUDA when available), "cpu" or "cuda"
    threads: int = 0                # torch CPU threads (0: torch's default); 1 is faster on a busy machine
    show_progress: bool = True
    ema_decay: float = 0.0          # > 0: also keep an exponential moving average of the weights (decay per
                                    # step), evaluate and return it; the raw weights stay in train_state/
    compile: bool = False           # torch.compile the training forward (falls back to eager where it cannot)
    optimizer: str = "adamw"        # "adamw", or "muon": Muon on the transformer blocks' matrices (optimizers.py)


# Fields that may change between a run and its resumption without changing its result.
_RESUME_FREE = {"steps", "checkpoint_every", "log_every", "eval_every", "device", "threads", "show_progress",
                "compile"}


@runtime_checkable
class Task(Protocol):
    model: nn.Module

    def batch(self, step: int, generator: torch.Generator, batch_size: int) -> Any: ...

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]: ...

    def config(self) -> dict: ...


@dataclass
class TrainResult:
    model: nn.Module
    step: int
    metrics: dict = field(default_factory=dict)       # last evaluate() output (rank 0)
    history: list[dict] = field(default_factory=list)  # logged rows: step, loss, lr, task metrics
    seconds: float = 0.0                                 # wall time of the steps run in this call
    images_per_s: float = 0.0                            # samples per second over this call, all ranks


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimiser step `step` (0-based): linear warm-up, then cosine to min."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ArtgenError("--device cuda was asked for but no CUDA GPU is visible: use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ArtgenError(f"unknown device {name!r}: use auto, cpu or cuda")
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator a task draws batch `step` with: a pure function of (seed, step, rank)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + rank)


# ---------------------------------------------------------------- checkpoints on disk

def find_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint directory under `out_dir`, or None."""
    state = Path(out_dir) / STATE_DIR
    for cand in (state, state.with_name(state.name + ".old")):
        if (cand / "config.json").exists():
            return cand
    return None


def staging_dir(final: Path) -> Path:
    """Where a new training run writes until it has a complete replacement for `final`:
    `.NAME.partial` beside it (the finished model in `final` is untouched meanwhile)."""
    final = Path(final)
    return final.with_name(f".{final.name}.partial")


def resume_dir(final: Path) -> Path | None:
    """The folder a `--resume` continues: the staged run if there is one, else the run whose
    state is in `final` itself; None when neither holds a checkpoint."""
    return next((cand for cand in (staging_dir(final), Path(final)) if find_checkpoint(cand) is not None), None)


def run_dir(final: Path, resume: bool) -> Path:
    """The folder a training run works in. A new run starts an empty staging folder, so a
    kill -9 leaves the finished model in `final` as it was; `--resume` continues the staged
    run if there is one, else the run whose state is in `final` itself."""
    final, stage = Path(final), staging_dir(final)
    if resume:
        if (found := resume_dir(final)) is not None:
            return found
        raise ArtgenError(f"nothing to resume: no checkpoint in {stage / STATE_DIR} or {final / STATE_DIR}: "
                          "run again without --resume")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    return stage


def publish_run(work: Path, final: Path) -> None:
    """Swap a finished run's folder into place (nothing to do when it ran in `final` itself)."""
    if Path(work) != Path(final):
        replace_dir(work, final)


# ---------------------------------------------------------------- checkpoint (de)serialisation

def _optimizer_tensors(opt) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"state.{pid}.{k}"] = t.detach().cpu().contiguous()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups}


def _load_optimizer(opt, tensors: dict[str, torch.Tensor], meta: dict, device) -> None:
    state: dict[int, dict] = {}
    for key, t in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = t if name == "step" else t.to(device)
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def _cpu_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_checkpoint(out_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int,
                    task_config: dict, cfg: TrainConfig, ema: nn.Module | None = None, world: int = 1) -> Path:
    """Write `out_dir/train_state/` atomically (temp dir + rename)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / STATE_DIR
    tmp = out_dir / f".{STATE_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_cpu_tensors(model), str(tmp / "model.safetensors"))
    if ema is not None:
        save_file(_cpu_tensors(ema), str(tmp / "ema.safetensors"))
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(tmp / "rng.safetensors"))
    meta = {"step": step, "task": task_config, "train": asdict(cfg), "optimizer": opt_meta,
            "format": "artgen-train-state-1", "world": world}  # world: processes (torchrun), each its own batch
    (tmp / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    replace_dir(tmp, final)
    return final


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, device,
                    ema: nn.Module | None = None, check: Callable[[dict], None] | None = None) -> dict:
    """Restore model, optimiser, RNG (and the weights' moving average) from a checkpoint dir;
    returns its config.json. `check(config)` runs before any state loads (another optimiser's
    state would not even load, so a resume with other options must be refused first)."""
    from safetensors.torch import load_file

    path = Path(path)

    def damaged(e: Exception) -> ArtgenError:
        return DamagedCheckpoint(f"the training checkpoint at {path} is damaged ({type(e).__name__}: {e}): "
                           f"delete {path} and train again without --resume")

    try:
        meta = json.loads((path / "config.json").read_text())
    except Exception as e:
        raise damaged(e) from e
    if check is not None:
        check(meta)
    try:
        weights = load_file(str(path / "model.safetensors"))
        opt_tensors = load_file(str(path / "optimizer.safetensors"))
        rng = load_file(str(path / "rng.safetensors"))
        model.load_state_dict(weights, strict=True)
        _load_optimizer(opt, opt_tensors, meta["optimizer"], device)
        if ema is not None:
            ema.load_state_dict(load_file(str(path / "ema.safetensors"), device=str(device)), strict=True)
    except Exception as e:
        raise damaged(e) from e
    torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    return meta


# ---------------------------------------------------------------- distributed

def _dist_setup(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world, device); initialises the process group when launched by torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    return rank, world, device


def _to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _scalar(v: Any) -> float:
    return float(v.detach().item()) if torch.is_tensor(v) else float(v)


def _fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())


# ---------------------------------------------------------------- the loop

def train(task: Task, cfg: TrainConfig, out_dir: Path, resume: bool = False,
          description: str = "train", on_log: Callable[[dict, int], None] | None = None) -> TrainResult:
    """Train `task.model` for `cfg.steps` optimiser steps, checkpointing into `out_dir`;
    `on_log(row, step)` sees each history row as it is logged (rank 0)."""
    import torch.distributed as dist

    if cfg.steps < 1:
        raise ArtgenError(f"--steps must be at least 1 (got {cfg.steps})")
    if cfg.batch_size < 1:
        raise ArtgenError(f"batch size must be at least 1 (got {cfg.batch_size})")
    out_dir = Path(out_dir)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    rank, world, device = _dist_setup(cfg.device)
    model = task.model.to(device)
    opt = build_optimizer(model, cfg.optimizer, cfg.lr, tuple(cfg.betas), cfg.weight_decay)
    task_config = task.config()
    ema = _moving_average(model, cfg.ema_decay) if cfg.ema_decay > 0 else None

    start = 0
    if resume:
        ckpt = find_checkpoint(out_dir)
        if ckpt is None:
            raise ArtgenError(f"nothing to resume: no checkpoint in {out_dir / STATE_DIR}: run again without --resume")
        meta = load_checkpoint(ckpt, model, opt, device, ema,
                               check=lambda meta: _check_resumable(meta, task_config, cfg, ckpt, world))
        start = int(meta["step"])
    else:
        torch.manual_seed(cfg.seed * 7919 + rank)

    wrapped: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        import torch._dynamo as dynamo

        dynamo.config.suppress_errors = True  # a graph Inductor cannot build runs eagerly
        wrapped = torch.compile(wrapped)

    is_main = rank == 0
    history: list[dict] = []

    def record(row: dict) -> None:
        history.append(row)
        if on_log is not None:
            on_log({k: v for k, v in row.items() if k != "step"}, row["step"])
    metrics: dict = {}
    log_path = out_dir / "train_log.jsonl"
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    running: dict[str, float] = {}
    n_running = 0
    t0 = time.perf_counter()
    model.train()

    progress = make_progress(TextColumn("{task.fields[metrics]}")) if (is_main and cfg.show_progress) else None
    bar = None
    if progress is not None:
        progress.start()
        bar = progress.add_task(description, total=cfg.steps, completed=start, metrics="")
    try:
        for step in range(start, cfg.steps):
            lr = lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = _to_device(task.batch(step, step_generator(cfg.seed, step, rank), cfg.batch_size), device)
            loss, parts = task.loss(wrapped, batch)
            if not torch.isfinite(loss):
                raise ArtgenError(f"training diverged at step {step} (loss {loss.item()}): lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if ema is not None:
                ema.update_parameters(model)

            for k, v in {"loss": loss, **parts}.items():
                running[k] = running.get(k, 0.0) + _scalar(v)
            n_running += 1
            done = step + 1
            if done % max(1, cfg.log_every) == 0 or done == cfg.steps:
                row = {k: v / n_running for k, v in running.items()}
                running, n_running = {}, 0
                if is_main:
                    record({"step": done, "lr": lr, **row, "seconds": round(time.perf_counter() - t0, 2)})
                    with open(log_path, "a") as f:
                        f.write(json.dumps(history[-1]) + "\n")
                    if progress is not None:
                        progress.update(bar, metrics=_fmt(row))
            if progress is not None:
                progress.update(bar, completed=done)

            if is_main and cfg.eval_every and done % cfg.eval_every == 0 and done != cfg.steps:
                metrics = _evaluate(task, model, ema)
                record({"step": done, **metrics})
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != cfg.steps:
                if is_main:
                    save_checkpoint(out_dir, model, opt, done, task_config, cfg, ema, world)
                if world > 1:
                    dist.barrier()
        seconds = time.perf_counter() - t0
        if is_main:
            save_checkpoint(out_dir, model, opt, cfg.steps, task_config, cfg, ema, world)
            metrics = _evaluate(task, model, ema)
            if metrics:
                record({"step": cfg.steps, **metrics})
        if world > 1:
            dist.barrier()
    finally:
        if progress is not None:
            progress.stop()
    steps_run = cfg.steps - start
    return TrainResult(model=model if ema is None else ema.module, step=cfg.steps, metrics=metrics, history=history, seconds=seconds,
                       images_per_s=steps_run * cfg.batch_size * world / seconds if seconds > 0 else 0.0)


def _moving_average(model: nn.Module, decay: float) -> nn.Module:
    """An exponential moving average of `model`'s parameters and buffers (a deep copy that
    `update_parameters(model)` moves towards the model by 1 - `decay` after each step)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    if not 0.0 < decay < 1.0:
        raise ArtgenError(f"ema_decay must be between 0 and 1 (got {decay}): e.g. 0.999, or 0 for no average")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _evaluate(task: Task, model: nn.Module, ema: nn.Module | None = None) -> dict:
    """The task's evaluation of the weights training returns: the moving average when there is
    one (and then the raw weights beside it, as `raw_*`, if the task can score both)."""
    fn = getattr(task, "evaluate", None)
    if fn is None:
        return {}
    scored = model if ema is None else ema.module
    both = ema is not None and "raw_model" in inspect.signature(fn).parameters
    was_training = model.training
    model.eval()
    scored.eval()
    try:
        with torch.no_grad():
            return dict(fn(scored, raw_model=model)) if both else dict(fn(scored))
    finally:
        model.train(was_training)


# Model settings added to a config after runs were saved without them, each off by default (False / 0):
# a saved run that lacks one was trained with it off. Other missing keys are not presumed: the VQ-VAE
# records `mirror` only when it is off, and Hugging Face configs leave out every default.
LATER_SETTINGS = frozenset({"text_modulation", "rope", "input_noise", "above"})


class DamagedCheckpoint(ArtgenError):
    """A checkpoint whose files do not load (torn by a kill, a full disk): raised before any step."""


class ResumeRefused(ArtgenError):
    """A checkpoint that this run cannot continue (another model, other options, past its steps):
    raised before any step, so a caller that resumes on its own may start afresh instead."""


def _same_config(now, saved) -> bool:
    """`now` equals the `saved` config, where one of LATER_SETTINGS that the saved one lacks counts as
    equal while it is off now."""
    if isinstance(now, dict) and isinstance(saved, dict):
        return (all(_same_config(v, saved[k]) if k in saved else (k in LATER_SETTINGS and not v) for k, v in now.items())
                and all(k in now for k in saved))
    return now == saved


def _check_resumable(meta: dict, task_config: dict, cfg: TrainConfig, ckpt: Path, world: int = 1) -> None:
    then = int(meta.get("world", 1))  # checkpoints from before it was recorded: one process
    if then != world:  # batch_size is per process: another count would continue on another effective batch
        raise ResumeRefused(f"the checkpoint at {ckpt} was made by {then} training process(es) and this run has {world}: "
                            "resume it with as many (torchrun --nproc_per_node), or train again without --resume")
    saved_task = meta.get("task")
    if not _same_config(json.loads(json.dumps(task_config)), saved_task):
        raise ResumeRefused(f"the checkpoint at {ckpt} was made with a different model/task config: "
                          f"resume with the same options, or train again without --resume")
    now = json.loads(json.dumps(asdict(cfg)))
    then = {**json.loads(json.dumps(asdict(TrainConfig()))), **meta.get("train", {})}  # older runs: defaults
    changed = sorted(k for k in now if k not in _RESUME_FREE and now[k] != then[k])
    if changed:
        raise ResumeRefused(f"the checkpoint at {ckpt} used different training options ({', '.join(changed)}): "
                          f"resume with the same options, or train again without --resume")
    if int(meta["step"]) > cfg.steps:
        raise ResumeRefused(f"the checkpoint at {ckpt} is already at step {meta['step']} > --steps {cfg.steps}: "
                          f"raise --steps or train again without --resume")
