"""The text-to-codes model (a text encoder + a generator of VQ-VAE code grids) and its
checkpoint format, in the Hugging Face convention:

    <dir>/config.json         kind, generator, predictor config, encoder spec, training summary
    <dir>/model.safetensors   `encoder.*` and `predictor.*` weights
    <dir>/encoder.json        the encoder description; <dir>/tokenizer/ its tokenizer

`model.save_pretrained(dir, config)` writes weights first and config.json last (each
atomically), so a config.json never names missing weights; `TextToCodes.from_pretrained(dir)`
rebuilds the model the folder (or a Hugging Face Hub repo id, `artgen.hub`) describes and
returns it with its config.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn

from artgen.errors import ArtgenError
from artgen.files import atomic_save_safetensors, atomic_write_json
from artgen.hub import local_dir
from artgen.models.encoders import TextEncoder, encoder_from_directory
from artgen.models.generators import generator_kind

WEIGHTS, CONFIG = "model.safetensors", "config.json"
FILES = [CONFIG, WEIGHTS, "encoder.json", "tokenizer/*"]  # what a hub snapshot needs


class TextToCodes(nn.Module):
    """Encoder + predictor as one module, so the shared loop (and DDP) sees one model."""

    def __init__(self, encoder: TextEncoder, predictor: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def forward(self, codes, ids, mask, text_mask):
        states = self.encoder(ids, mask)  # (B, T, d)
        return self.predictor(codes, states, text_mask)  # (B, N, K)

    def save_pretrained(self, directory: str | Path, config: dict) -> None:
        directory = Path(directory)
        atomic_save_safetensors(self.state_dict(), directory / WEIGHTS)
        self.encoder.save_description(directory)
        atomic_write_json(directory / CONFIG, config)

    @classmethod
    def from_pretrained(cls, directory: str | Path, retrain_hint: str = "artgen train") -> tuple["TextToCodes", dict]:
        """(model in eval mode, its config.json) from a folder or a hub repo id. A damaged
        folder, or files from different runs, is an ArtgenError naming the folder and `retrain_hint`."""
        from safetensors.torch import load_file

        directory = local_dir(directory, FILES, "model")
        if not (directory / CONFIG).exists() or not (directory / WEIGHTS).exists():
            raise ArtgenError(f"no trained model at {directory} (no {CONFIG} + {WEIGHTS}): run `{retrain_hint}` first")
        try:
            config = json.loads((directory / CONFIG).read_text())
            kind = generator_kind(config.get("generator", "masked"))
            model = cls(encoder_from_directory(directory, load_weights=False), kind.build(kind.config(**config["predictor"])))
            model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
        except ArtgenError:
            raise
        except RuntimeError as e:
            if any(s in str(e) for s in ("size mismatch", "Missing key", "Unexpected key")):
                raise ArtgenError(f"the files of {directory} disagree: {WEIGHTS} does not fit {CONFIG}, encoder.json and "
                                  f"tokenizer/ (they come from different runs): train it again with `{retrain_hint}` "
                                  "(or restore the folder from a backup)") from e
            raise ArtgenError(f"the checkpoint at {directory} is damaged ({type(e).__name__}): "
                              f"train it again with `{retrain_hint}`") from e
        except Exception as e:
            raise ArtgenError(f"the checkpoint at {directory} is damaged ({type(e).__name__}): "
                              f"train it again with `{retrain_hint}`") from e
        return model.eval(), config
