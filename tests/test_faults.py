"""Bad inputs and damaged artefacts end in one line naming the fix, and never lose finished
work (issue 16; more cases live beside the code they guard)."""

from conftest import assert_one_line_error as _one_line_error, run_cli


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
