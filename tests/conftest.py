import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, workdir: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run `artgen ...` as a user would, in a subprocess; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    cmd = [sys.executable, "-m", "artgen.cli"]
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


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A 120-painting synthetic corpus at 32 px, built once per test session."""
    from artgen.corpus import SynthConfig, synthesize

    ws = tmp_path_factory.mktemp("ws")
    synthesize(ws / "data", SynthConfig(count=120, size=32, seed=7, workers=1), show_progress=False)
    return ws


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on the shared 2-core test machine, two threads ran
    tiny models ~8x slower. Opt in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
