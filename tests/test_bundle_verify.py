"""The runtime checks a bundle before it runs it (issue 16): bundle.json records the size and
sha256 of every file the runtime loads, and a changed or truncated file, a path leaving the
bundle folder, a graph that does not take what bundle.json says, a missing or wrong setting,
a bad tokenizer file, or a request past the runtime's limits ends in one line naming the
problem and the fix."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from helpers import ROOT, assert_one_line_error

from artgen.workspace import SHIPPED_MODEL
from export.runtime import MAX_IMAGES, MAX_SCALE, BundleError, Runtime, main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHIPPED_FILES = {"text_encoder.onnx", "ar_context.onnx", "ar_step.onnx", "decoder.onnx", "picker.onnx", "tokenizer/spm.model"}


def _export_masked(out: Path, seed: int, grid: int = 8) -> Path:
    """An untrained small masked generator exported as a bundle (well under a second)."""
    import torch

    from artgen.generate import Generator
    from artgen.models.encoders import TinyEncoder, TinyEncoderConfig
    from artgen.models.predictor import IndexPredictor, PredictorConfig
    from artgen.models.quantizer import QuantizerConfig
    from artgen.models.vqvae import VQVAE, VQVAEConfig
    from export.bundle import export_bundle

    torch.manual_seed(seed)
    sp_model = (SHIPPED_MODEL / "tokenizer" / "spm.model").read_bytes()
    encoder = TinyEncoder(TinyEncoderConfig(width=32, layers=1, heads=2, mlp_ratio=2), sp_model)
    vqvae = VQVAE(VQVAEConfig(image_size=grid * 4, downsample=4, hidden=16, res_hidden=8, res_blocks=1,
                              quantizer=QuantizerConfig(codebook_size=64, dim=8)))
    predictor = IndexPredictor(PredictorConfig(grid=grid, codebook_size=64, text_width=32, width=32, layers=1, heads=2,
                                               mlp_ratio=2))
    export_bundle(Generator(encoder.eval(), predictor.eval(), vqvae.eval(), {"summary": {}}), out)
    return out


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    """Three masked exports: two of one shape from different seeds, one with a 4x4 grid."""
    root = tmp_path_factory.mktemp("masked")
    return {"a": _export_masked(root / "a", seed=0), "b": _export_masked(root / "b", seed=1),
            "grid4": _export_masked(root / "grid4", seed=0, grid=4)}


@pytest.fixture
def shipped(tmp_path) -> Path:
    return Path(shutil.copytree(SHIPPED_MODEL, tmp_path / "tiny"))


def _copy(bundle: Path, to: Path) -> Path:
    return Path(shutil.copytree(bundle, to))


def _edit(bundle: Path, change) -> None:
    """Apply `change` to the bundle's bundle.json (a dict, changed in place)."""
    meta = json.loads((bundle / "bundle.json").read_text())
    change(meta)
    (bundle / "bundle.json").write_text(json.dumps(meta, indent=2))


def _record_again(bundle: Path) -> None:
    """Record the files as they are now: the damage is then for the deeper checks to find."""
    from export.bundle import manifest

    _edit(bundle, lambda meta: meta.update(files=manifest(bundle)))


def _refused(bundle: Path, *needles: str, **kwargs) -> str:
    with pytest.raises(BundleError) as e:
        Runtime(bundle, threads=1, **kwargs)
    message = str(e.value)
    assert "\n" not in message and message.strip() == message, message
    for needle in needles:
        assert needle in message, message
    return message


# --- what export records, and the shipped bundle -------------------------------------------


def test_export_records_the_size_and_hash_of_every_file_the_runtime_loads(masked, capsys):
    bundle = masked["a"]
    files = json.loads((bundle / "bundle.json").read_text())["files"]
    assert set(files) == {"text_encoder.onnx", "predictor.onnx", "decoder.onnx", "tokenizer/spm.model"}
    for name, record in files.items():
        data = (bundle / name).read_bytes()
        assert record == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    rt = Runtime(bundle, threads=1)
    assert rt.generate("warm, vivid", seed=1, steps=2).shape == (1, 32, 32, 3)
    assert capsys.readouterr().err == ""  # verified: no warning


def test_the_shipped_bundle_carries_a_manifest_of_its_unchanged_files(capsys):
    from export.bundle import manifest

    meta = json.loads((SHIPPED_MODEL / "bundle.json").read_text())
    assert set(meta["files"]) == SHIPPED_FILES and manifest(SHIPPED_MODEL) == meta["files"]
    Runtime(threads=1)
    assert capsys.readouterr().err == ""


def test_a_bundle_from_before_manifests_loads_with_a_one_line_warning(shipped, capsys):
    _edit(shipped, lambda meta: meta.pop("files"))
    Runtime(shipped, threads=1)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not verified" in err[0] and "artgen export" in err[0], err


# --- files changed after export ------------------------------------------------------------


def test_a_weight_byte_changed_in_place_is_caught_by_its_hash(shipped):
    path = shipped / "decoder.onnx"
    data = bytearray(path.read_bytes())
    weights = max((t.raw_data for t in onnx.load(str(path)).graph.initializer), key=len)
    at = bytes(data).find(weights) + len(weights) // 2
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, one weight changed
    _refused(shipped, "decoder.onnx", "sha256", "re-copy", "artgen export")
    Runtime(shipped, threads=1, verify="size")  # the size still fits: the hash is what caught it


def test_a_truncated_file_is_caught_by_its_size(shipped):
    path = shipped / "ar_step.onnx"
    path.write_bytes(path.read_bytes()[:-1000])
    for verify in ("hash", "size"):
        _refused(shipped, "ar_step.onnx", "bytes", "artgen export", verify=verify)


def test_a_decoder_from_another_export_is_refused(masked, tmp_path):
    bundle = _copy(masked["a"], tmp_path / "a")
    other = masked["b"] / "decoder.onnx"
    assert other.stat().st_size == (bundle / "decoder.onnx").stat().st_size  # same shape, other weights
    shutil.copy(other, bundle / "decoder.onnx")
    _refused(bundle, "decoder.onnx", "sha256")

    shutil.copy(masked["grid4"] / "decoder.onnx", bundle / "decoder.onnx")  # a 4x4 grid's decoder
    _record_again(bundle)
    _refused(bundle, "decoder.onnx", "grid 8", "[batch, 8, 8]", "artgen export")


def test_graphs_swapped_with_each_other_are_refused(shipped):
    enc, dec = shipped / "text_encoder.onnx", shipped / "decoder.onnx"
    enc_bytes, dec_bytes = enc.read_bytes(), dec.read_bytes()
    enc.write_bytes(dec_bytes)
    dec.write_bytes(enc_bytes)
    _refused(shipped, "text_encoder.onnx", "bytes")
    _record_again(shipped)  # even when the manifest was written for the swapped files
    _refused(shipped, "text_encoder.onnx", "input_ids", "codes", "artgen export")

    def swap_steps(meta):
        g = meta["graphs"]
        g["ar_context"]["file"], g["ar_step"]["file"] = g["ar_step"]["file"], g["ar_context"]["file"]

    relabelled = Path(shutil.copytree(SHIPPED_MODEL, shipped.with_name("relabelled")))  # bundle.json swaps the names
    _edit(relabelled, swap_steps)
    _refused(relabelled, "ar_step.onnx", "ar_context", "artgen export")


# --- paths ---------------------------------------------------------------------------------


def test_paths_leaving_the_bundle_are_refused(shipped, tmp_path):
    outside = tmp_path / "other"
    outside.mkdir()
    shutil.copy(shipped / "decoder.onnx", outside / "decoder.onnx")
    shutil.copy(shipped / "tokenizer" / "spm.model", outside / "spm.model")

    for i, file in enumerate(("../other/decoder.onnx", str(outside / "decoder.onnx"), "decoder\u0000.onnx")):
        bundle = _copy(shipped, tmp_path / f"b{i}")
        _edit(bundle, lambda meta: meta["graphs"]["decoder"].update(file=file))
        _refused(bundle, "outside the bundle", "decoder", "artgen export")

    bundle = _copy(shipped, tmp_path / "tok")
    _edit(bundle, lambda meta: meta["tokenizer"].update(file="../other/spm.model"))
    _refused(bundle, "outside the bundle", "tokenizer")

    bundle = _copy(shipped, tmp_path / "listed")
    _edit(bundle, lambda meta: meta["files"].update({"../other/decoder.onnx": meta["files"]["decoder.onnx"]}))
    _refused(bundle, "outside the bundle", "../other/decoder.onnx")

    bundle = _copy(shipped, tmp_path / "link")  # the same bytes, but behind a link out of the folder
    (bundle / "decoder.onnx").unlink()
    (bundle / "decoder.onnx").symlink_to(outside / "decoder.onnx")
    _refused(bundle, "outside the bundle", "decoder.onnx")


# --- bundle.json itself --------------------------------------------------------------------


@pytest.mark.parametrize("text, needle", [("[1, 2, 3]", "a list"), ("null", "null"), ('"tiny"', "a string")])
def test_bundle_json_that_is_not_an_object_is_refused(shipped, text, needle):
    (shipped / "bundle.json").write_text(text)
    _refused(shipped, "bundle.json", needle, "artgen export")


@pytest.mark.parametrize("fmt", [1, "3", True, None])
def test_unknown_and_old_formats_are_refused(shipped, fmt):
    _edit(shipped, lambda meta: meta.update(format=fmt) if fmt is not None else meta.pop("format"))
    _refused(shipped, "bundle format", "export it again")


def test_a_newer_format_names_the_runtime_inside_the_bundle(shipped):
    """Exporting again with this (older) artgen is not the fix for a bundle from a newer one."""
    _edit(shipped, lambda meta: meta.update(format=99))
    message = _refused(shipped, "bundle format 99", "newer than this runtime reads", "runtime.py inside the bundle",
                       "upgrade artgen")
    assert "export it again" not in message


@pytest.mark.parametrize("path", ["grid", "codebook_size", "image_size", "text_width", "sampling", "graphs", "tokenizer",
                                  "prompt_limits", "sampling.layers", "sampling.start_id", "tokenizer.file",
                                  "tokenizer.max_tokens", "graphs.decoder", "graphs.ar_step.file"])
def test_a_missing_key_is_named(shipped, path):
    def drop(meta):
        *parents, last = path.split(".")
        for p in parents:
            meta = meta[p]
        del meta[last]

    _edit(shipped, drop)
    _refused(shipped, path, "artgen export")


@pytest.mark.parametrize("path, value", [("grid", "16"), ("grid", True), ("grid", 0), ("codebook_size", 1.5),
                                         ("sampling.temperature", -1), ("sampling.heads", None),
                                         ("tokenizer.kind", "bpe"), ("tokenizer.file", "")])
def test_a_wrong_value_is_named(shipped, path, value):
    def put(meta):
        *parents, last = path.split(".")
        for p in parents:
            meta = meta[p]
        meta[last] = value

    _edit(shipped, put)
    _refused(shipped, f"{path} = ", "artgen export")


@pytest.mark.parametrize("entry", [{}, "x", {"file": 3}])
def test_a_listed_graph_without_a_file_name_is_named(shipped, entry):
    """Also a graph this generator does not run (here an extra one): every listed graph is verified."""
    _edit(shipped, lambda meta: meta["graphs"].update(extra=entry))
    _refused(shipped, "graphs.extra = ", "artgen export")


def test_a_manifest_that_is_malformed_or_leaves_out_a_loaded_file_is_refused(shipped):
    _edit(shipped, lambda meta: meta["files"].pop("decoder.onnx"))
    _refused(shipped, "decoder.onnx", "lists no size", "artgen export")
    _edit(shipped, lambda meta: meta["files"].update({"decoder.onnx": {"bytes": "many"}}))
    _refused(shipped, "decoder.onnx", "not its bytes and sha256")
    _edit(shipped, lambda meta: meta.update(files=[]))
    _refused(shipped, "files = []")


# --- numbers in bundle.json against the graphs ---------------------------------------------


@pytest.mark.parametrize("mask_id", [0, 63, 65, -1])
def test_a_mask_id_other_than_codebook_size_is_refused(masked, tmp_path, mask_id):
    bundle = _copy(masked["a"], tmp_path / "b")
    _edit(bundle, lambda meta: meta.update(mask_id=mask_id))
    _refused(bundle, f"mask_id {mask_id}", "codebook_size 64", "artgen export")


def test_masked_numbers_that_disagree_with_the_graphs_are_refused(masked, tmp_path):
    for change, needles in ((dict(grid=4), ("predictor.onnx", "grid 4", "[batch, 16]")),
                            (dict(codebook_size=32, mask_id=32), ("predictor.onnx", "codebook_size 32")),
                            (dict(text_width=48), ("text_encoder.onnx", "text_width 48")),
                            (dict(image_size=64), ("decoder.onnx", "image_size 64"))):
        bundle = _copy(masked["a"], tmp_path / "-".join(map(str, change.values())))
        _edit(bundle, lambda meta: meta.update(change))
        _refused(bundle, *needles, "artgen export")
    bundle = _copy(masked["a"], tmp_path / "no-mask")
    _edit(bundle, lambda meta: meta.pop("mask_id"))
    _refused(bundle, "mask_id")


def test_ar_numbers_that_disagree_with_the_graphs_are_refused(shipped, tmp_path):
    for change, needles in ((dict(grid=8), ("grid 8", "256")),
                            (dict(codebook_size=256), ("codebook_size 256", "start_id")),
                            (dict(text_width=128), ("text_encoder.onnx", "text_width 128")),
                            (dict(sampling={"heads": 2}), ("ar_context.onnx", "heads 2")),
                            (dict(sampling={"head_width": 16}), ("head_width 16",)),
                            (dict(sampling={"layers": 2}), ("layers 2",))):
        bundle = _copy(shipped, tmp_path / json.dumps(change).replace('"', "").replace(" ", "")[1:-1])

        def apply(meta):
            sampling = change.get("sampling", {})
            meta.update({k: v for k, v in change.items() if k != "sampling"})
            meta["sampling"].update(sampling)

        _edit(bundle, apply)
        _refused(bundle, *needles, "artgen export")


# --- the tokenizer file --------------------------------------------------------------------


def _tokenizers_json() -> bytes:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    return Tokenizer(WordLevel({"[UNK]": 0, "warm": 1}, unk_token="[UNK]")).to_str().encode()


@pytest.mark.parametrize("content, needle", [(b"", "empty"), (bytes(range(256)) * 40, "not a sentencepiece model"),
                                             (None, "tokenizers JSON")])
def test_a_bad_tokenizer_file_is_refused(shipped, content, needle):
    spm = shipped / "tokenizer" / "spm.model"
    spm.write_bytes(_tokenizers_json() if content is None else content)
    _refused(shipped, "tokenizer/spm.model", "bytes")  # the manifest catches it first
    _record_again(shipped)
    _refused(shipped, "tokenizer/spm.model", needle, "artgen export")


def test_a_tokenizer_of_the_wrong_kind_is_refused(shipped):
    _edit(shipped, lambda meta: meta["tokenizer"].update(kind="tokenizers"))
    _refused(shipped, "tokenizer/spm.model", "not a tokenizers JSON", "artgen export")
    _edit(shipped, lambda meta: meta["tokenizer"].update(kind="sentencepiece", bos_id=5000))
    _refused(shipped, "bos_id 5000", "277")


# --- limits --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime():
    return Runtime(threads=1)


@pytest.mark.parametrize("prompt, needle", [(None, "no prompt"), ([], "no prompt"), (123, "list of strings"),
                                            ([None], "list of strings"), (b"warm", "list of strings"),
                                            (["warm"] * (MAX_IMAGES + 1), f"limit {MAX_IMAGES}")])
def test_generate_refuses_what_is_not_prompts(runtime, prompt, needle):
    with pytest.raises(BundleError, match=needle):
        runtime.generate(prompt)


def test_seeds_threads_and_verify_are_checked(runtime):
    for kwargs, needle in ((dict(seeds=["a"]), "seeds must be whole numbers"), (dict(seed="x"), "seeds must be"),
                           (dict(seeds=[-1]), "seeds must be >= 0")):
        with pytest.raises(BundleError, match=needle):
            runtime.sample_codes(["warm"], **kwargs)
    with pytest.raises(BundleError, match="verify must be one of"):
        Runtime(threads=1, verify="sometimes")
    with pytest.raises(BundleError, match="threads"):
        Runtime(threads=-1)


def _cli(capsys, *argv) -> tuple[int, list[str]]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("flag, value", [("-n", 100000), ("-n", 0), ("-n", -3), ("--scale", 100000), ("--scale", 0),
                                         ("--scale", -1)])
def test_command_line_counts_are_bounded_before_anything_loads(tmp_path, capsys, flag, value):
    rc, err = _cli(capsys, tmp_path / "no-bundle", "warm", flag, value, "-o", tmp_path / "x.png")
    assert rc == 2 and len(err) == 1 and flag in err[0], err
    assert str(MAX_IMAGES if flag == "-n" else MAX_SCALE) in err[0]


def test_output_paths_are_checked_before_anything_loads(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for out, needle in ((tmp_path, "is a folder"), (notes / "out.png", "is a file"), (tmp_path / "out", ".png"),
                        (tmp_path / "out.jpg", ".png"), (Path("/proc/x.png"), "cannot write")):
        rc, err = _cli(capsys, tmp_path / "no-bundle", "warm", "-o", out)  # the bundle is never reached
        assert rc == 2 and len(err) == 1 and needle in err[0] and "-o" in err[0], (out, err)
    assert notes.read_text() == "mine" and not (tmp_path / "no-bundle").exists()


def test_a_failed_write_is_one_line_and_a_good_one_writes_a_png(tmp_path, capsys):
    if Path("/dev/full").exists():
        rc, err = _cli(capsys, SHIPPED_MODEL, "warm", "-o", "/dev/full")
        assert rc == 2 and len(err) == 1 and "could not write /dev/full" in err[0], err
    out = tmp_path / "new" / "out.png"
    rc, err = _cli(capsys, SHIPPED_MODEL, "warm", "-o", out, "-n", 2, "--scale", 1, "--verify", "size")
    assert rc == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(out.parent.glob(".*"))  # no temporary left


def test_the_runtime_command_exits_2_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "export.runtime", str(SHIPPED_MODEL), "warm", "-n", "100000", "-o",
                        str(tmp_path / "x.png")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert_one_line_error(r, "-n", str(MAX_IMAGES))
    bundle = Path(shutil.copytree(SHIPPED_MODEL, tmp_path / "b"))
    (bundle / "decoder.onnx").write_bytes((bundle / "decoder.onnx").read_bytes()[:100])
    r = subprocess.run([sys.executable, "-m", "export.runtime", str(bundle), "warm", "-o", str(tmp_path / "x.png")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert_one_line_error(r, "decoder.onnx", "bytes")
