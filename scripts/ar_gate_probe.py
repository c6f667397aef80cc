"""Would the words steer the generator harder if they also scaled each block's residual
branches? (A probe of the idea, not the product.)

The shipped generator's style follows its words better the more of each prediction the words
carry: text modulation (adaLN) widened the test-CE gap between the model with and without its
text (0.106 -> 0.185 nats per position) and raised style consistency; the codes above each cell
given to the input narrowed it (0.180 -> 0.132) and lowered it (docs/generation.md). DiT's
adaLN-Zero (Peebles & Xie 2023) also has the conditioning gate every residual branch. Here the
pooled text gives each block three more vectors g, and its self-attention, cross-attention and
MLP branches add (1 + g) * branch: zero-initialised like the shifts and scales, so training starts
from the plain default preset's network.

    python scripts/ar_gate_probe.py --workdir W [--steps 2000] [--compile] [--captions 1000]

W needs the corpus, the VQ-VAE latents (with the mirror images) and an AR model to decode with
(`--decoder-from`, only its VQ-VAE is used), and no `checkpoints/tiny-ar` (it trains there, then
moves the model to `checkpoints/tiny-ar-gates`). Prints the test CE with and without the text
and the style consistency of the default sampler (guidance 2.5, T 0.8), as
scripts/ar_order_probe.py does for its orders.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import torch
from ar_probe_common import (
    add_swapped_network_args,
    draw_probe_codes,
    guided_codes,
    load_swapped_network,
    print_style_row,
    probe_set,
    train_swapped_network,
)

import artgen.models.generators as generators
from artgen.generate import load_generator
from artgen.models.ar_predictor import ARBlock, ARConfig, ARPredictor, evaluation_inputs, training_inputs
from artgen.models.text_to_codes import TextToCodes
from artgen.training.predictor import AR_PRESETS
from artgen.workspace import Workspace

PER_BLOCK = 9  # shift and scale of the 3 norms (6), then a gate for each of the 3 branches


@dataclass
class GateConfig(ARConfig):
    gates: bool = True


class GatedBlock(ARBlock):
    def forward(self, x, text, key_mask, mod=None, rope=None):
        g = 1 + mod[:, None, 6:9]  # (B, 1, 3, C)
        x = x + g[:, :, 0] * self.self_attn(self._norm(self.ln1, x, mod, 0), rope)
        x = x + g[:, :, 1] * self.cross_attn(self._norm(self.ln2, x, mod, 1), text, key_mask)
        return x + g[:, :, 2] * self.mlp(self._norm(self.ln3, x, mod, 2))

    def step(self, x, past_k, past_v, cross_k_t, cross_v, bias, mod=None, rope=None):
        g = 1 + mod[:, None, 6:9]
        h, k, v = self.self_attn.step(self._norm(self.ln1, x, mod, 0), past_k, past_v, rope)
        x = x + g[:, :, 0] * h
        x = x + g[:, :, 1] * self.cross_attn.step(self._norm(self.ln2, x, mod, 1), cross_k_t, cross_v, bias)
        return x + g[:, :, 2] * self.mlp(self._norm(self.ln3, x, mod, 2)), k, v


class GatedARPredictor(ARPredictor):
    def __init__(self, cfg: GateConfig):
        if not cfg.text_modulation:
            raise SystemExit("the gates come from the text modulation: keep text_modulation on")
        super().__init__(cfg)
        self.blocks = torch.nn.ModuleList(GatedBlock(cfg) for _ in range(cfg.layers))
        self.modulation = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(cfg.width, cfg.layers * PER_BLOCK * cfg.width))
        torch.nn.init.zeros_(self.modulation[1].weight)
        torch.nn.init.zeros_(self.modulation[1].bias)

    def text_modulation(self, text, keys):
        w = keys.to(text.dtype)[:, :, None]
        pooled = (text * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)
        return self.modulation(pooled).view(-1, self.cfg.layers, PER_BLOCK, self.cfg.width)


def gated_kind() -> generators.GeneratorKind:
    return generators.GeneratorKind("ar", "autoregressive transformer, residual branches gated by the text (probe)", GateConfig,
                                    GatedARPredictor, training_inputs, evaluation_inputs, "teacher-forced")


def draw(model: TextToCodes, captions: list[str], seeds: list[int], guidance: float, temperature: float) -> torch.Tensor:
    """The plain raster sampler of the sweeps (`guided_codes`), as a (B, h, w) grid."""
    g = model.predictor.cfg.grid
    return guided_codes(model, captions, seeds, guidance, temperature)[0].view(len(captions), g, g)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_swapped_network_args(ap, "tiny-ar-gates")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    folder = ws.checkpoint("tiny-ar-gates")
    if not args.skip_training:
        p = AR_PRESETS["default"]["tiny"]
        p = replace(p, predictor={**p.predictor, "gates": True}, train={**p.train, "compile": args.compile})
        train_swapped_network(ws, gated_kind, p, args.steps, folder)
    model, final = load_swapped_network(folder, GatedARPredictor, GateConfig)
    decoder = load_generator(ws, "tiny-ar", checkpoint=ws.checkpoint(args.decoder_from))
    probe = probe_set(ws, args.captions)
    print(f"{len(probe.captions)} test captions; test CE {final['ce']:.3f} with text vs {final['ce_no_text']:.3f} without "
          f"(gap {final['ce_no_text'] - final['ce']:.3f}); {final['steps']} steps in {final['train_seconds_this_run'] / 60:.1f} min")
    codes, seconds = draw_probe_codes(draw, model, probe, args.batch)
    print_style_row("gated residuals", decoder, probe, codes, seconds)


if __name__ == "__main__":
    main()
