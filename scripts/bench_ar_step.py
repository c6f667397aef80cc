"""The cost of the autoregressive generator's sampling loop in ONNX Runtime, by network size:
one image at batch 1 with guidance (the step graph runs on 2 rows), all N cached steps, fp32
and int8, 1 and 2 threads. Random weights: the cost does not depend on what the network learned.

    python scripts/bench_ar_step.py --sizes 128x4 128x3 192x4 --runs 9
    python scripts/bench_ar_step.py --sizes 128x3 --text-modulation --rope --threads 2   # the shipped shape

Prints one row per (size, precision, threads): median ms for the whole loop and per step.
Run it on a quiet machine: every timing taken beside a training run is wrong.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from artgen.models.ar_predictor import ARConfig, ARPredictor
from export.bundle import _export, _quantize, ar_step_names
from export.graphs import ARStepGraph
from export.runtime import pick_codes


def export_step(cfg: ARConfig, out: Path, text_keys: int = 8) -> Path:
    torch.manual_seed(0)
    model = ARPredictor(cfg).eval()
    context_names, past_names, present_names = ar_step_names(cfg.layers, cfg.text_modulation)
    states = torch.randn(2, text_keys - 1, cfg.text_width)
    context = model.context(states, torch.ones(2, text_keys - 1, dtype=torch.bool))
    context = [*context[0], *context[1], context[2], *([context[3]] if cfg.text_modulation else [])]
    past = [torch.randn(2, cfg.heads, 3, cfg.head_width) for _ in range(2 * cfg.layers)]
    dynamic = {n: {0: "batch", 2: "past"} for n in past_names}
    dynamic.update({n: {0: "batch", 2: "past_plus_1"} for n in present_names[1:]})
    dynamic.update({"token": {0: "batch"}, "logits": {0: "batch"}, **{n: {0: "batch"} for n in context_names}})
    path = out / f"ar_step_{cfg.width}x{cfg.layers}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _export(ARStepGraph(model), (torch.full((2, 1), cfg.start_id), *past, *context),
                path, ["token", *past_names, *context_names], present_names, dynamic, 17)
    return path


def time_loop(path: Path, cfg: ARConfig, threads: int, runs: int, text_keys: int = 8, images: int = 1) -> list[float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    context_names, past_names, _ = ar_step_names(cfg.layers, cfg.text_modulation)
    rng = np.random.default_rng(0)
    h, hs, L, K, N, B = cfg.heads, cfg.head_width, cfg.layers, cfg.codebook_size, cfg.positions, 2 * images
    context = {n: rng.standard_normal((B, h, hs, text_keys)).astype(np.float32) for n in context_names[:L]}
    context.update({n: rng.standard_normal((B, h, text_keys, hs)).astype(np.float32) for n in context_names[L:2 * L]})
    context["cross_bias"] = np.zeros((B, 1, 1, text_keys), np.float32)
    if cfg.text_modulation:
        context["text_modulation"] = 0.1 * rng.standard_normal((B, L, 6, cfg.width)).astype(np.float32)
    noise = rng.gumbel(size=(images, N, K)).astype(np.float32)

    def loop():  # the runtime's loop (export.runtime.Runtime._sample_ar) for `images` guided images
        feed = dict(context)
        feed.update({n: np.zeros((B, h, 0, hs), np.float32) for n in past_names})
        feed["token"] = np.full((B, 1), cfg.start_id, dtype=np.int64)
        for t in range(N):
            out = session.run(None, feed)
            logits = out[0][images:] + np.float32(3.0) * (out[0][:images] - out[0][images:])
            code = pick_codes(logits, noise[:, t], 1.0, 0)
            feed.update(zip(past_names, out[1:]))
            feed["token"] = np.concatenate([code, code])[:, None]

    loop()
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        loop()
        seconds.append(time.perf_counter() - t0)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["128x4", "128x3", "192x4"], help="WIDTHxLAYERS")
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--text-modulation", action="store_true", help="the pooled text modulates the norms (adaLN)")
    ap.add_argument("--rope", action="store_true", help="2-D rotary positions in the self-attention")
    ap.add_argument("--images", type=int, default=1, help="guided images per call (the step graph runs 2x as many rows)")
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, onnxruntime {ort.__version__}, grid {args.grid}x{args.grid}, "
          f"{args.images} guided image(s) (step graph at batch {2 * args.images}), text modulation "
          f"{args.text_modulation}, rope {args.rope}, median of {args.runs}")
    print("| size | params | precision | threads | loop ms | per step ms |\n|---|---|---|---|---|---|")
    tmp = Path(tempfile.mkdtemp())
    try:
        for size in args.sizes:
            width, layers = (int(x) for x in size.split("x"))
            cfg = ARConfig(grid=args.grid, width=width, layers=layers, heads=max(2, width // 32),
                           text_modulation=args.text_modulation, rope=args.rope)
            fp32 = export_step(cfg, tmp)
            int8 = fp32.with_name(fp32.stem + "_int8.onnx")
            shutil.copy(fp32, int8)
            _quantize(int8)
            params = sum(p.numel() for p in ARPredictor(cfg).parameters())
            for precision, path in (("fp32", fp32), ("int8", int8)):
                for threads in args.threads:
                    ms = 1000 * float(np.median(time_loop(path, cfg, threads, args.runs, images=args.images)))
                    print(f"| {size} | {params / 1e6:.2f}M | {precision} | {threads} | {ms:.1f} | {ms / cfg.positions:.3f} |",
                          flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
