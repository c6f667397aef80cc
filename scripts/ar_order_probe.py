"""Would drawing the grid coarse-to-fine keep the words' style where raster order drifts? (A
probe of the idea, not the product.)

Raster order settles the top rows first and the form lower down last, and the shipped
generator's pictures change style halfway down. A subscale order (Menick & Kalchbrenner 2019,
"Subscale Pixel Network") draws an s × s-times subsampled slice of the whole canvas first (the
cells (s·i + a, s·j + b) of slice (a, b), each slice in raster order), then the other slices
one by one, so the first 256/s² codes lay out the whole painting at low resolution and every
later code has neighbours on all sides.

The network is the default AR preset's (tiny encoder, text modulation, 2-D RoPE) with the
codes read in that order: each input carries the learned 2-D position of the cell it predicts,
and the 2-D RoPE turns a query by the cell it predicts and a key by the cell whose code it
holds (in raster order these differ by one cell to the left, a constant offset; in another
order they do not). Everything else, training and the sampler (guidance 2.5, T 0.8, each cell
the Gumbel noise of its raster position), as the plain model's.

    python scripts/ar_order_probe.py --workdir W [--order subscale2|subscale4|raster] [--steps 2000] [--seed 0] [--captions 1000]
        [--compile]

W needs the corpus, gt annotations and the VQ-VAE latents (with the mirror images), and no
`checkpoints/tiny-ar` (it trains there, then moves the model to `checkpoints/tiny-ar-<order>[-seed<S>]`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from ar_probe_common import (
    add_swapped_network_args,
    draw_probe_codes,
    guided_start,
    load_swapped_network,
    print_style_row,
    probe_set,
    train_swapped_network,
)

import artgen.models.generators as generators
from artgen.generate import load_generator, pick_codes
from artgen.models.ar_predictor import ARConfig, ARPredictor, CausalSelfAttention, apply_rope, evaluation_inputs, training_inputs
from artgen.models.text_to_codes import TextToCodes
from artgen.training.predictor import AR_PRESETS
from artgen.workspace import Workspace


def cell_order(order: str, grid: int) -> torch.Tensor:
    """(N,) the cell (raster index) drawn at each step."""
    if order == "raster":
        return torch.arange(grid * grid)
    if not order.startswith("subscale"):
        raise SystemExit(f"unknown order {order!r}: raster, subscale2 or subscale4")
    s = int(order[len("subscale"):])
    return torch.tensor([(s * i + a) * grid + s * j + b for a in range(s) for b in range(s)
                         for i in range(grid // s) for j in range(grid // s)])


@dataclass
class OrderConfig(ARConfig):
    order: str = "raster"


class OrderedSelfAttention(CausalSelfAttention):
    """Causal self-attention whose queries and keys are turned by tables of their own."""

    def forward(self, x, rope=None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, self.head_width).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, *rope[0]), apply_rope(k, *rope[1])
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(B, T, C))

    def step(self, x, past_k, past_v, rope=None):
        h, hs = self.heads, self.head_width
        q, k, v = (t.reshape(-1, h, 1, hs) for t in self.qkv(x).split(h * hs, dim=-1))
        if rope is not None:
            q, k = apply_rope(q, *rope[0]), apply_rope(k, *rope[1])
        k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        att = ((q * hs ** -0.5) @ k.transpose(2, 3)).softmax(dim=-1)
        return self.out((att @ v).reshape(-1, 1, h * hs)), k, v


class OrderedARPredictor(ARPredictor):
    def __init__(self, cfg: OrderConfig):
        super().__init__(cfg)
        for block in self.blocks:
            block.self_attn.__class__ = OrderedSelfAttention  # the same weights, separate q / k turns
        cells = cell_order(cfg.order, cfg.grid)
        self.register_buffer("cells", cells, persistent=False)
        self.register_buffer("held", torch.cat([cells[:1], cells[:-1]]), persistent=False)  # the cell each input holds
        self.register_buffer("inverse", torch.argsort(cells), persistent=False)

    def ropes(self, predicted: torch.Tensor, held: torch.Tensor):
        return ((self.rope_cos[predicted], self.rope_sin[predicted], self.rope_perm),
                (self.rope_cos[held], self.rope_sin[held], self.rope_perm)) if self.cfg.rope else None

    def forward(self, codes, states, text_mask):
        seq = codes[:, self.cells]  # (B, N) in drawing order
        start = torch.full_like(seq[:, :1], self.cfg.start_id)
        x = self.tok_emb(torch.cat([start, seq[:, :-1]], 1)) + self.positions()[self.cells]
        text, keys = self.text(states, text_mask)
        mod = self.text_modulation(text, keys)
        rope = self.ropes(self.cells, self.held)
        for i, block in enumerate(self.blocks):
            x = block(x, text, keys, None if mod is None else mod[:, i], rope)
        return self.head(self.ln_f(x))[:, self.inverse]  # (B, N, K) back in raster order

    def step(self, token, past_k, past_v, cross_k, cross_v, bias, modulation=None):
        t = past_k[0].shape[2]
        x = self.tok_emb(token) + self.positions()[self.cells[t]]
        rope = self.ropes(self.cells[t:t + 1], self.held[t:t + 1])
        new_k, new_v = [], []
        for i, (block, pk, pv, ck, cv) in enumerate(zip(self.blocks, past_k, past_v, cross_k, cross_v)):
            x, k, v = block.step(x, pk, pv, ck, cv, bias, None if modulation is None else modulation[:, i], rope)
            new_k.append(k)
            new_v.append(v)
        return self.head(self.ln_f(x)).reshape(-1, self.cfg.codebook_size), new_k, new_v


def ordered_kind() -> generators.GeneratorKind:
    return generators.GeneratorKind("ar", "autoregressive transformer, another drawing order (probe)", OrderConfig,
                                    OrderedARPredictor, training_inputs, evaluation_inputs, "teacher-forced")


@torch.no_grad()
def draw(model: TextToCodes, captions: list[str], seeds: list[int], guidance: float, temperature: float) -> torch.Tensor:
    P, N, B = model.predictor, model.predictor.cfg.positions, len(captions)
    context, past_k, past_v, noise = guided_start(model, captions, seeds)
    token = torch.full((2 * B, 1), P.cfg.start_id, dtype=torch.long)
    codes = torch.empty((B, N), dtype=torch.long)
    for t in range(N):
        cell = int(P.cells[t])
        logits, past_k, past_v = P.step(token, past_k, past_v, *context)
        cond, uncond = logits.chunk(2)
        codes[:, cell] = pick_codes(uncond + guidance * (cond - uncond), noise[:, cell], temperature, 0)
        token = codes[:, cell:cell + 1].repeat(2, 1)
    return codes.view(B, P.cfg.grid, P.cfg.grid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_swapped_network_args(ap, "tiny-ar-<order>")
    ap.add_argument("--order", default="subscale2")
    ap.add_argument("--seed", type=int, default=0, help="training seed (another seed: how far two runs differ)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    cell_order(args.order, 16)  # an unknown order fails before training
    suffix = f"-seed{args.seed}" if args.seed else ""
    folder = ws.checkpoint(f"tiny-ar-{args.order}{suffix}")
    if not args.skip_training:
        p = AR_PRESETS["default"]["tiny"]
        p = replace(p, predictor={**p.predictor, "order": args.order}, train={**p.train, "seed": args.seed,
                                                                                  "compile": args.compile})
        train_swapped_network(ws, ordered_kind, p, args.steps, folder)

    model, final = load_swapped_network(folder, OrderedARPredictor, OrderConfig)
    decoder = load_generator(ws, "tiny-ar", checkpoint=ws.checkpoint(args.decoder_from))
    probe = probe_set(ws, args.captions)
    n = len(probe.captions)
    print(f"{n} test captions; order {args.order}; test CE {final['ce']:.3f} with text vs {final['ce_no_text']:.3f} "
          f"without; {final['steps']} steps in {final['train_seconds_this_run'] / 60:.1f} min")
    codes, seconds = draw_probe_codes(draw, model, probe, args.batch)
    print_style_row(args.order, decoder, probe, codes, seconds)


if __name__ == "__main__":
    main()
