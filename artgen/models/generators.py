"""The two text-to-codes generator families, by name, and how their checkpoints are named.

    masked  the direct index predictor (artgen.models.predictor): every position at once, one shot or
            a few parallel refinement steps (MaskGIT-style)
    ar      the autoregressive transformer (artgen.models.ar_predictor): one position per step in
            raster order, with a KV cache

A trained model lives in `checkpoints/<model>/`, where the model name is the encoder's name
for the masked predictor (`tiny`, as before) and `<encoder>-ar` for the autoregressive one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from artgen.errors import ArtgenError

AR_SUFFIX = "-ar"


@dataclass(frozen=True)
class GeneratorKind:
    name: str
    description: str
    config: type  # the predictor's config dataclass
    build: Callable  # config -> nn.Module
    training_inputs: Callable  # (codes, text_mask, cfg, generator) -> (inputs, predicted, text_mask)
    evaluation_inputs: Callable  # (codes, cfg) -> what the test CE reads
    test_ce_kind: str  # what the checkpoint's test CE measures: "one-shot" or "teacher-forced"


def _masked() -> GeneratorKind:
    from artgen.models.predictor import IndexPredictor, PredictorConfig, evaluation_inputs, training_inputs

    return GeneratorKind("masked", "direct index predictor (one shot or parallel refinement)", PredictorConfig,
                         IndexPredictor, training_inputs, evaluation_inputs,
                         "one-shot")  # every position predicted from a fully masked grid


def _ar() -> GeneratorKind:
    from artgen.models.ar_predictor import ARConfig, ARPredictor, evaluation_inputs, training_inputs

    return GeneratorKind("ar", "autoregressive transformer (raster order, KV cache)", ARConfig, ARPredictor,
                         training_inputs, evaluation_inputs,
                         "teacher-forced")  # every position predicted from the true codes before it


GENERATORS: dict[str, Callable[[], GeneratorKind]] = {"masked": _masked, "ar": _ar}


def generator_kind(name: str) -> GeneratorKind:
    if name not in GENERATORS:
        raise ArtgenError(f"unknown generator {name!r}: use one of {', '.join(GENERATORS)}")
    return GENERATORS[name]()


def model_name(encoder: str, generator: str = "masked") -> str:
    """The checkpoint folder of `encoder` trained with `generator`: tiny, tiny-ar, ..."""
    generator_kind(generator)
    return encoder if generator == "masked" else f"{encoder}{AR_SUFFIX}"


def split_model_name(name: str) -> tuple[str, str]:
    """(encoder, generator) of a model name: "tiny" -> ("tiny", "masked"), "tiny-ar" -> ("tiny", "ar")."""
    if name.endswith(AR_SUFFIX):
        return name[: -len(AR_SUFFIX)], "ar"
    return name, "masked"
