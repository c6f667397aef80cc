"""The offline annotator, normalisation, the resumable writer and the quality report."""
import json
from pathlib import Path

import numpy as np
import pytest

from annotate.heuristic import annotate_images, fit_model, load_model, select
from annotate.normalise import normalise
from annotate.prompt import SYSTEM_PROMPT, build_messages, parse_answer
from annotate.writer import JsonlWriter
from artgen.app.cli import main
from artgen.data.corpus import decode_image, load_corpus
from artgen.data.image_stats import image_statistics, statistics_matrix
from artgen.data.vocabulary import ADJECTIVES, VOCABULARY


@pytest.fixture
def ws_dir(small_corpus, tmp_path):
    (tmp_path / "data").symlink_to(small_corpus / "data")
    return tmp_path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_normalise_maps_synonyms_drops_duplicates_and_keeps_unknown_words():
    n = normalise(["Warm!", "HOT", "fiery", " stark ", "High Contrast", "sparkly", "very warm", "", "Sparkly."])
    assert n.adjectives == ["warm", "contrasting"] and n.extra == ["sparkly"]
    assert normalise("vivid, Tranquil; blue").adjectives == ["vivid", "calm"]


def test_parse_answer_reads_json_in_its_usual_disguises():
    assert parse_answer('{"adjectives": ["warm", "calm", "dense"]}') == ["warm", "calm", "dense"]
    assert parse_answer('```json\n{"adjectives": ["a", "b"]}\n```') == ["a", "b"]
    assert parse_answer('Here you go: ["warm", "cool"]') == ["warm", "cool"]
    for bad in ("", None, '{"colour": "red"}', "Sure! Here are some adjectives: warm, vivid",
                "<think>warm, vivid, calm</think>", "<think>warm, vivid, calm (the answer was cut"):
        with pytest.raises(ValueError):
            parse_answer(bad)


def test_parse_answer_reads_the_lists_small_models_write():
    three = ["Warm", "Vivid", "Chaotic"]
    assert parse_answer("1. Warm\n2. Vivid\n3. Chaotic") == three
    assert parse_answer("- Warm\n- Vivid\n- Chaotic") == three
    assert parse_answer("* Warm\n* Vivid\n* Chaotic.") == three
    assert parse_answer("Adjectives: Warm, Vivid, Chaotic") == three
    assert parse_answer("**Adjectives:** Warm, Vivid, Chaotic") == three
    assert parse_answer("{'adjectives': ['Warm', 'Vivid', 'Chaotic']}") == three  # a Python literal
    with pytest.raises(ValueError):  # prose is still not a list
        parse_answer("Sure! Here are some: warm, vivid")
    with pytest.raises(ValueError):  # reasoning prose is read for its JSON only
        parse_answer("Okay, the user wants", bare=False)
    assert parse_answer('I think {"adjectives": ["warm", "dark", "calm"]}', bare=False) == ["warm", "dark", "calm"]


def test_a_negated_word_is_never_read_as_the_word_it_negates():
    n = normalise(["not geometric", "non-geometric", "no texture", "without-warmth", "warm", "very-warm", "vivid"])
    assert n.adjectives == ["warm", "vivid"]
    assert n.extra == ["not-geometric", "non-geometric", "no-texture", "without-warmth"]


def test_parse_answer_reads_the_shapes_normalise_can_handle():
    three = ["warm", "vivid", "chaotic"]
    assert parse_answer("warm, vivid, chaotic") == three
    assert parse_answer("Warm; vivid; chaotic.") == ["Warm", "vivid", "chaotic"]
    assert parse_answer('{"adjectives": "warm, vivid, chaotic"}') == three  # a string for the list
    assert parse_answer('{"adjectives": ["warm", "vivid", "chaotic",],}') == three  # trailing commas
    thinking = '<think>Maybe {"adjectives": ["dark", "calm"]}? No: [cool].</think>\n{"adjectives": ["warm", "vivid", "chaotic"]}'
    assert parse_answer(thinking) == three
    assert parse_answer('the reds dominate, so </think>{"adjectives": ["warm", "vivid", "chaotic"]}') == three
    # nested lists and objects are read, not turned into strings like "{'word': 'warm'}"
    nested = '{"adjectives": [{"word": "warm", "score": 0.9}, ["vivid", ["chaotic"]], 3, null, {"score": 1}]}'
    assert parse_answer(nested) == three
    assert normalise(parse_answer(nested)).extra == []


def test_prompt_holds_every_definition_and_stats_mode_sends_no_image(small_corpus):
    assert all(f"{a.word}: {a.definition}" in SYSTEM_PROMPT for a in VOCABULARY)
    pixels = decode_image(load_corpus(small_corpus / "data")["train"][0]["image"])
    vision = build_messages("vision", pixels=pixels)
    assert vision[1]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    stats = build_messages("stats", stats=image_statistics(pixels))
    assert isinstance(stats[1]["content"], str) and "warm_fraction = " in stats[1]["content"]


def test_writer_cuts_a_torn_last_line_and_knows_what_is_done(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id": "x", "adjectives": ["warm"]}\n{"id": "y", "adj')
    with JsonlWriter(path) as w:
        assert w.repaired_bytes == len(b'{"id": "y", "adj') and w.done_ids == {"x"}
        w.append({"id": "y", "adjectives": ["cool"]})
    assert [r["id"] for r in lines(path)] == ["x", "y"]
    path.write_bytes(b'{"id": "x"}\n{"id": "y", "adjectives": ["c\n')  # terminated but not JSON
    assert JsonlWriter(path).done_ids == {"x"} and lines(path) == [{"id": "x"}]


def test_heuristic_labels_follow_the_pixels():
    warm = np.zeros((32, 32, 3), np.uint8)
    warm[:] = (230, 90, 20)
    cool = warm[..., ::-1].copy()
    a, b = annotate_images([warm, cool])
    assert "warm" in a and "vivid" in a and "cool" not in a
    assert "cool" in b and "warm" not in b
    assert all(3 <= len(x) <= 5 and set(x) <= set(ADJECTIVES) for x in (a, b))


def test_select_takes_3_to_5_best_words():
    s = np.zeros(len(ADJECTIVES), np.float32)
    assert len(select(s)) == 3
    s[:8] = np.linspace(0.99, 0.6, 8)
    assert select(s) == list(ADJECTIVES[:5])


def test_fit_model_learns_thresholds_from_labels(small_corpus):
    train = load_corpus(small_corpus / "data")["train"]
    stats = statistics_matrix([decode_image(im) for im in train["image"]])
    model = fit_model(stats, list(train["gt_adjectives"]))
    assert model.thresholds["warm"] > 0 > model.thresholds["cool"]
    assert model.thresholds["bright"] > model.thresholds["dark"]
    shipped = load_model()
    assert set(shipped.words) >= {"geometric", "wavy", "splattered"} and shipped.weights.shape[1] == stats.shape[1]


def test_cli_labels_the_corpus_resumes_and_reports(ws_dir, capsys):
    assert main(["--workdir", str(ws_dir), "annotate", "--workers", "2"]) == 0
    out = ws_dir / "annotations" / "heuristic.jsonl"
    recs = lines(out)
    assert len(recs) == len({r["id"] for r in recs}) == 120
    assert all(3 <= len(r["adjectives"]) <= 5 and r["backend"] == "heuristic" for r in recs)
    capsys.readouterr()

    assert main(["--workdir", str(ws_dir), "annotate"]) == 0
    assert "0 done, 120 skipped" in capsys.readouterr().err and len(lines(out)) == 120

    assert main(["--workdir", str(ws_dir), "annotate", "report"]) == 0
    rep = json.loads((ws_dir / "reports" / "annotation" / "report.json").read_text())
    assert rep["split"] == "test" and rep["against"] == "gt" and rep["n_images"] == 26
    assert 0.5 < rep["micro_f1"] <= 1 and set(rep["kappa_per_facet"]) >= {"temperature", "shape"}
    assert rep["per_adjective"]["warm"]["support"] == rep["label_frequency"]["warm"]["against"] > 0
    assert "micro-F1" in (ws_dir / "reports" / "annotation" / "report.md").read_text()
    assert (ws_dir / "reports" / "annotation" / "f1_per_adjective.png").read_bytes()[:4] == b"\x89PNG"

    # against another annotation file: itself agrees perfectly
    assert main(["--workdir", str(ws_dir), "annotate", "report", "--against", str(out), "--split", "all"]) == 0
    rep = json.loads((ws_dir / "reports" / "annotation" / "report.json").read_text())
    assert rep["micro_f1"] == 1.0 and rep["n_images"] == 120


def test_cli_errors_are_one_line(ws_dir, capsys, monkeypatch):
    assert main(["--workdir", str(ws_dir), "annotate", "--backend", "magic"]) == 2
    assert main(["--workdir", str(ws_dir), "annotate", "--split", "valid"]) == 2
    assert main(["--workdir", str(ws_dir), "annotate", "report"]) == 2  # nothing annotated yet
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("error: ") for e in err)
    assert "--backend heuristic" in err[0] and "--split" in err[1] and "artgen annotate --backend" in err[2]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["--workdir", str(ws_dir), "annotate", "--backend", "openai", "--limit", "1"]) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err
