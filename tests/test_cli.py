import pytest
from helpers import run_cli


def _assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_help_on_every_command():
    for args in ([], ["data"], ["data", "synth"], ["data", "import"], ["data", "show"], ["demo"]):
        result = run_cli(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_version_prints_the_package_version_and_touches_no_workspace(tmp_path):
    from artgen import __version__

    result = run_cli("--workdir", str(tmp_path / "ws"), "--version")
    assert result.returncode == 0 and result.stdout.startswith(f"artgen {__version__} ") and not (tmp_path / "ws").exists()


@pytest.mark.parametrize("args, needles", [
    (["data", "synth", "--count", "abc"], ["--count", "integer"]),
    (["data", "synth", "--count", "1"], ["--count"]),
    (["data", "synth", "--bogus"], ["--bogus"]),
    (["data", "show", "--split", "validation"], ["validation", "--split train"]),
    (["nonsense"], ["nonsense"]),
])
def test_bad_input_is_one_line(tmp_path, args, needles):
    _assert_one_line_error(run_cli(*args, workdir=tmp_path), *needles)


def test_missing_corpus_and_sources(tmp_path):
    _assert_one_line_error(run_cli("data", "show", workdir=tmp_path), "artgen data synth")
    _assert_one_line_error(run_cli("data", "import", str(tmp_path / "nope"), workdir=tmp_path), "does not exist")
    (tmp_path / "empty").mkdir()
    _assert_one_line_error(run_cli("data", "import", str(tmp_path / "empty"), workdir=tmp_path), "no images found")


def test_synth_and_show_through_the_environment_workdir(tmp_path):
    ws = tmp_path / "home"
    result = run_cli("data", "synth", "--count", "40", "--size", "32", env={"ARTGEN_HOME": str(ws)})
    assert result.returncode == 0, result.stderr
    assert (ws / "data" / "dataset_dict.json").exists()
    result = run_cli("data", "show", "--n", "16", env={"ARTGEN_HOME": str(ws)})
    assert result.returncode == 0, result.stderr
    assert (ws / "reports" / "contact_sheet.png").stat().st_size > 1000


def test_generate_with_the_shipped_model_refuses_odd_input_in_one_line(tmp_path):
    """`artgen generate` before any training (the shipped bundle): input no model can read is one line."""
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("chaud, caf\xe9\n".encode("latin-1"))
    out = str(tmp_path / "x.png")
    # a prompt typed in a Latin-1 terminal: the byte reaches Python as a lone surrogate (a sentencepiece traceback before)
    _assert_one_line_error(run_cli("generate", b"warm \xe9", "-n", "1", "-o", out, workdir=tmp_path), "not valid Unicode")
    _assert_one_line_error(run_cli("generate", "--prompts", str(latin), "-o", out, workdir=tmp_path),
                           "not UTF-8 text", "line 1")
    assert not (tmp_path / "x.png").exists()


def test_an_unexpected_error_is_one_line_with_the_traceback_in_a_file(tmp_path, monkeypatch, capsys):
    import errno
    import re
    from pathlib import Path

    import artgen.app.encoder_table
    from artgen.app.cli import main

    def broken(ws):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(artgen.app.encoder_table, "encoder_table", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("ARTGEN_DEBUG", raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    assert main(["--workdir", str(tmp_path / "ws"), "encoders"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error (RuntimeError: a bug over two lines)" in err[0] and "please report it" in err[0]
    crash = Path(re.search(r"the traceback is in (\S+):", err[0]).group(1))
    assert crash.parent == tmp_path and "Traceback" in crash.read_text() and "RuntimeError: a bug" in crash.read_text()

    def full(ws):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/x")

    monkeypatch.setattr(artgen.app.encoder_table, "encoder_table", full)
    assert main(["--workdir", str(tmp_path / "ws"), "encoders"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the disk is full (/data/x)" in err[0]

    def read_only(ws):
        raise OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x")

    monkeypatch.setattr(artgen.app.encoder_table, "encoder_table", read_only)
    assert main(["--workdir", str(tmp_path / "ws"), "encoders"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: Read-only file system (/mnt/ro/x): check that path, its permissions and the disk, then run the command again"]
    monkeypatch.setattr(artgen.app.encoder_table, "encoder_table", broken)
    monkeypatch.setenv("ARTGEN_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["--workdir", str(tmp_path / "ws"), "encoders"])
