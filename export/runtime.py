"""The torch-free artgen runtime: an exported bundle in, RGB images out.

Needs only `onnxruntime`, `numpy`, the bundle's tokenizer library (`sentencepiece` for the
tiny encoder, `tokenizers` for clip/distilbert) and Pillow to save PNGs. This file is also
copied into every bundle, so an app needs nothing but the bundle folder:

    from runtime import Runtime               # or: from export.runtime import Runtime
    rt = Runtime("bundles/tiny-int8", threads=2)
    images = rt.generate("warm, chaotic, vivid", seed=0)   # (1, 64, 64, 3) uint8

Command line: `python -m export.runtime BUNDLE "warm, vivid" -o out.png [--seed 0] [--steps 1]`.

The runtime does not trust the folder it is given: bundle.json must be a known format with
every setting it reads present and consistent (mask_id = codebook_size, the AR steps = grid^2),
each file it names must stay inside the folder and match the size and sha256 that export
recorded under "files", and each graph must take and give the tensors (names, dtypes, static
shapes) that bundle.json's numbers imply. Anything else is a one-line BundleError naming the
file and the fix; a bundle exported before "files" existed loads with a one-line warning.

A bundle holds one of two generators (`bundle.json` "generator"), and the runtime runs
both with the sampling `artgen generate` runs and the very same random numbers (numpy PCG64
streams, one per image), so the same seed gives the same picture here and in PyTorch:
- masked: parallel decoding in a random reveal order with MaskGIT's cosine schedule,
  classifier-free guidance on the first steps, Gumbel-max sampling (`predictor.onnx`);
  noise `default_rng([seed, step])`, order `default_rng([seed, order_stream])`.
- ar: one position per step in raster order (`ar_step.onnx`, past keys/values in, present
  ones out; the text's cross-attention keys/values from `ar_context.onnx` once), guidance
  on every step, top-k, Gumbel-max; noise `default_rng([seed, noise_stream])` drawn whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

BUNDLE_FORMAT = 6  # newest: 6, best of sampling.candidates kept by picker.onnx; 5, by scorer.onnx; 4, ar_step reads the codes above each
READABLE_FORMATS = (2, 3, 4, 5, 6)  # cell (sampling.above); 3, "generator" masked | ar; 2, masked only (random reveal order):
                                 # all still read. Export writes the lowest that describes the bundle (`bundle_format`), so a
                                 # client written for 3 reads every bundle without `above` or candidates
MAX_CANDIDATES = 8  # candidates per image (sampling.candidates, the `candidates` argument)
GRAPHS = {"masked": ("text_encoder", "predictor", "decoder"),
          "ar": ("text_encoder", "ar_context", "ar_step", "decoder")}
STEP_GRAPH = {"masked": "predictor", "ar": "ar_step"}  # the graph run once per sampling step
MAX_IMAGES = 64  # images per call (`-n`, prompts per generate or sample_codes): the bench's batch
MAX_SCALE = 16  # upscale factor of the saved PNG: 64 px images become 1024 px
# A temperature below this samples the argmax, as 0 does. At 1e-6 the Gumbel noise (within
# [-3.8, 16.1]) moves a score by at most 2e-5 logits, ten float32 steps of a logit near 16: it can only
# reorder codes tied to that precision. Far smaller ones divide the logits into inf and nan (1e-320
# is 0 in float32: every code came out 0). artgen.sampling.MIN_TEMPERATURE is the same number.
MIN_TEMPERATURE = 1e-6
# "hash" checks the size and sha256 of every file (the default), "size" the sizes only. Hashing the
# shipped 4.8 MB bundle took 5.4 ms (median of 50, warm cache; sizes only 0.3 ms) of a 38 ms load
# on the 2-core build machine: `python scripts/bench_bundle_verify.py --runs 50`.
VERIFY = ("hash", "size")
TOKENIZER_KINDS = ("sentencepiece", "tokenizers")
ORT_TYPES = {"int64": "tensor(int64)", "float32": "tensor(float)", "uint8": "tensor(uint8)"}
FIX = "export the bundle again with `artgen export`"


class BundleError(Exception):
    """A bundle or prompt problem, as one line naming the fix."""


def _default_bundle() -> Path:
    """The tiny model shipped inside the artgen package, when it is installed."""
    return Path(__file__).resolve().parents[1] / "artgen" / "assets" / "tiny"


class _Tokenizer:
    """Prompt -> token ids, exactly as the training-time tokenizer does (lower-cased)."""

    def __init__(self, path: Path, spec: dict, name: str):
        self.spec = spec
        data = path.read_bytes()
        if not data:
            raise BundleError(f"{name} is empty (0 bytes): {FIX}")
        looks_json = data.lstrip()[:1] == b"{"  # tokenizers writes JSON; a sentencepiece model is protobuf
        if spec["kind"] == "sentencepiece":
            import sentencepiece as spm

            if looks_json:
                raise BundleError(f"{name} is a tokenizers JSON file, not the sentencepiece model bundle.json's "
                                  f"tokenizer kind says: {FIX}")
            try:
                self.sp = spm.SentencePieceProcessor(model_proto=data)
            except Exception:  # its message is a C++ source line, not news to a user
                raise BundleError(f"{name} is not a sentencepiece model (it does not parse as one): {FIX}") from None
            self._encode = lambda text: [spec["bos_id"], *self.sp.encode(text), spec["eos_id"]]
            vocab, ids = self.sp.get_piece_size(), ("bos_id", "eos_id", "pad_id")
        else:
            from tokenizers import Tokenizer

            try:
                if not looks_json:
                    raise ValueError("it does not start with '{'")
                tok = Tokenizer.from_str(data.decode("utf-8"))
            except Exception as e:
                raise BundleError(f"{name} is not a tokenizers JSON file ({_first_line(e)}), the kind bundle.json's "
                                  f"tokenizer says: {FIX}") from None
            tok.no_padding()
            tok.no_truncation()
            self._encode = lambda text: tok.encode(text, add_special_tokens=True).ids
            vocab, ids = tok.get_vocab_size(), ("pad_id",)
        for key in ids:
            if not 0 <= spec[key] < vocab:
                raise BundleError(f"bundle.json's tokenizer {key} {spec[key]} is not a token of {name} "
                                  f"(ids 0..{vocab - 1}, {vocab} in all): {FIX}")

    def __call__(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [self._encode(p.lower()) for p in prompts]
        limit = self.spec["max_tokens"]
        for p, r in zip(prompts, rows):
            if len(r) > limit:
                raise BundleError(f"the prompt {p[:40]!r} is {len(r)} tokens long (limit {limit}): use 3-5 adjectives")
        T = max(len(r) for r in rows)
        ids = np.full((len(rows), T), self.spec["pad_id"], dtype=np.int64)
        mask = np.zeros((len(rows), T), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask  # (B, T), (B, T)


def check_prompt(prompt: str, limits: dict) -> None:
    """The same limits `artgen generate` applies: not empty, words in it, not over-long, whole characters."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise BundleError('the prompt is empty: give a few adjectives, e.g. "warm, chaotic, vivid"')
    surrogate = re.search("[\ud800-\udfff]", prompt)
    if surrogate:  # half an emoji cut by a UTF-16 substring, or a non-UTF-8 byte in argv: no tokenizer takes it
        raise BundleError(f"the prompt is not valid Unicode text (a lone surrogate {surrogate.group()!r} at character "
                          f"{surrogate.start()}, e.g. half an emoji or a byte that is not UTF-8): send whole characters")
    if not re.search(r"\w", prompt):  # only punctuation, symbols or emoji: nothing the model was trained on
        raise BundleError(f'the prompt {prompt[:40]!r} holds no words: give a few adjectives, e.g. "warm, chaotic, vivid"')
    if len(prompt) > limits["max_chars"]:
        raise BundleError(f"the prompt is {len(prompt)} characters long (limit {limits['max_chars']}): use 3-5 adjectives")
    words = [w for w in re.split(r"[,;/|+\s]+", prompt.lower()) if w.strip(".!?'\"()")]
    if len(words) > limits["max_words"]:
        raise BundleError(f"the prompt has {len(words)} words (limit {limits['max_words']}): use 3-5 adjectives")


def gumbel(seed: int, step: int, shape: tuple[int, ...]) -> np.ndarray:
    """Gumbel(0, 1) noise of one image at sampling step `step`, from the stream
    default_rng([seed, step]): row j is for the j-th position that step fixes (masked); the
    autoregressive sampler draws (N, K) from default_rng([seed, noise_stream]) at once."""
    u = np.clip(np.random.default_rng([int(seed), step]).random(shape), 1e-20, 1.0 - 1e-7)
    return -np.log(-np.log(u))


def pick_codes(logits: np.ndarray, noise: np.ndarray, temperature: float, top_k: int) -> np.ndarray:
    """(B,) codes from logits (B, K) float32: the top_k most likely (0: all), then Gumbel-max
    at `temperature` with noise (B, K) float32, or the argmax below MIN_TEMPERATURE (0 included)."""
    if top_k:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k:].min(axis=-1, keepdims=True)  # (B, 1)
        logits = np.where(logits < kth, np.float32(-np.inf), logits)
    if temperature >= MIN_TEMPERATURE:
        logits = logits / np.float32(temperature) + noise
    return logits.argmax(-1)


def bundle_format(generator: str, above: bool, candidates: int = 1, picker: bool = False) -> int:
    """The lowest format that describes a bundle: 6 for a best-of-candidates sampler that keeps one
    by the caption picker, 5 by the code scorer, 4 for a step graph that reads the codes above each
    cell, else 3."""
    if generator == "ar" and candidates > 1:
        return 6 if picker else 5
    return 4 if generator == "ar" and above else 3


def prompt_words(prompt: str, adjectives: Sequence[str], synonyms: dict[str, str] | None = None) -> list[str]:
    """The scorer's adjectives that `prompt` names, in the scorer's order: the lower-cased prompt's
    words ([a-z]+, hyphenated ones whole and in parts) that are an adjective or a synonym of one
    (`synonyms`: word -> adjective, the bundle's scorer.synonyms)."""
    tokens = re.findall(r"[a-z]+(?:-[a-z]+)*", prompt.lower())
    words = {*tokens, *(part for t in tokens for part in t.split("-"))}
    named = words | {synonyms[w] for w in words if w in (synonyms or {})}
    return [a for a in adjectives if a in named]


def best_candidates(logits: np.ndarray, prompts: Sequence[str], adjectives: Sequence[str],
                    synonyms: dict[str, str] | None = None) -> np.ndarray:
    """(B,) the kept candidate of each image: `logits` (C, B, V) of the scorer over C candidates
    of B images; the highest mean log-sigmoid over the adjectives image b's prompt names, the
    first on a tie, 0 when it names none."""
    asked = asked_words(prompts, adjectives, synonyms).astype(np.float64)
    log_sigmoid = -np.logaddexp(0.0, -np.asarray(logits, dtype=np.float64))  # (C, B, V), float64 as the page's
    agreement = (log_sigmoid * asked).sum(-1) / np.maximum(asked.sum(-1), 1)  # (C, B)
    return agreement.argmax(0)


def asked_words(prompts: Sequence[str], adjectives: Sequence[str], synonyms: dict[str, str] | None = None) -> np.ndarray:
    """(B, V) float32 multi-hot of the `adjectives` each prompt names (`prompt_words`): what the
    caption picker reads beside the images."""
    out = np.zeros((len(prompts), len(adjectives)), dtype=np.float32)
    index = {a: i for i, a in enumerate(adjectives)}
    for b, p in enumerate(prompts):
        for a in prompt_words(p, adjectives, synonyms):
            out[b, index[a]] = 1.0
    return out


def picked_candidates(scores: np.ndarray, words: np.ndarray) -> np.ndarray:
    """(B,) the kept candidate of each image: `scores` (C, B) the picker's cosine of each candidate
    to its prompt's words (B, V); the highest, the first on a tie, 0 when the prompt names none."""
    kept = np.asarray(scores).argmax(0)
    return np.where(np.asarray(words).sum(-1) > 0, kept, 0)


def above_codes(codes: np.ndarray, t: int, grid: int, start_id: int) -> np.ndarray:
    """What an `above` step graph reads for position t (raster order): the codes of the cells
    above-left, above and above-right of it, (B, 3) int64, `start_id` for a cell off the grid (the
    first row, the first or last column). codes (B, N): the codes drawn so far (before t)."""
    row, col = divmod(t, grid)
    out = np.full((len(codes), 3), start_id, dtype=np.int64)
    if row:
        for i, c in enumerate((col - 1, col, col + 1)):
            if 0 <= c < grid:
                out[:, i] = codes[:, (row - 1) * grid + c]
    return out


def check_prompts(prompts) -> list[str]:
    """`prompts` as a list of 1 to MAX_IMAGES strings (each checked later by check_prompt); one
    string is one prompt, as `generate` takes it."""
    if isinstance(prompts, str):
        return [prompts]
    if prompts is None or (isinstance(prompts, (list, tuple)) and not prompts):
        raise BundleError("no prompt given: pass a prompt such as \"warm, chaotic, vivid\"")
    if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
        kind = type(prompts).__name__ if not isinstance(prompts, (list, tuple)) else "a list holding other things"
        raise BundleError(f"the prompt must be a string or a list of strings, e.g. \"warm, chaotic, vivid\" (got {kind})")
    if len(prompts) > MAX_IMAGES:
        raise BundleError(f"{len(prompts)} images asked for in one call (limit {MAX_IMAGES}): "
                          f"generate them in batches of at most {MAX_IMAGES}")
    return list(prompts)


def check_seed(value) -> int:
    """A seed as a whole number >= 0: numpy's random streams take no other."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BundleError(f"seeds must be whole numbers >= 0 (got {_short(value)})")
    if value < 0:
        raise BundleError(f"seeds must be >= 0 (got {value}): numpy's random streams take no negative seeds")
    return int(value)


def check_int(name: str, value, low: int, high: int) -> int:
    """A setting as a whole number within [low, high], or a BundleError naming it."""
    try:
        v = int(value)
        if v != value:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise BundleError(f"{name} must be a whole number between {low} and {high} (got {value!r})") from None
    if not low <= v <= high:
        raise BundleError(f"{name} must be between {low} and {high} (got {value!r})")
    return v


def check_float(name: str, value, low: float | None = None, high: float | None = None) -> float:
    """A sampling setting as a finite float within [low, high], or a BundleError naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BundleError(f"{name} must be a number (got {value!r})") from None
    if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        bounds = f" between {low:g} and {high:g}" if low is not None and high is not None else (
            f" >= {low:g}" if low is not None else "")
        raise BundleError(f"{name} must be a finite number{bounds} (got {value!r})")
    return v


def check_temperature(value) -> float:
    """The sampling temperature as a finite float >= 0, or a BundleError naming it; one below
    MIN_TEMPERATURE is 0, the argmax, which it differs from only by float32 rounding."""
    t = check_float("temperature", value, low=0.0)
    return t if t >= MIN_TEMPERATURE else 0.0


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def _short(value, limit: int = 40) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, bool, type(None))) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# The settings of bundle.json the runtime reads: dotted path -> (kind, lowest value).
_FIELDS = {"grid": ("int", 1), "codebook_size": ("int", 2), "image_size": ("int", 1), "text_width": ("int", 1),
           "sampling.steps": ("int", 1), "sampling.guidance": ("number", None), "sampling.temperature": ("number", 0),
           "prompt_limits.max_chars": ("int", 1), "prompt_limits.max_words": ("int", 1),
           "tokenizer.kind": ("str", None), "tokenizer.file": ("str", None), "tokenizer.pad_id": ("int", 0),
           "tokenizer.max_tokens": ("int", 1)}
_GENERATOR_FIELDS = {
    "masked": {"mask_id": ("int", None), "sampling.max_steps": ("int", 1), "sampling.order_stream": ("int", 0),
               "sampling.guided_share": ("number", 0)},
    "ar": {"sampling.layers": ("int", 1), "sampling.heads": ("int", 1), "sampling.head_width": ("int", 1),
           "sampling.start_id": ("int", 0), "sampling.noise_stream": ("int", 0)}}
_TOKENIZER_FIELDS = {"sentencepiece": {"tokenizer.bos_id": ("int", 0), "tokenizer.eos_id": ("int", 0)}, "tokenizers": {}}


def _field(meta: dict, path: str, where: str, kind: str, low: float | None = None):
    """bundle.json's value at the dotted `path`, present and of `kind` ("int", "number" (finite)
    or "str" (not empty)) and >= `low`, else a BundleError naming it."""
    value = meta
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise BundleError(f"{where} lacks {path}: {FIX}")
        value = value[part]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {"int": number and isinstance(value, int), "number": number and math.isfinite(value),
          "str": isinstance(value, str) and value != ""}[kind]
    if ok and low is not None and value < low:
        ok = False
    if not ok:
        want = {"int": "a whole number", "number": "a finite number", "str": "a non-empty string"}[kind]
        bound = f" >= {low:g}" if low is not None else ""
        raise BundleError(f"{where} has {path} = {_short(value)}, not {want}{bound}: {FIX}")
    return value


def load_meta(bundle: Path) -> dict:
    """bundle.json of `bundle`, checked: an object of a format this runtime reads, every setting
    it uses present and of the right type, and the ones tied together agreeing."""
    meta_path = bundle / "bundle.json"
    if bundle.is_file():
        raise BundleError(f"{bundle} is a file, not a bundle folder: give the folder that holds bundle.json"
                          + (f" ({bundle.parent})" if bundle.name == "bundle.json" else ""))
    if not bundle.exists():  # a relative path from another folder, a typo: not a reason to export one
        raise BundleError(f"the bundle folder {bundle} does not exist" + ("" if bundle.is_absolute() else f" (in {Path.cwd()})")
                          + ": give the path of a folder that holds bundle.json")
    if not meta_path.is_file():
        raise BundleError(f"{bundle} is not an artgen bundle (no bundle.json): create one with `artgen export`")
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # RecursionError: nesting past Python's limit
        raise BundleError(f"{meta_path} is not valid JSON ({getattr(e, 'msg', None) or _first_line(e)}): {FIX}") from None
    if not isinstance(meta, dict):
        kind = {list: "a list", str: "a string", type(None): "null"}.get(type(meta), type(meta).__name__)
        raise BundleError(f"{meta_path} holds {kind}, not the object of settings a bundle has: {FIX}")
    fmt = meta.get("format")
    if type(fmt) is int and fmt > BUNDLE_FORMAT:  # from a newer artgen: the runtime.py copied into it reads it
        raise BundleError(f"{bundle} has bundle format {fmt}, newer than this runtime reads "
                          f"({', '.join(map(str, READABLE_FORMATS))}): run it with the runtime.py inside the bundle, "
                          "or upgrade artgen")
    if type(fmt) is not int or fmt not in READABLE_FORMATS:
        raise BundleError(f"{bundle} has bundle format {_short(fmt)}, this runtime reads formats "
                          f"{', '.join(map(str, READABLE_FORMATS))}: export it again with the matching artgen version")
    generator = meta.get("generator", "masked")
    if generator not in GRAPHS:
        raise BundleError(f"{bundle} holds an unknown generator {_short(generator)}: export it again with the "
                          "matching artgen version")
    where = str(meta_path)
    kind = _field(meta, "tokenizer.kind", where, "str")
    if kind not in TOKENIZER_KINDS:
        raise BundleError(f"{where} has tokenizer.kind = {_short(kind)}, not one of {', '.join(TOKENIZER_KINDS)}: {FIX}")
    fields = {**_FIELDS, **_GENERATOR_FIELDS[generator], **_TOKENIZER_FIELDS[kind],
              **{f"graphs.{name}.file": ("str", None) for name in GRAPHS[generator]}}
    for path, (want, low) in fields.items():
        _field(meta, path, where, want, low)
    for name, graph in meta["graphs"].items():  # the ones this generator does not run are still listed and verified
        if not isinstance(graph, dict) or not isinstance(graph.get("file"), str):
            raise BundleError(f"{where} has graphs.{name} = {_short(graph)}, not an object with a file name: {FIX}")
    grid, K, d = meta["grid"], meta["codebook_size"], meta["sampling"]
    if generator == "masked":
        if meta["mask_id"] != K:  # the masked predictor's "unknown here" is the id after the real codes
            raise BundleError(f"{where} has mask_id {meta['mask_id']}, but the mask id of a masked bundle is "
                              f"codebook_size {K} (codes 0..{K - 1} are real codes): {FIX}")
        if d["steps"] > d["max_steps"] or d["guided_share"] > 1:
            raise BundleError(f"{where} has sampling steps {d['steps']} over max_steps {d['max_steps']} or guided_share "
                              f"{d['guided_share']} over 1: {FIX}")
    else:
        if d["start_id"] != K:  # the autoregressive start token is the id after the real codes
            raise BundleError(f"{where} has sampling.start_id {d['start_id']}, but the start token of an "
                              f"autoregressive bundle is codebook_size {K}: {FIX}")
        if d["steps"] != grid * grid:
            raise BundleError(f"{where} has sampling.steps {d['steps']}, but grid {grid} has {grid * grid} positions, "
                              f"one per step: {FIX}")
        if "top_k" in d:
            _field(meta, "sampling.top_k", where, "int", 0)
        if "above" in d and (type(d["above"]) is not bool or (d["above"] and fmt < 4)):
            raise BundleError(f"{where} has sampling.above = {_short(d['above'])}, not true or false in a bundle of format 4 "
                              f"or newer (this one: {fmt}): {FIX}")
        if "candidates" in d:
            n = _field(meta, "sampling.candidates", where, "int", 1)
            if n > MAX_CANDIDATES or (n > 1 and fmt < 5):
                raise BundleError(f"{where} has sampling.candidates = {n}, not 1 to {MAX_CANDIDATES} in a bundle of format 5 or newer "
                                  f"(this one: {fmt}): {FIX}")
        if "picker" in meta.get("graphs", {}) and fmt < 6:
            raise BundleError(f"{where} has a picker graph in a bundle of format {fmt} (the picker came in format 6): {FIX}")
        chooser = "picker" if fmt >= 6 else "scorer"  # what keeps one of several candidates
        for kind in ("scorer", "picker"):
            if kind in meta and not isinstance(meta[kind], dict):
                raise BundleError(f"{where} has {kind} = {_short(meta[kind])}, not an object: {FIX}")
            if kind in meta.get("graphs", {}) or (d.get("candidates", 1) > 1 and kind == chooser):
                _field(meta, f"graphs.{kind}.file", where, "str")
                adjectives = meta.get(kind, {}).get("adjectives")  # one that is not an object is refused above
                if (not isinstance(adjectives, list) or not adjectives or not all(isinstance(a, str) and a for a in adjectives)
                        or len(set(adjectives)) != len(adjectives)):
                    raise BundleError(f"{where} has a {kind} graph but no {kind}.adjectives list of distinct words: {FIX}")
                synonyms = meta[kind].get("synonyms", {})
                if not isinstance(synonyms, dict) or not all(isinstance(w, str) and re.fullmatch(r"[a-z]+(?:-[a-z]+)*", w)
                                                             and w not in adjectives and a in adjectives
                                                             for w, a in synonyms.items()):
                    raise BundleError(f"{where} has {kind}.synonyms = {_short(synonyms)}, not a map of words to "
                                      f"{kind}.adjectives: {FIX}")
    return meta


def inside(bundle: Path, name, what: str) -> Path:
    """The bundle file `name` (a path relative to the bundle folder, as bundle.json writes it),
    refused when it, or a link on the way, leads out of the folder."""
    root = bundle.resolve()
    try:
        path = (bundle / name).resolve() if isinstance(name, str) and not Path(name).is_absolute() else root
    except (OSError, ValueError, RuntimeError):  # a link loop, a NUL byte: no file of the bundle either
        path = root
    if root not in path.parents:
        raise BundleError(f"{bundle}/bundle.json points {what} at {_short(name, 160)}, outside the bundle folder: "
                          f"a bundle holds all its files; {FIX}")
    return path


def file_record(path: Path) -> dict:
    """{"bytes": size, "sha256": hex digest} of one file, as bundle.json's "files" records it."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def bundle_files(meta: dict) -> list[str]:
    """The files the runtime loads, as bundle.json names them: each graph and the tokenizer."""
    return [g["file"] for g in meta["graphs"].values()] + [meta["tokenizer"]["file"]]


def verify_files(bundle: Path, meta: dict, verify: str = "hash") -> bool:
    """Check the files the runtime loads against bundle.json's "files": each must be listed and
    have its recorded size, and its recorded sha256 when `verify` is "hash". False when the
    bundle records none (exported before artgen wrote them): nothing could be checked."""
    if "files" not in meta:
        return False
    where, files = bundle / "bundle.json", meta["files"]
    if not isinstance(files, dict):
        raise BundleError(f"{where} has files = {_short(files)}, not an object of sizes and hashes: {FIX}")
    for name in bundle_files(meta):
        if name not in files:
            raise BundleError(f"{where} lists no size or sha256 for {name}, which the bundle loads: {FIX}")
    for name, want in files.items():
        path = inside(bundle, name, "a listed file")
        if not (isinstance(want, dict) and type(want.get("bytes")) is int and isinstance(want.get("sha256"), str)):
            raise BundleError(f"{where} records {_short(want)} for {name}, not its bytes and sha256: {FIX}")
        if not path.is_file():
            raise BundleError(f"the bundle {bundle} is incomplete: {name} is missing; {FIX}")
        size = path.stat().st_size
        if size != want["bytes"]:
            raise BundleError(f"{name} in {bundle} is {size} bytes where bundle.json records {want['bytes']} (truncated "
                              f"or replaced): re-copy the bundle, or {FIX}")
        if verify == "hash":
            got = file_record(path)["sha256"]
            if got != want["sha256"]:
                raise BundleError(f"{name} in {bundle} has sha256 {got[:12]}... where bundle.json records "
                                  f"{want['sha256'][:12]}... (changed since export): re-copy the bundle, or {FIX}")
    return True


def graph_io(meta: dict) -> dict[str, tuple[list, list, tuple[str, ...]]]:
    """What each graph must take and give, from bundle.json's numbers: {graph: (inputs, outputs,
    the settings they follow from)}, a tensor being (name, shape, dtype) with strings for the
    dynamic axes, in the order export writes them."""
    grid, K, d, size = meta["grid"], meta["codebook_size"], meta["text_width"], meta["image_size"]
    states = ("states", ["batch", "tokens", d], "float32")
    mask = ("attention_mask", ["batch", "tokens"], "int64")
    io = {"text_encoder": ([("input_ids", ["batch", "tokens"], "int64"), mask], [states], ("text_width",)),
          "decoder": ([("codes", ["batch", grid, grid], "int64")], [("images", ["batch", size, size, 3], "uint8")],
                      ("grid", "image_size"))}
    if meta.get("generator", "masked") == "ar" and "scorer" in meta.get("graphs", {}):
        io["scorer"] = ([("codes", ["batch", grid, grid], "int64")],
                        [("logits", ["batch", len(meta["scorer"]["adjectives"])], "float32")], ("grid",))
    if meta.get("generator", "masked") == "ar" and "picker" in meta.get("graphs", {}):
        io["picker"] = ([("images", ["batch", size, size, 3], "uint8"), ("words", ["batch", len(meta["picker"]["adjectives"])], "float32")],
                        [("scores", ["batch"], "float32")], ("image_size",))
    if meta.get("generator", "masked") == "masked":
        N = grid * grid
        io["predictor"] = ([("codes", ["batch", N], "int64"), states, mask], [("logits", ["batch", N, K], "float32")],
                           ("grid", "codebook_size", "text_width"))
        return io
    s = meta["sampling"]
    L, h, hs = s["layers"], s["heads"], s["head_width"]
    kv = lambda name, axis: (name, ["batch", h, axis, hs], "float32")  # noqa: E731
    context = ([(f"cross_key_{i}", ["batch", h, hs, "text_keys"], "float32") for i in range(L)]
               + [kv(f"cross_value_{i}", "text_keys") for i in range(L)]
               + [("cross_bias", ["batch", 1, 1, "text_keys"], "float32")]
               + ([("text_modulation", ["batch", L, 6, h * hs], "float32")] if s.get("text_modulation") else []))
    past = [kv(f"past_{kind}_{i}", "past") for kind in ("key", "value") for i in range(L)]
    present = [kv(f"present_{kind}_{i}", "past_plus_1") for kind in ("key", "value") for i in range(L)]
    heads = ("sampling.layers", "sampling.heads", "sampling.head_width")
    io["ar_context"] = ([states, mask], context, ("text_width", *heads))
    above = [("above", ["batch", 3], "int64")] if s.get("above") else []
    io["ar_step"] = ([("token", ["batch", 1], "int64"), *above, *past, *context], [("logits", ["batch", K], "float32"), *present],
                     ("codebook_size", *heads))
    return io


def _setting(meta: dict, path: str):
    for part in path.split("."):
        meta = meta[part]
    return meta


def _shape(dims) -> str:
    return "[" + ", ".join(str(x) if x is not None else "?" for x in dims) + "]"


def _names(tensors: list[str]) -> str:
    return ", ".join(tensors[:3]) + (f" and {len(tensors) - 3} more" if len(tensors) > 3 else "")


def check_graph_io(session, graph: str, file: str, meta: dict) -> None:
    """The ONNX Runtime `session` loaded from `file` (named so in errors) takes and gives what
    bundle.json says the `graph` does (names in order, dtypes, every static axis), else a
    BundleError naming it."""
    inputs, outputs, basis = graph_io(meta)[graph]
    values = ", ".join(f"{k.split('.')[-1]} {_setting(meta, k)}" for k in basis)
    for side, actual, wanted in (("input", session.get_inputs(), inputs), ("output", session.get_outputs(), outputs)):
        names, wanted_names = [a.name for a in actual], [w[0] for w in wanted]
        if names != wanted_names:
            raise BundleError(f"{file} is not the {graph} graph bundle.json ({values}) describes: its {side}s are "
                              f"{_names(names)}, not {_names(wanted_names)} (graph files mixed up?); {FIX}")
        for a, (name, shape, dtype) in zip(actual, wanted):
            fits = len(a.shape) == len(shape) and all(
                not isinstance(got, int) if isinstance(want, str) else got == want for got, want in zip(a.shape, shape))
            if a.type != ORT_TYPES[dtype] or not fits:
                got = {v: k for k, v in ORT_TYPES.items()}.get(a.type, a.type)
                raise BundleError(f"{file} does not fit bundle.json ({values}): its {side} {name} is {_shape(a.shape)} "
                                  f"{got}, where bundle.json implies {_shape(shape)} {dtype}; {FIX}")


class Runtime:
    """Text to images with an exported bundle. `threads=None` lets ONNX Runtime choose (the
    autoregressive step graph always runs on one thread: faster for its tiny per-step work).
    `spinning` says which sessions' thread pools busy-wait for work between operators:
    "none" (the default), "predictor" (the graph run once per step: faster in most processes
    on the 2-core build machine, twice as slow in some) or "all" (ONNX Runtime's own default,
    much slower here); scripts/bench_runtime_spin.py measures the three. `verify`: "hash" (the
    default) checks each file's size and sha256 against bundle.json's "files", "size" the sizes
    only (the cost of each is noted at VERIFY)."""

    SPINNING = ("none", "predictor", "all")

    def __init__(self, bundle_dir: str | Path | None = None, threads: int | None = None, spinning: str = "none",
                 verify: str = "hash"):
        import onnxruntime as ort

        if spinning not in self.SPINNING:
            raise BundleError(f"spinning must be one of {', '.join(self.SPINNING)} (got {spinning!r})")
        if verify not in VERIFY:
            raise BundleError(f"verify must be one of {', '.join(VERIFY)} (got {verify!r})")
        if threads is not None:
            check_int("threads", threads, 0, 1024)  # 0: ONNX Runtime's choice, as None
        bundle = Path(bundle_dir) if bundle_dir is not None else _default_bundle()
        self.bundle = bundle
        meta = load_meta(bundle)
        self.generator = meta.get("generator", "masked")
        self.meta = meta
        self.graphs = GRAPHS[self.generator] + tuple(g for g in ("scorer", "picker") if self.generator == "ar" and g in meta["graphs"])
        paths = {name: inside(bundle, meta["graphs"][name]["file"], f"the {name} graph") for name in self.graphs}
        paths["tokenizer"] = inside(bundle, meta["tokenizer"]["file"], "the tokenizer")
        for path in paths.values():
            if not path.is_file():
                raise BundleError(f"the bundle {bundle} is incomplete: {path.name} is missing; {FIX}")
        if not verify_files(bundle, meta, verify):
            print(f"warning: {bundle} was exported before bundles recorded their files' sizes and sha256, so its files "
                  f"are not verified; {FIX}", file=sys.stderr)
        self.tokenizer = _Tokenizer(paths["tokenizer"], meta["tokenizer"], f"{meta['tokenizer']['file']} in {bundle}")
        self.sessions = {}
        for name in self.graphs:
            options = ort.SessionOptions()
            if name == "ar_step":
                # Run 2 x 256 times per image on a batch of 2 rows: a second thread costs more in
                # hand-offs than it saves (`scripts/bench_ar_step.py --sizes 128x3 --text-modulation
                # --rope`, 2026-11-29: the fp32 step loop 75 vs 87 ms on 1 vs 2 threads).
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
            elif threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            # The three sessions run one after another on few cores. A busy-waiting pool saves
            # the wake-up of its workers at every operator, which can pay off for the predictor's
            # back-to-back runs; pools that spin also steal the cores the caller's thread needs.
            spin = spinning == "all" or (spinning == "predictor" and name == STEP_GRAPH[self.generator])
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            options.log_severity_level = 3
            file = meta["graphs"][name]["file"]
            try:
                self.sessions[name] = ort.InferenceSession(str(paths[name]), options, providers=["CPUExecutionProvider"])
            except Exception as e:  # a damaged graph: one line, not an ORT stack trace
                raise BundleError(f"{file} in {bundle} cannot be loaded ({_first_line(e)}): {FIX}") from None
            check_graph_io(self.sessions[name], name, f"{file} in {bundle}", meta)

    @property
    def image_size(self) -> int:
        return self.meta["image_size"]

    @property
    def chooser(self) -> str | None:
        """What keeps one of several candidates: "picker" (format 6), "scorer" (5), or None."""
        return "picker" if "picker" in self.sessions else "scorer" if "scorer" in self.sessions else None

    def encode(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids, mask = self.tokenizer(prompts)
        states = self.sessions["text_encoder"].run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return states, mask  # (B, T, d), (B, T)

    def logits(self, codes: np.ndarray, states: np.ndarray, mask: np.ndarray, guidance: float) -> np.ndarray:
        """Guided logits (B, N, K), uncond + guidance * (cond - uncond); the conditional and the
        text-dropped (all-zero mask) rows run as one batch, and guidance 1 runs only the first."""
        B = len(codes)
        if guidance != 1.0:
            codes, states = np.concatenate([codes, codes]), np.concatenate([states, states])
            mask = np.concatenate([mask, np.zeros_like(mask)])
        out = self.sessions["predictor"].run(None, {"codes": codes, "states": states, "attention_mask": mask})[0]
        if guidance == 1.0:
            return out
        cond, uncond = out[:B], out[B:]
        return uncond + np.float32(guidance) * (cond - uncond)

    def sample_codes(self, prompts: Sequence[str], seed: int = 0, steps: int | None = None,
                     guidance: float | None = None, temperature: float | None = None,
                     seeds: Sequence[int] | None = None, top_k: int | None = None,
                     candidates: int | None = None, decoded: list | None = None, merge: bool = False) -> np.ndarray:
        """(B, h, w) int64 code grids, image i drawn with seed + i (or `seeds[i]`). None takes
        the bundle's default of a setting; `top_k` and `candidates` (draw that many, keep the one
        the bundle's picker or scorer finds closest to the prompt's words) are for the
        autoregressive generator only. A `decoded` list receives the kept grids' images when the
        picker decoded them on the way (`generate` then does not decode them again).

        Each image is the one its prompt and seed give alone: an int8 graph quantises its
        activations with one scale over the whole batch, so in an int8 bundle the rows are drawn in
        separate calls: one per distinct prompt where only the text graphs are int8, one per row
        where an int8 graph sees each seed's codes (masked predictor, int8 decoder; `exact_unit`). `merge=True`
        draws them as one batch, faster, at the price of images that may differ a little
        from the ones drawn alone (`batch_invariant(meta)` says which bundles are exact either way)."""
        d = self.meta["sampling"]
        prompts = check_prompts(prompts)
        guidance = check_float("guidance", d["guidance"] if guidance is None else guidance)
        temperature = check_temperature(d["temperature"] if temperature is None else temperature)
        for p in prompts:
            check_prompt(p, self.meta["prompt_limits"])
        seeds = [check_seed(s) for s in seeds] if seeds is not None else [check_seed(seed) + i for i in range(len(prompts))]
        if len(seeds) != len(prompts):
            raise BundleError(f"{len(seeds)} seeds for {len(prompts)} prompts: give one seed per prompt")
        unit = exact_unit(self.meta)
        if not merge and len(prompts) > 1 and (unit == "row" or (unit == "prompt" and len(set(prompts)) > 1)):
            return self._apart(prompts, seeds, steps, guidance, temperature, top_k, candidates, decoded, unit)
        if self.generator == "ar":
            if steps is not None and steps != d["steps"]:
                raise BundleError(f"steps {steps} does not apply to this autoregressive bundle: it draws the "
                                  f"{d['steps']} positions one per step; leave steps out")
            top_k = check_int("top_k", d.get("top_k", 0) if top_k is None else top_k, 0, self.meta["codebook_size"])
            candidates = check_int("candidates", d.get("candidates", 1) if candidates is None else candidates, 1, MAX_CANDIDATES)
            if candidates > 1 and self.chooser is None:
                raise BundleError(f"candidates {candidates} needs a bundle with a caption picker or a code scorer: export it "
                                  "with `artgen export --generator ar --candidates N`, or leave candidates at 1")
            return self._best_of(prompts, seeds, guidance, temperature, top_k, candidates, decoded)
        if top_k:
            raise BundleError("top_k is for autoregressive bundles; this bundle holds the masked generator")
        if candidates not in (None, 1):
            raise BundleError("candidates is for autoregressive bundles; this bundle holds the masked generator")
        steps = check_int("steps", d["steps"] if steps is None else steps, 1, d["max_steps"])
        grid, K, mask_id = self.meta["grid"], self.meta["codebook_size"], self.meta["mask_id"]
        B, N = len(prompts), grid * grid

        states, mask = self.encode(prompts)
        # each image fixes its positions in its own random order, `known` of them after each step
        order = np.stack([np.random.default_rng([int(s), d["order_stream"]]).permutation(N) for s in seeds])
        codes = np.full((B, N), mask_id, dtype=np.int64)  # (B, N) all unknown
        known = 0
        for step in range(steps):
            guided = step < math.ceil(round(steps * d["guided_share"], 9))  # guidance on the first steps only
            logits = self.logits(codes, states, mask, guidance if guided else 1.0)  # (B, N, K)
            upto = N - int(math.floor(N * math.cos(math.pi / 2 * (step + 1) / steps)))  # cosine schedule
            for b in range(B):
                rows = order[b, known:upto]
                scores = logits[b, rows]  # (n, K)
                if temperature >= MIN_TEMPERATURE:
                    scores = scores / np.float32(temperature) + gumbel(seeds[b], step, (len(rows), K)).astype(np.float32)
                codes[b, rows] = scores.argmax(-1)
            known = upto
        return codes.reshape(B, grid, grid)

    def _apart(self, prompts: list[str], seeds: list[int], steps, guidance: float, temperature: float, top_k,
               candidates, decoded: list | None, unit: str) -> np.ndarray:
        """`sample_codes` one distinct prompt at a time (unit "prompt": its rows as one batch of
        equal rows, whose shared quantisation scale is the one a row alone gets) or one row at a
        time (unit "row"), put back in the caller's order; `decoded` gets every image when the
        picker decoded some on the way (the rest decoded here, not all again by `generate`)."""
        groups = ([[i for i, p in enumerate(prompts) if p == prompt] for prompt in dict.fromkeys(prompts)] if unit == "prompt"
                  else [[i] for i in range(len(prompts))])
        codes: np.ndarray | None = None
        images: list[tuple[list[int], np.ndarray | None]] = []
        for rows in groups:
            part_decoded: list = []
            part = self.sample_codes([prompts[i] for i in rows], steps=steps, guidance=guidance, temperature=temperature,
                                     seeds=[seeds[i] for i in rows], top_k=top_k, candidates=candidates, decoded=part_decoded,
                                     merge=True)
            if codes is None:
                codes = np.empty((len(prompts), *part.shape[1:]), dtype=part.dtype)
            codes[rows] = part
            images.append((rows, part_decoded[0] if part_decoded else None))
        if decoded is not None and any(im is not None for _, im in images):
            done = [im for _, im in images if im is not None]
            out = np.empty((len(prompts), *done[0].shape[1:]), dtype=done[0].dtype)
            for rows, im in images:
                out[rows] = im if im is not None else self.decode(codes[rows])
            decoded.append(out)
        return codes

    def _best_of(self, prompts: list[str], seeds: list[int], guidance: float, temperature: float, top_k: int,
                 candidates: int, decoded: list | None = None) -> np.ndarray:
        """`candidates` draws of every image, candidate j with noise stream noise_stream + j, each
        candidate's loop in its own thread (ONNX Runtime releases the GIL and the step graph runs
        on one core, so on two cores two candidates take about the time of one); the caption picker
        keeps one per image (every candidate decoded, `picked_candidates`), else the code scorer
        (`best_candidates`). A batch whose prompts name none of their words draws candidate 0 only,
        which is what they would keep."""
        states, mask = self.encode(prompts)
        words = self.meta.get(self.chooser or "scorer", {})
        adjectives, synonyms = words.get("adjectives", []), words.get("synonyms", {})
        # at temperature 0 every candidate is the argmax draw; a prompt naming no scorer word keeps candidate 0
        if candidates == 1 or temperature < MIN_TEMPERATURE or not any(prompt_words(p, adjectives, synonyms) for p in prompts):
            return self._sample_ar(states, mask, seeds, guidance, temperature, top_k)
        from concurrent.futures import ThreadPoolExecutor

        picker = self.chooser == "picker"

        def draw(j: int) -> tuple[np.ndarray, np.ndarray | None]:  # the picker reads pixels: each thread decodes its own
            codes = self._sample_ar(states, mask, seeds, guidance, temperature, top_k, j)
            return codes, self.decode(codes) if picker else None

        with ThreadPoolExecutor(candidates) as pool:
            results = list(pool.map(draw, range(candidates)))
        drawn = np.stack([codes for codes, _ in results])  # (C, B, h, w)
        C, B = drawn.shape[:2]
        flat = drawn.reshape(C * B, *drawn.shape[2:])
        if picker:
            asked = asked_words(prompts, adjectives, synonyms)  # (B, V)
            images = np.stack([im for _, im in results])  # (C, B, H, W, 3)
            scores = self.sessions["picker"].run(None, {"images": images.reshape(C * B, *images.shape[2:]),
                                                        "words": np.tile(asked, (C, 1))})[0]
            kept = picked_candidates(scores.reshape(C, B), asked)
            if decoded is not None:
                decoded.append(images[kept, np.arange(B)])
        else:
            logits = self.sessions["scorer"].run(None, {"codes": flat})[0]
            kept = best_candidates(logits.reshape(C, B, -1), prompts, adjectives, synonyms)
        return drawn[kept, np.arange(B)]

    def _sample_ar(self, states: np.ndarray, mask: np.ndarray, seeds: list[int], guidance: float, temperature: float,
                   top_k: int, candidate: int = 0) -> np.ndarray:
        """Raster-order sampling with the KV cache: ar_context once, then ar_step per position."""
        d = self.meta["sampling"]
        grid, K = self.meta["grid"], self.meta["codebook_size"]
        B, N, L = len(states), grid * grid, d["layers"]
        guided = guidance != 1.0
        if guided:  # the prompt rows, then the same rows with the text dropped, as one batch
            states, mask = np.concatenate([states, states]), np.concatenate([mask, np.zeros_like(mask)])
        context_names = [o.name for o in self.sessions["ar_context"].get_outputs()]
        feed = dict(zip(context_names, self.sessions["ar_context"].run(None, {"states": states, "attention_mask": mask})))
        past_names = [f"past_key_{i}" for i in range(L)] + [f"past_value_{i}" for i in range(L)]
        empty = np.zeros((len(states), d["heads"], 0, d["head_width"]), dtype=np.float32)
        feed.update({n: empty for n in past_names})
        noise = np.stack([gumbel(s, d["noise_stream"] + candidate, (N, K)) for s in seeds]).astype(np.float32)  # (B, N, K)
        g = np.float32(guidance)
        step = self.sessions["ar_step"]
        codes = np.zeros((B, N), dtype=np.int64)
        feed["token"] = np.full((len(states), 1), d["start_id"], dtype=np.int64)
        above = bool(d.get("above"))
        for t in range(N):
            if above:
                feed["above"] = np.tile(above_codes(codes, t, grid, d["start_id"]), (len(states) // B, 1))
            out = step.run(None, feed)
            logits = out[0]  # (B or 2B, K)
            if guided:
                logits = logits[B:] + g * (logits[:B] - logits[B:])
            codes[:, t] = pick_codes(logits, noise[:, t], temperature, top_k)
            feed.update(zip(past_names, out[1:]))
            feed["token"] = np.concatenate([codes[:, t], codes[:, t]])[:, None] if guided else codes[:, t:t + 1]
        return codes.reshape(B, grid, grid)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 pixels of code grids (B, h, w); an int8 decoder decodes them one by one
        (its activation scale is taken over the batch: each image is then the one its codes give alone)."""
        codes = codes.astype(np.int64)
        if "decoder" in int8_graphs(self.meta) and len(codes) > 1:
            return np.concatenate([self.sessions["decoder"].run(None, {"codes": codes[i:i + 1]})[0] for i in range(len(codes))])
        return self.sessions["decoder"].run(None, {"codes": codes})[0]

    def generate(self, prompt: str | Sequence[str], seed: int = 0, steps: int | None = None,
                 guidance: float | None = None, temperature: float | None = None,
                 top_k: int | None = None, candidates: int | None = None, merge: bool = False) -> np.ndarray:
        """(B, H, W, 3) uint8 images, one per prompt (at most MAX_IMAGES); prompt i uses seed + i;
        each the image its prompt and seed give alone unless `merge` (see `sample_codes`)."""
        prompts = [prompt] if isinstance(prompt, str) else prompt
        decoded: list[np.ndarray] = []
        codes = self.sample_codes(prompts, seed, steps, guidance, temperature, top_k=top_k, candidates=candidates,
                                  decoded=decoded, merge=merge)
        return decoded[0] if decoded else self.decode(codes)


TEXT_GRAPHS = ("text_encoder", "ar_context")  # graphs that see the prompt only: equal prompts give equal rows


def int8_graphs(meta: dict) -> set[str]:
    """The graphs quantised to int8 (a bundle from before `int8_graphs` was recorded: all of them)."""
    if "int8_graphs" in meta:
        return set(meta["int8_graphs"])
    return set(meta.get("graphs", {})) if meta.get("precision", "fp32") == "int8" else set()


def exact_unit(meta: dict) -> str:
    """How rows may share a runtime call and each still get the image it gets alone: "batch" (fp32
    graphs, whose rows never mix: checked on the fp32 tiny bundles of both generators, prompts of
    different token lengths included), "prompt" (only the text graphs are int8: rows of one prompt
    see equal data, so one activation scale is the one a row alone gets) or "row" (an int8 graph
    sees each seed's own codes: the masked predictor, an int8 decoder)."""
    int8 = int8_graphs(meta)
    if not int8:
        return "batch"
    return "prompt" if int8 <= set(TEXT_GRAPHS) else "row"


def batch_invariant(meta: dict) -> bool:
    """Whether an image is the same whatever else shares its runtime call."""
    return exact_unit(meta) == "batch"


def check_output(path: str | Path, flag: str = "-o") -> Path:
    """Refuse, before any work is done, a PNG path that cannot be written: a folder, a path under
    a regular file, a name not ending in .png, a place that takes no new file. A device such as
    /dev/null or /dev/full is written as it is (a failed write is reported by save_png)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise BundleError(f"{flag} {path} is a folder: give a file name such as {path / 'out.png'}")
    if path.exists() and not path.is_file():
        return path
    if path.suffix.lower() != ".png":
        raise BundleError(f"{flag} {path} does not end in .png: name the file like out.png")
    folder = path.parent
    for p in [folder, *folder.parents]:
        if p.exists():
            if not p.is_dir():
                raise BundleError(f"{flag} {path}: {p} is a file, not a folder: choose another path")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".artgen-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BundleError(f"{flag} {path}: cannot write in {folder} ({e.strerror or e}): "
                          "choose a writable folder") from None
    return path


def save_png(images: np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Save (B, H, W, 3) images side by side as one PNG, whole or not at all: a file is written
    beside `path` and renamed into place, so a full disk leaves no half PNG behind."""
    from PIL import Image

    scale = check_int("scale", scale, 1, MAX_SCALE)
    path = check_output(path, "the output")
    strip = np.concatenate(list(images), axis=1)
    img = Image.fromarray(strip)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    try:
        if path.exists() and not path.is_file():  # a device: written in place (never renamed over)
            with open(path, "wb") as f:
                f.write(buf.getvalue())
            return
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            tmp.write_bytes(buf.getvalue())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise BundleError(f"could not write {path} ({e.strerror or e}): free some space or choose another output") from None


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m export.runtime", description="Generate abstract art from an artgen ONNX bundle.")
    ap.add_argument("bundle", help="bundle folder written by `artgen export`")
    ap.add_argument("prompt", help='a few adjectives, e.g. "warm, chaotic, vivid"')
    ap.add_argument("-o", "--out", default="out.png",
                    help="PNG to write (a .png path; missing folders are created; a device such as /dev/null is written as it is)")
    ap.add_argument("-n", type=int, default=1, help=f"images (seeds seed .. seed+n-1), 1 to {MAX_IMAGES}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="decoding steps (default: the bundle's; 1: one shot)")
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--top-k", type=int, default=None, help="autoregressive bundles: sample among the k most likely codes")
    ap.add_argument("--candidates", type=int, default=None,
                    help="autoregressive bundles with a picker or scorer: draw this many per image, keep the closest to the "
                         "words (default: the bundle's)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--scale", type=int, default=4, help=f"upscale factor of the saved PNG, 1 to {MAX_SCALE}")
    ap.add_argument("--verify", choices=VERIFY, default="hash",
                    help="check the bundle's files by size and sha256 (default) or by size only")
    args = ap.parse_args(argv)
    try:  # the cheap checks first: a bad -n, --scale or -o costs no bundle load and no generation
        n = check_int("-n", args.n, 1, MAX_IMAGES)
        scale = check_int("--scale", args.scale, 1, MAX_SCALE)
        out = check_output(args.out, "-o")
        rt = Runtime(args.bundle, threads=args.threads, verify=args.verify)
        images = rt.generate([args.prompt] * n, seed=args.seed, steps=args.steps, guidance=args.guidance,
                             temperature=args.temperature, top_k=args.top_k, candidates=args.candidates)
        save_png(images, out, scale=scale)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(images)} image(s) for {args.prompt!r} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
