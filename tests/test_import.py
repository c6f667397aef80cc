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


def _png_cells(n, seed, side):
    """`n` random side x side PNGs as a dataset's Image cells ({"bytes", "path"}), image i from seed + i."""
    import io

    cells = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(seed + i).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, format="PNG")
        cells.append({"bytes": buf.getvalue(), "path": None})
    return cells


def _style_folders(src, styles, per_style):
    """src/<style>/p<i>.png, `per_style` distinct 24 x 16 paintings in each style's folder."""
    for k, style in enumerate(styles):
        (src / style).mkdir(parents=True)
        for i in range(per_style):
            _painting(src / style / f"p{i}.png", 10 * k + i, size=(24, 16))


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


# ---------------------------------------------------------------- labels: the Hugging Face imagefolder conventions

def _styles_by_source(data_dir):
    """{source file name: (style, gt_adjectives)} of every imported painting."""
    import json

    dd = load_corpus(data_dir)
    return {json.loads(r["params"])["source"]: (r["style"], r["gt_adjectives"]) for split in dd for r in dd[split]}


def test_sub_folder_names_are_styles(tmp_path):
    from bench.style import corpus_styles

    src = tmp_path / "paintings"
    _style_folders(src, ["cubism", "fauvism", "minimal"], 6)
    shutil.copy(src / "cubism" / "p0.png", src / "minimal" / "z_copy_of_cubism_p0.png")  # a duplicate keeps the first one's style

    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    assert len(labels) == 18 and report.duplicates == 1 and report.styles == 3
    assert all(style == name.split("/")[0] for name, (style, _) in labels.items())
    assert corpus_styles(load_corpus(tmp_path / "data")["train"])[0] is not None  # the bench can measure style consistency
    log = (tmp_path / "import.log").read_text().splitlines()
    assert log[1] == "# styles from sub-folder names: 3 styles; no adjectives (label them with `artgen annotate`)"
    assert report.labels == log[1][2:]

    # one painting directly in the root beside the style folders: no folder is a style, and the log says why
    _painting(src / "loose.png", 99, size=(24, 16))
    report = import_paintings(str(src), tmp_path / "data2", tmp_path / "import2.log", size=16, show_progress=False)
    assert {style for style, _ in _styles_by_source(tmp_path / "data2").values()} == {"imported"}
    assert report.labels.startswith("no style labels (1 image in the folder itself, beside sub-folders: put every image in a style")
    assert "style consistency will not be measured" in (tmp_path / "import2.log").read_text().splitlines()[1]

    # a single sub-folder name is no style either
    (src / "loose.png").unlink()
    for style in ("fauvism", "minimal"):
        shutil.rmtree(src / style)
    report = import_paintings(str(src), tmp_path / "data3", tmp_path / "import3.log", size=16, show_progress=False)
    assert report.styles == 1 and "no style labels" in report.labels


def test_a_metadata_csv_sets_styles_and_adjectives(tmp_path):
    src = tmp_path / "paintings"
    _style_folders(src, ["a", "b"], 5)
    (src / "metadata.csv").write_text(
        "file_name,style,adjectives\n"
        'a/p0.png,cubism,"Warm, bold ,sparkly"\n'  # sparkly is not a vocabulary word: dropped, counted
        "a/p1.png,cubism,cool;hazy\n"
        "a/p2.png,,dark\n"  # no style in its row: the folder name
        "b/p0.png,fauvism,sparkly;vivid\n"
        "b/missing.png,fauvism,warm\n",  # a row naming no image: listed, not fatal
        encoding="utf-8",
    )
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    assert len(labels) == 10
    assert labels["a/p0.png"] == ("cubism", ["warm", "bold"])
    assert labels["a/p1.png"] == ("cubism", ["cool", "hazy"])
    assert labels["a/p2.png"] == ("a", ["dark"])
    assert labels["b/p0.png"] == ("fauvism", ["vivid"])
    assert labels["b/p4.png"] == ("b", [])  # no row: the folder name, no adjectives
    assert report.dropped_words == {"sparkly": 2}
    log = (tmp_path / "import.log").read_text()
    assert log.splitlines()[1] == ("# styles from metadata.csv, else sub-folder names: 4 styles; adjectives from metadata.csv: "
                                   "4 paintings labelled, 1 word outside the vocabulary dropped (listed in the log)")
    assert "# metadata.csv: 6 images without a row, 1 row naming no image" in log
    assert "adjective not in the vocabulary, dropped\tsparkly\t2 paintings" in log
    assert "metadata row without an image\tb/missing.png" in log
    assert "not an image file" not in log  # the metadata file is not a stray file


def test_a_metadata_jsonl_in_a_flat_folder(tmp_path):
    import json

    src = tmp_path / "paintings"
    src.mkdir()
    rows = []
    for i in range(8):
        _painting(src / f"p{i}.png", 200 + i, size=(24, 16))
        rows.append({"file_name": f"p{i}.png", "style": ["dots", "stripes"][i % 2],
                     "adjectives": ["Warm", "minimal"] if i % 2 else "dense; cool"})
    (src / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    assert labels["p0.png"] == ("dots", ["dense", "cool"]) and labels["p1.png"] == ("stripes", ["warm", "minimal"])
    assert report.labels == "styles from metadata.jsonl: 2 styles; adjectives from metadata.jsonl: 8 paintings labelled"


def test_metadata_files_in_style_folders_are_read_below_their_folder(tmp_path):
    src = tmp_path / "paintings"
    _style_folders(src, ["a", "b"], 3)
    (src / "a" / "metadata.jsonl").write_text('{"file_name": "p0.png", "adjectives": ["warm"]}\n'  # relative to a/
                                              '{"file_name": "p1.png", "style": "cubism"}\n')
    (src / "b" / "metadata.csv").write_text("file_name,adjectives\np2.png,cool\n")
    (src / "metadata.csv").write_text("file_name,style,adjectives\na/p1.png,fauvism,\nb/p2.png,,warm\n")  # the root's row wins
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    assert labels["a/p0.png"] == ("a", ["warm"]) and labels["a/p1.png"] == ("fauvism", [])
    assert labels["b/p2.png"] == ("b", ["warm"]) and labels["b/p0.png"] == ("b", [])
    (src / "b" / "metadata.csv").write_text("file_name,style,adjectives\np2.png,fauvism,cool\n")  # what the root row lacks
    import_paintings(str(src), tmp_path / "data2", tmp_path / "import2.log", size=16, show_progress=False)
    assert _styles_by_source(tmp_path / "data2")["b/p2.png"] == ("fauvism", ["warm"])
    assert report.labels.startswith("styles from metadata.csv, a/metadata.jsonl, else sub-folder names")
    log = (tmp_path / "import.log").read_text()
    assert "metadata row without an image" not in log and "not an image file" not in log


@pytest.mark.parametrize("file_name, text, needles", [
    ("metadata.csv", "name,style\np0.png,dots\n", ["metadata.csv", "no `file_name` column", "file_name,style,adjectives"]),
    ("metadata.csv", "file_name,style,adjectives\np0.png,dots,warm,bold\n", ["metadata.csv line 2", "quote"]),
    ("metadata.csv", b"\xff\xfe\x00binary", ["metadata.csv", "not UTF-8"]),
    ("metadata.jsonl", '{"file_name": "p0.png"}\n{"file_name": "p1.png",\n', ["metadata.jsonl line 2", "one per line"]),
    ("metadata.jsonl", '{"style": "dots"}\n', ["metadata.jsonl line 1", "file_name"]),
    ("metadata.csv", "style,adjectives,file_name\ndots\n", ["metadata.csv line 2 has no file name"]),  # a short row
])
def test_a_malformed_metadata_file_is_one_error_before_any_image_is_read(tmp_path, monkeypatch, file_name, text, needles):
    from pathlib import Path

    src = tmp_path / "paintings"
    src.mkdir()
    for i in range(4):
        _painting(src / f"p{i}.png", i, size=(24, 16))
    (src / file_name).write_bytes(text if isinstance(text, bytes) else text.encode())
    read = Path.read_bytes

    def no_image_yet(self):
        assert self.suffix != ".png", "an image was read before the metadata was checked"
        return read(self)

    monkeypatch.setattr(Path, "read_bytes", no_image_yet)
    with pytest.raises(ArtgenError) as e:
        import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert "\n" not in str(e.value)
    for needle in needles:
        assert needle in str(e.value)
    assert not (tmp_path / "import.log").exists()


def test_a_saved_dataset_keeps_its_labels(tmp_path, small_corpus):

    import datasets

    original = load_corpus(small_corpus / "data")
    import_paintings(str(small_corpus / "data"), tmp_path / "data", tmp_path / "log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    for name, (style, adjectives) in labels.items():
        split, i = name[:-1].split("[")
        row = original[split][int(i)]
        assert (style, adjectives) == (row["style"], row["gt_adjectives"])
    assert len({style for style, _ in labels.values()}) > 1
    assert "styles from the dataset's `style` column" in (tmp_path / "log").read_text().splitlines()[1]

    # what load_dataset("imagefolder") builds: a ClassLabel `label` from folder names; adjectives as a string
    images = _png_cells(8, 300, 16)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cubism", "fauvism"]),
                                  "adjectives": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"image": images, "label": [i % 2 for i in range(8)],
                                     "adjectives": ["Warm, shiny" if i % 2 else "" for i in range(8)]}, features=features)
    ds.save_to_disk(str(tmp_path / "folder_dataset"))
    report = import_paintings(str(tmp_path / "folder_dataset"), tmp_path / "data2", tmp_path / "log2", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data2")
    assert labels["data[0]"] == ("cubism", []) and labels["data[1]"] == ("fauvism", ["warm"])
    assert report.dropped_words == {"shiny": 4}
    assert report.labels == ("styles from the dataset's `label` column: 2 styles; adjectives from the dataset's `adjectives` "
                             "column: 4 paintings labelled, 1 word outside the vocabulary dropped (listed in the log)")


def test_style_column_names_where_styles_come_from(tmp_path):

    import datasets
    from helpers import assert_one_line_error, run_cli

    images = _png_cells(6, 500, 16)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["monet", "klee"]),  # artists
                                  "movement": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"image": images, "label": [i % 2 for i in range(6)],
                                     "movement": ["impressionism" if i % 2 == 0 else "bauhaus" for i in range(6)]}, features=features)
    ds.save_to_disk(str(tmp_path / "ds"))
    report = import_paintings(str(tmp_path / "ds"), tmp_path / "d1", tmp_path / "l1", size=16, show_progress=False,
                              style_column="movement")
    assert {s for s, _ in _styles_by_source(tmp_path / "d1").values()} == {"impressionism", "bauhaus"}
    assert report.labels.startswith("styles from the dataset's `movement` column: 2 styles")
    import_paintings(str(tmp_path / "ds"), tmp_path / "d2", tmp_path / "l2", size=16, show_progress=False, style_column="none")
    assert {s for s, _ in _styles_by_source(tmp_path / "d2").values()} == {"imported"}  # the artist is not taken as the style
    with pytest.raises(ArtgenError, match="--style-column genre: the dataset has no such column .*image, label, movement"):
        import_paintings(str(tmp_path / "ds"), tmp_path / "d3", tmp_path / "l3", size=16, show_progress=False, style_column="genre")

    src = tmp_path / "paintings"  # a folder: the column of its metadata file; `none` ignores the folder names too
    _style_folders(src, ["a", "b"], 3)
    (src / "metadata.csv").write_text("file_name,genre\na/p0.png,landscape\nb/p0.png,portrait\n")
    import_paintings(str(src), tmp_path / "d4", tmp_path / "l4", size=16, show_progress=False, style_column="genre")
    labels = _styles_by_source(tmp_path / "d4")
    # a column named: the sub-folder names (artists, say) are not styles either
    assert labels["a/p0.png"][0] == "landscape" and labels["b/p0.png"][0] == "portrait" and labels["a/p1.png"][0] == "imported"
    import_paintings(str(src), tmp_path / "d5", tmp_path / "l5", size=16, show_progress=False, style_column="none")
    assert {s for s, _ in _styles_by_source(tmp_path / "d5").values()} == {"imported"}
    r = run_cli("data", "import", str(src), "--size", "16", "--style-column", "mood", workdir=tmp_path / "w")
    assert_one_line_error(r, "--style-column mood: no such column (metadata.csv)")
    assert not (tmp_path / "w" / "data").exists()
    assert run_cli("data", "import", str(src), "--size", "16", "--style-column", "None", workdir=tmp_path / "w").returncode == 0
    assert {s for s, _ in _styles_by_source(tmp_path / "w" / "data").values()} == {"imported"}

    both = datasets.DatasetDict({"train": ds, "test": ds.remove_columns("movement")})  # one split lacks the column
    both.save_to_disk(str(tmp_path / "dd"))
    import_paintings(str(tmp_path / "dd"), tmp_path / "d6", tmp_path / "l6", size=16, show_progress=False, style_column="movement")
    assert "split test without the `movement` column: no style labels there" in (tmp_path / "l6").read_text()


def test_the_import_command_says_where_the_labels_came_from(tmp_path):
    from helpers import run_cli

    src = tmp_path / "paintings"
    _style_folders(src, ["dots", "stripes"], 3)
    r = run_cli("data", "import", str(src), "--size", "16", workdir=tmp_path / "ws")
    assert r.returncode == 0, r.stderr
    assert "styles from sub-folder names: 2 styles; no adjectives" in " ".join(r.stderr.split())


# ---------------------------------------------------------------- review fixes: hidden files, split layout, odd label cells

def _tiny(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    _painting(path, seed, size=(8, 8))


def test_hidden_files_and_folders_are_skipped(tmp_path):
    src = tmp_path / "paintings"
    for k, style in enumerate(["cubism", "fauvism"]):
        for i in range(3):
            _tiny(src / style / f"p{i}.png", 10 * k + i)
    _tiny(src / "__MACOSX" / "cubism" / "._p0.png", 50)  # a Mac zip's resource forks: at another depth
    _tiny(src / ".ipynb_checkpoints" / "p0-checkpoint.png", 51)
    (src / "cubism" / ".DS_Store").write_bytes(b"\0junk")
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert report.train + report.test == 6 and not report.skipped
    assert report.labels.startswith("styles from sub-folder names: 2 styles")
    log = (tmp_path / "import.log").read_text()
    assert "# 3 hidden files or folders skipped" in log
    assert "not an image file" not in log and "0 other files left out" in log


def test_split_folders_are_not_styles(tmp_path):
    src = tmp_path / "paintings"
    for j, split in enumerate(["train", "Test"]):
        for k, style in enumerate(["cubism", "fauvism"]):
            for i in range(3):
                _tiny(src / split / style / f"p{i}.png", 100 * j + 10 * k + i)
    (src / "train" / "metadata.csv").write_text("file_name,style\ncubism/p0.png,expressionism\n")  # relative to train/
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    assert labels["train/cubism/p0.png"][0] == "expressionism" and labels["Test/cubism/p0.png"][0] == "cubism"
    assert {s for s, _ in labels.values()} == {"cubism", "fauvism", "expressionism"}
    assert report.labels.startswith("styles from train/metadata.csv, else sub-folder names: 3 styles")
    log = (tmp_path / "import.log").read_text()
    assert "split folders Test, train (the Hugging Face split layout)" in log and "the source's split is not kept" in log
    assert "not an image file" not in log

    flat = tmp_path / "flat"  # split folders without style folders below them: no styles
    for i in range(4):
        _tiny(flat / ["train", "validation"][i % 2] / f"p{i}.png", 300 + i)
    report = import_paintings(str(flat), tmp_path / "data2", tmp_path / "import2.log", size=16, show_progress=False)
    assert report.labels.startswith("no style labels: style consistency will not be measured")


def test_adjectives_written_as_a_list_in_a_string():
    from artgen.data.importer import _adjective_words

    assert _adjective_words("['warm', 'vivid']") == ("warm", "vivid")  # pandas to_csv of a list
    assert _adjective_words('["warm", null, 3]') == ("warm",)
    assert _adjective_words("['warm', None]") == ("warm",)
    assert _adjective_words(["warm", None]) == ("warm",)
    assert _adjective_words("warm; vivid") == ("warm", " vivid")
    assert _adjective_words("warm\nbold\r\n") == ("warm", "bold\r")  # one word per line in a spreadsheet cell


def test_imported_is_no_style_label_and_the_warning_agrees_with_the_bench(tmp_path):
    import json

    from bench.style import corpus_styles

    src = tmp_path / "paintings"
    rows = []
    for i in range(6):
        _tiny(src / f"p{i}.png", 400 + i)
        rows.append({"file_name": f"p{i}.png", "style": ["dots", "imported"][i % 2], "adjectives": ["warm", None]})
    (src / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert report.labels == ("styles from metadata.jsonl: 1 style (3 paintings without one: 'imported'), so style consistency "
                             "will not be measured; adjectives from metadata.jsonl: 6 paintings labelled")
    assert corpus_styles(load_corpus(tmp_path / "data")["train"])[0] is None


def test_metadata_names_match_in_nfc_and_non_images_are_named(tmp_path):
    src = tmp_path / "paintings"
    for i in range(4):
        _tiny(src / ("cafe\u0301.png" if i == 0 else f"p{i}.png"), 500 + i)  # decomposed on disk (macOS)
    (src / "notes.txt").write_text("not an image")
    (src / "metadata.csv").write_text("file_name,style\n/caf\u00e9.png, e\u0301cole \np1.png,dots\nnotes.txt,dots\n",
                                      encoding="utf-8")
    import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    assert labels["cafe\u0301.png"][0] == "\u00e9cole" and labels["p1.png"][0] == "dots"
    log = (tmp_path / "import.log").read_text(encoding="utf-8")
    assert "0 rows naming no image, 1 row naming a file that is not an image file" in log
    assert "metadata row naming a file that is not an image file\tnotes.txt" in log
    assert "metadata row without an image" not in log


def test_dataset_label_cells_of_other_types(tmp_path):

    import datasets

    images = _png_cells(8, 600, 8)
    features = datasets.Features({"image": datasets.Image(), "style": datasets.Value("float64"),
                                  "adjectives": datasets.Sequence(datasets.ClassLabel(names=["warm", "vivid"]))})
    ds = datasets.Dataset.from_dict({"image": images, "style": [3.0, 4.0, float("nan"), None] * 2,
                                     "adjectives": [[0, 1], [1], [], [0]] * 2}, features=features)
    ds.save_to_disk(str(tmp_path / "numbers"))
    import_paintings(str(tmp_path / "numbers"), tmp_path / "data", tmp_path / "log", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data")
    assert labels["data[0]"] == ("3", ["warm", "vivid"]) and labels["data[1]"] == ("4", ["vivid"])
    assert labels["data[2]"] == ("imported", []) and labels["data[3]"] == ("imported", ["warm"])

    features = datasets.Features({"image": datasets.Image(), "style": datasets.Value("string"),
                                  "gt_adjectives": datasets.Sequence(datasets.Value("string"))})
    ds = datasets.Dataset.from_dict({"image": images, "style": ["dots", "imported", " stripes ", ""] * 2,
                                     "gt_adjectives": [["warm", None], None, ["vivid"], []] * 2}, features=features)
    ds.save_to_disk(str(tmp_path / "strings"))
    report = import_paintings(str(tmp_path / "strings"), tmp_path / "data2", tmp_path / "log2", size=16, show_progress=False)
    labels = _styles_by_source(tmp_path / "data2")
    assert labels["data[0]"] == ("dots", ["warm"]) and labels["data[1]"] == ("imported", [])
    assert labels["data[2]"] == ("stripes", ["vivid"]) and labels["data[3]"] == ("imported", [])
    assert report.labels.startswith("styles from the dataset's `style` column: 2 styles (4 paintings without one")


def test_a_size_the_codes_cannot_divide_is_refused_and_small_paintings_are_counted(tmp_path):
    src = tmp_path / "paintings"
    src.mkdir()
    for i in range(6):
        _painting(src / f"p{i}.png", i, size=(90, 60) if i % 2 else (30, 20))  # three have a 20 px short side
    with pytest.raises(ArtgenError, match=r"--size 30 is not a multiple of 4"):
        import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=30, show_progress=False)
    assert not (tmp_path / "data").exists() and not (tmp_path / "import.log").exists()
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=32, show_progress=False)
    assert report.upscaled == 3
    assert "3 paintings smaller than 32 px" in (tmp_path / "import.log").read_text()
    report = import_paintings(str(src), tmp_path / "data2", tmp_path / "import2.log", size=16, show_progress=False)
    assert report.upscaled == 0 and "smaller than" not in (tmp_path / "import2.log").read_text()


def test_other_jpeg_suffixes_and_avif_are_read_and_files_left_out_are_counted(tmp_path):
    from PIL import features

    src = tmp_path / "paintings"
    src.mkdir()
    for i, ext in enumerate([".jfif", ".jpe", ".JPG", ".png"]):
        _painting(src / f"p{i}{ext}", i, fmt="JPEG" if ext != ".png" else None)
    if features.check("avif"):
        _painting(src / "p9.avif", 9, fmt="AVIF")
    (src / "scan.heic").write_bytes(b"not read")
    (src / "notes.txt").write_text("x")
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=32, show_progress=False)
    assert report.train + report.test == 4 + features.check("avif") and not report.skipped
    assert report.left_out == {".heic": 1, ".txt": 1}
    assert report.left_out_line().startswith("2 files left out for their suffix (1 .heic, 1 .txt)")


def test_a_folder_name_that_is_not_utf8_is_a_style_not_a_crash(tmp_path):
    import os

    src = tmp_path / "paintings"
    for k, name in enumerate([b"caf\xe9", b"expressionism"]):  # Latin-1 bytes, as an old zip extracts them
        folder = os.path.join(os.fsencode(src), name)
        os.makedirs(folder)
        for i in range(4):
            _painting(os.fsdecode(os.path.join(folder, f"p{i}.png".encode())), 10 * k + i, size=(24, 16))
    import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    dd = load_corpus(tmp_path / "data")
    assert set(dd["train"]["style"]) | set(dd["test"]["style"]) == {"café", "expressionism"}


def test_links_to_nothing_are_skipped_with_why(tmp_path):
    src = tmp_path / "paintings"
    _style_folders(src, ["a", "b"], 3)
    (src / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (src / "a" / "loop1.png").symlink_to(src / "a" / "loop2.png")
    (src / "a" / "loop2.png").symlink_to(src / "a" / "loop1.png")
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert report.train + report.test == 6
    assert sorted(n for n, _ in report.skipped) == ["a/gone.png", "a/loop1.png", "a/loop2.png"]
    assert all("a link to nothing" in why for _, why in report.skipped)


def test_an_unreadable_sub_folder_is_skipped_with_why(tmp_path, monkeypatch):
    import os

    src = tmp_path / "paintings"
    _style_folders(src, ["a", "b", "locked"], 2)
    real_scandir = os.scandir

    def scandir(path="."):  # root reads every folder: a user without the permission is simulated
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert report.train + report.test == 4
    assert report.skipped == [("locked", "cannot read the folder (PermissionError: Permission denied)")]


def test_a_mistyped_path_under_a_folder_here_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    (tmp_path / "my_paintings").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArtgenError, match=r"no folder my_paintings/cubsim here \(my_paintings exists"):
        import_paintings("my_paintings/cubsim", tmp_path / "data", tmp_path / "import.log", show_progress=False)
    with pytest.raises(ArtgenError, match="the source is empty"):
        import_paintings(" ", tmp_path / "data", tmp_path / "import.log", show_progress=False)


def test_importing_the_folder_that_holds_the_workspace_leaves_the_workspace_out(tmp_path):
    src = tmp_path / "paintings"
    _style_folders(src, ["a", "b"], 3)
    ws = src / "artgen-work"
    (ws / "reports").mkdir(parents=True)
    _painting(ws / "reports" / "contact_sheet.png", 99)
    report = import_paintings(str(src), ws / "data", ws / "logs" / "import.log", size=16, show_progress=False, exclude=ws)
    assert report.train + report.test == 6 and "no style" not in report.labels


def test_a_transparent_colour_key_is_laid_on_white(tmp_path):
    from artgen.data.importer import to_rgb

    grey = Image.fromarray(np.array([[0, 200], [200, 0]], dtype=np.uint8), "L")
    grey.info["transparency"] = 0
    assert to_rgb(grey).getpixel((0, 0)) == (255, 255, 255) and to_rgb(grey).getpixel((1, 0)) == (200, 200, 200)
    rgb = Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8), "RGB")
    rgb.info["transparency"] = (0, 0, 0)
    assert to_rgb(rgb).getpixel((1, 1)) == (255, 255, 255)


def test_very_large_images_are_read_with_a_logged_warning_up_to_twice_the_limit(tmp_path, monkeypatch):
    import artgen.data.importer as importer

    monkeypatch.setattr(importer, "MAX_PIXELS", 1000)
    src = tmp_path / "paintings"
    src.mkdir()
    for i in range(4):
        _painting(src / f"p{i}.png", i, size=(20, 20))
    _painting(src / "big.png", 7, size=(40, 40))  # 1,600 px: over the limit, under twice it
    _painting(src / "huge.png", 8, size=(60, 60))  # 3,600 px: over twice the limit
    report = import_paintings(str(src), tmp_path / "data", tmp_path / "import.log", size=16, show_progress=False)
    assert report.train + report.test == 5 and [n for n, _ in report.skipped] == ["huge.png"]
    assert [n for n, _ in report.warnings] == ["big.png"]
    assert "warning\tbig.png\t" in (tmp_path / "import.log").read_text()


def test_reimporting_an_imported_corpus_keeps_its_ids_and_split(tmp_path):
    src = tmp_path / "paintings"
    _style_folders(src, ["a", "b"], 8)
    import_paintings(str(src), tmp_path / "one", tmp_path / "one.log", size=32, show_progress=False)
    import_paintings(str(tmp_path / "one"), tmp_path / "two", tmp_path / "two.log", size=16, show_progress=False)
    one, two = load_corpus(tmp_path / "one"), load_corpus(tmp_path / "two")
    for split in ("train", "test"):
        assert sorted(two[split]["id"]) == sorted(one[split]["id"]) and len(one[split])  # annotations keyed by id still apply
    assert decode_image(two["train"][0]["image"]).shape == (16, 16, 3)
