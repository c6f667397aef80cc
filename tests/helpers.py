"""Helpers the tests import (`from helpers import run_cli, ...`); fixtures live in conftest.py."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from artgen.training.predictor import PredictorPreset
from artgen.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]

# The small model of the session's trained workspace (conftest.py `trained_workspace`): a
# 32-wide tiny encoder + masked predictor, 4 steps.
TINY = PredictorPreset(
    predictor=dict(width=32, layers=1, heads=2, mlp_ratio=2),
    encoder=dict(width=32, layers=1, heads=2),
    train=dict(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, checkpoint_every=2, log_every=1),
)


# The small autoregressive model the AR, alignment and best-of-N tests train (4 steps), shaped as
# the default preset (text modulation, 2-D RoPE).
TINY_AR = PredictorPreset(
    predictor=dict(width=32, layers=2, heads=2, mlp_ratio=2, text_modulation=True, rope=True),
    encoder=dict(width=32, layers=1, heads=2),
    train=dict(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, checkpoint_every=2, log_every=1),
)

# A bench small enough for the fast tests (bench.run.BenchConfig fields).
SMALL = dict(threads=1, captions=8, real_images=12, latency_runs=3, latency_warmup=1, unseen=4, pairs=3, kid_subsets=3,
             interpolation_pairs=1, peak_rss=False, show_progress=False)


class PixelFeatures(torch.nn.Module):
    """Stand-in for the FID network in fast tests: mean colour of each cell of a 4x4 grid
    (48-d). The real network runs in the `slow` test and in tests/test_bench_quality.py."""

    num_features = 48
    identity = "test-pixel-grid-4x4"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def features(self, images, description="", show_progress=False):
        self.calls += 1
        x = torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2).float() / 255  # (N, 3, H, W)
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1).numpy()  # (N, 48)


def copy_workspace(ws: Workspace, root: Path) -> Workspace:
    """A copy of a shared workspace at `root`, for a test that writes into it (reports, caches,
    bundles, more models) without changing what the other tests read."""
    shutil.copytree(ws.root, root)
    return Workspace(root)


def run_cli(*args: str, workdir: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run `artgen ...` as a user would, in a subprocess; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    cmd = [sys.executable, "-m", "artgen"]
    if workdir is not None:
        cmd += ["--workdir", str(workdir)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT)


def assert_one_line_error(result, *needles):
    """A CLI run that failed as the README promises: exit 2, one line on stderr naming each needle."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for n in needles:
        assert n in lines[0], lines[0]
