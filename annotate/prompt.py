"""The annotation prompt: the vocabulary with each word's definition, the task, the answer
schema, and (in `stats` mode) the measured statistics of the painting as text.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import re

import numpy as np

from artgen.data.vocabulary import FACETS, VOCABULARY

MODES = ("vision", "stats")

# JSON schema of the answer, sent as `response_format` where the server supports it.
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "adjectives": {
            "type": "array",
            "items": {"type": "string", "enum": [a.word for a in VOCABULARY]},
            "minItems": 3,
            "maxItems": 5,
        }
    },
    "required": ["adjectives"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "painting_adjectives", "strict": True, "schema": ANSWER_SCHEMA}}

# The statistics a text-only model reads in `stats` mode, each with what it measures.
STATS_FOR_TEXT: tuple[tuple[str, str], ...] = (
    ("warm_fraction", "share of the colour (chroma-weighted) in reds, oranges and yellows, 0-1"),
    ("cool_fraction", "share of the colour in cyans, blues and violets, 0-1"),
    ("hue_concentration", "1 = one hue only, near 0 = hues spread around the colour wheel"),
    ("saturation_mean", "mean HSV saturation, 0-1"),
    ("saturation_p90", "saturation of the most saturated tenth of pixels, 0-1"),
    ("value_mean", "mean HSV value (brightness), 0-1"),
    ("value_std", "spread of brightness (light-dark contrast), 0-0.5"),
    ("contrast_range", "5th-95th percentile range of lightness, 0-1"),
    ("colour_count", "number of distinct colours (64-colour quantisation, each over 1% of the canvas)"),
    ("edge_density", "share of pixels on a clear edge, 0-1"),
    ("flat_fraction", "share of pixels in flat, edge-free areas, 0-1"),
    ("edges_vertical", "share of edge strength on vertical edges, 0-1"),
    ("edges_horizontal", "share of edge strength on horizontal edges, 0-1"),
    ("edges_diagonal", "share of edge strength on diagonal edges, 0-1"),
    ("orientation_entropy", "1 = edges in every direction (curves), 0 = one direction"),
    ("axis_alignment", "share of edge strength exactly horizontal or vertical, 0-1"),
    ("radial_alignment", "about 0.64 for random edges, near 1 for rings around one centre"),
    ("symmetry_lr", "correlation with the left-right mirror image, -1 to 1"),
    ("symmetry_ud", "correlation with the top-bottom mirror image, -1 to 1"),
    ("texture_energy", "fine grain: median deviation from a 3x3 blur, 0-0.1"),
    ("fine_grain", "pixel-level canvas weave, 0-0.05"),
    ("row_structure", "share of colour variance explained by rows (horizontal bands), 0-1"),
    ("column_structure", "share of colour variance explained by columns (vertical bands), 0-1"),
    ("diagonal_structure", "share of colour variance explained by diagonals, 0-1"),
    ("spectral_peak", "strength of the single strongest periodic pattern, 0-1"),
    ("extrema_density", "local light/dark spots per 100 pixels (dots, splatter)"),
    ("centre_contrast", "colour difference between the centre and the border, 0-3"),
)


def vocabulary_text() -> str:
    lines = []
    for facet in FACETS:
        lines.append(f"{facet}:")
        lines.extend(f"  - {a.word}: {a.definition}" for a in VOCABULARY if a.facet == facet)
    return "\n".join(lines)


SYSTEM_PROMPT = (
    "You label abstract paintings with adjectives from a fixed vocabulary.\n"
    "Vocabulary, grouped by facet, each word with its meaning:\n"
    f"{vocabulary_text()}\n\n"
    "Choose the 3 to 5 words from this vocabulary that best describe the painting, most "
    "salient first. Use only the words listed above, spelled exactly as listed. "
    'Answer with JSON only, in the form {"adjectives": ["word", "word", "word"]}.'
)


def stats_text(stats: dict[str, float]) -> str:
    return "\n".join(f"- {name} = {stats[name]:.3f} ({what})" for name, what in STATS_FOR_TEXT)


def png_data_url(pixels: np.ndarray | None = None, png: bytes | None = None) -> str:
    """A base64 PNG data URL of (H, W, 3) uint8 pixels, or of PNG bytes as they are."""
    if png is None:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.asarray(pixels, np.uint8), "RGB").save(buf, format="PNG")
        png = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_messages(mode: str, pixels: np.ndarray | None = None, stats: dict[str, float] | None = None,
                   png: bytes | None = None) -> list[dict]:
    """Chat messages for one painting: the image itself (vision: pixels or PNG bytes) or its
    statistics (stats)."""
    if mode == "vision":
        user = [
            {"type": "text", "text": "Describe this abstract painting with 3-5 adjectives from the vocabulary."},
            {"type": "image_url", "image_url": {"url": png_data_url(pixels, png), "detail": "low"}},
        ]
    elif mode == "stats":
        user = ("These statistics were measured on an abstract painting you cannot see:\n"
                f"{stats_text(stats)}\n"
                "Describe the painting with 3-5 adjectives from the vocabulary.")
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def corrective_message(valid: list[str], extra: list[str]) -> dict:
    """The one follow-up sent when an answer held fewer than 3 vocabulary words."""
    got = ", ".join(valid) if valid else "none"
    unknown = f" These words are not in the vocabulary: {', '.join(extra)}." if extra else ""
    return {"role": "user", "content": (
        f"Your answer had fewer than 3 vocabulary words (valid: {got}).{unknown} "
        'Answer again with 3-5 words from the vocabulary only, as JSON: {"adjectives": [...]}.')}


def format_reminder() -> dict:
    """The follow-up sent after an answer that could not be read as a word list: the same
    request again would get the same answer (temperature 0)."""
    return {"role": "user", "content": (
        'That answer could not be read. Reply with JSON only, no other text: {"adjectives": ["word", "word", "word"]} '
        "with 3-5 words from the vocabulary.")}


# Token estimates without a tokenizer: ~4 characters per token for English text, and the
# fixed cost OpenAI bills for a low-detail image.
IMAGE_TOKENS_LOW_DETAIL = 85


def estimate_tokens(messages: list[dict]) -> int:
    chars, images = 0, 0
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            chars += len(content)
        else:
            for part in content:
                if part["type"] == "text":
                    chars += len(part["text"])
                else:
                    images += 1
    return chars // 4 + 4 * len(messages) + IMAGE_TOKENS_LOW_DETAIL * images


def render_messages(messages: list[dict], max_url: int = 80) -> str:
    """The prompt as a person reads it; a data URL is shortened, with its length stated."""
    out = []
    for m in messages:
        out.append(f"--- {m['role']} ---")
        content = m["content"]
        if isinstance(content, str):
            out.append(content)
            continue
        for part in content:
            if part["type"] == "text":
                out.append(part["text"])
            else:
                url = part["image_url"]["url"]
                short = url if len(url) <= max_url else f"{url[:max_url]}... ({len(url)} characters in all)"
                out.append(f"[image, detail={part['image_url'].get('detail', 'auto')}] {short}")
    return "\n".join(out)


_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)  # a reasoning model's thinking, braces and all
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_SEPARATORS = re.compile(r"[,;\n]")
_BARE_WORD = re.compile(r"[A-Za-z][A-Za-z' -]*")  # one item of a bare list: letters, spaces, hyphens
_LIST_MARKER = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+")  # "1. warm", "2) warm", "- warm", "* warm", "• warm"
_LABEL = re.compile(r"^\s*\**\s*(?:adjectives|words|labels|answer)\s*\**\s*:\s*", re.IGNORECASE)  # "Adjectives: warm, ..."
ANSWER_KEYS = ("adjectives", "words", "labels")
ITEM_KEYS = ("adjective", "word", "label", "name", "term", "value")  # [{"word": "warm"}, ...]


def strip_thinking(text: str) -> str:
    """The reply without its <think>...</think> blocks; after a lone </think> (the opening tag
    was in the prompt) only what follows counts, and a <think> never closed (cut) is dropped."""
    text = _THINK.sub(" ", text)
    low = text.lower()
    if "</think>" in low:
        text = text[low.rfind("</think>") + len("</think>"):]
    elif "<think>" in low:
        text = text[:low.find("<think>")]
    return text


def _words(value) -> list[str] | None:
    """The words of an answer's list: a list (strings split at commas, nested lists flattened,
    {"word": ...} objects read; numbers and the like dropped) or a comma/semicolon-separated
    string. None when `value` is neither."""
    if isinstance(value, str):
        return [w.strip() for w in _SEPARATORS.split(value) if w.strip()]
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if isinstance(item, (str, list)):
            out += _words(item)
        elif isinstance(item, dict):
            fields = {str(k).lower(): v for k, v in item.items()}
            word = next((fields[k] for k in ITEM_KEYS if isinstance(fields.get(k), str)), None)
            if word is not None:
                out += _words(word)
    return out


def _bare_list(text: str) -> list[str] | None:
    """`warm, vivid, chaotic` (commas, semicolons or new lines; each item at most three words of
    letters, after a list marker such as `1.` or `-`; the whole after an `Adjectives:` label),
    else None: prose such as `Sure! Here are some: warm` is not a list."""
    text = _LABEL.sub("", text.strip())
    items = [_LIST_MARKER.sub("", i).strip().strip("\"'`*").strip().rstrip(".").strip() for i in _SEPARATORS.split(text)]
    items = [i for i in items if i]
    if items and all(_BARE_WORD.fullmatch(i) and len(i.split()) <= 3 for i in items):
        return items
    return None


def parse_answer(text: str | None, bare: bool = True) -> list[str]:
    """The raw word list from a reply: JSON {"adjectives": [...]} (or a comma-separated string
    in place of the list), a bare JSON list, JSON inside surrounding prose / a code fence or
    with trailing commas, a Python literal of either, or a bare `warm, vivid, chaotic` list (one
    line, or one item per line with `1.` / `-` markers, after an `Adjectives:` label); <think>
    blocks are ignored. `bare=False` reads JSON only (a model's reasoning, whose prose would
    pass for a bare list). Raises ValueError for anything else."""
    if not text or not text.strip():
        raise ValueError("empty reply")
    answer = strip_thinking(text).strip()
    if not answer:
        raise ValueError("the reply held only reasoning (<think>), no answer")
    candidates = [answer]
    start, end = answer.find("{"), answer.rfind("}")
    if 0 <= start < end:
        candidates.append(answer[start:end + 1])
    start, end = answer.find("["), answer.rfind("]")
    if 0 <= start < end:
        candidates.append(answer[start:end + 1])
    for c in candidates:
        for attempt in (c, _TRAILING_COMMA.sub(r"\1", c)):
            try:
                obj = json.loads(attempt)
            except ValueError:
                try:  # a Python literal, as small models write it: {'adjectives': ['warm', ...]}
                    obj = ast.literal_eval(attempt) if len(attempt) < 2000 else None
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # '{["a"]}': an unhashable set item
                    continue
                if not isinstance(obj, (dict, list)):
                    continue
            if isinstance(obj, dict):
                fields = {str(k).lower(): v for k, v in obj.items()}
                for key in ANSWER_KEYS:
                    words = _words(fields.get(key))
                    if words is not None:
                        return words
            if isinstance(obj, list) and (words := _words(obj)):
                return words
            break
    words = _bare_list(answer) if bare else None
    if words is not None:
        return words
    raise ValueError(f"reply is not the JSON asked for: {text[:80]!r}")
