"""Atomic writes: a new version replaces the old one whole, and a failure part-way keeps
the old version on disk."""

from pathlib import Path

import pytest

from artgen.files import atomic_write_json, replace_dir


def make_dir(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "weights.bin").write_text(text)
    return path


def test_replace_dir_swaps_in_the_new_version_and_leaves_nothing_behind(tmp_path):
    final = make_dir(tmp_path / "bundle", "old")
    replace_dir(make_dir(tmp_path / ".bundle-tmp", "new"), final)
    assert (final / "weights.bin").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_swap_puts_the_old_version_back(tmp_path, monkeypatch, failure):
    """Refused or interrupted between moving the old version aside and the new one in: the old
    one is back under its own name, where every reader looks."""
    final = make_dir(tmp_path / "bundle", "old")
    tmp = make_dir(tmp_path / ".bundle-tmp", "new")
    real_rename = Path.rename

    def rename(self, target):
        if self == tmp:
            raise failure
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(type(failure)):
        replace_dir(tmp, final)
    assert (final / "weights.bin").read_text() == "old" and not (tmp_path / "bundle.old").exists()


def test_a_failed_first_write_leaves_no_stale_old_version_in_its_place(tmp_path, monkeypatch):
    """No `bundle` before, a stale `bundle.old` from an earlier crash: a failed swap leaves it as it was."""
    make_dir(tmp_path / "bundle.old", "stale")
    tmp = make_dir(tmp_path / ".bundle-tmp", "new")
    real_rename = Path.rename

    def rename(self, target):
        if self == tmp:
            raise OSError("disk full")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError):
        replace_dir(tmp, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists() and (tmp_path / "bundle.old" / "weights.bin").read_text() == "stale"


def test_atomic_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "m" / "metrics.json"
    atomic_write_json(path, {"ce": 5.0})
    atomic_write_json(path, {"ce": 4.0})
    assert path.read_text() == '{\n  "ce": 4.0\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    import os

    from artgen.files import atomic_write_bytes

    path = tmp_path / "labels.jsonl"
    path.write_bytes(b"old")

    def full_disk(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.jsonl"]


def test_a_bundle_older_than_its_checkpoint_is_stale(tmp_path):
    import os

    from artgen.files import is_newer

    bundle, ckpt = tmp_path / "bundle.json", tmp_path / "model.safetensors"
    bundle.write_text("{}")
    ckpt.write_bytes(b"")
    os.utime(bundle, (1_000, 1_000))
    os.utime(ckpt, (2_000, 2_000))
    assert not is_newer(bundle, ckpt)  # retrained after the export: stale
    os.utime(bundle, (3_000, 3_000))
    assert is_newer(bundle, ckpt)
    assert not is_newer(tmp_path / "missing.json", ckpt)


def test_a_workspace_takes_a_string_or_a_path(tmp_path):
    from artgen.workspace import Workspace

    ws = Workspace(str(tmp_path))
    assert ws == Workspace(tmp_path) and ws.checkpoint("tiny") == tmp_path / "checkpoints" / "tiny"


def test_a_staged_folder_takes_the_umasks_permissions_not_owner_only(tmp_path):
    """A page or bundle renamed into place from it is readable by a web server running as another user."""
    import os

    from artgen.files import staging_folder

    old = os.umask(0o022)
    try:
        folder = staging_folder(tmp_path / "site")
    finally:
        os.umask(old)
    assert folder.parent == tmp_path and folder.stat().st_mode & 0o777 == 0o755
