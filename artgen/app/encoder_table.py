"""`artgen encoders`: every registered text encoder with its size, tokenizer, weights and
whether the workspace holds a trained model of it.

It lives in the app layer because it reads a workspace and builds a predictor beside each
encoder to count parameters; the encoder registry itself (`artgen.models.encoders`) knows
nothing of predictors or workspaces.
"""

from __future__ import annotations

import json

import torch
from rich.table import Table

from artgen.models.encoders import ENCODERS, FROM_SCRATCH
from artgen.models.predictor import IndexPredictor, PredictorConfig


def describe_encoders(ws) -> list[dict]:
    """One row per registered encoder: its trained checkpoint in `ws` when there is one,
    else the architecture a new training run would build (default preset sizes)."""
    rows = []
    for name, entry in ENCODERS.items():
        ckpt = ws.checkpoint(name) / "config.json"
        if ckpt.exists():
            try:
                summary = json.loads(ckpt.read_text())["summary"]
                rows.append({"name": name, "encoder_parameters": summary["encoder_parameters"],
                             "predictor_parameters": summary["predictor_parameters"], "tokenizer": summary["tokenizer"],
                             "weights": summary["weights"], "status": f"trained ({summary['preset']} preset)",
                             "description": entry.description})
                continue
            except (OSError, KeyError, json.JSONDecodeError):
                pass  # a damaged checkpoint is listed as not trained; `artgen generate` names the damage
        with torch.device("meta"):  # sizes only: no memory, no initialisation
            encoder = entry.build((), None, False, None)
            predictor = IndexPredictor(PredictorConfig(text_width=encoder.width))
        rows.append({"name": name, "encoder_parameters": encoder.num_parameters(),
                     "predictor_parameters": predictor.num_parameters(), "tokenizer": encoder.tokenizer_kind,
                     "weights": f"{FROM_SCRATCH} (or --pretrained DIR_OR_HUB_ID)" if name != "tiny" else FROM_SCRATCH,
                     "status": f"not trained: `artgen train --encoder {name}`", "description": entry.description})
    return rows


def encoder_table(ws):
    """`artgen encoders` as a rich table."""
    table = Table(title="text encoders (parameters: encoder + predictor = total)")
    for col in ("encoder", "parameters", "tokenizer", "weights", "status"):
        table.add_column(col)
    for r in describe_encoders(ws):
        total = r["encoder_parameters"] + r["predictor_parameters"]
        table.add_row(r["name"],
                      f"{r['encoder_parameters'] / 1e6:.2f}M + {r['predictor_parameters'] / 1e6:.2f}M = {total / 1e6:.2f}M",
                      r["tokenizer"], r["weights"], r["status"])
    return table
