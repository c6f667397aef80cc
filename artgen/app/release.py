"""`artgen release-model`: build the tiny model shipped in `artgen/assets/tiny/`.

One command from the default presets: the demo pipeline at `--preset default` for the
VQ-VAE, its adversarial decoder and the tiny encoder + predictor, the full `artgen bench` on it, an int8 ONNX bundle
with a parity check, then the bundle and its bench report copied into the package. Part of
the CLI layer (it wires export and bench, which the core modules never import).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from artgen.errors import ArtgenError
from artgen.files import replace_dir
from artgen.locks import stage_lock
from artgen.progress import console
from artgen.workspace import SHIPPED_MODEL, Workspace

SIZE_LIMIT_MB = 10.0


def shipped_generator() -> str:
    """The generator of the model shipped in the package (what `release-model` rebuilds by default)."""
    try:
        return json.loads((SHIPPED_MODEL / "bundle.json").read_text()).get("generator", "masked")
    except (OSError, ValueError, AttributeError):
        return "masked"


def shipped_candidates() -> int:
    """How many candidates the shipped bundle draws per image by default (1 before best-of-N)."""
    try:
        return int(json.loads((SHIPPED_MODEL / "bundle.json").read_text())["sampling"].get("candidates", 1))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 1


def release_model(ws: Workspace, preset: str = "default", out: Path = SHIPPED_MODEL, quick_bench: bool = False,
                  annotations: str = "gt", generator: str | None = None, model_preset: str | None = None,
                  candidates: int | None = None) -> dict:
    """`preset` trains the VQ-VAE and the decoder, `model_preset` (default: `preset`) the tiny
    encoder and its generator (`long`: the AR generator's twice-as-long preset); `candidates`
    (default: the shipped bundle's, for the autoregressive generator) the bundle's best of N."""
    generator = generator or shipped_generator()
    if candidates is None:
        candidates = shipped_candidates() if generator == "ar" else 1
    with stage_lock(ws, "release", f"a release into {out}"):
        return _release(ws, preset, model_preset, out, quick_bench, annotations, generator, candidates)


def _release(ws: Workspace, preset: str, model_preset: str | None, out: Path, quick_bench: bool, annotations: str,
             generator: str, candidates: int = 1) -> dict:
    from artgen.app.demo import DemoConfig, demo_bench_dir, run_demo
    from artgen.generate import load_generator
    from artgen.models.generators import model_name
    from artgen.models.vqvae import DECODER_METRICS_FILE
    from artgen.training.picker import PICKER
    from export.parity import check_parity

    model = model_name("tiny", generator)
    run_demo(ws, DemoConfig(vqvae_preset=preset, decoder_preset=preset, encoder_preset=model_preset or preset,
                            encoder_preset_flag="--model-preset" if model_preset else "--preset",
                            bench_quick=quick_bench, annotations=annotations, generator=generator, candidates=candidates))
    bundle = ws.bundles / f"{model}-int8"  # the demo's int8 export of the model just trained
    meta = json.loads((bundle / "bundle.json").read_text())
    if meta["size_bytes"] / 1e6 > SIZE_LIMIT_MB:
        raise ArtgenError(f"the int8 tiny bundle is {meta['size_bytes'] / 1e6:.1f} MB, over the {SIZE_LIMIT_MB:.0f} MB "
                          "a shipped model may take: shrink the tiny preset")
    parity = check_parity(load_generator(ws, model), bundle)
    if not parity.passed:
        raise ArtgenError(f"the int8 bundle fails parity ({parity.criteria}): not shipping it")
    (bundle / "parity.json").write_text(json.dumps(parity.to_dict(), indent=2))

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(bundle, tmp)
    # The demo keeps a bundle exported before a runtime-only change; ship today's runtime.
    import export.runtime

    shutil.copy(export.runtime.__file__, tmp / "runtime.py")
    report_dir = tmp / "bench"
    report_dir.mkdir()
    for name in ("report.json", "report.md"):
        shutil.copy(demo_bench_dir(ws, model) / name, report_dir / name)
    for name in ("metrics.json",):
        shutil.copy(ws.checkpoint(model) / name, tmp / f"train_{name}")
        shutil.copy(ws.checkpoint("vqvae") / name, tmp / f"vqvae_{name}")
    shutil.copy(ws.checkpoint("vqvae") / DECODER_METRICS_FILE, tmp / f"vqvae_{DECODER_METRICS_FILE}")
    if "picker" in meta["graphs"]:  # the caption picker's training record beside its graph
        shutil.copy(ws.checkpoint(PICKER) / "metrics.json", tmp / "picker_metrics.json")
    replace_dir(tmp, out)
    console.print(f"shipped the int8 tiny model ({meta['size_bytes'] / 1e6:.2f} MB, parity {parity.code_agreement:.1%} "
                  f"code agreement) to {out}, with its bench report in {out / 'bench'}")
    return meta
