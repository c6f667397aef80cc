import shutil

import numpy as np
import pytest
from PIL import Image

from artgen.data.corpus import decode_image, load_corpus
from artgen.data.importer import import_paintings
from artgen.errors import ArtgenError


def _painting(path, seed, size=(90, 60), fmt=None):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt)


def test_folder_import_skips_bad_files_and_duplicates(tmp_path):
    src = tmp_path / "paintings"
    (src / "nested" / "deeper").mkdir(parents=True)
    for i in range(30):
        ext = [".png", ".jpg", ".webp", ".bmp"][i % 4]
        _painting(src / ("nested" if i % 2 else ".") / f"p{i}{ext}", i)
    shutil.copy(src / "p0.png", src / "nested" / "deeper" / "copy_of_p0.png")  # exact duplicate
    (src / "empty.png").write_bytes(b"")  # zero-byte
    (src / "corrupt.jpg").write_bytes(b"this is not a jpeg at all")
    good = (src / "p4.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    (src / "notes.txt").write_text("not an image")

    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=32, show_progress=False)
    assert report.train + report.test == 30
    assert report.duplicates == 1
    assert sorted(name for name, _ in report.skipped) == ["corrupt.jpg", "empty.png", "truncated.png"]
    log = (tmp_path / "import.log").read_text()
    assert "empty.png" in log and "corrupt.jpg" in log and "truncated.png" in log

    dd = load_corpus(tmp_path / "data")
    assert len(dd["train"]) == report.train and len(dd["test"]) == report.test
    row = dd["train"][0]
    assert decode_image(row["image"]).shape == (32, 32, 3)
    assert row["gt_adjectives"] == [] and row["style"] == "imported"

    # the split follows content, not file names or order
    again = tmp_path / "renamed"
    shutil.copytree(src, again)
    for p in sorted(again.rglob("p*.*")):
        p.rename(p.with_name("z_" + p.name))
    import_paintings(str(again), tmp_path / "data2", tmp_path / "import2.log", size=32, show_progress=False)
    dd2 = load_corpus(tmp_path / "data2")
    assert sorted(dd2["test"]["id"]) == sorted(dd["test"]["id"])


def test_import_a_saved_dataset(tmp_path, small_corpus):
    report = import_paintings(str(small_corpus / "data"), tmp_path / "data", tmp_path / "log", size=16, show_progress=False)
    assert report.train + report.test + report.duplicates == 120


def test_empty_or_missing_source(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtgenError, match="no images found"):
        import_paintings(str(tmp_path / "empty"), tmp_path / "d", tmp_path / "log")
    with pytest.raises(ArtgenError, match="does not exist"):
        import_paintings(str(tmp_path / "missing"), tmp_path / "d", tmp_path / "log")
