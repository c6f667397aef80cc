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


def test_to_rgb_shows_the_file_as_a_viewer_does():
    from artgen.data.importer import to_rgb

    # EXIF orientation 6 (rotate 90 degrees clockwise to view): a phone photo stored sideways
    raw = np.zeros((40, 80, 3), np.uint8)
    raw[:, :40] = 255  # the stored left half is white, so the upright image is white on top
    img = Image.fromarray(raw)
    exif = img.getexif()
    exif[0x0112] = 6
    buf = __import__("io").BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=95)
    upright = np.asarray(to_rgb(Image.open(buf)))
    assert upright.shape == (80, 40, 3)
    assert upright[:30].mean() > 200 and upright[50:].mean() < 50

    # transparent pixels lie on white, whatever colour is stored under them
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6] = (255, 0, 0, 255)  # an opaque red square on transparent black
    out = np.asarray(to_rgb(Image.fromarray(rgba, "RGBA")))
    assert out[0, 0].tolist() == [255, 255, 255] and out[3, 3].tolist() == [255, 0, 0]
    la = Image.fromarray(np.stack([np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)], -1), "LA")
    assert np.asarray(to_rgb(la)).min() == 255

    # 16-bit grey is scaled to 8 bits, not clipped to white
    mid = Image.fromarray(np.full((4, 4), 32768, np.uint16))
    assert mid.mode.startswith("I;16")
    assert abs(int(np.asarray(to_rgb(mid))[0, 0, 0]) - 128) <= 1
    assert np.asarray(to_rgb(Image.fromarray(np.full((4, 4), 100, np.int32), "I")))[0, 0, 0] == 100


def test_folder_import_logs_what_it_leaves_out(tmp_path):
    import os

    src, linked = tmp_path / "paintings", tmp_path / "elsewhere"
    src.mkdir()
    linked.mkdir()
    for i in range(20):
        _painting(src / f"p{i}.png", i)
    for i in range(20, 26):
        _painting(linked / f"q{i}.png", i)
    _painting(src / "scan.tif", 40, fmt="TIFF")
    _painting(src / "anim.gif", 41, fmt="GIF")
    (src / "link").symlink_to(linked, target_is_directory=True)  # a linked folder is followed
    (linked / "loop").symlink_to(src, target_is_directory=True)  # and a loop is not walked twice
    (src / "notes.txt").write_text("not an image")
    bad_name = os.fsdecode(b"bad\xff.png")  # a file name that is not UTF-8 (old drives, zip extracts)
    (src / bad_name).write_bytes(b"")

    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert report.train + report.test == 28  # 20 + 6 linked + tif + gif
    log = (tmp_path / "import.log").read_text(encoding="utf-8")
    assert "not an image file\tnotes.txt" in log
    assert "bad\\udcff.png" in log or "bad\\xff.png" in log


def test_an_unreadable_file_is_skipped_not_fatal(tmp_path, monkeypatch):
    from pathlib import Path

    src = tmp_path / "paintings"
    src.mkdir()
    for i in range(20):
        _painting(src / f"p{i}.png", i)
    read = Path.read_bytes

    def locked(self):
        if self.name == "p3.png":
            raise PermissionError(13, "Permission denied")
        return read(self)

    monkeypatch.setattr(Path, "read_bytes", locked)
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert report.train + report.test == 19
    assert report.skipped == [("p3.png", "cannot read the file (PermissionError: Permission denied)")]


def test_a_handful_of_paintings_gets_both_splits(tmp_path):
    """Five paintings can all hash to the train split: the one nearest the split line goes to
    test instead of the import being refused (two paintings were accepted, five refused)."""
    import hashlib
    import io

    from artgen.data.importer import is_test

    src = tmp_path / "paintings"
    src.mkdir()
    kept, seed = 0, 0
    while kept < 5:  # five paintings whose content hashes all fall in the train split
        buf = io.BytesIO()
        rng = np.random.default_rng(seed)
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(buf, format="PNG")
        seed += 1
        if not is_test(hashlib.sha256(buf.getvalue()).hexdigest()):
            (src / f"p{kept}.png").write_bytes(buf.getvalue())
            kept += 1
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert (report.train, report.test) == (4, 1)
    dd = load_corpus(tmp_path / "data")
    assert len(dd["test"]) == 1 and dd["test"]["id"][0] == min([*dd["test"]["id"], *dd["train"]["id"]])
    assert "4 train, 1 test" in (tmp_path / "import.log").read_text()

    for p in sorted(src.iterdir())[1:]:
        p.unlink()
    with pytest.raises(ArtgenError, match="only 1 usable images"):
        import_paintings(str(src), tmp_path / "data1", tmp_path / "import1.log", size=16, show_progress=False)
