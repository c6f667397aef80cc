"""Helpers the tests import (`from helpers import run_cli, ...`); fixtures live in conftest.py."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
