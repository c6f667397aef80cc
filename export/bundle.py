"""`artgen export`: write a trained generator as a self-contained ONNX bundle.

    bundles/tiny/
      text_encoder.onnx  predictor.onnx  decoder.onnx   the graphs (export/graphs.py)
      tokenizer/...                                     spm.model, or tokenizer.json
      bundle.json                                       the whole contract, for apps
      runtime.py                                        the torch-free runtime (a copy)
      README.md                                         the contract in prose

With `int8=True` the transformer graphs (encoder, predictor) are quantised dynamically with
`onnxruntime.quantization` (int8 weights, activations quantised on the fly); the decoder
is a small conv net and stays fp32, which measured faster and exact (see README).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from artgen import __version__
from artgen.errors import ArtgenError
from artgen.files import is_newer, replace_dir
from artgen.generate import Generator
from artgen.sampling import DEFAULT_GUIDANCE, DEFAULT_STEPS, DEFAULT_TEMPERATURE, GUIDED_SHARE, MAX_STEPS, ORDER_STREAM
from artgen.vocabulary import ADJECTIVES, MAX_PROMPT_CHARS, MAX_PROMPT_WORDS, vocabulary_hash
from export.graphs import DecoderGraph, EncoderGraph, PredictorGraph
from export.runtime import BUNDLE_FORMAT


@dataclass
class ExportConfig:
    opset: int = 17
    int8: bool = False
    quantize_decoder: bool = False  # measured: ConvInteger is slower than fp32 conv here


def _tensor_spec(name: str, shape: list, dtype: str) -> dict:
    return {"name": name, "shape": shape, "dtype": dtype}


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict, opset: int) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=opset,
                          input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                          do_constant_folding=True)


def _set_metadata(path: Path, props: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    model.producer_name = "artgen"
    model.producer_version = __version__
    onnx.helper.set_model_props(model, {k: str(v) for k, v in props.items()})
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)


def _quantize(path: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" notice, once per graph

    tmp = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm"], extra_options={"MatMulConstBOnly": True})
    tmp.replace(path)


def _tokenizer_spec(gen: Generator, out: Path) -> dict:
    from artgen.encoders import MAX_TOKENS

    enc = gen.encoder
    tok_dir = out / "tokenizer"
    tok_dir.mkdir()
    if enc.name == "tiny":
        (tok_dir / "spm.model").write_bytes(enc.sp_model)
        return {"kind": "sentencepiece", "file": "tokenizer/spm.model", "bos_id": enc.sp.bos_id(),
                "eos_id": enc.sp.eos_id(), "pad_id": enc.pad_id, "lowercase": True, "max_tokens": MAX_TOKENS}
    enc.tokenizer.backend_tokenizer.save(str(tok_dir / "tokenizer.json"))
    return {"kind": "tokenizers", "file": "tokenizer/tokenizer.json", "pad_id": enc.pad_id,
            "lowercase": True, "max_tokens": MAX_TOKENS, "special_tokens_added": True}


def export_bundle(gen: Generator, out_dir: Path, cfg: ExportConfig | None = None) -> dict:
    """Write `gen` as a bundle at `out_dir` (replaced atomically); returns bundle.json."""
    cfg = cfg or ExportConfig()
    if not 14 <= cfg.opset <= 21:
        raise ArtgenError(f"--opset must be between 14 and 21 (got {cfg.opset})")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        meta = _write_bundle(gen, tmp, cfg)
        replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _write_bundle(gen: Generator, out: Path, cfg: ExportConfig) -> dict:
    pcfg = gen.predictor.cfg
    grid, N, K = pcfg.grid, pcfg.positions, pcfg.codebook_size
    d = gen.encoder.width
    summary = gen.config.get("summary", {})
    props = {"artgen_bundle_format": BUNDLE_FORMAT, "vocabulary_hash": vocabulary_hash(),
             "encoder": gen.encoder.name, "weights": gen.encoder.describe_source(),
             "precision": "int8" if cfg.int8 else "fp32"}

    tokens = gen.encoder.tokenize(["warm, chaotic, vivid", "a calm painting"])
    ids, mask = tokens.ids, tokens.mask.long()
    states = gen.encoder(tokens.ids, tokens.mask).detach()
    codes = torch.full((2, N), pcfg.mask_id, dtype=torch.long)
    T, B = "tokens", "batch"
    _export(EncoderGraph(gen.encoder), (ids, mask), out / "text_encoder.onnx", ["input_ids", "attention_mask"],
            ["states"], {"input_ids": {0: B, 1: T}, "attention_mask": {0: B, 1: T}, "states": {0: B, 1: T}}, cfg.opset)
    _export(PredictorGraph(gen.predictor), (codes, states, mask), out / "predictor.onnx",
            ["codes", "states", "attention_mask"], ["logits"],
            {"codes": {0: B}, "states": {0: B, 1: T}, "attention_mask": {0: B, 1: T}, "logits": {0: B}}, cfg.opset)
    _export(DecoderGraph(gen.vqvae), (codes[:, :].view(2, grid, grid).clamp(max=K - 1),), out / "decoder.onnx",
            ["codes"], ["images"], {"codes": {0: B}, "images": {0: B}}, cfg.opset)
    quantized = ["text_encoder", "predictor"] + (["decoder"] if cfg.quantize_decoder else [])
    for name in ("text_encoder", "predictor", "decoder"):
        path = out / f"{name}.onnx"
        if cfg.int8 and name in quantized:
            _quantize(path)
        _set_metadata(path, props)

    image_size = gen.vqvae.cfg.image_size
    meta = {
        "format": BUNDLE_FORMAT,
        "producer": f"artgen {__version__}",
        "encoder": gen.encoder.name,
        "weights": gen.encoder.describe_source(),
        "precision": "int8" if cfg.int8 else "fp32",
        "int8_graphs": quantized if cfg.int8 else [],
        "opset": cfg.opset,
        "codebook_size": K,
        "grid": grid,
        "mask_id": pcfg.mask_id,
        "image_size": image_size,
        "text_width": d,
        "sampling": {"steps": DEFAULT_STEPS, "guidance": DEFAULT_GUIDANCE, "temperature": DEFAULT_TEMPERATURE,
                     "max_steps": MAX_STEPS, "order_stream": ORDER_STREAM,
                     "guided_share": GUIDED_SHARE,
                     "guided_steps": "the first ceil(S*guided_share) of S steps use uncond + guidance*(cond - uncond), "
                                     "uncond being the logits for an all-zero attention_mask; later steps use cond alone",
                     "order": "image i fixes positions in the order numpy.random.default_rng([seed + i, order_stream]).permutation(N)",
                     "schedule": "cosine: N - floor(N*cos(pi/2*(s+1)/S)) positions are known after step s (0-based) of S",
                     "noise": "Gumbel from numpy.random.default_rng([seed + i, step]).random((n, K)) for image i, row j for the j-th of the n positions the step fixes"},
        "prompt_limits": {"max_chars": MAX_PROMPT_CHARS, "max_words": MAX_PROMPT_WORDS},
        "tokenizer": _tokenizer_spec(gen, out),
        "vocabulary": list(ADJECTIVES),
        "vocabulary_hash": vocabulary_hash(),
        "vqvae_hash": summary.get("vqvae_hash"),
        "graphs": {
            "text_encoder": {"file": "text_encoder.onnx",
                             "inputs": [_tensor_spec("input_ids", ["batch", "tokens"], "int64"),
                                        _tensor_spec("attention_mask", ["batch", "tokens"], "int64")],
                             "outputs": [_tensor_spec("states", ["batch", "tokens", d], "float32")]},
            "predictor": {"file": "predictor.onnx",
                          "inputs": [_tensor_spec("codes", ["batch", N], "int64"),
                                     _tensor_spec("states", ["batch", "tokens", d], "float32"),
                                     _tensor_spec("attention_mask", ["batch", "tokens"], "int64")],
                          "outputs": [_tensor_spec("logits", ["batch", N, K], "float32")]},
            "decoder": {"file": "decoder.onnx",
                        "inputs": [_tensor_spec("codes", ["batch", grid, grid], "int64")],
                        "outputs": [_tensor_spec("images", ["batch", image_size, image_size, 3], "uint8")]},
        },
    }
    (out / "bundle.json").write_text(json.dumps(meta, indent=2))
    shutil.copy(Path(__file__).with_name("runtime.py"), out / "runtime.py")
    (out / "README.md").write_text(bundle_readme(meta))
    meta["size_bytes"] = bundle_size(out)
    (out / "bundle.json").write_text(json.dumps(meta, indent=2))
    return meta


def bundle_is_current(bundle: Path, checkpoint: Path) -> bool:
    """The bundle at `bundle` was exported from the checkpoint folder `checkpoint` as it is now
    (written after its weights) by this version's bundle format, so it can stand for it."""
    meta_path = Path(bundle) / "bundle.json"
    if not is_newer(meta_path, Path(checkpoint) / "model.safetensors"):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    sampling = meta.get("sampling", {})  # the runtime samples with these: they must be today's
    return (meta.get("format") == BUNDLE_FORMAT and sampling.get("guided_share") == GUIDED_SHARE
            and sampling.get("order_stream") == ORDER_STREAM)


def bundle_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def bundle_readme(meta: dict) -> str:
    g = meta["graphs"]

    def rows(specs):
        return "\n".join(f"| `{s['name']}` | {s['shape']} | {s['dtype']} |" for s in specs)

    sections = []
    for name in ("text_encoder", "predictor", "decoder"):
        sections.append(f"### {g[name]['file']}\n\n| tensor | shape | dtype |\n|---|---|---|\n"
                        f"{rows(g[name]['inputs'])}\n{rows(g[name]['outputs'])}\n")
    return f"""# artgen bundle: {meta['encoder']} ({meta['precision']})

Abstract art from a few adjectives, with nothing but ONNX Runtime and numpy.
Encoder weights: {meta['weights']}. Produced by {meta['producer']}.

```python
from runtime import Runtime          # runtime.py sits in this folder
rt = Runtime(".", threads=2)
images = rt.generate("warm, chaotic, vivid", seed=0)   # (1, {meta['image_size']}, {meta['image_size']}, 3) uint8
```
or `python runtime.py . "warm, chaotic, vivid" -o out.png`. Needs `onnxruntime`, `numpy`,
`{'sentencepiece' if meta['tokenizer']['kind'] == 'sentencepiece' else 'tokenizers'}` and Pillow (for PNGs).

## The contract (bundle.json holds all of it)

1. Tokenize the lower-cased prompt with `{meta['tokenizer']['file']}` (special tokens added,
   at most {meta['tokenizer']['max_tokens']} tokens), pad with id {meta['tokenizer']['pad_id']};
   attention_mask is 1 for real tokens.
2. `text_encoder.onnx` turns ids into text states.
3. Start from a grid of {meta['grid']}x{meta['grid']} codes all equal to mask_id = {meta['mask_id']}.
   For each of `steps` steps, run `predictor.onnx` and fix the next positions of the
   image's random reveal order to a code drawn by Gumbel-max at `temperature` (0 = argmax).
   Order: {meta['sampling']['order']}, order_stream = {meta['sampling']['order_stream']}.
   Schedule: {meta['sampling']['schedule']}; the last step fixes the rest, and steps = 1
   predicts the whole grid in one shot. Noise: {meta['sampling']['noise']}, u clipped to
   [1e-20, 1 - 1e-7], -log(-log(u)) cast to float32 and added to logits / temperature
   (float32); the code is the argmax.
   Classifier-free guidance: {meta['sampling']['guided_steps']}; guided_share =
   {meta['sampling']['guided_share']} (run both as one batch:
   the prompt rows, then the same rows with attention_mask all 0; `guidance` = 1 is the
   plain conditional model).
4. `decoder.onnx` turns the {meta['codebook_size']}-way code grid into uint8 RGB pixels.

Defaults: steps {meta['sampling']['steps']}, guidance {meta['sampling']['guidance']}, temperature {meta['sampling']['temperature']}.

{chr(10).join(sections)}"""
