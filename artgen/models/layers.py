"""The transformer layers every model here is built from: the tiny text encoder
(`encoders.TinyBlock`), the direct index predictor and the autoregressive one.

Attention is written out (matmul + softmax) rather than `F.scaled_dot_product_attention` so
each model exports to any ONNX opset as it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """Multi-head attention written out (matmul + softmax) so it exports to any ONNX opset.
    `key_mask` (B, Tk) bool marks keys that may be attended to; every row must have one."""

    def __init__(self, width: int, heads: int, kv_width: int | None = None, dropout: float = 0.0):
        super().__init__()
        assert width % heads == 0
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(kv_width or width, 2 * width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, Tq, C = x.shape
        Tk = context.shape[1]
        h = self.heads
        q = self.q(x).view(B, Tq, h, C // h).transpose(1, 2)  # (B, h, Tq, hs)
        k, v = self.kv(context).view(B, Tk, 2, h, C // h).permute(2, 0, 3, 1, 4)  # 2 x (B, h, Tk, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // h))  # (B, h, Tq, Tk)
        if key_mask is not None:
            att = att.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        att = F.dropout(att.softmax(dim=-1), self.dropout, self.training)
        y = (att @ v).transpose(1, 2).reshape(B, Tq, C)  # (B, Tq, C)
        return self.out(y)


class MLP(nn.Module):
    def __init__(self, width: int, ratio: int, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(width, ratio * width)
        self.proj = nn.Linear(ratio * width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))
