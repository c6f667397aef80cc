import numpy as np
import pytest

from artgen.data.vocabulary import ADJECTIVES, BY_WORD, FACETS, HELD_OUT_SYNONYMS, SYNONYMS, canonical, parse_prompt
from artgen.errors import ArtgenError


def test_vocabulary_is_large_faceted_and_defined():
    assert len(ADJECTIVES) >= 48
    assert len(FACETS) >= 8
    required = "warm cool vivid muted bright dark calm chaotic geometric organic minimal dense smooth textured symmetric"
    for word in required.split():
        assert word in BY_WORD, word
    for a in BY_WORD.values():
        assert a.definition and "\n" not in a.definition
        assert a.synonyms, f"{a.word} has no synonyms"


def test_held_out_synonyms_are_disjoint_from_training_words():
    assert len(HELD_OUT_SYNONYMS) >= 20
    for word, target in HELD_OUT_SYNONYMS.items():
        assert word not in BY_WORD and word not in SYNONYMS
        assert target in BY_WORD
    assert canonical("fiery") == "warm" and canonical("Tranquil") == "calm"


@pytest.mark.parametrize("text", ["warm, chaotic, vivid", "warm chaotic vivid", "a warm and chaotic painting, vivid"])
def test_parse_prompt_accepts_common_forms(text):
    parsed = parse_prompt(text)
    assert parsed.adjectives == ["warm", "chaotic", "vivid"]
    assert parsed.unknown == []


def test_parse_prompt_sorts_words():
    parsed = parse_prompt("fiery, saturated, blorptastic")
    assert parsed.held_out == {"fiery": "warm"}
    assert parsed.synonyms == {"saturated": "vivid"}
    assert parsed.unknown == ["blorptastic"]
    assert parsed.adjectives == ["warm", "vivid"]


@pytest.mark.parametrize("text", ["", "   ", "a painting", "warm " * 40, "x" * 500])
def test_parse_prompt_rejects_empty_or_long(text):
    with pytest.raises(ArtgenError) as err:
        parse_prompt(text)
    assert "\n" not in str(err.value)


def test_multi_hot_marks_each_sets_words_and_ignores_others():
    from artgen.data.vocabulary import multi_hot

    out = multi_hot([["warm", "wavy"], [], ["zorblat", "warm", "warm"]], ["warm", "cool", "wavy"])
    assert out.dtype == np.float32 and out.tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 0]]
