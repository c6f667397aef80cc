"""The autoregressive generator: a decoder-only transformer over the latent grid's code
indices in raster order, conditioned on the text by cross-attention.

iGPT in VQ latent space, as in taming-transformers (Esser et al., 2021) and LlamaGen (Sun et
al., 2024): position t sees a start token and the codes of positions 0..t-1 (causal
self-attention), cross-attends to the text states, and predicts the code of position t. Each
input carries a learned 2-D position (row + column embedding) of the position it predicts.
With `rope` the self-attention's queries and keys are also rotated by their 2-D position (half
of each head's channels by the row, half by the column: 2-D RoPE, as LlamaGen), so a head can
find "the cell above" or "two to the left" by its relative offset, wherever it is on the grid.
With `text_modulation` the pooled text also modulates every LayerNorm of every block (a
shift and a scale per norm from the mean of the text memory, adaLN as in DiT, Peebles & Xie
2023, zero-initialised so training starts from the plain model): a global style signal every
position reads, beside the per-token cross-attention.
Classifier-free guidance as in the direct predictor: the text is dropped for `text_drop` of
the training samples, and a learned "null" text token, always among the keys, is all that
is left to attend to, so an all-False text mask is the unconditional model.

Sampling runs one position per step with a KV cache (`step`): the keys and values of the
positions already drawn are kept, and the cross-attention keys and values of the text are
computed once per prompt (`cross_kv`). `forward` is the teacher-forced pass over the whole
grid that training uses; `step` after `step` gives the very same logits (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from artgen.models.layers import MLP


@dataclass
class ARConfig:
    grid: int = 16  # latent grid side: grid*grid positions, generated in raster order
    codebook_size: int = 512
    text_width: int = 192  # width of the encoder's states (set from the encoder)
    width: int = 128
    layers: int = 4
    heads: int = 4
    mlp_ratio: int = 3
    dropout: float = 0.0
    text_drop: float = 0.1  # share of training samples whose text is dropped (for guidance)
    input_noise: float = 0.0  # share of the codes the model reads in training swapped for codes of other
                              # paintings (the targets stay true): it learns to keep a form going after a slip
    text_modulation: bool = False  # adaLN: the pooled text shifts and scales every block's LayerNorms
    rope: bool = False  # 2-D rotary positions in the self-attention (relative row and column offsets)
    rope_base: float = 100.0  # RoPE's longest wavelength scale: 100 over a 16-cell side
    above: bool = False  # each input also carries the codes of the three cells above the one predicted
                         # (above-left, above, above-right: `ABOVE_OFFSETS`), as PixelCNN's causal neighbourhood

    @property
    def positions(self) -> int:
        return self.grid * self.grid

    @property
    def start_id(self) -> int:
        return self.codebook_size  # the extra embedding row that starts every sequence

    @property
    def head_width(self) -> int:
        return self.width // self.heads


ABOVE_OFFSETS = ((-1, -1), (-1, 0), (-1, 1))  # (row, column) of the cells an input reads with `above`


def above_sources(cfg: ARConfig) -> torch.Tensor:
    """(3, N) long: for every position t (raster order) the position of each of its `ABOVE_OFFSETS`
    cells, or N where that cell is off the grid (the first row, the first or last column)."""
    g, N = cfg.grid, cfg.positions
    cell = torch.arange(N)
    row, col = cell // g, cell % g
    out = []
    for dr, dc in ABOVE_OFFSETS:
        r, c = row + dr, col + dc
        inside = (r >= 0) & (c >= 0) & (c < g)
        out.append(torch.where(inside, r * g + c, torch.full_like(cell, N)))
    return torch.stack(out)


def rope_tables(cfg: ARConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """2-D RoPE for every grid cell in raster order: the first half of a head's channels turns
    with the cell's row, the second half with its column, each half in pairs (channel i with
    i + quarter) at the frequencies base^(-j/quarter). Returns cos (N, hs), the signed sin
    (N, hs) and the channel permutation (hs,) that `apply_rope` reads: RoPE's "rotate half" as a
    Gather and a Mul, no MatMul that int8 quantisation would touch."""
    hs = cfg.head_width
    quarter = hs // 4
    freqs = cfg.rope_base ** (-torch.arange(quarter, dtype=torch.float64) / quarter)  # (q,)
    cell = torch.arange(cfg.positions)
    angles = []
    for coord in (cell // cfg.grid, cell % cfg.grid):  # row, then column
        a = coord[:, None].double() * freqs[None]  # (N, q)
        angles.append(torch.cat([a, a], dim=1))  # (N, 2q): pair i with i + q
    angle = torch.cat(angles, dim=1)  # (N, hs)
    perm, sign = torch.empty(hs, dtype=torch.long), torch.empty(hs, dtype=torch.float64)
    for half in (0, hs // 2):
        for i in range(quarter):
            perm[half + i], sign[half + i] = half + quarter + i, -1.0  # out[i] = -x[i + q]
            perm[half + quarter + i], sign[half + quarter + i] = half + i, 1.0  # out[i + q] = x[i]
    return angle.cos().float(), (angle.sin() * sign).float(), perm


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """x (..., T, hs) rotated by the tables' rows (T, hs) (`rope_tables`)."""
    return x * cos + x.index_select(-1, perm) * sin


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ARConfig):
        super().__init__()
        self.heads, self.head_width = cfg.heads, cfg.head_width
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)
        self.dropout = cfg.dropout

    def forward(self, x, rope=None):
        """The whole sequence at once, causally (training): x (B, T, C) -> (B, T, C); rope: the
        (cos, sin) tables' first T rows and the channel permutation, or None."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, self.head_width).permute(2, 0, 3, 1, 4)  # 3 x (B, h, T, hs)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, C))

    def step(self, x, past_k, past_v, rope=None):
        """One new position that sees every cached one: x (B, 1, C), past_k/past_v (B, h, t, hs)
        -> (B, 1, C) and the keys/values (B, h, t+1, hs) (the keys rotated, with `rope`: the
        (cos, sin) of position t, (1, hs) each, and the channel permutation). Written with fixed reshapes (a (B, 1, h, hs)
        tensor has the layout of (B, h, 1, hs)) so the ONNX step graph stays small."""
        h, hs = self.heads, self.head_width
        qk, v = self.qkv(x).split([2 * h * hs, h * hs], dim=-1)  # (B, 1, 2C), (B, 1, C)
        qk = qk.reshape(-1, 2 * h, 1, hs)  # the queries' heads, then the keys'
        if rope is not None:  # both turned at once: 4 ops per block in the step graph
            qk = apply_rope(qk, *rope)
        q, k = qk.split(h, dim=1)  # (B, h, 1, hs) each
        k = torch.cat([past_k, k], dim=2)  # (B, h, t+1, hs)
        v = torch.cat([past_v, v.reshape(-1, h, 1, hs)], dim=2)
        att = ((q * hs ** -0.5) @ k.transpose(2, 3)).softmax(dim=-1)  # (B, h, 1, t+1)
        return self.out((att @ v).reshape(-1, 1, h * hs)), k, v


class CrossAttention(nn.Module):
    """Attention to the text. Its keys/values depend on the prompt only, so sampling computes
    them once (`cache`) and every step reuses them."""

    def __init__(self, cfg: ARConfig):
        super().__init__()
        self.heads, self.head_width = cfg.heads, cfg.head_width
        self.q = nn.Linear(cfg.width, cfg.width)
        self.kv = nn.Linear(cfg.width, 2 * cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)

    def _kv(self, text):
        B, Tt, C = text.shape
        k, v = self.kv(text).view(B, Tt, 2, self.heads, self.head_width).permute(2, 0, 3, 1, 4)
        return k, v  # 2 x (B, h, Tt, hs)

    def forward(self, x, text, key_mask):
        """x (B, T, C), text (B, Tt, C), key_mask (B, Tt) bool -> (B, T, C)."""
        B, T, C = x.shape
        k, v = self._kv(text)
        q = self.q(x).view(B, T, self.heads, self.head_width).transpose(1, 2)  # (B, h, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        return self.out(y.transpose(1, 2).reshape(B, T, C))

    def cache(self, text):
        """(keys transposed (B, h, hs, Tt), values (B, h, Tt, hs)) for `step`."""
        k, v = self._kv(text)
        return k.transpose(2, 3), v

    def step(self, x, k_t, v, bias):
        """x (B, 1, C); bias (B, 1, 1, Tt) float, 0 for keys that may be attended, -inf else."""
        h, hs = self.heads, self.head_width
        att = ((self.q(x).reshape(-1, h, 1, hs) * hs ** -0.5) @ k_t + bias).softmax(dim=-1)  # (B, h, 1, Tt)
        return self.out((att @ v).reshape(-1, 1, h * hs))


class ARBlock(nn.Module):
    def __init__(self, cfg: ARConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.width)
        self.self_attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.width)
        self.cross_attn = CrossAttention(cfg)
        self.ln3 = nn.LayerNorm(cfg.width)
        self.mlp = MLP(cfg.width, cfg.mlp_ratio, cfg.dropout)

    @staticmethod
    def _norm(ln, x, mod, i):
        """LayerNorm i of the block, shifted and scaled by the text (mod (B, 6, C)) when given."""
        y = ln(x)
        return y if mod is None else y * (1 + mod[:, None, 2 * i + 1]) + mod[:, None, 2 * i]

    def forward(self, x, text, key_mask, mod=None, rope=None):
        x = x + self.self_attn(self._norm(self.ln1, x, mod, 0), rope)
        x = x + self.cross_attn(self._norm(self.ln2, x, mod, 1), text, key_mask)
        return x + self.mlp(self._norm(self.ln3, x, mod, 2))

    def step(self, x, past_k, past_v, cross_k_t, cross_v, bias, mod=None, rope=None):
        h, k, v = self.self_attn.step(self._norm(self.ln1, x, mod, 0), past_k, past_v, rope)
        x = x + h
        x = x + self.cross_attn.step(self._norm(self.ln2, x, mod, 1), cross_k_t, cross_v, bias)
        return x + self.mlp(self._norm(self.ln3, x, mod, 2)), k, v


class ARPredictor(nn.Module):
    def __init__(self, cfg: ARConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.codebook_size + 1, cfg.width)  # + the start token
        self.row_emb = nn.Parameter(torch.randn(cfg.grid, cfg.width) * 0.02)
        self.col_emb = nn.Parameter(torch.randn(cfg.grid, cfg.width) * 0.02)
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_width), nn.Linear(cfg.text_width, cfg.width))
        self.null_text = nn.Parameter(torch.randn(1, 1, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(ARBlock(cfg) for _ in range(cfg.layers))
        if cfg.text_modulation:  # pooled text -> per block a shift and a scale for each of its 3 norms
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.width, cfg.layers * 6 * cfg.width))
            nn.init.zeros_(self.modulation[1].weight)
            nn.init.zeros_(self.modulation[1].bias)
        self.ln_f = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.codebook_size)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        if cfg.above:  # one table per neighbour, its last row (the start id) for a cell off the grid
            self.above_emb = nn.Embedding(len(ABOVE_OFFSETS) * (cfg.codebook_size + 1), cfg.width)
            nn.init.normal_(self.above_emb.weight, std=0.02)
            self.register_buffer("above_src", above_sources(cfg), persistent=False)
        if cfg.rope:  # fixed tables, rebuilt from the config (not saved with the weights)
            cos, sin, perm = rope_tables(cfg)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
            self.register_buffer("rope_perm", perm, persistent=False)

    def positions(self) -> torch.Tensor:
        """(N, d) learned 2-D position of every grid cell, raster order."""
        g = self.cfg.grid
        return (self.row_emb[:, None, :] + self.col_emb[None, :, :]).reshape(g * g, -1)

    def above_codes(self, codes: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """The codes of the `ABOVE_OFFSETS` cells, the start id off the grid: codes (B, N) (only
        the positions before t are read) -> (B, 3) for position t, or (B, N, 3) for every position
        when t is None."""
        pad = torch.full((codes.shape[0], 1), self.cfg.start_id, dtype=codes.dtype, device=codes.device)
        src = (self.above_src.T if t is None else self.above_src[:, t]).clamp(max=codes.shape[1])  # off the grid: the pad
        return torch.cat([codes, pad], dim=1)[:, src]  # (B, N, 3) or (B, 3)

    def _above_embedding(self, above: torch.Tensor) -> torch.Tensor:
        """above (..., 3) codes -> (..., d): the sum of the three neighbours' embeddings."""
        table = torch.arange(len(ABOVE_OFFSETS), device=above.device) * (self.cfg.codebook_size + 1)
        return self.above_emb(above + table).sum(-2)

    def text(self, states: torch.Tensor, text_mask: torch.Tensor):
        """Text states (B, T, d_text) and text_mask (B, T) bool (all False: the text dropped) ->
        the cross-attention memory (B, 1+T, d) and its key mask (B, 1+T) bool, the null token
        first and always attendable."""
        B = states.shape[0]
        text = torch.cat([self.null_text.expand(B, -1, -1), self.text_proj(states)], dim=1)  # (B, 1+T, d)
        return text, torch.cat([torch.ones_like(text_mask[:, :1]), text_mask], dim=1)

    def text_modulation(self, text: torch.Tensor, keys: torch.Tensor) -> torch.Tensor | None:
        """(B, layers, 6, d) shifts and scales from the mean of the attendable text memory (the
        null token alone when the text is dropped), or None without `text_modulation`."""
        if not self.cfg.text_modulation:
            return None
        w = keys.to(text.dtype)[:, :, None]  # (B, 1+T, 1)
        pooled = (text * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)  # (B, 1, d): a 3-D input exports as MatMul
        return self.modulation(pooled).view(-1, self.cfg.layers, 6, self.cfg.width)

    def forward(self, codes: torch.Tensor, states: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, N, K): position t's from the start token and codes[:, :t].
        codes (B, N) long; states (B, T, d_text); text_mask (B, T) bool."""
        N = codes.shape[1]
        start = torch.full_like(codes[:, :1], self.cfg.start_id)
        x = self.tok_emb(torch.cat([start, codes[:, :-1]], dim=1)) + self.positions()[:N]  # (B, N, d)
        if self.cfg.above:
            x = x + self._above_embedding(self.above_codes(codes)[:, :N])
        text, keys = self.text(states, text_mask)
        mod = self.text_modulation(text, keys)
        rope = (self.rope_cos[:N], self.rope_sin[:N], self.rope_perm) if self.cfg.rope else None
        for i, block in enumerate(self.blocks):
            x = block(x, text, keys, None if mod is None else mod[:, i], rope)
        return self.head(self.ln_f(x))  # (B, N, K)

    def context(self, states: torch.Tensor, text_mask: torch.Tensor):
        """What every sampling step reads from the prompt, computed once: per block the
        cross-attention keys (B, h, hs, 1+T) and values (B, h, 1+T, hs), and the key bias
        (B, 1, 1, 1+T), 0 where a key may be attended and -inf where not, and the text modulation
        (B, layers, 6, d) (None without `text_modulation`)."""
        text, keys = self.text(states, text_mask)
        cache = [block.cross_attn.cache(text) for block in self.blocks]
        bias = torch.zeros(keys.shape, dtype=text.dtype).masked_fill(~keys, float("-inf"))[:, None, None, :]
        return [k for k, _ in cache], [v for _, v in cache], bias, self.text_modulation(text, keys)

    def step(self, token: torch.Tensor, past_k: list[torch.Tensor], past_v: list[torch.Tensor],
             cross_k: list[torch.Tensor], cross_v: list[torch.Tensor], bias: torch.Tensor,
             modulation: torch.Tensor | None = None, above: torch.Tensor | None = None):
        """One cached step. token (B, 1) long: the start token, then the last code drawn;
        past_k/past_v per block (B, h, t, hs) for the t positions before it (t may be 0);
        cross_k/cross_v/bias/modulation as `context` gives them; with `cfg.above`, above (B, 3)
        long: `above_codes` of the codes drawn so far for position t.
        Returns the logits (B, K) of position t and per block the keys/values (B, h, t+1, hs)."""
        t = past_k[0].shape[2]
        x = self.tok_emb(token) + self.positions()[t]  # (B, 1, d)
        if self.cfg.above:
            if above is None:
                raise ValueError("this generator reads the codes above each cell: pass `above` to step")
            x = x + self._above_embedding(above)[:, None]
        rope = (self.rope_cos[t:t + 1], self.rope_sin[t:t + 1], self.rope_perm) if self.cfg.rope else None  # (1, hs)
        new_k, new_v = [], []
        for i, (block, pk, pv, ck, cv) in enumerate(zip(self.blocks, past_k, past_v, cross_k, cross_v)):
            x, k, v = block.step(x, pk, pv, ck, cv, bias, None if modulation is None else modulation[:, i], rope)
            new_k.append(k)
            new_v.append(v)
        return self.head(self.ln_f(x)).reshape(-1, self.cfg.codebook_size), new_k, new_v  # (B, K)

    def empty_cache(self, batch: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Keys and values of no position yet: per block (B, h, 0, hs)."""
        c = self.cfg
        return ([torch.zeros(batch, c.heads, 0, c.head_width) for _ in range(c.layers)],
                [torch.zeros(batch, c.heads, 0, c.head_width) for _ in range(c.layers)])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def training_inputs(codes: torch.Tensor, text_mask: torch.Tensor, cfg: ARConfig,
                    generator: torch.Generator | None = None):
    """Teacher forcing: the model reads the true codes and predicts every position; the text of
    `text_drop` of the samples is dropped. Same contract as `predictor.training_inputs`:
    codes (B, N) -> (inputs (B, N), predicted (B, N) bool, text_mask (B, T))."""
    drop = torch.rand(codes.shape[0], generator=generator, device=codes.device) < cfg.text_drop
    return noisy_inputs(codes, cfg.input_noise, generator), torch.ones_like(codes, dtype=torch.bool), text_mask & ~drop[:, None]


def noisy_inputs(codes: torch.Tensor, share: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """`codes` (B, N) with about `share` of them swapped for codes drawn from the whole batch (so
    the slips are codes as common as real ones, not uniform noise). At sampling time the model
    reads its own draws, some of them slips; reading true codes only, it never learns to recover
    from one, and a painting can turn into another style halfway down (exposure bias)."""
    if share <= 0:
        return codes
    swap = torch.rand(codes.shape, generator=generator, device=codes.device) < share
    pool = codes.flatten()
    drawn = pool[torch.randint(0, pool.numel(), codes.shape, generator=generator, device=codes.device)]
    return torch.where(swap, drawn, codes)


def evaluation_inputs(codes: torch.Tensor, cfg: ARConfig) -> torch.Tensor:
    """What the test CE reads: the whole true sequence (the full teacher-forced CE)."""
    return codes
