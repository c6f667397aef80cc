"""The torch-free artgen runtime: an exported bundle in, RGB images out.

Needs only `onnxruntime`, `numpy`, the bundle's tokenizer library (`sentencepiece` for the
tiny encoder, `tokenizers` for clip/distilbert) and Pillow to save PNGs. This file is also
copied into every bundle, so an app needs nothing but the bundle folder:

    from runtime import Runtime               # or: from export.runtime import Runtime
    rt = Runtime("bundles/tiny-int8", threads=2)
    images = rt.generate("warm, chaotic, vivid", seed=0)   # (1, 64, 64, 3) uint8

Command line: `python -m export.runtime BUNDLE "warm, vivid" -o out.png [--seed 0] [--steps 1]`.

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

import json
import math
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

BUNDLE_FORMAT = 3  # 3: "generator" masked | ar; 2: masked only (random reveal order), still read
READABLE_FORMATS = (2, 3)
GRAPHS = {"masked": ("text_encoder", "predictor", "decoder"),
          "ar": ("text_encoder", "ar_context", "ar_step", "decoder")}
STEP_GRAPH = {"masked": "predictor", "ar": "ar_step"}  # the graph run once per sampling step


class BundleError(Exception):
    """A bundle or prompt problem, as one line naming the fix."""


def _default_bundle() -> Path:
    """The tiny model shipped inside the artgen package, when it is installed."""
    return Path(__file__).resolve().parents[1] / "artgen" / "assets" / "tiny"


class _Tokenizer:
    """Prompt -> token ids, exactly as the training-time tokenizer does (lower-cased)."""

    def __init__(self, bundle: Path, spec: dict):
        self.spec = spec
        path = bundle / spec["file"]
        if not path.is_file():
            raise BundleError(f"the bundle {bundle} lacks its tokenizer file {spec['file']}: export it again with `artgen export`")
        if spec["kind"] == "sentencepiece":
            import sentencepiece as spm

            self.sp = spm.SentencePieceProcessor(model_file=str(path))
            self._encode = lambda text: [spec["bos_id"], *self.sp.encode(text), spec["eos_id"]]
        elif spec["kind"] == "tokenizers":
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(path))
            tok.no_padding()
            tok.no_truncation()
            self._encode = lambda text: tok.encode(text, add_special_tokens=True).ids
        else:
            raise BundleError(f"unknown tokenizer kind {spec['kind']!r} in {bundle}/bundle.json: export it again with a current artgen")

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
    """The same limits `artgen generate` applies: not empty, not over-long."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise BundleError('the prompt is empty: give a few adjectives, e.g. "warm, chaotic, vivid"')
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
    at `temperature` with noise (B, K) float32, or the argmax at temperature 0."""
    if top_k:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k:].min(axis=-1, keepdims=True)  # (B, 1)
        logits = np.where(logits < kth, np.float32(-np.inf), logits)
    if temperature > 0:
        logits = logits / np.float32(temperature) + noise
    return logits.argmax(-1)


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


class Runtime:
    """Text to images with an exported bundle. `threads=None` lets ONNX Runtime choose (the
    autoregressive step graph always runs on one thread: faster for its tiny per-step work).
    `spinning` says which sessions' thread pools busy-wait for work between operators:
    "none" (the default), "predictor" (the graph run once per step: faster in most processes
    on the 2-core build machine, twice as slow in some) or "all" (ONNX Runtime's own default,
    much slower here); scripts/bench_runtime_spin.py measures the three."""

    SPINNING = ("none", "predictor", "all")

    def __init__(self, bundle_dir: str | Path | None = None, threads: int | None = None, spinning: str = "none"):
        import onnxruntime as ort

        bundle = Path(bundle_dir) if bundle_dir is not None else _default_bundle()
        self.bundle = bundle
        meta_path = bundle / "bundle.json"
        if not meta_path.is_file():
            raise BundleError(f"{bundle} is not an artgen bundle (no bundle.json): create one with `artgen export`")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise BundleError(f"{meta_path} is not valid JSON ({e.msg}): export the bundle again with `artgen export`") from None
        if not isinstance(meta, dict) or meta.get("format") not in READABLE_FORMATS:
            got = meta.get("format") if isinstance(meta, dict) else None
            raise BundleError(f"{bundle} has bundle format {got!r}, this runtime reads formats "
                              f"{', '.join(map(str, READABLE_FORMATS))}: export it again with the matching artgen version")
        self.generator = meta.get("generator", "masked")
        if self.generator not in GRAPHS:
            raise BundleError(f"{bundle} holds an unknown generator {self.generator!r}: export it again with the matching artgen version")
        if spinning not in self.SPINNING:
            raise BundleError(f"spinning must be one of {', '.join(self.SPINNING)} (got {spinning!r})")
        self.meta = meta
        self.sessions = {}
        for name in GRAPHS[self.generator]:
            options = ort.SessionOptions()
            if name == "ar_step":
                # Run 2 x 256 times per image on a batch of 2 rows: a second thread costs more in
                # hand-offs than it saves (scripts/bench_ar_step.py: 53 vs 74 ms for 128x3 int8).
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
            if name not in meta.get("graphs", {}):
                raise BundleError(f"{meta_path} names no {name} graph: export the bundle again with `artgen export`")
            path = bundle / meta["graphs"][name]["file"]
            if not path.is_file():
                raise BundleError(f"the bundle {bundle} is incomplete: {path.name} is missing; export it again with `artgen export`")
            try:
                self.sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as e:  # a damaged graph: one line, not an ORT stack trace
                first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
                raise BundleError(f"{path.name} in {bundle} cannot be loaded ({first}): export the bundle again") from None
        self.tokenizer = _Tokenizer(bundle, meta["tokenizer"])

    @property
    def image_size(self) -> int:
        return self.meta["image_size"]

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
                     seeds: Sequence[int] | None = None, top_k: int | None = None) -> np.ndarray:
        """(B, h, w) int64 code grids, image i drawn with seed + i (or `seeds[i]`). None takes
        the bundle's default of a setting; `top_k` is for the autoregressive generator only."""
        d = self.meta["sampling"]
        guidance = check_float("guidance", d["guidance"] if guidance is None else guidance)
        temperature = check_float("temperature", d["temperature"] if temperature is None else temperature, low=0.0)
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise BundleError("prompts must be a list of strings, e.g. [\"warm, chaotic, vivid\"]")
        for p in prompts:
            check_prompt(p, self.meta["prompt_limits"])
        seeds = list(seeds) if seeds is not None else [int(seed) + i for i in range(len(prompts))]
        if len(seeds) != len(prompts):
            raise BundleError(f"{len(seeds)} seeds for {len(prompts)} prompts: give one seed per prompt")
        if min(seeds, default=0) < 0:
            raise BundleError(f"seeds must be >= 0 (got {min(seeds)}): numpy's random streams take no negative seeds")
        if self.generator == "ar":
            if steps is not None and steps != d["steps"]:
                raise BundleError(f"steps {steps} does not apply to this autoregressive bundle: it draws the "
                                  f"{d['steps']} positions one per step; leave steps out")
            top_k = check_int("top_k", d.get("top_k", 0) if top_k is None else top_k, 0, self.meta["codebook_size"])
            return self._sample_ar(prompts, seeds, guidance, temperature, top_k)
        if top_k:
            raise BundleError("top_k is for autoregressive bundles; this bundle holds the masked generator")
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
                if temperature > 0:
                    scores = scores / np.float32(temperature) + gumbel(seeds[b], step, (len(rows), K)).astype(np.float32)
                codes[b, rows] = scores.argmax(-1)
            known = upto
        return codes.reshape(B, grid, grid)

    def _sample_ar(self, prompts: Sequence[str], seeds: list[int], guidance: float, temperature: float,
                   top_k: int) -> np.ndarray:
        """Raster-order sampling with the KV cache: ar_context once, then ar_step per position."""
        d = self.meta["sampling"]
        grid, K = self.meta["grid"], self.meta["codebook_size"]
        B, N, L = len(prompts), grid * grid, d["layers"]
        states, mask = self.encode(prompts)
        guided = guidance != 1.0
        if guided:  # the prompt rows, then the same rows with the text dropped, as one batch
            states, mask = np.concatenate([states, states]), np.concatenate([mask, np.zeros_like(mask)])
        context_names = [o.name for o in self.sessions["ar_context"].get_outputs()]
        feed = dict(zip(context_names, self.sessions["ar_context"].run(None, {"states": states, "attention_mask": mask})))
        past_names = [f"past_key_{i}" for i in range(L)] + [f"past_value_{i}" for i in range(L)]
        empty = np.zeros((len(states), d["heads"], 0, d["head_width"]), dtype=np.float32)
        feed.update({n: empty for n in past_names})
        noise = np.stack([gumbel(s, d["noise_stream"], (N, K)) for s in seeds]).astype(np.float32)  # (B, N, K)
        g = np.float32(guidance)
        step = self.sessions["ar_step"]
        codes = np.zeros((B, N), dtype=np.int64)
        feed["token"] = np.full((len(states), 1), d["start_id"], dtype=np.int64)
        for t in range(N):
            out = step.run(None, feed)
            logits = out[0]  # (B or 2B, K)
            if guided:
                logits = logits[B:] + g * (logits[:B] - logits[B:])
            codes[:, t] = pick_codes(logits, noise[:, t], temperature, top_k)
            feed.update(zip(past_names, out[1:]))
            feed["token"] = np.concatenate([codes[:, t], codes[:, t]])[:, None] if guided else codes[:, t:t + 1]
        return codes.reshape(B, grid, grid)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.sessions["decoder"].run(None, {"codes": codes.astype(np.int64)})[0]  # (B, H, W, 3) uint8

    def generate(self, prompt: str | Sequence[str], seed: int = 0, steps: int | None = None,
                 guidance: float | None = None, temperature: float | None = None,
                 top_k: int | None = None) -> np.ndarray:
        """(B, H, W, 3) uint8 images, one per prompt; prompt i uses seed + i."""
        if prompt is None:
            raise BundleError("no prompt given: pass a prompt such as \"warm, chaotic, vivid\"")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise BundleError("no prompt given: pass a prompt such as \"warm, chaotic, vivid\"")
        return self.decode(self.sample_codes(prompts, seed, steps, guidance, temperature, top_k=top_k))


def save_png(images: np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Save (B, H, W, 3) images side by side as one PNG."""
    from PIL import Image

    strip = np.concatenate(list(images), axis=1)
    img = Image.fromarray(strip)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m export.runtime", description="Generate abstract art from an artgen ONNX bundle.")
    ap.add_argument("bundle", help="bundle folder written by `artgen export`")
    ap.add_argument("prompt", help='a few adjectives, e.g. "warm, chaotic, vivid"')
    ap.add_argument("-o", "--out", default="out.png", help="PNG to write")
    ap.add_argument("-n", type=int, default=1, help="images (seeds seed .. seed+n-1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="decoding steps (default: the bundle's; 1: one shot)")
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--top-k", type=int, default=None, help="autoregressive bundles: sample among the k most likely codes")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--scale", type=int, default=4, help="upscale factor of the saved PNG")
    args = ap.parse_args(argv)
    try:
        if args.n < 1:
            raise BundleError(f"-n must be at least 1 (got {args.n})")
        rt = Runtime(args.bundle, threads=args.threads)
        images = rt.generate([args.prompt] * args.n, seed=args.seed, steps=args.steps, guidance=args.guidance,
                             temperature=args.temperature, top_k=args.top_k)
        save_png(images, args.out, scale=args.scale)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(images)} image(s) for {args.prompt!r} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
