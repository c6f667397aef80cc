"""Writes that never leave a half-written file or folder behind: the new content goes to a
temporary name beside the target and is renamed into place, so a crash or Ctrl-C keeps the
previous version (finished checkpoints, corpora, bundles are never lost)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:  # disk full, Ctrl-C: the old file stays, no temporary is left behind
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def is_newer(path: Path, than: Path) -> bool:
    """Both exist and `path` was written no earlier than `than`: an output still up to date
    with the input it was made from."""
    path, than = Path(path), Path(than)
    return path.exists() and than.exists() and path.stat().st_mtime >= than.stat().st_mtime


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished directory `tmp` to `final`, replacing what was there.

    The old directory is renamed aside first, so at every instant one complete version
    exists under `final` or `final.old`; `artgen.trainer.find_checkpoint` looks at both,
    other readers only at `final` (after a crash there, rename `final.old` back)."""
    tmp, final = Path(tmp), Path(final)
    old = final.with_name(final.name + ".old")
    if final.exists():  # else `old` may be the only complete version left by a crash: keep it
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
