"""Synth throughput: `python scripts/bench_synth.py [--runs 3] [--count 9735] [--size 64]`.

Times the whole `synthesize` call (drawing, PNG encoding and save_to_disk) and prints the
median images/s over the runs, with the machine it ran on. Not a test: speed is reported,
never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from artgen.data.corpus import SynthConfig, synthesize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=9735)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    seconds = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            synthesize(Path(tmp) / "data", SynthConfig(count=args.count, size=args.size), show_progress=False)
            seconds.append(time.perf_counter() - t0)
        print(f"run {run + 1}: {seconds[-1]:.1f} s ({args.count / seconds[-1]:.0f} images/s)")
    med = statistics.median(seconds)
    print(f"median of {args.runs}: {med:.1f} s for {args.count} images at {args.size} px = "
          f"{args.count / med:.0f} images/s on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()})")


if __name__ == "__main__":
    main()
