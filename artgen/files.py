"""Writes that never leave a half-written file or folder behind: the new content goes to a
temporary name beside the target and is renamed into place, so a crash or Ctrl-C keeps the
previous version (finished checkpoints, corpora, bundles are never lost)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from artgen.errors import ArtgenError


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


def staging_folder(final: Path) -> Path:
    """A new empty folder beside `final` to build its next version in, with the permissions a plain
    `mkdir` gives under the process's umask (`tempfile.mkdtemp` makes it owner-only, so a page or
    bundle renamed into place would be unreadable to a web server running as another user)."""
    import tempfile

    final = Path(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    return tmp


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def is_newer(path: Path, than: Path) -> bool:
    """Both exist and `path` was written no earlier than `than`: an output still up to date
    with the input it was made from."""
    path, than = Path(path), Path(than)
    return path.exists() and than.exists() and path.stat().st_mtime >= than.stat().st_mtime


def replace_model_dir(out: Path, model, metrics: dict) -> None:
    """A trained model (its `save_pretrained`) and its metrics.json written into a folder beside
    `out` and swapped in together: an interrupted run leaves the old model whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(out)
    try:
        model.save_pretrained(tmp)
        atomic_write_json(tmp / "metrics.json", metrics)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished directory `tmp` to `final`, replacing what was there.

    The old directory is renamed aside first, so at every instant one complete version
    exists under `final` or `final.old`; `artgen.training.trainer.find_checkpoint` looks at both,
    other readers only at `final` (after a crash there, rename `final.old` back)."""
    tmp, final = Path(tmp), Path(final)
    old = final.with_name(final.name + ".old")
    had_final = final.exists()  # else `old` may be the only complete version left by a crash: keep it
    if had_final:
        shutil.rmtree(old, ignore_errors=True)
    try:
        if had_final:
            final.rename(old)
        tmp.rename(final)
    except BaseException:  # interrupted or refused between the two renames: put the old version back
        if had_final and old.exists() and not final.exists():
            old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_output_file(path: Path, flag: str = "-o", suffixes: tuple[str, ...] = (".png",)) -> Path:
    """Refuse, before any work is done, an output file that cannot be written: a folder, a
    device, a path under a regular file, an unwritable place, a name without the extension."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ArtgenError(f"{flag} {path} is a folder: give a file name such as {path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise ArtgenError(f"{flag} {path} does not end in {' or '.join(suffixes)}: name the file like out{suffixes[0]}")
    if path.exists() and not path.is_file():
        raise ArtgenError(f"{flag} {path} is not a regular file (a device or a pipe): choose a file path")
    check_writable_folder(path.parent, f"{flag} {path}")
    return path


def check_writable_folder(folder: Path, what: str) -> None:
    """`folder` exists (or can be made) and accepts a new file; else one line naming why."""
    folder = Path(folder)
    for p in [folder, *folder.parents]:
        if p.exists():
            if not p.is_dir():
                raise ArtgenError(f"{what}: {p} is a file, not a folder: choose another path")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".artgen-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ArtgenError(f"{what}: cannot write in {folder} ({e.strerror or e}): choose a writable folder") from None


def write_output(path: Path, data: bytes, flag: str = "-o") -> None:
    """Write a finished output atomically; a full disk or a vanished folder is one line."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise ArtgenError(f"could not write {path} ({e.strerror or e}): free some space or choose another {flag}") from None


def atomic_save_safetensors(state: dict, path: Path, metadata: dict[str, str] | None = None) -> None:
    """A state dict as safetensors (with string `metadata` in its header), written to a
    temporary name and renamed into place (the one writer of model weights: VQ-VAE, its
    adversarial decoder, text-to-codes models)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp),
                  metadata={"format": "pt", **(metadata or {})})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
