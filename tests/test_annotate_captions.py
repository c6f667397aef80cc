"""Captions for training and the label loader that feeds them."""
import json

import numpy as np
import pytest

from artgen.data.captions import load_labels, make_caption, make_captions, read_records
from artgen.data.vocabulary import ADJECTIVES, HELD_OUT_SYNONYMS
from artgen.errors import ArtgenError
from artgen.workspace import Workspace


def test_captions_are_deterministic_for_a_seed_and_vary_between_seeds():
    adj = ["warm", "chaotic", "vivid", "splattered", "dense"]
    assert make_captions(adj, seed=3, n=20) == make_captions(adj, seed=3, n=20)
    assert make_captions(adj, seed=3, n=20) != make_captions(adj, seed=4, n=20)
    assert len(set(make_captions(adj, seed=3, n=50))) > 10  # order, subset and template vary


def test_captions_hold_3_to_5_vocabulary_words_and_never_a_held_out_synonym():
    rng = np.random.default_rng(0)
    adj = ["warm", "fiery", "tranquil", "calm", "vivid", "hot", "dense", "minimal", "dotted"]
    for _ in range(200):
        caption = make_caption(adj, rng)
        words = [w.strip(",") for w in caption.split()]
        assert not set(words) & set(HELD_OUT_SYNONYMS), caption
        used = [w for w in words if w in ADJECTIVES]
        assert 3 <= len(used) <= 5 and len(set(used)) == len(used), caption
        assert "hot" not in words  # a training synonym is not a vocabulary word either


def test_captions_use_all_words_when_fewer_than_three():
    caps = make_captions(["cool", "calm"], seed=1, n=30)
    assert all("cool" in c and "calm" in c for c in caps)
    with pytest.raises(ArtgenError):
        make_caption(["fiery"], np.random.default_rng(0))


def test_load_labels_prefers_the_most_complete_tolerates_a_torn_line_and_names_the_fix(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(ArtgenError, match="artgen annotate --backend heuristic"):
        load_labels(ws)
    ws.annotations.mkdir(parents=True)
    lines = [json.dumps({"id": "a", "adjectives": ["warm", "vivid", "dense"]}),
             json.dumps({"id": "b", "adjectives": ["cool", "calm", "fiery"]})]
    (ws.annotations / "heuristic.jsonl").write_text("\n".join(lines) + "\n" + '{"id": "c", "adjec')
    labels, source = load_labels(ws)
    assert source == "heuristic" and labels == {"a": ["warm", "vivid", "dense"], "b": ["cool", "calm"]}
    (ws.annotations / "openai.jsonl").write_text(lines[0] + "\n")
    assert load_labels(ws)[1] == "heuristic"  # the more complete labelling wins ...
    (ws.annotations / "openai.jsonl").write_text(lines[0] + "\n" + lines[1] + "\n")
    assert load_labels(ws) == ({"a": ["warm", "vivid", "dense"], "b": ["cool", "calm"]}, "openai")  # ... a tie: openai
    (ws.annotations / "openai.jsonl").write_text("garbage\n" + lines[0] + "\n")
    with pytest.raises(ArtgenError, match="line 1"):
        read_records(ws.annotations / "openai.jsonl")


def test_load_labels_from_the_corpus_ground_truth(small_corpus):
    labels, source = load_labels(Workspace(small_corpus), "gt")
    assert source == "gt" and len(labels) == 120
    assert all(3 <= len(v) <= 5 for v in labels.values())


def test_a_hand_written_label_file_is_read_as_its_words_and_unknown_words_are_named(tmp_path, capsys):
    """A user's own label file: "Warm " and "VIVID" are vocabulary words, a record of unknown words only
    is unlabelled and counted (it used to count as labelled with nothing, scoring 0 silently); a damaged
    line never asks to delete the file of finished labels."""
    from artgen.data.captions import read_labels

    path = tmp_path / "mine.jsonl"
    rows = [{"id": "a", "adjectives": ["Warm ", "VIVID", "warm", "blorpy"], "note": "extra column"},
            {"id": "b", "adjectives": ["blorpy", "zingy"]}, {"id": "c", "adjectives": []}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_labels(path) == {"a": ["warm", "vivid"]}
    err = capsys.readouterr().err
    assert "skipped 1 records" in err and "'blorpy'" in err
    path.write_bytes(b'{"id": "a", "adjectives": ["warm"]}\n{"id": "b", "note": "caf\xe9"}\n{"id": "c", "adjectives": ["dark"]}\n')
    with pytest.raises(ArtgenError, match="line 2") as e:
        read_records(path)
    assert "delete the file" not in str(e.value)


def test_annotation_report_against_a_folder_is_a_one_line_error(small_corpus, tmp_path):
    from annotate.report import write_report

    with pytest.raises(ArtgenError, match="is a folder"):
        write_report(Workspace(small_corpus), labels="gt", against=str(tmp_path))


def test_annotation_report_reads_a_pipe_and_names_a_file_that_is_not_jsonl(small_corpus, tmp_path):
    """`--against <(grep ...)` hands the report a pipe (is_file() is False): it is read, not called a
    folder; a CSV or pretty-printed JSON file is named as the wrong kind of file, not a damaged line."""
    import os
    import threading

    from annotate.report import _read_file

    fifo = tmp_path / "labels.pipe"
    os.mkfifo(fifo)
    line = json.dumps({"id": "x", "adjectives": ["warm", "calm"]}) + "\n"
    writer = threading.Thread(target=lambda: fifo.write_text(line))
    writer.start()
    assert _read_file(fifo) == {"x": ["warm", "calm"]}
    writer.join()
    csv = tmp_path / "labels.csv"
    csv.write_text("id,adjectives\nx,warm\n")
    with pytest.raises(ArtgenError, match="is not a JSONL annotation file"):
        _read_file(csv)
