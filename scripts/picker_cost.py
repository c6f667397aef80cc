"""What keeping a candidate costs in a bundle's runtime: decoder.onnx on one and on two grids, and
the bundle's picker.onnx (or scorer.onnx) on two candidates, medians of 50 timed calls.

    python scripts/picker_cost.py [--bundle artgen/assets/tiny] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.timing import LatencyConfig, measure_latency  # noqa: E402
from export.runtime import Runtime, asked_words  # noqa: E402


def median_ms(call, runs: int = 50) -> float:
    return measure_latency(call, LatencyConfig(runs=runs, warmup=5))["p50_ms"]  # ORT's threads: the session's own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="artgen/assets/tiny")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rt = Runtime(args.bundle, threads=args.threads)
    g = rt.meta["grid"]
    codes = np.random.default_rng(0).integers(0, rt.meta["codebook_size"], (2, g, g))
    print(f"decode 1 grid {median_ms(lambda: rt.decode(codes[:1])):.2f} ms, 2 grids {median_ms(lambda: rt.decode(codes)):.2f} ms")
    if rt.chooser == "picker":
        images = rt.decode(codes)
        words = np.tile(asked_words(["warm, vivid"], rt.meta["picker"]["adjectives"]), (2, 1))
        print(f"picker.onnx on 2 images {median_ms(lambda: rt.sessions['picker'].run(None, {'images': images, 'words': words})):.2f} ms")
    elif rt.chooser == "scorer":
        print(f"scorer.onnx on 2 grids {median_ms(lambda: rt.sessions['scorer'].run(None, {'codes': codes})):.2f} ms")


if __name__ == "__main__":
    main()
