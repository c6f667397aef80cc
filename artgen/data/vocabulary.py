"""The controlled vocabulary: adjectives in facets, their definitions, synonyms and the
held-out synonyms kept for zero-shot tests; and `parse_prompt`, which reads a user's prompt.

Every caption the models train on is built from `ADJECTIVES` only. Training synonyms map
annotator output onto the vocabulary; held-out synonyms (`HELD_OUT_SYNONYMS`) never appear
in any training caption, so prompts that use them measure generalisation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from artgen.errors import ArtgenError


@dataclass(frozen=True)
class Adjective:
    word: str
    facet: str
    definition: str  # one line, shown to LLM annotators
    synonyms: tuple[str, ...] = ()


def _a(word: str, facet: str, definition: str, *synonyms: str) -> Adjective:
    return Adjective(word, facet, definition, tuple(synonyms))


# fmt: off
VOCABULARY: tuple[Adjective, ...] = (
    # colour temperature
    _a("warm", "temperature", "dominated by reds, oranges and yellows", "hot", "warmish"),
    _a("cool", "temperature", "dominated by blues, cyans, greens and violets", "cold", "chilly"),
    _a("neutral", "temperature", "neither warm nor cool; greys, beiges, balanced hues", "greyish", "grey"),
    # colour / hue character
    _a("monochrome", "colour", "built from shades of a single hue or of black and white", "monochromatic", "single-colour"),
    _a("colorful", "colour", "many clearly different hues side by side", "colourful", "multicolored", "multicoloured", "rainbow"),
    _a("earthy", "colour", "browns, ochres and olive tones like soil and clay", "earthen", "ochre"),
    _a("pastel", "colour", "pale, light, softly tinted colours", "pastels", "candy"),
    _a("primary", "colour", "pure red, yellow and blue with black and white", "primaries"),
    # saturation
    _a("vivid", "saturation", "strongly saturated, intense colours", "saturated", "intense", "vibrant"),
    _a("muted", "saturation", "low-saturation, greyed or subdued colours", "subdued", "desaturated", "dull"),
    _a("bold", "saturation", "strong, confident colour and shape that demands attention", "striking", "loud"),
    # value
    _a("bright", "value", "mostly light values, high overall brightness", "light", "luminous"),
    _a("dark", "value", "mostly deep, low values, little light", "dim", "deep"),
    _a("pale", "value", "washed, whitish, very light and low in colour", "faint", "whitish"),
    # contrast
    _a("contrasting", "contrast", "strong light-dark or complementary contrast", "high-contrast", "stark"),
    _a("soft", "contrast", "low contrast, gentle transitions between areas", "low-contrast", "gentle"),
    _a("hazy", "contrast", "blurred, misty edges as if seen through fog", "blurry", "foggy", "misty"),
    # composition
    _a("minimal", "composition", "few elements and a lot of empty space", "minimalist", "sparse", "simple"),
    _a("dense", "composition", "crowded with many elements and little empty space", "busy", "packed", "cluttered"),
    _a("symmetric", "composition", "mirror-symmetric or radially symmetric layout", "symmetrical", "balanced"),
    _a("asymmetric", "composition", "deliberately uneven, off-centre layout", "asymmetrical", "lopsided"),
    _a("centered", "composition", "one focal form in the middle of the canvas", "centred", "focal"),
    _a("layered", "composition", "overlapping planes or strokes stacked in depth", "overlapping", "stacked"),
    _a("horizontal", "composition", "organised in horizontal bands or lines", "landscape-like", "banded"),
    _a("vertical", "composition", "organised in vertical bands or lines", "upright", "columnar"),
    _a("diagonal", "composition", "driven by slanted, diagonal directions", "slanted", "oblique"),
    _a("repetitive", "composition", "one motif repeated across the canvas", "repeating", "patterned", "tiled"),
    # shape
    _a("geometric", "shape", "made of clean mathematical shapes: squares, circles, straight lines", "geometrical", "hard-edged"),
    _a("organic", "shape", "irregular, natural, biomorphic forms", "biomorphic", "natural"),
    _a("circular", "shape", "circles, rings or round dots dominate", "round", "rounded", "ringed"),
    _a("angular", "shape", "sharp corners, triangles and pointed fragments", "pointed", "sharp"),
    _a("linear", "shape", "built from lines and stripes", "lined", "striped"),
    _a("curved", "shape", "sweeping curves and arcs", "curvy", "arched"),
    _a("wavy", "shape", "undulating, wave-like rhythms", "undulating", "rippling"),
    _a("fragmented", "shape", "broken into many shards or pieces", "broken", "shattered", "splintered"),
    _a("blocky", "shape", "rectangles and blocks of colour", "rectangular", "boxy-shaped"),
    _a("dotted", "shape", "covered in dots or spots", "spotted", "polka-dot", "speckled"),
    # texture
    _a("smooth", "texture", "flat, even surfaces with no visible grain", "flat", "even", "clean"),
    _a("textured", "texture", "visible grain, canvas or brush texture", "rough", "grainy", "coarse"),
    _a("fluid", "texture", "flowing, liquid, washed paint", "liquid", "watery"),
    _a("splattered", "texture", "drips, splashes and spatters of paint", "dripping", "splashed", "spattered"),
    _a("gradient", "texture", "smooth blends from one colour to another", "graded", "blended", "ombre"),
    # mood / energy
    _a("calm", "mood", "quiet, still and restful", "peaceful", "quiet", "still"),
    _a("chaotic", "mood", "disordered, wild and unpredictable", "messy", "disordered", "wild"),
    _a("energetic", "mood", "full of movement and tension", "dynamic", "vigorous", "active"),
    _a("serene", "mood", "gently uplifting, contemplative harmony", "contemplative", "meditative"),
    _a("dramatic", "mood", "intense, theatrical light and dark", "theatrical", "powerful"),
    _a("playful", "mood", "light-hearted, whimsical and fun", "whimsical", "fun", "cheerful"),
    _a("somber", "mood", "grave, melancholy, heavy in feeling", "sombre", "melancholy", "sad"),
    _a("rhythmic", "mood", "a regular beat of repeated elements", "pulsing", "cadenced"),
    _a("harmonious", "mood", "colours and shapes that sit well together", "harmonic", "unified"),
)
# fmt: on

# Synonyms that never appear in a training caption: they map to a vocabulary word only for
# evaluating zero-shot control (and for reading annotator output).
HELD_OUT_SYNONYMS: dict[str, str] = {
    "fiery": "warm", "sunny": "warm", "blazing": "warm",
    "icy": "cool", "frosty": "cool", "wintry": "cool",
    "tranquil": "calm", "placid": "calm", "restful": "calm",
    "turbulent": "chaotic", "frenzied": "chaotic", "anarchic": "chaotic",
    "radiant": "bright", "glowing": "bright",
    "gloomy": "dark", "shadowy": "dark", "murky": "dark",
    "electric": "vivid", "brilliant": "vivid",
    "washed-out": "muted", "faded": "muted",
    "crowded": "dense", "teeming": "dense",
    "bare": "minimal", "austere": "minimal",
    "mirrored": "symmetric",
    "silky": "smooth", "polished": "smooth",
    "gritty": "textured", "rugged": "textured",
    "jagged": "angular",
    "flowing": "fluid",
    "spherical": "circular",
    "mathematical": "geometric",
    "lifelike": "organic",
}

FACETS: tuple[str, ...] = tuple(dict.fromkeys(a.facet for a in VOCABULARY))
ADJECTIVES: tuple[str, ...] = tuple(a.word for a in VOCABULARY)
BY_WORD: dict[str, Adjective] = {a.word: a for a in VOCABULARY}
SYNONYMS: dict[str, str] = {s: a.word for a in VOCABULARY for s in a.synonyms}

MAX_PROMPT_WORDS = 16
MAX_PROMPT_CHARS = 200

# Words that carry no attribute in prompts such as "a warm and chaotic painting".
STOPWORDS = frozenset(
    "a an the and or with of in on very quite rather somewhat slightly but yet that is "
    "painting paintings picture image artwork art abstract composition canvas piece work".split()
)


def _check_vocabulary() -> None:
    seen: dict[str, str] = {}
    for word in [*ADJECTIVES, *SYNONYMS, *HELD_OUT_SYNONYMS]:
        if word in seen:
            raise AssertionError(f"vocabulary word {word!r} is listed twice")
        seen[word] = word
    for word, target in HELD_OUT_SYNONYMS.items():
        if target not in BY_WORD:
            raise AssertionError(f"held-out synonym {word!r} maps to unknown {target!r}")


_check_vocabulary()


def vocabulary_hash() -> str:
    """A short hash of the vocabulary, stored in checkpoints and bundles to detect drift."""
    text = "|".join(f"{a.word}:{a.facet}" for a in VOCABULARY)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def multi_hot(sets: Sequence[Sequence[str]], words: Sequence[str]) -> np.ndarray:
    """(len(sets), len(words)) float32: row r marks the `words` that set r holds (other words ignored)."""
    index = {w: i for i, w in enumerate(words)}
    out = np.zeros((len(sets), len(words)), dtype=np.float32)
    for r, held in enumerate(sets):
        out[r, [index[w] for w in held if w in index]] = 1.0
    return out


def canonical(word: str) -> str | None:
    """Vocabulary word for `word` (itself, a synonym or a held-out synonym), else None."""
    word = word.strip().lower()
    if word in BY_WORD:
        return word
    return SYNONYMS.get(word) or HELD_OUT_SYNONYMS.get(word)


@dataclass
class ParsedPrompt:
    """What `parse_prompt` found: each word sorted into vocabulary, synonym or unknown."""

    text: str
    words: list[str]
    in_vocabulary: list[str] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # word as typed -> vocabulary word
    held_out: dict[str, str] = field(default_factory=dict)  # held-out synonym -> vocabulary word
    unknown: list[str] = field(default_factory=list)

    @property
    def adjectives(self) -> list[str]:
        """The vocabulary words the prompt asks for, in order, without repeats."""
        out: list[str] = []
        for w in self.words:
            c = canonical(w)
            if c and c not in out:
                out.append(c)
        return out


_SPLIT = re.compile(r"[,;/|+]|\s+")
_STRIP = re.compile(r"^[^\w]+|[^\w]+$")


def parse_prompt(text: str) -> ParsedPrompt:
    """Read "warm, chaotic, vivid", "warm chaotic vivid" or "a warm and chaotic painting".

    Raises `ArtgenError` for an empty prompt or one longer than MAX_PROMPT_WORDS words.
    """
    if text is None or not text.strip():
        raise ArtgenError("the prompt is empty: give a few adjectives, e.g. \"warm, chaotic, vivid\"")
    surrogate = re.search("[\ud800-\udfff]", text)
    if surrogate:  # a byte that is not UTF-8 in argv (Python keeps it as a lone surrogate): no tokenizer takes it
        raise ArtgenError(f"the prompt is not valid Unicode text (a lone surrogate {surrogate.group()!r} at character "
                          f"{surrogate.start()}, e.g. a byte that is not UTF-8): type it again in UTF-8")
    if len(text) > MAX_PROMPT_CHARS:
        raise ArtgenError(
            f"the prompt is {len(text)} characters long (limit {MAX_PROMPT_CHARS}): "
            "use 3-5 adjectives such as \"warm, chaotic, vivid\""
        )
    tokens = [_STRIP.sub("", t.lower()) for t in _SPLIT.split(text)]
    words = [t for t in tokens if t and t not in STOPWORDS]
    if not words:
        raise ArtgenError(f"the prompt {text!r} holds no adjectives: try e.g. \"warm, chaotic, vivid\"")
    if len(words) > MAX_PROMPT_WORDS:
        raise ArtgenError(
            f"the prompt has {len(words)} words (limit {MAX_PROMPT_WORDS}): use 3-5 adjectives"
        )
    parsed = ParsedPrompt(text=text, words=words)
    for w in words:
        if w in BY_WORD:
            parsed.in_vocabulary.append(w)
        elif w in SYNONYMS:
            parsed.synonyms[w] = SYNONYMS[w]
        elif w in HELD_OUT_SYNONYMS:
            parsed.held_out[w] = HELD_OUT_SYNONYMS[w]
        else:
            parsed.unknown.append(w)
    return parsed
