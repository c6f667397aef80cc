"""Experiment tracking (`--track mlflow`): the `Tracker` that training and the bench log to,
a no-op unless a tracker is asked for.

    with start_tracking("mlflow", ws, run_name="train vqvae (quick)") as tracker:
        tracker.log_params({"train": {"lr": 2e-3}})     # nested dicts become `train.lr`
        tracker.log_metrics({"loss": 0.52}, step=10)    # numbers only; anything else is left out
        tracker.log_files([ckpt / "metrics.json"], folder="checkpoint")

MLflow is an optional extra (`pip install 'artgen[track]'`) and is imported only when asked for,
so artgen runs without it. Runs go to `MLFLOW_TRACKING_URI` when it is set, else to a local
file store at `<workdir>/mlruns` (`mlflow ui --backend-store-uri <workdir>/mlruns` shows them),
experiment `MLFLOW_EXPERIMENT_NAME` or `artgen`. The MLflow run starts at the first thing
logged, so input that fails its checks leaves no empty run behind (the store itself is opened
first, so a bad `MLFLOW_TRACKING_URI` is named before any work); only rank 0 of a `torchrun`
job logs.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol
from urllib.parse import urlparse

from artgen.errors import ArtgenError
from artgen.progress import console
from artgen.workspace import Workspace

TRACKERS = ("none", "mlflow")
EXPERIMENT = "artgen"
INSTALL_HINT = "pip install 'artgen[track]'"
_MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value


class Tracker(Protocol):
    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...

    def log_files(self, paths: Iterable[Path], folder: str | None = None) -> None: ...


class NoTracker:
    """Logs nothing: what every stage gets without `--track`."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def log_files(self, paths: Iterable[Path], folder: str | None = None) -> None:
        pass


NO_TRACKER = NoTracker()


def check_tracker(name: str | None) -> None:
    """Name a bad `--track` before any work: an unknown tracker, or MLflow not installed."""
    if name is None or name == "none":
        return
    if name not in TRACKERS:
        raise ArtgenError(f"unknown tracker {name!r}: use --track mlflow (or leave --track out)")
    _mlflow_client_class()


def _mlflow_client_class() -> type:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ArtgenError(f"--track mlflow needs MLflow, which is not installed: {INSTALL_HINT}") from None
    return MlflowClient


def tracking_uri(ws: Workspace) -> str:
    """`MLFLOW_TRACKING_URI` when set, else the file store `<workdir>/mlruns`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (ws.root / "mlruns").as_uri()


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.001}} -> {"train.lr": 0.001}."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def checkpoint_files(folder: Path) -> list[Path]:
    """What a run keeps of a checkpoint folder: its JSON (config, metrics, the training log) and
    pictures, not the weights."""
    return sorted(f for pattern in ("*.json", "*.jsonl", "*.png") for f in Path(folder).glob(pattern))


def _key(name: str) -> str:
    """A name MLflow accepts on every platform: letters, digits, `_ - . /` and spaces."""
    return re.sub(r"/+", "/", re.sub(r"[^\w.\- /]", "_", name)).strip("/ ") or "_"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class MlflowTracker:
    """A `Tracker` writing one MLflow run, created at the first thing logged."""

    def __init__(self, uri: str, experiment: str, run_name: str, tags: Mapping[str, str] | None = None):
        self.uri, self.experiment, self.run_name, self.tags = uri, experiment, run_name, dict(tags or {})
        self.client: Any = None
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self._params: set[str] = set()
        self._last: dict[str, tuple[int, float]] = {}  # key -> (step, value) logged last

    def connect(self) -> None:
        """Open the store and the experiment (before any work, so a bad store is named first)."""
        if urlparse(self.uri).scheme in ("", "file"):
            # MLflow 3 refuses its file store unless asked: a local store needs no database (sqlalchemy)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        with self._store_errors():
            self.client = _mlflow_client_class()(tracking_uri=self.uri)
            exp = self.client.get_experiment_by_name(self.experiment)
            self.experiment_id = exp.experiment_id if exp is not None else self.client.create_experiment(self.experiment)

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as e:  # MlflowException, a bad URI, an unreachable server
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise ArtgenError(f"cannot use the MLflow store {self.uri} ({first}): fix MLFLOW_TRACKING_URI or "
                              "unset it to track into <workdir>/mlruns") from None

    def _run(self) -> str:
        if self.run_id is None:
            if self.client is None:
                self.connect()
            with self._store_errors():
                self.run_id = self.client.create_run(self.experiment_id, run_name=self.run_name, tags=self.tags).info.run_id
            console.print(f"tracking to MLflow: run {self.run_id} ({self.run_name}) in {self.uri}")
        return self.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        # a parameter cannot change within a run: the first value logged stays
        fresh = {_key(k): v for k, v in flatten(params).items() if _key(k) not in self._params}
        if fresh:
            run = self._run()
            self.client.log_batch(run, params=[Param(k, str(v)[:_MAX_PARAM_CHARS]) for k, v in fresh.items()])
            self._params.update(fresh)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Numeric values only (strings, lists, bools and non-finite numbers are left out); a
        value already logged at the same step, e.g. a final metric the last evaluation gave, once."""
        from mlflow.entities import Metric

        at = 0 if step is None else int(step)
        rows = {}
        for k, v in flatten(metrics).items():
            value = _number(v)
            if value is not None and self._last.get(_key(k)) != (at, value):
                rows[_key(k)] = value
        if rows:
            run, now = self._run(), int(time.time() * 1000)
            self.client.log_batch(run, metrics=[Metric(k, v, now, at) for k, v in rows.items()])
            self._last.update({k: (at, v) for k, v in rows.items()})

    def log_files(self, paths: Iterable[Path], folder: str | None = None) -> None:
        for path in paths:
            if Path(path).is_file():
                run = self._run()
                self.client.log_artifact(run, str(path), artifact_path=folder)

    def finish(self, status: str) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)


@contextmanager
def start_tracking(name: str | None, ws: Workspace, run_name: str) -> Iterator[Tracker]:
    """The tracker `--track NAME` asks for, for the length of the block; the MLflow run is
    marked FINISHED, FAILED (an exception) or KILLED (Ctrl-C) at its end."""
    check_tracker(name)
    if name is None or name == "none" or os.environ.get("RANK", "0") != "0":
        yield NO_TRACKER
        return
    tracker = MlflowTracker(tracking_uri(ws), os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT, run_name,
                            tags={"artgen.command": " ".join(["artgen", *sys.argv[1:]]), "artgen.workspace": str(ws.root)})
    tracker.connect()
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.finish(status)
