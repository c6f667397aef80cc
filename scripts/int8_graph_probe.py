"""Which graph of an int8 autoregressive bundle costs parity, and does int8 buy speed there?
The numbers behind `export/bundle.py`'s choice to keep `ar_step` fp32 (docs/export.md).

    python scripts/int8_graph_probe.py --workdir W [--model tiny-ar] [--runs 30]

Exports the workspace model twice (fp32, and int8 as `artgen export --int8` does now), then
scores bundles that differ in one graph's precision: the export as it is (step fp32), the step
quantised too (the policy before 2026-11-29 22:20 UTC), and that one with the text encoder or
ar_context swapped back to fp32. For each: the parity check's argmax agreement (64 prompts,
teacher-forced) and all-positions sampled agreement, the bundle size, and the median text ->
image time in ONNX Runtime (2 threads, a fresh torch-free process per bundle, in two rounds of
`--runs` / 2 so the machine's drift falls on every bundle alike). "step int8" quantises the
whole step, logits head included (the old policy kept the head fp32: 94.6 % on the same model).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from artgen.generate import load_generator
from artgen.workspace import Workspace
from export.bundle import ExportConfig, _quantize, bundle_size, export_bundle, manifest
from export.parity import check_parity

PROMPT = "warm, chaotic, vivid"
# timed in a fresh process without torch, as the bench times bundles: torch's idle threads in
# this process (after the parity checks) would slow ONNX Runtime by a third
TIMER = f"""
import json, sys, time
from export.runtime import Runtime
rt = Runtime(sys.argv[1], threads=2)
rt.generate({PROMPT!r}, seed=0)
times = []
for i in range(int(sys.argv[2])):
    start = time.perf_counter()
    rt.generate({PROMPT!r}, seed=i)
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps(times))
"""


def variant(base: Path, out: Path, fp32: Path, swap_fp32: tuple[str, ...], quantize: tuple[str, ...]) -> Path:
    """A copy of the bundle `base` with the graphs in `swap_fp32` taken from the fp32 bundle and
    those in `quantize` quantised, its bundle.json's int8 list and file records rewritten."""
    shutil.copytree(base, out)
    meta = json.loads((out / "bundle.json").read_text())
    for name in swap_fp32:
        shutil.copy(fp32 / f"{name}.onnx", out / f"{name}.onnx")
    for name in quantize:
        _quantize(out / f"{name}.onnx")
    meta["int8_graphs"] = [g for g in meta["int8_graphs"] if g not in swap_fp32] + list(quantize)
    meta["files"] = manifest(out, meta)
    meta["size_bytes"] = bundle_size(out)
    (out / "bundle.json").write_text(json.dumps(meta, indent=2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--model", default="tiny-ar")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    gen = load_generator(Workspace.resolve(args.workdir), args.model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32, int8 = tmp / "fp32", tmp / "int8"
        export_bundle(gen, fp32, ExportConfig())
        export_bundle(gen, int8, ExportConfig(int8=True))
        bundles = {"as exported (step fp32)": int8,
                   "step int8 (head too)": variant(int8, tmp / "step", fp32, (), ("ar_step",)),
                   "step int8 (head too), text encoder fp32": variant(int8, tmp / "text", fp32, ("text_encoder",), ("ar_step",)),
                   "step int8 (head too), ar_context fp32": variant(int8, tmp / "context", fp32, ("ar_context",), ("ar_step",))}
        rows = {}
        for name, path in bundles.items():
            report = check_parity(gen, path)
            rows[name] = [report.code_agreement, report.sampled_agreement_all_steps, bundle_size(path) / 1e6, []]
        for _ in range(2):  # two rounds, so the machine's drift falls on every bundle alike
            for name, path in bundles.items():
                out = subprocess.run([sys.executable, "-c", TIMER, str(path), str(args.runs // 2)], check=True,
                                     capture_output=True, text=True).stdout
                rows[name][3] += json.loads(out)
    print(f"{args.model} ({gen.source}); parity on 64 prompts; p50 of {args.runs} runs each, 2 threads")
    print("| bundle | argmax agreement | sampled agreement (all positions) | MB | p50 ms |\n|---|---|---|---|---|")
    for name, (agree, sampled, mb, times) in rows.items():
        print(f"| {name} | {agree:.1%} | {sampled:.1%} | {mb:.2f} | {statistics.median(times):.1f} |")


if __name__ == "__main__":
    main()
