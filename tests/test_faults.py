"""Bad inputs and damaged artefacts end in one line naming the fix, and never lose finished
work (issue 16; more cases live beside the code they guard)."""

from helpers import assert_one_line_error as _one_line_error
from helpers import run_cli


def test_data_synth_does_not_replace_a_corpus_without_force(tmp_path):
    ws = tmp_path / "ws"
    assert run_cli("data", "synth", "--count", "6", "--size", "16", "--workers", "1", workdir=ws).returncode == 0
    (ws / "checkpoints" / "vqvae").mkdir(parents=True)
    (ws / "checkpoints" / "vqvae" / "config.json").write_text("{}")
    before = sorted(p.name for p in (ws / "data").rglob("*"))
    r = run_cli("data", "synth", "--count", "4", "--size", "16", "--workers", "1", workdir=ws)
    _one_line_error(r, "already holds a corpus", "vqvae", "--force")
    assert sorted(p.name for p in (ws / "data").rglob("*")) == before
    r = run_cli("data", "import", str(tmp_path / "nowhere"), workdir=ws)
    _one_line_error(r, "already holds a corpus", "--force")
    assert "annotations" not in r.stderr
    (ws / "annotations").mkdir()
    (ws / "annotations" / "heuristic.jsonl").write_text("")
    r = run_cli("data", "import", str(tmp_path / "nowhere"), workdir=ws)
    _one_line_error(r, "already holds a corpus", "annotations are kept for the paintings it still holds")
    r = run_cli("data", "synth", "--count", "4", "--size", "16", "--workers", "1", "--force", workdir=ws)
    assert r.returncode == 0, r.stderr


def test_a_workdir_that_is_a_file_is_named(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    _one_line_error(run_cli("data", "synth", "--count", "4", "--size", "16", workdir=f), "is a file")
    assert f.read_text() == "mine"


def test_annotate_prices_must_be_finite(tmp_path):
    for value in ("nan", "inf", "-1"):
        r = run_cli("annotate", "--backend", "openai", "--price-in", value, workdir=tmp_path)
        _one_line_error(r, "--price-in")


# ---------------------------------------------------------------- one writer per stage

def test_a_held_stage_lock_refuses_a_second_writer_with_the_holders_pid(small_corpus, tmp_path):
    import os

    from artgen.locks import stage_lock
    from artgen.workspace import Workspace

    (tmp_path / "data").symlink_to(small_corpus / "data")
    ws = Workspace(tmp_path)
    with stage_lock(ws, "annotations-heuristic"):
        with stage_lock(ws, "annotations-heuristic"):  # re-entrant inside one process
            pass
        r = run_cli("annotate", "--backend", "heuristic", "--workers", "1", workdir=tmp_path)
        _one_line_error(r, f"pid {os.getpid()}", "heuristic.jsonl", "wait for it")
        assert not (tmp_path / "annotations" / "heuristic.jsonl").exists()
        r = run_cli("data", "synth", "--count", "4", "--size", "16", "--force", workdir=tmp_path)
        assert r.returncode == 0 or "being written" not in r.stderr  # another stage's lock is free
    assert run_cli("annotate", "--backend", "heuristic", "--workers", "1", workdir=tmp_path).returncode == 0


def test_the_lock_of_a_killed_process_is_free_again(tmp_path):
    import subprocess
    import sys

    from artgen.locks import holder, stage_lock
    from artgen.workspace import Workspace

    code = ("import os; from artgen.locks import stage_lock; from artgen.workspace import Workspace\n"
            f"with stage_lock(Workspace.resolve({str(tmp_path)!r}), 'latents'):\n    os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    import os

    ws = Workspace(tmp_path)
    dead = holder(ws, "latents")["pid"]
    assert dead != os.getpid()
    with stage_lock(ws, "latents"):  # no stale lock survives its holder
        assert holder(ws, "latents")["pid"] == os.getpid()


# ---------------------------------------------------------------- annotations: coverage, duplicates, types

def _labels_ws(small_corpus, tmp_path):
    import json

    from artgen.workspace import Workspace

    (tmp_path / "data").symlink_to(small_corpus / "data")
    ws = Workspace(tmp_path)
    ws.annotations.mkdir()
    return ws, json


def test_auto_labels_pick_the_most_complete_file_and_refuse_a_thin_one(small_corpus, tmp_path, capsys):
    import pytest

    from artgen.data.captions import load_labels
    from artgen.data.corpus import load_corpus
    from artgen.errors import ArtgenError

    ws, json = _labels_ws(small_corpus, tmp_path)
    dd = load_corpus(ws.data)
    ids = [i for s in dd for i in dd[s]["id"]]
    line = lambda i: json.dumps({"id": i, "adjectives": ["warm", "vivid", "dense"]}) + "\n"  # noqa: E731
    (ws.annotations / "openai.jsonl").write_text("".join(line(i) for i in ids[:3]))
    with pytest.raises(ArtgenError, match=f"only 3 of {len(ids)} paintings"):
        load_labels(ws)
    (ws.annotations / "heuristic.jsonl").write_text("".join(line(i) for i in ids))
    labels, source = load_labels(ws)
    assert source == "heuristic" and len(labels) == len(ids)
    assert f"{len(ids)} of {len(ids)} paintings (100.0%)" in capsys.readouterr().err
    (ws.annotations / "openai.jsonl").write_text("".join(line(i) for i in ids))
    assert load_labels(ws)[1] == "openai"  # a tie goes to the LLM labels
    labels, source = load_labels(ws, "openai")  # asked for by name: used, with its coverage shown
    assert source == "openai"


def test_duplicate_ids_keep_the_first_and_bad_adjectives_are_skipped(small_corpus, tmp_path, capsys):
    from artgen.data.captions import read_labels

    ws, json = _labels_ws(small_corpus, tmp_path)
    rows = [{"id": "a", "adjectives": ["warm", "vivid", "dense"]}, {"id": "a", "adjectives": ["cool", "calm", "dark"]},
            {"id": "b", "adjectives": 5}, {"id": "c", "adjectives": ["cool", 7]}, {"id": "d", "adjectives": ["dark"]}]
    path = ws.annotations / "openai.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_labels(path) == {"a": ["warm", "vivid", "dense"], "d": ["dark"]}
    out = capsys.readouterr().err
    assert "1 paintings more than once" in out and "skipped 2 records" in out


# ---------------------------------------------------------------- output paths, checked before the work

def test_unwritable_output_paths_are_named_before_any_work(tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("mine")
    cases = [(tmp_path, "is a folder"), (a_file / "x.png", "is a file, not a folder"),
             (tmp_path / "grid", "does not end in .png"), ("/proc/artgen-test.png", "cannot write in /proc"),
             ("/dev/full", "does not end in .png")]
    for out, needle in cases:
        r = run_cli("generate", "warm, vivid", "-n", "1", "-o", str(out), workdir=tmp_path / "ws")
        _one_line_error(r, needle)
        r = run_cli("data", "show", "-o", str(out), workdir=tmp_path / "ws")
        _one_line_error(r, needle)
    assert a_file.read_text() == "mine"
    r = run_cli("export", "--out", str(a_file / "bundle"), workdir=tmp_path / "ws")
    _one_line_error(r, "is a file, not a folder")


def test_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    import pytest

    from artgen.errors import ArtgenError
    from artgen.files import check_output_file, write_output

    full = tmp_path / "full.png"
    full.symlink_to("/dev/full")
    with pytest.raises(ArtgenError, match="not a regular file"):
        check_output_file(full)
    out = tmp_path / "grid.png"
    out.write_bytes(b"previous")

    def no_space(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(ArtgenError, match="could not write .*No space left on device"):
        write_output(out, b"new")
    monkeypatch.undo()
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["full.png", "grid.png"]


# ---------------------------------------------------------------- data import

def test_an_oversized_image_is_skipped_like_any_unreadable_file(small_corpus, tmp_path):
    import shutil

    from PIL import Image

    from artgen.data.corpus import decode_image, load_corpus

    folder = tmp_path / "paintings"
    folder.mkdir()
    dd = load_corpus(small_corpus / "data")
    for k, cell in enumerate(dd["train"]["image"][:40]):
        Image.fromarray(decode_image(cell)).save(folder / f"p{k}.png")
    # a 20000 x 20000 PNG (400 M pixels, past PIL's safety limit) that is tiny on disk
    big = Image.new("1", (20000, 20000))
    big.save(folder / "huge.png", optimize=True)
    r = run_cli("data", "import", str(folder), "--size", "16", workdir=tmp_path / "ws")
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "ws" / "logs" / "import.log").read_text()
    assert "huge.png\ttoo large to decode safely" in log
    shutil.rmtree(folder)


def test_a_hub_id_with_the_offline_variable_set_never_goes_online(tmp_path):
    r = run_cli("data", "import", "someone/paintings", workdir=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    _one_line_error(r, "HF_HUB_OFFLINE=1", "local folder")


# ---------------------------------------------------------------- a new training run over a finished model

def test_kill_9_of_a_new_training_run_leaves_the_finished_model_usable(small_corpus, tmp_path):
    import hashlib
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from helpers import ROOT

    from artgen.generate import load_generator
    from artgen.training.predictor import PredictorPreset, train_predictor
    from artgen.training.vqvae import train_vqvae
    from artgen.workspace import Workspace

    shutil.copytree(small_corpus / "data", tmp_path / "data")
    ws = Workspace(tmp_path)
    train_vqvae(ws, preset="quick", steps=2, batch_size=8, device="cpu", show_progress=False)
    tiny = PredictorPreset(predictor=dict(width=32, layers=1, heads=2, mlp_ratio=2), encoder=dict(width=32, layers=1, heads=2),
                           train=dict(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, checkpoint_every=2, log_every=1))
    train_predictor(ws, "tiny", preset=tiny, annotations="gt", device="cpu", show_progress=False)
    finished = ws.checkpoint("tiny")

    def digest() -> dict:
        return {p.relative_to(finished).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(finished.rglob("*")) if p.is_file()}

    before = digest()
    # a new run of another size (the quick preset: a wider encoder, its own tokenizer), killed mid-training
    proc = subprocess.Popen([sys.executable, "-m", "artgen", "--workdir", str(tmp_path), "train", "--encoder", "tiny",
                             "--annotations", "gt", "--steps", "5000"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = tmp_path / "checkpoints" / ".tiny.partial" / "train_log.jsonl"
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None and not (log.exists() and log.stat().st_size > 0):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert log.exists(), "the new run never started training"
    assert digest() == before  # not one byte of the finished model changed
    gen = load_generator(ws, "tiny")
    assert gen.generate(["warm, vivid"], seed=0).shape[0] == 1
    r = run_cli("train", "--encoder", "tiny", "--resume", "--steps", "1", workdir=tmp_path)
    assert "Traceback" not in r.stderr  # the staged run is what --resume continues (or names why not)


def test_release_and_demo_settings_are_checked_before_any_stage_runs(tmp_path):
    for args, needle in ((("--annotations", "bogus"), "unknown label source 'bogus'"),
                         (("--generator", "x"), "unknown generator 'x'"), (("--preset", "huge"), "unknown preset 'huge'"),
                         (("--generator", "masked", "--model-preset", "long"), "unknown preset 'long': use --model-preset"),
                         (("--generator", "ar", "--preset", "long"), "use --preset default --model-preset long")):
        r = run_cli("release-model", "--quick-bench", *args, workdir=tmp_path)
        _one_line_error(r, needle)
    assert not (tmp_path / "data").exists()  # nothing was drawn or trained


def test_probe_findings_are_refused_up_front(tmp_path):
    """Cases scripts/probe_inputs.py found: each refused before any work, in one line."""
    from artgen.app.serve import ServeConfig
    from artgen.errors import ArtgenError

    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    _one_line_error(run_cli("generate", "warm", "-n", "1", "-o", str(tmp_path / "x.png"), workdir=a_file), "is a file")
    _one_line_error(run_cli("web", workdir=a_file), "is a file")
    _one_line_error(run_cli("bench", "--quick", "-o", str(a_file), workdir=tmp_path / "ws"), "is a file, not a folder")
    _one_line_error(run_cli("train", "--encoder", "tiny", "--device", "bogus", workdir=tmp_path / "ws"), "unknown device")
    for kw in (dict(batch_window_ms=float("inf")), dict(timeout_s=float("nan"))):
        try:
            ServeConfig(**kw)
            raise AssertionError(f"{kw} accepted")
        except ArtgenError as e:
            assert "--batch-window-ms" in str(e)
    assert a_file.read_text() == "mine" and not (tmp_path / "ws").exists()
