"""Would a deeper autoregressive generator over half as many steps keep the words' style
better, at the same latency? (A probe of the idea, not the product.)

The shipped generator draws 256 codes one per step with 3 layers; its pictures drift away from
their style lower down the grid, and the levers that only lowered its CE did not help. Here
each step draws two codes, a horizontally adjacent pair: the network reads the last pair (the
sum of its two codes' embeddings) at a 2-D position of (row, pair column), and predicts the
pair's first code from its output, then the second from the output plus the first code's
embedding, through a small residual MLP (a depth-2 autoregression inside the step, as the
RQ-Transformer's depth transformer). 128 steps of a 6-layer network cost about what 256 steps
of 3 layers cost, in the sampler's latency and in training FLOPs, so the same hour trains a
network twice as deep over a sequence half as long.

    python scripts/ar_pair_probe.py --workdir W [--steps 2000] [--layers 6] [--captions 1000]

W needs the corpus, gt annotations and the VQ-VAE latents (with the mirror images), and no
`checkpoints/tiny-ar` (it trains there, then moves the model to `checkpoints/tiny-ar-pairs`).
The training is the default AR preset's (tiny encoder, text modulation, 2-D RoPE, batch 32,
peak LR 1e-3, the mirror images) with the network swapped; the test CE is per code, as the
plain model's. The style is scored as `ar_sampling_sweep.py --no-fid` (the same captions and
seeds, guidance 2.5, temperature 0.8, decoded by the workspace VQ-VAE and its decoder), to set
beside the plain model at the same steps.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import torch
from ar_probe_common import (
    add_swapped_network_args,
    draw_probe_codes,
    guided_start,
    load_swapped_network,
    print_style_row,
    probe_set,
    train_swapped_network,
)
from torch import nn

import artgen.models.generators as generators
from artgen.generate import load_generator, pick_codes
from artgen.models.ar_predictor import ARConfig, ARPredictor, evaluation_inputs, training_inputs
from artgen.models.layers import MLP
from artgen.models.text_to_codes import TextToCodes
from artgen.training.predictor import AR_PRESETS
from artgen.workspace import Workspace


@dataclass
class PairConfig(ARConfig):
    @property
    def cols(self) -> int:
        return self.grid // 2  # pairs per row

    @property
    def steps(self) -> int:
        return self.grid * self.cols


def pair_rope_tables(cfg: PairConfig):
    """`ar_predictor.rope_tables` over the (row, pair column) of each of the 128 steps."""
    hs = cfg.head_width
    quarter = hs // 4
    freqs = cfg.rope_base ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    cell = torch.arange(cfg.steps)
    angles = []
    for coord in (cell // cfg.cols, cell % cfg.cols):
        a = coord[:, None].double() * freqs[None]
        angles.append(torch.cat([a, a], dim=1))
    angle = torch.cat(angles, dim=1)
    perm, sign = torch.empty(hs, dtype=torch.long), torch.empty(hs, dtype=torch.float64)
    for half in (0, hs // 2):
        for i in range(quarter):
            perm[half + i], sign[half + i] = half + quarter + i, -1.0
            perm[half + quarter + i], sign[half + quarter + i] = half + i, 1.0
    return angle.cos().float(), (angle.sin() * sign).float(), perm


class PairARPredictor(ARPredictor):
    def __init__(self, cfg: PairConfig):
        super().__init__(cfg)
        K, d = cfg.codebook_size, cfg.width
        self.col_emb = nn.Parameter(torch.randn(cfg.cols, d) * 0.02)
        self.second_emb = nn.Embedding(K + 1, d)  # the last pair's second code (+ the start)
        self.first_emb = nn.Embedding(K, d)  # this pair's first code, for its second
        nn.init.normal_(self.second_emb.weight, std=0.02)
        nn.init.normal_(self.first_emb.weight, std=0.02)
        self.ln_b = nn.LayerNorm(d)
        self.mlp_b = MLP(d, 2, 0.0)
        self.ln_b_out = nn.LayerNorm(d)
        self.head_b = nn.Linear(d, K)
        if cfg.rope:
            cos, sin, perm = pair_rope_tables(cfg)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
            self.register_buffer("rope_perm", perm, persistent=False)

    def positions(self) -> torch.Tensor:
        c = self.cfg
        return (self.row_emb[:, None, :] + self.col_emb[None, :, :]).reshape(c.steps, -1)

    def second_logits(self, h: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """The pair's second code's logits from the network's output h (..., d) and its first code (...)."""
        x = h + self.first_emb(first)
        x = x + self.mlp_b(self.ln_b(x))
        return self.head_b(self.ln_b_out(x))

    def forward(self, codes: torch.Tensor, states: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        B, S = codes.shape[0], self.cfg.steps
        pairs = codes.view(B, S, 2)
        start = torch.full_like(pairs[:, :1, 0], self.cfg.start_id)
        x = (self.tok_emb(torch.cat([start, pairs[:, :-1, 0]], 1)) + self.second_emb(torch.cat([start, pairs[:, :-1, 1]], 1))
             + self.positions())
        text, keys = self.text(states, text_mask)
        mod = self.text_modulation(text, keys)
        rope = (self.rope_cos, self.rope_sin, self.rope_perm) if self.cfg.rope else None
        for i, block in enumerate(self.blocks):
            x = block(x, text, keys, None if mod is None else mod[:, i], rope)
        first = self.head(self.ln_f(x))  # (B, S, K)
        second = self.second_logits(x, pairs[..., 0])
        return torch.stack([first, second], 2).reshape(B, 2 * S, -1)  # raster order of the codes

    def pair_step(self, prev: torch.Tensor, past_k, past_v, cross_k, cross_v, bias, modulation=None):
        """One cached step: prev (B, 2) the last pair (the start ids first) -> the network's output
        (B, 1, d) for the next pair, and the caches."""
        t = past_k[0].shape[2]
        x = self.tok_emb(prev[:, :1]) + self.second_emb(prev[:, 1:]) + self.positions()[t]
        rope = (self.rope_cos[t:t + 1], self.rope_sin[t:t + 1], self.rope_perm) if self.cfg.rope else None
        new_k, new_v = [], []
        for i, (block, pk, pv, ck, cv) in enumerate(zip(self.blocks, past_k, past_v, cross_k, cross_v)):
            x, k, v = block.step(x, pk, pv, ck, cv, bias, None if modulation is None else modulation[:, i], rope)
            new_k.append(k)
            new_v.append(v)
        return x, new_k, new_v


def pair_kind() -> generators.GeneratorKind:
    return generators.GeneratorKind("ar", "autoregressive transformer, two codes per step (probe)", PairConfig,
                                    PairARPredictor, training_inputs, evaluation_inputs, "teacher-forced")


@torch.no_grad()
def draw(model: TextToCodes, captions: list[str], seeds: list[int], guidance: float, temperature: float) -> torch.Tensor:
    """The runtime's guided Gumbel-max sampler, a pair per step (each code of image i takes the
    noise row of its raster position, as the plain sampler's)."""
    P = model.predictor
    S, K, B, N = P.cfg.steps, P.cfg.codebook_size, len(captions), P.cfg.positions
    context, past_k, past_v, noise = guided_start(model, captions, seeds)
    prev = torch.full((2 * B, 2), P.cfg.start_id, dtype=torch.long)
    codes = torch.empty((B, N), dtype=torch.long)
    for t in range(S):
        h, past_k, past_v = P.pair_step(prev, past_k, past_v, *context)
        cond, uncond = P.head(P.ln_f(h)).reshape(2 * B, K).chunk(2)
        first = pick_codes(uncond + guidance * (cond - uncond), noise[:, 2 * t], temperature, 0)
        cond, uncond = P.second_logits(h[:, 0], first.repeat(2)).chunk(2)
        second = pick_codes(uncond + guidance * (cond - uncond), noise[:, 2 * t + 1], temperature, 0)
        codes[:, 2 * t], codes[:, 2 * t + 1] = first, second
        prev = torch.stack([first, second], 1).repeat(2, 1)
    return codes.view(B, P.cfg.grid, P.cfg.grid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_swapped_network_args(ap, "tiny-ar-pairs", compile=False)
    ap.add_argument("--layers", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    folder = ws.checkpoint("tiny-ar-pairs")
    if not args.skip_training:
        p = AR_PRESETS["default"]["tiny"]
        train_swapped_network(ws, pair_kind, replace(p, predictor={**p.predictor, "layers": args.layers}), args.steps, folder)

    model, final = load_swapped_network(folder, PairARPredictor, PairConfig)
    decoder = load_generator(ws, "tiny-ar", checkpoint=ws.checkpoint(args.decoder_from))
    probe = probe_set(ws, args.captions)
    n = len(probe.captions)
    print(f"{n} test captions; {args.layers} layers, {model.predictor.num_parameters() / 1e6:.2f}M generator parameters; "
          f"test CE {final['ce']:.3f} per code with text vs {final['ce_no_text']:.3f} without; {final['steps']} steps in "
          f"{final['train_seconds_this_run'] / 60:.1f} min")
    codes, seconds = draw_probe_codes(draw, model, probe, args.batch)
    print_style_row(f"pairs, {args.layers} layers", decoder, probe, codes, seconds)


if __name__ == "__main__":
    main()
