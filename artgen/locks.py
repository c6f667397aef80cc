"""One writer per workspace output: a stage takes an exclusive lock before it writes.

`with stage_lock(ws, "annotations"): ...` holds `<workdir>/.locks/annotations.lock` (an OS
file lock through `filelock`, so a process killed with -9 releases it by dying: no stale lock
survives its holder). A second process asking for the same lock gets one line naming the
holder's pid and command instead of writing beside it (two annotate runs would label every
painting twice and bill it twice). Locks are re-entrant inside one process, so a stage may
call another that takes the same lock (training a predictor builds the latents it needs).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from artgen.errors import ArtgenError
from artgen.workspace import Workspace

LOCK_DIR = ".locks"
_held: dict[Path, int] = {}  # lock file -> nesting depth in this process


def lock_path(ws: Workspace, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return ws.root / LOCK_DIR / f"{safe}.lock"


def path_lock_name(prefix: str, target: Path) -> str:
    """A lock name for an output folder chosen by the user (`export --out`, `bench -o`)."""
    import hashlib

    target = Path(target).expanduser().resolve()
    return f"{prefix}-{target.name}-{hashlib.sha1(str(target).encode()).hexdigest()[:8]}"


def _holder_path(path: Path) -> Path:
    return path.with_suffix(".holder.json")


def holder(ws: Workspace, name: str) -> dict | None:
    """{pid, command} of the process that last took the lock (it may have finished since)."""
    try:
        return json.loads(_holder_path(lock_path(ws, name)).read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def stage_lock(ws: Workspace, name: str, what: str | None = None) -> Iterator[None]:
    """Hold the workspace lock `name` for the body, or fail at once with one line."""
    path = lock_path(ws, name)
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    for parent in [ws.root, *ws.root.parents]:
        if parent.exists() and not parent.is_dir():
            raise ArtgenError(f"{parent} is a file, not a folder: choose another --workdir")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArtgenError(f"cannot write in {ws.root} ({e.strerror}): choose a writable --workdir") from e
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        who = holder(ws, name) or {}
        by = f"pid {who['pid']}: `{who['command']}`" if who.get("pid") else "another process"
        raise ArtgenError(f"{what or name} in {ws.root} is being written by {by}: wait for it to finish "
                          "(or stop it) and run again") from None
    _held[path] = 1
    try:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "python"
        _holder_path(path).write_text(json.dumps({"pid": os.getpid(), "command": command}) + "\n")
        yield
    finally:
        del _held[path]
        lock.release()
