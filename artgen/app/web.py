"""`artgen web`: a self-contained static folder that generates in the browser.

The folder holds the page (index.html and three ES modules from artgen/app/web_assets, no build
step), the bundle's ONNX graphs and bundle.json, the tokenizer as JSON, artgen's word lists,
and onnxruntime-web's WASM build, vendored from web/node_modules (`make web`), so it works
offline from any static server:

    make web                                  # npm install of the pinned onnxruntime-web
    artgen web --out site                     # the shipped tiny model; --bundle DIR for another
    python -m http.server -d site 8000        # open http://localhost:8000/

The page runs export/runtime.py's recipe in JavaScript (docs/web.md says what matches).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

from artgen.errors import ArtgenError
from artgen.files import check_writable_folder, replace_dir, staging_folder
from artgen.workspace import SHIPPED_MODEL

ASSETS = Path(__file__).resolve().parent / "web_assets"
PAGE_FILES = ("index.html", "artgen.mjs", "generator.mjs", "rng.mjs", "tokenizer.mjs")
# web/package.json pins onnxruntime-web; `make web` installs it beside it.
ORT_VERSION = "1.30.0"
# (env ARTGEN_ONNXRUNTIME_WEB: another onnxruntime-web package folder)
ORT_PACKAGE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "onnxruntime-web"
# The WASM build with its Emscripten loader bundled in: one module and one .wasm, no CDN.
# (Python's mimetypes, and so `python -m http.server`, serves .mjs as JavaScript since 3.11.)
ORT_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
MARKER = "artgen-web.json"  # names a folder `artgen web` wrote, which it may replace
GRAPHS = {"masked": ("text_encoder", "predictor", "decoder"), "ar": ("text_encoder", "ar_context", "ar_step", "decoder")}


def ort_dist(package: Path | None = None) -> Path:
    """onnxruntime-web's dist folder at the pinned version, or an ArtgenError naming `make web`."""
    package = Path(package or os.environ.get("ARTGEN_ONNXRUNTIME_WEB") or ORT_PACKAGE)
    manifest = package / "package.json"
    if not manifest.is_file() or not all((package / "dist" / f).is_file() for f in ORT_FILES):
        raise ArtgenError(f"onnxruntime-web is not installed at {package}: run `make web` (npm install of onnxruntime-web@{ORT_VERSION})")
    version = json.loads(manifest.read_text()).get("version")
    if version != ORT_VERSION:
        raise ArtgenError(f"{package} holds onnxruntime-web {version}, the page is built for {ORT_VERSION}: run `make web`")
    return package / "dist"


def _read_bundle(bundle: Path) -> dict:
    """bundle.json of a bundle that passes every check the runtime makes on load (sizes and
    hashes of its files, paths, settings, graph signatures, tokenizer)."""
    from export.runtime import BundleError, Runtime

    try:  # the runtime's checks cover a missing bundle.json, JSON, generator kind and every graph file
        return Runtime(bundle, threads=1).meta
    except BundleError as e:
        raise ArtgenError(str(e)) from None


def sentencepiece_json(model_file: Path, spec: dict) -> dict:
    """The unigram model as the page's tokenizer reads it: pieces with scores and types, the
    special ids, and the normaliser (its precompiled character map, base64)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    trainer, norm = proto.trainer_spec, proto.normalizer_spec
    if trainer.model_type != pb.TrainerSpec.UNIGRAM or trainer.byte_fallback:
        return {"kind": "sentencepiece-unsupported", "reason": "only unigram models without byte fallback are implemented"}
    return {
        "kind": "sentencepiece-unigram",
        "pieces": [[p.piece, p.score, p.type] for p in proto.pieces],  # [piece, score, type], index = id
        "unk_id": trainer.unk_id,
        "bos_id": spec["bos_id"], "eos_id": spec["eos_id"], "pad_id": spec["pad_id"],
        "max_tokens": spec["max_tokens"],
        "normalizer": {
            "name": norm.name,
            "add_dummy_prefix": norm.add_dummy_prefix,
            "remove_extra_whitespaces": norm.remove_extra_whitespaces,
            "escape_whitespaces": norm.escape_whitespaces,
            "charsmap": base64.b64encode(norm.precompiled_charsmap).decode("ascii"),
        },
    }


def words_json(meta: dict) -> dict:
    """The words artgen knows (parse_prompt): the bundle's vocabulary, the synonyms it maps
    onto it, and the stop words it skips; the page names any other word as unknown."""
    from artgen.data.vocabulary import ADJECTIVES, HELD_OUT_SYNONYMS, STOPWORDS, SYNONYMS

    return {"vocabulary": list(meta.get("vocabulary") or ADJECTIVES),
            "synonyms": {**SYNONYMS, **HELD_OUT_SYNONYMS},
            "stopwords": sorted(STOPWORDS)}


def check_web_target(out: Path) -> None:
    """`out` may become the page: new, empty, or a folder `artgen web` wrote before (replaced)."""
    if out.exists() and not out.is_dir():
        raise ArtgenError(f"--out {out} is a file, not a folder: choose a folder for the page")
    check_writable_folder(out.parent, f"--out {out}")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ArtgenError(f"--out {out} holds files that `artgen web` did not write: building would replace them; "
                          "choose an empty or new folder")


def build_web(out: Path, bundle: Path | None = None, ort_package: Path | None = None) -> dict:
    """Write the page for `bundle` (default: the shipped tiny model) to `out`, replacing a page
    built there before; returns the manifest written as out/artgen-web.json."""
    out, bundle = Path(out), Path(bundle) if bundle is not None else SHIPPED_MODEL
    check_web_target(out)
    meta = _read_bundle(bundle)
    dist = ort_dist(ort_package)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(out)
    try:
        for name in PAGE_FILES:
            shutil.copy2(ASSETS / name, tmp / name)
        (tmp / "ort").mkdir()
        for name in ORT_FILES:
            shutil.copy2(dist / name, tmp / "ort" / name)
        (tmp / "bundle").mkdir()
        shutil.copy2(bundle / "bundle.json", tmp / "bundle" / "bundle.json")
        for name in (*GRAPHS[meta.get("generator", "masked")], *(g for g in ("scorer", "picker") if g in meta.get("graphs", {}))):
            shutil.copy2(bundle / meta["graphs"][name]["file"], tmp / "bundle" / meta["graphs"][name]["file"])
        spec = meta["tokenizer"]
        if spec["kind"] == "sentencepiece":
            tokenizer = sentencepiece_json(bundle / spec["file"], spec)
        else:  # clip / distilbert: a Hugging Face tokenizers JSON, which the page does not run yet
            tokenizer = {"kind": spec["kind"], "reason": "Hugging Face tokenizers are not implemented in the page"}
        (tmp / "bundle" / "tokenizer.json").write_text(json.dumps(tokenizer))
        (tmp / "bundle" / "words.json").write_text(json.dumps(words_json(meta)))
        manifest = {"bundle": str(bundle.resolve()), "encoder": meta.get("encoder"), "generator": meta.get("generator", "masked"),
                    "precision": meta.get("precision"), "onnxruntime_web": ORT_VERSION,
                    "tokenizer": tokenizer["kind"], "runs_in_page": tokenizer["kind"] == "sentencepiece-unigram"}
        (tmp / MARKER).write_text(json.dumps(manifest, indent=2))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
