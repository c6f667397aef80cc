"""The whole inference path, text to image, in one page:

    prompts --tokenize--> ids --encoder--> states (B, T, d)
            --predictor, K parallel steps, classifier-free guidance--> codes (B, 16, 16)
            --VQ-VAE decoder--> images (B, 64, 64, 3) uint8

    gen = load_generator(ws, encoder="tiny")
    images = gen.generate(["warm, chaotic, vivid"], seed=0, steps=8, guidance=3.0)

Sampling (MaskGIT's parallel decoding, Chang et al. 2022, in random order as in MAR, Li et al.
2024): every position starts as [MASK]. Each step predicts all positions at once and fixes
the next ones of the image's random reveal order, each with a code drawn by Gumbel-max at
`temperature` (0 takes the argmax); how many are known after each step follows MaskGIT's
cosine schedule, and the last step fixes the rest. `steps=1` is the direct, one-shot
prediction. MaskGIT fixes the most confident positions first instead; here that collapses
every grid to a flat field of the commonest codes (docs/generation.md, "Sampling settings").
Guidance (Ho & Salimans 2022): logits = uncond + g * (cond - uncond), where uncond is the
same network with the text dropped; g = 1 is the plain conditional model. Only the first
half of the steps is guided (`sampling.guided_steps`): once much of the grid is known the
text adds little, and the later steps then cost one pass instead of two.

Randomness comes from numpy's PCG64, one stream per image seeded with its own seed
(`seed + i` for the i-th image), so an image does not depend on what else is in the batch
and a torch-free runtime can draw the very same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from artgen.data.vocabulary import ADJECTIVES, STOPWORDS, parse_prompt
from artgen.errors import ArtgenError
from artgen.files import check_output_file, write_output
from artgen.hub import local_dir
from artgen.images import grid_png
from artgen.models.encoders import ENCODERS, TextEncoder, unknown_encoder
from artgen.models.generators import split_model_name
from artgen.models.text_to_codes import FILES as TEXT_TO_CODES_FILES
from artgen.models.text_to_codes import TextToCodes
from artgen.models.vqvae import VQVAE, VQVAE_FILES
from artgen.sampling import (
    AR_DEFAULT_GUIDANCE,
    AR_DEFAULT_TEMPERATURE,
    AR_DEFAULT_TOP_K,
    AR_NOISE_STREAM,
    DEFAULT_GUIDANCE,
    DEFAULT_STEPS,
    DEFAULT_TEMPERATURE,
    MAX_CANDIDATES,
    MAX_STEPS,
    MIN_TEMPERATURE,
    ORDER_STREAM,
    asked_words,
    best_candidates,
    guided_steps,
    picked_candidates,
    prompt_words,
    scorer_synonyms,
)
from artgen.workspace import Workspace


def unseen_words(prompt: str) -> list[str]:
    """Words of a prompt that never appear in a training caption (training captions use the
    vocabulary adjectives only): the model reads them as sub-words."""
    return [w for w in parse_prompt(prompt).words if w not in ADJECTIVES and w not in STOPWORDS]


def gumbel(seed: int, step: int, shape: tuple[int, ...]) -> np.ndarray:
    """Gumbel(0, 1) noise of one image at sampling step `step`, from the stream
    default_rng([seed, step]): row j is for the j-th position that step fixes."""
    u = np.clip(np.random.default_rng([int(seed), step]).random(shape), 1e-20, 1.0 - 1e-7)
    return -np.log(-np.log(u))


def reveal_order(seeds: Sequence[int], positions: int) -> np.ndarray:
    """(B, N) grid positions in the order sampling fixes them: a random permutation per image."""
    return np.stack([np.random.default_rng([int(s), ORDER_STREAM]).permutation(positions) for s in seeds])


def known_after(step: int, steps: int, positions: int) -> int:
    """Positions fixed once step `step` (0-based) of `steps` is done: MaskGIT's cosine schedule."""
    return positions - int(math.floor(positions * math.cos(math.pi / 2 * (step + 1) / steps)))


def check_sampling(prompts: Sequence[str], seed: int, temperature: float, guidance: float,
                   seeds: Sequence[int] | None) -> list[int]:
    """The checks every sampler shares; returns each image's seed (seed + i unless given)."""
    if not math.isfinite(temperature) or temperature < 0:
        raise ArtgenError(f"--temperature must be a finite number >= 0 (got {temperature})")
    if not math.isfinite(guidance):
        raise ArtgenError(f"--guidance must be a finite number (got {guidance})")
    for p in prompts:
        parse_prompt(p)  # empty or over-long prompts are a one-line error
    seeds = list(seeds) if seeds is not None else [seed + i for i in range(len(prompts))]
    if len(seeds) != len(prompts):
        raise ArtgenError(f"{len(seeds)} seeds for {len(prompts)} prompts: give one seed per prompt")
    if min(seeds, default=0) < 0:
        raise ArtgenError(f"seeds must be >= 0 (got {min(seeds)}): numpy's random streams take no negative seeds")
    return seeds


@dataclass
class Generator:
    """The masked (direct) generator; `ARGenerator` below is the autoregressive one."""

    encoder: TextEncoder
    predictor: torch.nn.Module
    vqvae: torch.nn.Module
    config: dict  # the checkpoint's config.json
    kind = "masked"

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, vqvae_dir: str | Path, retrain_hint: str = "artgen train") -> "Generator":
        """The generator a checkpoint folder holds (`TextToCodes.save_pretrained`: masked or
        autoregressive, as its config says) with the VQ-VAE whose codes it was trained on, each
        a folder or a Hugging Face Hub repo id:
        `Generator.from_pretrained("artgen-work/checkpoints/tiny-ar", "artgen-work/checkpoints/vqvae")`."""
        model_dir = local_dir(model_dir, TEXT_TO_CODES_FILES, "model")  # a folder or a hub repo id
        vqvae_dir = local_dir(vqvae_dir, VQVAE_FILES, "VQ-VAE")
        model, config = TextToCodes.from_pretrained(model_dir, retrain_hint=retrain_hint)
        vqvae = VQVAE.from_pretrained(vqvae_dir)
        if vqvae.checkpoint_sha256 != config["summary"]["vqvae_hash"]:
            raise ArtgenError(f"{model_dir} was trained on the codes of another VQ-VAE than {vqvae_dir}: "
                              f"retrain it with `{retrain_hint}`")
        kind = ARGenerator if config.get("generator", "masked") == "ar" else Generator
        return kind(model.encoder, model.predictor, vqvae.eval(), config)

    @property
    def default_guidance(self) -> float:
        """The guidance this model samples with when none is given."""
        return DEFAULT_GUIDANCE

    @property
    def source(self) -> str:
        return self.encoder.describe_source()

    @property
    def default_steps(self) -> int:
        return DEFAULT_STEPS

    @torch.no_grad()
    def logits(self, codes: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, guidance: float) -> torch.Tensor:
        """Guided logits (B, N, K) for partially known codes (B, N); the conditional and the
        text-dropped rows run as one batch of 2B, as in the exported runtime."""
        if guidance == 1.0:
            return self.predictor(codes, states, mask)
        both = self.predictor(torch.cat([codes, codes]), torch.cat([states, states]),
                              torch.cat([mask, torch.zeros_like(mask)]))  # (2B, N, K)
        cond, uncond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def sample_codes(self, prompts: Sequence[str], seed: int = 0, steps: int | None = DEFAULT_STEPS,
                     guidance: float | None = DEFAULT_GUIDANCE, temperature: float | None = DEFAULT_TEMPERATURE,
                     seeds: Sequence[int] | None = None) -> torch.Tensor:
        """(B, h, w) long code grids for `prompts` (one image per prompt; image i uses seed + i).
        None takes the default of a setting."""
        steps = DEFAULT_STEPS if steps is None else steps
        guidance = DEFAULT_GUIDANCE if guidance is None else guidance
        temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
        if not 1 <= steps <= MAX_STEPS:
            raise ArtgenError(f"--steps must be between 1 and {MAX_STEPS} (got {steps})")
        seeds = check_sampling(prompts, seed, temperature, guidance, seeds)
        cfg = self.predictor.cfg
        B, N, K = len(prompts), cfg.positions, cfg.codebook_size

        tokens = self.encoder.tokenize(list(prompts))  # ids (B, T), mask (B, T)
        states, mask = self.encoder.encode(tokens)  # (B, T, d) text states
        order = reveal_order(seeds, N)  # (B, N)
        codes = torch.full((B, N), cfg.mask_id, dtype=torch.long)  # (B, N) all unknown
        known = 0
        for step in range(steps):
            g = guidance if step < guided_steps(steps) else 1.0  # guided early steps only
            logits = self.logits(codes, states, mask, g)  # (B, N, K)
            upto = known_after(step, steps, N)
            for b in range(B):  # fix the next positions of each image's order
                rows = torch.from_numpy(order[b, known:upto])  # (n,)
                scores = logits[b, rows]  # (n, K)
                if temperature >= MIN_TEMPERATURE:
                    scores = scores / temperature + torch.from_numpy(gumbel(seeds[b], step, (len(rows), K))).float()
                codes[b, rows] = scores.argmax(-1)
            known = upto
        return codes.view(B, cfg.grid, cfg.grid)  # (B, h, w) code indices

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """(B, H, W, 3) uint8 images for code grids (B, h, w)."""
        images = self.vqvae.decode_indices(codes)  # (B, 3, H, W) in [0, 1]
        return (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def generate(self, prompts: Sequence[str], seed: int = 0, steps: int | None = None,
                 guidance: float | None = None, temperature: float | None = None,
                 seeds: Sequence[int] | None = None) -> np.ndarray:
        return self.decode(self.sample_codes(prompts, seed, steps, guidance, temperature, seeds))


@dataclass
class ARGenerator(Generator):
    """The autoregressive generator: one position per step in raster order (start token, then
    the codes drawn so far), with a KV cache, so each step runs the network on one new position.
    Guidance on every step: logits = uncond + g * (cond - uncond), the conditional and the
    text-dropped rows as one batch of 2B. Then top-k (0: off), and Gumbel-max at
    `temperature` (0: the most likely code)."""

    kind = "ar"
    scorer = None  # the workspace's code scorer (`artgen train scorer`) where load_generator found one for this VQ-VAE
    picker = None  # the workspace's caption picker (`artgen train picker`), which keeps a candidate in the scorer's stead

    @property
    def default_steps(self) -> int:
        return self.predictor.cfg.positions

    @property
    def default_guidance(self) -> float:
        """The guidance this model samples with when none is given: its config's "sampling" (an
        aligned model, `artgen train align`, records a lower one), else AR_DEFAULT_GUIDANCE."""
        return float(self.config.get("sampling", {}).get("guidance", AR_DEFAULT_GUIDANCE))

    def sample_codes(self, prompts: Sequence[str], seed: int = 0, steps: int | None = None,
                     guidance: float | None = None, temperature: float | None = None,
                     seeds: Sequence[int] | None = None, top_k: int | None = None,
                     candidates: int | None = None) -> torch.Tensor:
        """`candidates` > 1: draw that many per image (candidate j with noise stream
        AR_NOISE_STREAM + j; 0 is the single draw) and keep the one the caption picker finds
        nearest the prompt's words (else the code scorer), as an exported bundle with
        --candidates does."""
        return self._sample(prompts, seed, steps, guidance, temperature, seeds, top_k, candidates)[0]

    @torch.no_grad()
    def _sample(self, prompts: Sequence[str], seed: int, steps: int | None, guidance: float | None,
                temperature: float | None, seeds: Sequence[int] | None, top_k: int | None,
                candidates: int | None) -> tuple[torch.Tensor, np.ndarray | None]:
        """(kept code grids (B, h, w), their images when the caption picker already decoded them
        to choose, else None)."""
        cfg = self.predictor.cfg
        N, K = cfg.positions, cfg.codebook_size
        candidates = 1 if candidates is None else int(candidates)
        if not 1 <= candidates <= MAX_CANDIDATES:
            raise ArtgenError(f"--candidates must be between 1 and {MAX_CANDIDATES} (got {candidates})")
        if candidates > 1 and self.scorer is None and self.picker is None:
            raise ArtgenError(f"--candidates {candidates} needs what picks among them: run `artgen train picker` first "
                              "(or `artgen train scorer`)")
        guidance = self.default_guidance if guidance is None else guidance
        temperature = AR_DEFAULT_TEMPERATURE if temperature is None else temperature
        top_k = AR_DEFAULT_TOP_K if top_k is None else int(top_k)
        if steps is not None and steps != N:
            raise ArtgenError(f"--steps {steps} does not apply to the autoregressive generator: it draws the "
                              f"{N} positions one per step; leave --steps out")
        if not 0 <= top_k <= K:
            raise ArtgenError(f"--top-k must be between 0 (off) and {K} (got {top_k})")
        seeds = check_sampling(prompts, seed, temperature, guidance, seeds)
        tokens = self.encoder.tokenize(list(prompts))
        states, mask = self.encoder.encode(tokens)  # (B, T, d), (B, T)
        adjectives = (self.picker.vocabulary if self.picker is not None
                      else self.scorer.cfg.adjectives if self.scorer is not None else [])
        synonyms = scorer_synonyms(adjectives)
        # at temperature 0 every candidate is the argmax draw; a prompt naming no scorer word keeps candidate 0
        if candidates == 1 or temperature < MIN_TEMPERATURE or not any(prompt_words(p, adjectives, synonyms) for p in prompts):
            return self.codes_from_states(states, mask, seeds, guidance, temperature, top_k), None
        drawn = torch.stack([self.codes_from_states(states, mask, seeds, guidance, temperature, top_k, AR_NOISE_STREAM + j)
                             for j in range(candidates)])  # (C, B, h, w)
        C, B = drawn.shape[:2]
        if self.picker is not None:  # on the decoded images, as the bundle's picker.onnx
            asked = asked_words(list(prompts), adjectives, synonyms)
            images = self.decode(drawn.flatten(0, 1))  # (C*B, H, W, 3): the kept ones are returned, not decoded again
            kept = picked_candidates(self.picker.score(images, np.tile(asked, (C, 1))).reshape(C, B), asked)
            return drawn[torch.from_numpy(kept), torch.arange(B)], images.reshape(C, B, *images.shape[1:])[kept, np.arange(B)]
        logits = self.scorer(drawn.flatten(0, 1)).view(C, B, -1).numpy()
        kept = torch.from_numpy(best_candidates(logits, list(prompts), adjectives, synonyms))
        return drawn[kept, torch.arange(B)], None

    @torch.no_grad()
    def codes_from_states(self, states: torch.Tensor, mask: torch.Tensor, seeds: Sequence[int], guidance: float,
                          temperature: float, top_k: int = 0, stream: int = AR_NOISE_STREAM) -> torch.Tensor:
        """(B, h, w) code grids for text states (B, T, d) and their mask (B, T), image i
        with seeds[i]: the sampling loop itself (`sample_codes` tokenizes and encodes first)."""
        cfg = self.predictor.cfg
        N, K, B = cfg.positions, cfg.codebook_size, len(states)
        guided = guidance != 1.0
        if guided:  # the prompt rows, then the same rows with the text dropped
            states, mask = torch.cat([states, states]), torch.cat([mask, torch.zeros_like(mask)])
        context = self.predictor.context(states, mask)  # cross keys, values, bias, text modulation
        past_k, past_v = self.predictor.empty_cache(len(states))
        # one stream per image, drawn whole: row t for position t
        noise = torch.from_numpy(np.stack([gumbel(s, stream, (N, K)) for s in seeds]).astype(np.float32))
        token = torch.full((len(states), 1), cfg.start_id, dtype=torch.long)
        codes = torch.empty((B, N), dtype=torch.long)
        for t in range(N):
            above = self.predictor.above_codes(codes, t).repeat(len(states) // B, 1) if cfg.above else None
            logits, past_k, past_v = self.predictor.step(token, past_k, past_v, *context, above=above)  # (B', K)
            if guided:
                cond, uncond = logits.chunk(2)
                logits = uncond + guidance * (cond - uncond)  # (B, K)
            codes[:, t] = pick_codes(logits, noise[:, t], temperature, top_k)
            token = codes[:, t:t + 1].repeat(2, 1) if guided else codes[:, t:t + 1]
        return codes.view(B, cfg.grid, cfg.grid)

    def generate(self, prompts: Sequence[str], seed: int = 0, steps: int | None = None,
                 guidance: float | None = None, temperature: float | None = None,
                 seeds: Sequence[int] | None = None, top_k: int | None = None, candidates: int | None = None) -> np.ndarray:
        codes, images = self._sample(prompts, seed, steps, guidance, temperature, seeds, top_k, candidates)
        return self.decode(codes) if images is None else images


def pick_codes(logits: torch.Tensor, noise: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """(B,) codes from logits (B, K): keep the top_k most likely (0: all), then Gumbel-max at
    `temperature` with the given noise (B, K), or the argmax below MIN_TEMPERATURE (0 included)."""
    if top_k:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if temperature >= MIN_TEMPERATURE:
        logits = logits / temperature + noise
    return logits.argmax(-1)


def load_generator(ws: Workspace, encoder: str = "tiny", checkpoint: str | Path | None = None) -> Generator:
    """The trained model `checkpoints/<encoder>/` (a model name: tiny, tiny-ar, clip, ...) and
    the workspace's VQ-VAE; the checkpoint says which generator it holds."""
    enc_name, gen_name = split_model_name(encoder)
    if checkpoint is None and enc_name not in ENCODERS:
        raise unknown_encoder(enc_name)
    directory = Path(checkpoint) if checkpoint else ws.checkpoint(encoder)
    how = f"artgen train --encoder {enc_name}" + (f" --generator {gen_name}" if gen_name != "masked" else "")
    gen = Generator.from_pretrained(directory, ws.checkpoint("vqvae"), retrain_hint=how)
    if gen.kind == "ar":
        gen.scorer = workspace_scorer(ws, gen.config["summary"].get("vqvae_hash"))
        gen.picker = workspace_picker(ws, gen.vqvae.cfg.image_size)
    return gen


def workspace_scorer(ws: Workspace, vqvae_hash: str | None):
    """The workspace's code scorer (`checkpoints/code-scorer`) when it reads this VQ-VAE's codes, else None."""
    from artgen.training.scorer import load_scorer

    try:
        return load_scorer(ws, vqvae_hash)
    except Exception:  # missing, damaged or another VQ-VAE's: the model samples without it (`--candidates` then names the fix)
        return None


def workspace_picker(ws: Workspace, image_size: int):
    """The workspace's caption picker (`checkpoints/caption-picker`) when there is one that reads
    this model's images, else None."""
    from artgen.training.picker import PICKER, load_picker

    try:
        picker = load_picker(ws)
    except ArtgenError as e:  # missing or damaged: the model picks by its scorer, if any (`--candidates` then names the fix)
        if ws.checkpoint(PICKER).exists():  # one that is there but unusable is said, once, rather than silently passed over
            _warn_once(f"warning: the caption picker is not used: {e}")
        return None
    if image_size % picker.cfg.input_size:
        _warn_once(f"warning: the caption picker reads {picker.cfg.input_size} px images, which this model's {image_size} px "
                   f"ones do not pool to evenly, so it is not used: train it again on this corpus (`artgen train picker`)")
        return None
    return picker


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    import sys

    if message not in _WARNED:
        _WARNED.add(message)
        print(message, file=sys.stderr)


def read_prompts(path: Path) -> list[str]:
    """One prompt per line of a UTF-8 text file (a byte-order mark is dropped); blank lines and
    lines starting with # are skipped."""
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise ArtgenError(f"prompt file {path} {problem}: give a text file with one prompt per line")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:  # decoded with replacement, its words would be silently other words
        line_no = data[:e.start].count(b"\n") + 1
        raise ArtgenError(f"prompt file {path} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line_no}): "
                          "save it as UTF-8") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise ArtgenError(f"prompt file {path} holds no prompts: write one prompt per line")
    return prompts


def generate_to_png(ws: Workspace, prompts: Sequence[str], out: Path, encoder: str = "tiny", n: int = 4,
                    seed: int = 0, steps: int | None = None, guidance: float | None = None,
                    temperature: float | None = None, scale: int = 2, top_k: int | None = None,
                    candidates: int | None = None) -> list[str]:
    """`artgen generate`: a PNG grid, one row per prompt, `n` seeds (seed .. seed+n-1) per row.
    `encoder` is a model name (tiny, tiny-ar, ...); None settings take the model's defaults.
    Returns the one-line notes for the user (unseen words)."""

    if not prompts:
        raise ArtgenError("no prompt given: pass a prompt such as \"warm, chaotic, vivid\" or --prompts FILE")
    if n < 1:
        raise ArtgenError(f"-n must be at least 1 (got {n})")
    for p in prompts:
        parse_prompt(p)
    out = check_output_file(out)  # before any work: a path that cannot be written is named first
    gen = load_generator(ws, encoder)
    if top_k is not None and gen.kind != "ar":
        raise ArtgenError("--top-k is for the autoregressive generator: add --generator ar")
    if candidates not in (None, 1) and gen.kind != "ar":
        raise ArtgenError("--candidates is for the autoregressive generator: add --generator ar")
    options = {"top_k": top_k, "candidates": candidates} if gen.kind == "ar" else {}
    notes = [f"note: {', '.join(repr(w) for w in words)} never appear in training captions; "
             f"read as sub-words {gen.encoder.pieces(' '.join(words))}"
             for words in (unseen_words(p) for p in prompts) if words]
    rows = []
    for p in prompts:  # one prompt per row, the i-th column always uses seed + i
        rows.append(gen.generate([p] * n, seed=seed, steps=steps, guidance=guidance, temperature=temperature, **options))
    write_output(out, grid_png(np.concatenate(rows), columns=n, scale=scale))
    return notes
