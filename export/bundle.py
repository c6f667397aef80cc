"""`artgen export`: write a trained generator as a self-contained ONNX bundle.

    bundles/tiny/
      text_encoder.onnx  predictor.onnx  decoder.onnx   the graphs (export/graphs.py)
      tokenizer/...                                     spm.model, or tokenizer.json
      bundle.json                                       the whole contract, for apps; its "files"
                                                        records each graph's and the tokenizer's
                                                        size and sha256, which the runtime checks
      runtime.py                                        the torch-free runtime (a copy)
      README.md                                         the contract in prose

With `int8=True` the transformer graphs (encoder, predictor) are quantised dynamically with
`onnxruntime.quantization` (int8 weights, activations quantised on the fly); the decoder
is a small conv net and stays fp32, which measured faster and exact (see docs/export.md).
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from artgen import __version__
from artgen.data.vocabulary import ADJECTIVES, MAX_PROMPT_CHARS, MAX_PROMPT_WORDS, vocabulary_hash
from artgen.errors import ArtgenError
from artgen.files import is_newer, replace_dir, staging_folder
from artgen.generate import Generator
from artgen.models.encoders import MAX_TOKENS
from artgen.sampling import (
    AR_DEFAULT_TEMPERATURE,
    AR_DEFAULT_TOP_K,
    AR_NOISE_STREAM,
    DEFAULT_GUIDANCE,
    DEFAULT_STEPS,
    DEFAULT_TEMPERATURE,
    GUIDED_SHARE,
    MAX_STEPS,
    ORDER_STREAM,
    scorer_synonyms,
)
from export.graphs import ARContextGraph, ARStepGraph, DecoderGraph, EncoderGraph, PickerGraph, PredictorGraph, ScorerGraph
from export.runtime import MAX_CANDIDATES, Runtime, bundle_files, bundle_format, exact_unit, file_record


@dataclass
class ExportConfig:
    opset: int = 17
    int8: bool = False
    quantize_decoder: bool = False  # measured: ConvInteger is slower than fp32 conv here
    # autoregressive only: draw this many candidates per image and keep the one the caption picker
    # (`artgen train picker`, exported as picker.onnx) finds nearest the prompt's words, else the
    # one the code scorer (`artgen train scorer`, scorer.onnx) finds most consistent with them
    candidates: int = 1


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


# graphs an int8 bundle keeps fp32 since 2026-11-29 22:20 UTC (ar_step: the note in _write_bundle);
# an int8 bundle that quantised one of them was exported by an older version and is re-exported
FP32_GRAPHS = ("ar_step",)


def _quantize(path: Path, only: tuple[str, ...] = ()) -> None:
    """Dynamic int8 quantisation of the graph's MatMul/Gemm weights; with `only`, just the
    nodes that produce those outputs."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" notice, once per graph

    graph = onnx.load(str(path)).graph
    include = _producers(graph, only) if only else []
    tmp = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm"], nodes_to_quantize=include,
                     extra_options={"MatMulConstBOnly": True})
    tmp.replace(path)


def _producers(graph, outputs: tuple[str, ...]) -> list[str]:
    """Names of the MatMul/Gemm nodes within a few hops upstream of `outputs` (through Add,
    Reshape, ...): the projection that makes them."""
    by_output = {o: n for n in graph.node for o in n.output}
    found, frontier = [], list(outputs)
    for _ in range(4):
        nodes = [by_output[o] for o in frontier if o in by_output]
        found += [n.name for n in nodes if n.op_type in ("MatMul", "Gemm")]
        if found:
            return found
        frontier = [i for n in nodes for i in n.input]
    return found


def _tokenizer_spec(gen: Generator, out: Path) -> dict:
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


def check_bundle_target(out_dir: Path, force: bool = False) -> None:
    """`out_dir` may become a bundle: it does not exist, is empty, or holds a bundle (replaced
    atomically). A file, or a folder of anything else, is refused unless `force`: exporting
    replaces the whole folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ArtgenError(f"--out {out_dir} is a file, not a folder: choose a folder for the bundle")
    if force or not out_dir.is_dir() or (out_dir / "bundle.json").is_file() or not any(out_dir.iterdir()):
        return
    others = sorted(p.name for p in out_dir.iterdir())
    shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    raise ArtgenError(f"--out {out_dir} holds files that are not an artgen bundle ({shown}): exporting would replace "
                      "them; choose an empty or new folder, or pass --force to replace it")


def export_bundle(gen: Generator, out_dir: Path, cfg: ExportConfig | None = None, scorer=None, picker=None) -> dict:
    """Write `gen` as a bundle at `out_dir` (replaced atomically); returns bundle.json. A caption
    picker (`picker`, else the one `load_generator` attached to `gen`) or else a code scorer
    (`scorer`, likewise) is needed when `cfg.candidates` > 1; the picker is preferred."""
    cfg = cfg or ExportConfig()
    if not 14 <= cfg.opset <= 21:
        raise ArtgenError(f"--opset must be between 14 and 21 (got {cfg.opset})")
    if picker is None and scorer is None:  # what the caller passes wins; else what `load_generator` attached
        picker, scorer = getattr(gen, "picker", None), getattr(gen, "scorer", None)
    scorer = None if picker is not None else scorer
    check_candidates(gen.kind, cfg.candidates, picker if picker is not None else scorer)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(out_dir)
    try:
        meta = _write_bundle(gen, tmp, cfg, scorer if cfg.candidates > 1 else None, picker if cfg.candidates > 1 else None)
        replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def check_candidates(generator: str, candidates: int, scorer) -> None:
    """An ArtgenError for a candidate count the export cannot honour (`scorer`: what keeps one,
    the caption picker or the code scorer, or None)."""
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise ArtgenError(f"--candidates must be between 1 and {MAX_CANDIDATES} (got {candidates})")
    if candidates > 1 and generator != "ar":
        raise ArtgenError("--candidates applies to the autoregressive generator (--generator ar): the masked one draws once")
    if candidates > 1 and scorer is None:
        raise ArtgenError(f"--candidates {candidates} needs what picks among them: run `artgen train picker` first "
                          "(or `artgen train scorer`)")


def _scorer_graph(scorer, grid: int, out: Path, cfg: ExportConfig) -> dict:
    """scorer.onnx (codes (batch, grid, grid) -> one logit per adjective) and its graph spec."""
    _export(ScorerGraph(scorer), (torch.zeros((2, grid, grid), dtype=torch.long),), out / "scorer.onnx", ["codes"], ["logits"],
            {"codes": {0: _B}, "logits": {0: _B}}, cfg.opset)
    return {"file": "scorer.onnx", "inputs": [_tensor_spec("codes", ["batch", grid, grid], "int64")],
            "outputs": [_tensor_spec("logits", ["batch", len(scorer.cfg.adjectives)], "float32")]}


PICKER_RULE = ("decode every candidate (decoder.onnx); run picker.onnx on the images and the multi-hot picker.adjectives that "
               "the prompt names (the lower-cased prompt's words [a-z]+(?:-[a-z]+)*, hyphenated ones whole and each of their "
               "parts, that are an adjective or a key of picker.synonyms, read as its adjective); keep the candidate with the "
               "highest score, "
               "the first on a tie, candidate 0 when it names none")
CANDIDATE_NOISE = ("candidate j of image i draws with Gumbel noise from numpy.random.default_rng([seed + i, noise_stream + j]) "
                   "(candidate 0 is the single draw)")


def _picker_graph(picker, image_size: int, out: Path, opset: int) -> dict:
    """picker.onnx (images (batch, S, S, 3) uint8, words (batch, V) float32 -> scores (batch,)) and its spec."""
    if image_size % picker.cfg.input_size:
        raise ArtgenError(f"the caption picker reads {picker.cfg.input_size} px images, which {image_size} px images do not "
                          f"pool to evenly: train it again with an input size that divides {image_size}")
    V = len(picker.vocabulary)
    _export(PickerGraph(picker.eval(), image_size),
            (torch.zeros((2, image_size, image_size, 3), dtype=torch.uint8), torch.zeros((2, V))), out / "picker.onnx",
            ["images", "words"], ["scores"], {"images": {0: _B}, "words": {0: _B}, "scores": {0: _B}}, opset)
    return {"file": "picker.onnx", "inputs": [_tensor_spec("images", ["batch", image_size, image_size, 3], "uint8"),
                                              _tensor_spec("words", ["batch", V], "float32")],
            "outputs": [_tensor_spec("scores", ["batch"], "float32")]}


def attach_picker(bundle_dir: Path, picker) -> dict:
    """Give an exported autoregressive bundle of several candidates the caption picker as what keeps
    one (format 6): picker.onnx in, a code scorer graph out, bundle.json's rule, files and size
    rewritten; the folder is replaced whole, and only once the new bundle loads. Returns bundle.json."""
    bundle_dir = Path(bundle_dir).resolve()  # "." has no name to put a temporary folder beside
    rt = Runtime(bundle_dir)  # refuses a damaged bundle in one line
    meta = dict(rt.meta)
    if meta.get("generator") != "ar" or meta["sampling"].get("candidates", 1) < 2:
        raise ArtgenError(f"{bundle_dir} draws one candidate per image, so nothing is picked: export it with "
                          "`artgen export --generator ar --candidates 2` (which takes the workspace's picker)")
    tmp = staging_folder(bundle_dir)
    try:
        shutil.copytree(bundle_dir, tmp, dirs_exist_ok=True)
        graphs = {k: v for k, v in meta["graphs"].items() if k != "scorer"}
        if "scorer" in meta["graphs"]:
            (tmp / meta["graphs"]["scorer"]["file"]).unlink(missing_ok=True)
        opset = meta.get("opset")  # the bundle's own, where it records a usable one
        opset = opset if isinstance(opset, int) and 14 <= opset <= 21 else ExportConfig().opset
        graphs["picker"] = _picker_graph(picker, meta["image_size"], tmp, opset)
        _set_metadata(tmp / "picker.onnx", {"artgen_bundle_format": 6, "vocabulary_hash": meta.get("vocabulary_hash"),
                                            "encoder": meta.get("encoder"), "generator": "ar", "precision": meta.get("precision")})
        meta = {k: v for k, v in meta.items() if k not in ("scorer", "files", "size_bytes")}
        meta.update(format=bundle_format("ar", bool(meta["sampling"].get("above")), meta["sampling"]["candidates"], True),
                    graphs=graphs, picker={"adjectives": list(picker.vocabulary), "synonyms": scorer_synonyms(picker.vocabulary)})
        meta["sampling"] = {**meta["sampling"], "candidate_noise": CANDIDATE_NOISE, "candidate_rule": PICKER_RULE}
        _finish_meta(tmp, meta)
        Runtime(tmp)  # the new bundle loads and verifies before it replaces the old one
        replace_dir(tmp, bundle_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _finish_meta(out: Path, meta: dict) -> None:
    """bundle.json, the runtime copy and the README, then the files' sizes and hashes."""
    (out / "bundle.json").write_text(json.dumps(meta, indent=2))
    shutil.copy(Path(__file__).with_name("runtime.py"), out / "runtime.py")
    (out / "README.md").write_text(bundle_readme(meta))
    meta["files"] = manifest(out, meta)
    meta["size_bytes"] = bundle_size(out)
    (out / "bundle.json").write_text(json.dumps(meta, indent=2))


_T, _B = "tokens", "batch"


def _masked_graphs(gen: Generator, out: Path, states, mask, cfg: ExportConfig) -> tuple[dict, dict]:
    """predictor.onnx and the masked sampler's recipe: (graph specs, sampling)."""
    pcfg = gen.predictor.cfg
    N, K, d = pcfg.positions, pcfg.codebook_size, gen.encoder.width
    codes = torch.full((2, N), pcfg.mask_id, dtype=torch.long)
    _export(PredictorGraph(gen.predictor), (codes, states, mask), out / "predictor.onnx",
            ["codes", "states", "attention_mask"], ["logits"],
            {"codes": {0: _B}, "states": {0: _B, 1: _T}, "attention_mask": {0: _B, 1: _T}, "logits": {0: _B}}, cfg.opset)
    graphs = {"predictor": {"file": "predictor.onnx",
                            "inputs": [_tensor_spec("codes", ["batch", N], "int64"),
                                       _tensor_spec("states", ["batch", "tokens", d], "float32"),
                                       _tensor_spec("attention_mask", ["batch", "tokens"], "int64")],
                            "outputs": [_tensor_spec("logits", ["batch", N, K], "float32")]}}
    sampling = {"steps": DEFAULT_STEPS, "guidance": DEFAULT_GUIDANCE, "temperature": DEFAULT_TEMPERATURE,
                "max_steps": MAX_STEPS, "order_stream": ORDER_STREAM,
                "guided_share": GUIDED_SHARE,
                "guided_steps": "the first ceil(S*guided_share) of S steps use uncond + guidance*(cond - uncond), "
                                "uncond being the logits for an all-zero attention_mask; later steps use cond alone",
                "order": "image i fixes positions in the order numpy.random.default_rng([seed + i, order_stream]).permutation(N)",
                "schedule": "cosine: N - floor(N*cos(pi/2*(s+1)/S)) positions are known after step s (0-based) of S",
                "noise": "Gumbel from numpy.random.default_rng([seed + i, step]).random((n, K)) for image i, row j for the j-th of "
                         "the n positions the step fixes"}
    return graphs, sampling


def ar_step_names(layers: int, text_modulation: bool = False) -> tuple[list[str], list[str], list[str]]:
    """(ar_context outputs = the step's prompt inputs, the step's cache inputs, its outputs)."""
    context = [f"cross_key_{i}" for i in range(layers)] + [f"cross_value_{i}" for i in range(layers)] + ["cross_bias"]
    context += ["text_modulation"] if text_modulation else []
    past = [f"past_key_{i}" for i in range(layers)] + [f"past_value_{i}" for i in range(layers)]
    present = ["logits"] + [f"present_key_{i}" for i in range(layers)] + [f"present_value_{i}" for i in range(layers)]
    return context, past, present


def _ar_graphs(gen: Generator, out: Path, states, mask, cfg: ExportConfig) -> tuple[dict, dict]:
    """ar_context.onnx (per prompt) and ar_step.onnx (per position, past keys/values in and
    present ones out) and the autoregressive sampler's recipe: (graph specs, sampling)."""
    pcfg = gen.predictor.cfg
    L, h, hs, K, N, d = pcfg.layers, pcfg.heads, pcfg.head_width, pcfg.codebook_size, pcfg.positions, gen.encoder.width
    context_names, past_names, present_names = ar_step_names(L, pcfg.text_modulation)
    context = ARContextGraph(gen.predictor)(states, mask)
    _export(ARContextGraph(gen.predictor), (states, mask), out / "ar_context.onnx", ["states", "attention_mask"],
            context_names, {"states": {0: _B, 1: _T}, "attention_mask": {0: _B, 1: _T},
                            **{n: {0: _B, (3 if n.startswith("cross_key") or n == "cross_bias" else 2): "text_keys"}
                               for n in context_names if n != "text_modulation"},
                            **({"text_modulation": {0: _B}} if pcfg.text_modulation else {})}, cfg.opset)
    past = [torch.randn(2, h, 3, hs) for _ in range(2 * L)]  # any length: the cache axis is dynamic
    token = torch.full((2, 1), pcfg.start_id, dtype=torch.long)
    above = [torch.full((2, 3), pcfg.start_id, dtype=torch.long)] if pcfg.above else []  # the codes above the cell
    above_names = ["above"] if pcfg.above else []
    dynamic = {"token": {0: _B}, "logits": {0: _B}, "cross_bias": {0: _B, 3: "text_keys"}, **{n: {0: _B} for n in above_names}}
    dynamic.update({n: {0: _B, 2: "past"} for n in past_names})
    dynamic.update({n: {0: _B, 2: "past_plus_1"} for n in present_names[1:]})
    dynamic.update({n: {0: _B, (3 if n.startswith("cross_key") else 2): "text_keys"} for n in context_names[:2 * L]})
    if pcfg.text_modulation:
        dynamic["text_modulation"] = {0: _B}
    _export(ARStepGraph(gen.predictor), (token, *above, *past, *context), out / "ar_step.onnx",
            ["token", *above_names, *past_names, *context_names], present_names, dynamic, cfg.opset)
    key_t = lambda n: _tensor_spec(n, ["batch", h, hs, "text_keys"], "float32")  # noqa: E731
    value = lambda n, axis: _tensor_spec(n, ["batch", h, axis, hs], "float32")  # noqa: E731
    context_specs = ([key_t(n) for n in context_names[:L]] + [value(n, "text_keys") for n in context_names[L:2 * L]]
                     + [_tensor_spec("cross_bias", ["batch", 1, 1, "text_keys"], "float32")]
                     + ([_tensor_spec("text_modulation", ["batch", L, 6, pcfg.width], "float32")] if pcfg.text_modulation else []))
    graphs = {
        "ar_context": {"file": "ar_context.onnx",
                       "inputs": [_tensor_spec("states", ["batch", "tokens", d], "float32"),
                                  _tensor_spec("attention_mask", ["batch", "tokens"], "int64")],
                       "outputs": context_specs},
        "ar_step": {"file": "ar_step.onnx",
                    "inputs": [_tensor_spec("token", ["batch", 1], "int64")]
                              + [_tensor_spec(n, ["batch", 3], "int64") for n in above_names] + [value(n, "past") for n in past_names]
                              + context_specs,
                    "outputs": [_tensor_spec("logits", ["batch", K], "float32")]
                               + [value(n, "past_plus_1") for n in present_names[1:]]},
    }
    sampling = {"steps": N, "guidance": gen.default_guidance, "temperature": AR_DEFAULT_TEMPERATURE,
                "top_k": AR_DEFAULT_TOP_K, "max_steps": N, "noise_stream": AR_NOISE_STREAM,
                "start_id": pcfg.start_id, "layers": L, "heads": h, "head_width": hs,
                "text_modulation": pcfg.text_modulation,
                **({"above": True,
                    "above_rule": "ar_step's input above (batch, 3): the codes drawn at (row-1, column-1), (row-1, column) "
                                  "and (row-1, column+1) of position t, start_id for a cell off the grid"} if pcfg.above else {}),
                "order": "raster: position t = row * grid + column, t = 0 .. N-1, one per ar_step call",
                "cache": "past_key_i/past_value_i start empty (batch, heads, 0, head_width); feed each step's present_* back",
                "guided_steps": "every step: uncond + guidance*(cond - uncond), the prompt rows then the same rows with "
                                "an all-zero attention_mask in one batch (ar_context and ar_step); guidance 1 runs the prompt rows alone",
                "top_k_rule": "keep the top_k largest guided logits (others -inf) before sampling; 0 keeps all",
                "noise": "Gumbel from numpy.random.default_rng([seed + i, noise_stream]).random((N, K)) for image i, drawn whole; row "
                         "t for position t"}
    return graphs, sampling


def _write_bundle(gen: Generator, out: Path, cfg: ExportConfig, scorer=None, picker=None) -> dict:
    pcfg = gen.predictor.cfg
    grid, K = pcfg.grid, pcfg.codebook_size
    d = gen.encoder.width
    summary = gen.config.get("summary", {})
    fmt = bundle_format(gen.kind, getattr(pcfg, "above", False), cfg.candidates, picker is not None)
    props = {"artgen_bundle_format": fmt, "vocabulary_hash": vocabulary_hash(),
             "encoder": gen.encoder.name, "generator": gen.kind, "weights": gen.encoder.describe_source(),
             "precision": "int8" if cfg.int8 else "fp32"}

    tokens = gen.encoder.tokenize(["warm, chaotic, vivid", "a calm painting"])
    ids, mask = tokens.ids, tokens.mask.long()
    states = gen.encoder(tokens.ids, tokens.mask).detach()
    _export(EncoderGraph(gen.encoder), (ids, mask), out / "text_encoder.onnx", ["input_ids", "attention_mask"],
            ["states"], {"input_ids": {0: _B, 1: _T}, "attention_mask": {0: _B, 1: _T}, "states": {0: _B, 1: _T}},
            cfg.opset)
    codes = torch.zeros((2, grid, grid), dtype=torch.long)
    _export(DecoderGraph(gen.vqvae), (codes,), out / "decoder.onnx",
            ["codes"], ["images"], {"codes": {0: _B}, "images": {0: _B}}, cfg.opset)
    generator_graphs, sampling = (_ar_graphs if gen.kind == "ar" else _masked_graphs)(gen, out, states, mask, cfg)
    if picker is not None:  # after the generator's graphs, so it stays fp32 (a small conv net, like the decoder)
        generator_graphs["picker"] = _picker_graph(picker, gen.vqvae.cfg.image_size, out, cfg.opset)
        sampling.update(candidates=cfg.candidates, candidate_noise=CANDIDATE_NOISE, candidate_rule=PICKER_RULE)
    elif scorer is not None:
        generator_graphs["scorer"] = _scorer_graph(scorer, grid, out, cfg)
        sampling.update(candidates=cfg.candidates,
                        candidate_noise=CANDIDATE_NOISE,
                        candidate_rule="run scorer.onnx on every candidate's codes; keep the candidate with the highest mean "
                                       "log-sigmoid of the logits of the scorer.adjectives that the prompt names (the lower-cased "
                                       "prompt's words [a-z]+(?:-[a-z]+)*, hyphenated ones whole and each of their parts, "
                                       "that are an adjective or a "
                                       "key of scorer.synonyms, read as its adjective); the first on a tie, candidate 0 when it "
                                       "names none")
    names = ["text_encoder", *generator_graphs, "decoder"]
    # the decoder is a conv net (int8 measured slower); ar_context runs once per prompt and feeds
    # every step, so its cross-attention keys/values stay fp32 (int8 there moved the step's argmax
    # on more positions): only its text-modulation projection, most of its weights, goes int8.
    # ar_step stays fp32: each position's code is drawn from its logits, 256 times in a row, and
    # int8 blocks moved the argmax on 5.4 % of positions of the 12,000-step model (parity 94.6 %,
    # under the 95 % bar; fp32 step: 98.9 %) for little speed (full bench 69.4 ms fp32 step vs 69.9
    # int8 step before) at +1.7 MB (scripts/int8_graph_probe.py, docs/export.md)
    modulated = getattr(gen.predictor.cfg, "text_modulation", False)
    quantized = [n for n in names if n not in ("decoder", "ar_context", "scorer", "picker", *FP32_GRAPHS)
                 or (n == "decoder" and cfg.quantize_decoder) or (n == "ar_context" and modulated)]
    for name in names:
        path = out / f"{name}.onnx"
        if cfg.int8 and name in quantized:
            _quantize(path, only=("text_modulation",) if name == "ar_context" else ())
        _set_metadata(path, props)

    image_size = gen.vqvae.cfg.image_size
    meta = {
        "format": fmt,
        "producer": f"artgen {__version__}",
        "encoder": gen.encoder.name,
        "generator": gen.kind,
        "weights": gen.encoder.describe_source(),
        "precision": "int8" if cfg.int8 else "fp32",
        "int8_graphs": quantized if cfg.int8 else [],
        "opset": cfg.opset,
        "codebook_size": K,
        "grid": grid,
        **({"mask_id": pcfg.mask_id} if gen.kind == "masked" else {}),
        "image_size": image_size,
        "text_width": d,
        "sampling": sampling,
        "prompt_limits": {"max_chars": MAX_PROMPT_CHARS, "max_words": MAX_PROMPT_WORDS},
        "tokenizer": _tokenizer_spec(gen, out),
        "vocabulary": list(ADJECTIVES),
        "vocabulary_hash": vocabulary_hash(),
        "vqvae_hash": summary.get("vqvae_hash"),
        "decoder": getattr(gen.vqvae, "decoder_source", "squared error (trained with the VQ-VAE)"),
        **({"scorer": {"adjectives": list(scorer.cfg.adjectives), "synonyms": scorer_synonyms(scorer.cfg.adjectives)}}
           if scorer is not None and picker is None else {}),
        **({"picker": {"adjectives": list(picker.vocabulary), "synonyms": scorer_synonyms(picker.vocabulary)}}
           if picker is not None else {}),
        "graphs": {
            "text_encoder": {"file": "text_encoder.onnx",
                             "inputs": [_tensor_spec("input_ids", ["batch", "tokens"], "int64"),
                                        _tensor_spec("attention_mask", ["batch", "tokens"], "int64")],
                             "outputs": [_tensor_spec("states", ["batch", "tokens", d], "float32")]},
            **generator_graphs,
            "decoder": {"file": "decoder.onnx",
                        "inputs": [_tensor_spec("codes", ["batch", grid, grid], "int64")],
                        "outputs": [_tensor_spec("images", ["batch", image_size, image_size, 3], "uint8")]},
        },
    }
    _finish_meta(out, meta)
    return meta


def manifest(bundle_dir: Path, meta: dict | None = None) -> dict:
    """bundle.json's "files": {path in the bundle: {"bytes", "sha256"}} of every file the runtime
    loads (the graphs and the tokenizer) as `meta` (default: the folder's bundle.json) names them."""
    bundle_dir = Path(bundle_dir)
    meta = meta if meta is not None else json.loads((bundle_dir / "bundle.json").read_text())
    return {name: file_record(bundle_dir / name) for name in bundle_files(meta)}


def bundle_is_current(bundle: Path, checkpoint: Path, vqvae: Path | None = None, candidates: int | None = None,
                      scorer: Path | None = None, picker: Path | None = None) -> bool:
    """The bundle at `bundle` was exported from the checkpoint folder `checkpoint` — and, when
    given, the VQ-VAE folder `vqvae` with its adversarial decoder, the code scorer folder
    `scorer` and the caption picker folder `picker` (whether one is trained there or not) — as they
    are now (written after their weights) by this version's bundle format, so it can stand for them;
    with `candidates`, it also draws that many by default."""
    meta_path = Path(bundle) / "bundle.json"
    if not is_newer(meta_path, Path(checkpoint) / "model.safetensors"):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if vqvae is not None:
        from artgen.models.vqvae import DECODER_FILE

        decoder = Path(vqvae) / DECODER_FILE
        if not is_newer(meta_path, Path(vqvae) / "model.safetensors") or (decoder.exists() and not is_newer(meta_path, decoder)):
            return False
        if meta.get("decoder", "").startswith("adversarial") != decoder.exists():  # exported through the decoder there is now
            return False
    sampling = meta.get("sampling", {})  # the runtime samples with these: they must be today's
    if candidates is not None and sampling.get("candidates", 1) != candidates:
        return False
    if (sampling.get("candidates", 1) > 1 and scorer is not None and "scorer" in meta.get("graphs", {})
            and not is_newer(meta_path, Path(scorer) / "metrics.json")):
        return False
    if sampling.get("candidates", 1) > 1 and picker is not None and (
            (Path(picker) / "metrics.json").is_file() != ("picker" in meta.get("graphs", {}))
            or ((Path(picker) / "metrics.json").is_file() and not is_newer(meta_path, Path(picker) / "metrics.json"))):
        return False  # a picker trained since (or one the bundle lacks, or lacks no longer): export again
    written = bundle_format(meta.get("generator", "masked"), bool(sampling.get("above")), sampling.get("candidates", 1),
                            "picker" in meta.get("graphs", {}))
    if meta.get("format") != written or "files" not in meta:  # not as this version writes it; older ones record no hashes
        return False
    if set(meta.get("int8_graphs", [])) & set(FP32_GRAPHS):  # quantised by an older export: re-export
        return False
    if meta.get("generator") == "ar":
        return sampling.get("noise_stream") == AR_NOISE_STREAM
    return sampling.get("guided_share") == GUIDED_SHARE and sampling.get("order_stream") == ORDER_STREAM


def bundle_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def bundle_readme(meta: dict) -> str:
    g = meta["graphs"]

    def rows(specs):
        return "\n".join(f"| `{s['name']}` | {s['shape']} | {s['dtype']} |" for s in specs)

    sections = []
    for name in g:
        sections.append(f"### {g[name]['file']}\n\n| tensor | shape | dtype |\n|---|---|---|\n"
                        f"{rows(g[name]['inputs'])}\n{rows(g[name]['outputs'])}\n")
    def field(key: str) -> str:  # a hand-edited bundle.json may lack the informative fields
        return str(meta.get(key, "not recorded"))

    return f"""# artgen bundle: {field('encoder')} ({field('precision')})

Abstract art from a few adjectives, with nothing but ONNX Runtime and numpy.
Encoder weights: {field('weights')}. Produced by {field('producer')}.

```python
from runtime import Runtime          # runtime.py sits in this folder
rt = Runtime(".", threads=2)
images = rt.generate("warm, chaotic, vivid", seed=0)   # (1, {meta['image_size']}, {meta['image_size']}, 3) uint8
```
or `python runtime.py . "warm, chaotic, vivid" -o out.png`. Needs `onnxruntime`, `numpy`,
`{'sentencepiece' if meta['tokenizer']['kind'] == 'sentencepiece' else 'tokenizers'}` and Pillow (for PNGs).

## The contract (bundle.json holds all of it)

1. Tokenize the lower-cased prompt with `{meta['tokenizer']['file']}` ({_special_tokens(meta['tokenizer'])};
   a prompt over {meta['tokenizer']['max_tokens']} tokens is refused, not cut). Pad with id {meta['tokenizer']['pad_id']} to the
   longest prompt of the batch only (a single prompt: no padding); attention_mask is 1 for real tokens.
   Prompt limits (`prompt_limits`): at most max_chars characters (Unicode code points, not
   UTF-16 units) and max_words words, counted by splitting the lower-cased prompt at
   `[,;/|+\\s]+` and dropping pieces that are only `.!?'"()`.
2. `text_encoder.onnx` turns ids into text states.{_int8_batch_note(meta)}
{_ar_recipe(meta) if meta.get('generator') == 'ar' else _masked_recipe(meta)}
4. `decoder.onnx` turns the {meta['codebook_size']}-way code grid into uint8 RGB pixels.
{_candidates_recipe(meta)}
Defaults: {', '.join(f'{k} {meta["sampling"][k]}' for k in ('steps', 'guidance', 'temperature', 'top_k') if k in meta['sampling'])}.

{chr(10).join(sections)}"""


def _special_tokens(tok: dict) -> str:
    if tok.get("kind") == "sentencepiece":
        return f"ids = [bos_id {tok['bos_id']}] + the sentencepiece ids + [eos_id {tok['eos_id']}]"
    return "the tokenizer's own special tokens added (`add_special_tokens=True`)"


def _int8_batch_note(meta: dict) -> str:
    """Where int8 graphs make an image depend on its batch-mates, what a client does about it."""
    int8 = [g for g in meta.get("int8_graphs", []) if g in meta["graphs"]]
    if not int8:
        return ""
    files = ", ".join(f"`{meta['graphs'][g]['file']}`" for g in int8)
    apart = ("each distinct prompt as its own batch (rows of one prompt with different seeds batch exactly)"
             if exact_unit(meta) == "prompt" else "each image as its own batch (an int8 graph here sees each seed's own codes)")
    return (f"\n   {files} quantise their activations with one scale over the whole batch (dynamic int8), so a row's\n"
            f"   numbers depend on the other rows and on padding: for the picture a prompt gives alone, run\n   {apart}.")


def _candidates_recipe(meta: dict) -> str:
    """Step 5 of the contract for a bundle that keeps the best of several candidates, else nothing."""
    d = meta["sampling"]
    if d.get("candidates", 1) < 2:
        return ""
    return (f"5. Best of {d['candidates']} (the default; `candidates` = 1 draws once): {d['candidate_noise']}; "
            f"{d['candidate_rule']}.\n")


def _masked_recipe(meta: dict) -> str:
    d = meta["sampling"]
    return f"""3. Start from a grid of {meta['grid']}x{meta['grid']} codes all equal to mask_id = {meta['mask_id']}.
   For each of `steps` steps, run `predictor.onnx` and fix the next positions of the
   image's random reveal order to a code drawn by Gumbel-max at `temperature` (0 = argmax).
   Order: {d['order']}, order_stream = {d['order_stream']}.
   Schedule: {d['schedule']}; the last step fixes the rest, and steps = 1
   predicts the whole grid in one shot. Noise: {d['noise']}, u clipped to
   [1e-20, 1 - 1e-7], -log(-log(u)) cast to float32 and added to logits / temperature
   (float32); the code is the argmax.
   Classifier-free guidance: {d['guided_steps']}; guided_share =
   {d['guided_share']} (run both as one batch:
   the prompt rows, then the same rows with attention_mask all 0; `guidance` = 1 is the
   plain conditional model)."""


def _ar_recipe(meta: dict) -> str:
    d = meta["sampling"]
    return f"""3. Autoregressive generation of the {meta['grid']}x{meta['grid']} code grid, one position per step in
   raster order. Run `ar_context.onnx` once on the text states (the prompt rows, then for
   guidance the same rows with attention_mask all 0: the text encoder runs on the prompt rows
   only, and its states are repeated for the unguided ones) to get the cross-attention
   keys/values (and, where the step takes it, the text modulation), fed to every step as they are.
   Then for t = 0 .. {d['steps'] - 1}: run `ar_step.onnx` on `token` (start_id = {d['start_id']} at t = 0,
   then the code drawn at t-1), the cache ({d['cache']}) and the
   context outputs; it returns the logits of position t and the grown cache.
   Guidance: {d['guided_steps']}; the code drawn is fed to every row of its image (prompt and
   unguided). Top-k: {d['top_k_rule']}.
   Noise: {d['noise']}, noise_stream = {d['noise_stream']}, N = {meta['grid']}x{meta['grid']} positions,
   K = {meta['codebook_size']} codes; u clipped to [1e-20, 1 - 1e-7] and -log(-log(u)) computed in float64,
   cast to float32 once at the end, added to logits / temperature (float32); the code is the
   argmax (temperature 0: the argmax of the logits). `steps` is always the {d['steps']} positions."""
