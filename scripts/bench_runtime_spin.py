"""Time the torch-free runtime with ONNX Runtime's spin-waiting thread pools on and off.

    python scripts/bench_runtime_spin.py [BUNDLE] [--threads 2] [--runs 50]

Prints the median (p50) one-shot and 8-step latency of `Runtime.generate` for batch 1.
Without a bundle argument it times the model shipped in artgen/assets/tiny.
"""

from __future__ import annotations

import argparse
import statistics
import time

from artgen.machine import cpu_name
from export.runtime import Runtime


def p50_ms(rt: Runtime, steps: int, runs: int) -> float:
    for seed in range(5):  # warm-up
        rt.generate("warm, chaotic, vivid", seed=seed, steps=steps)
    times = []
    for seed in range(runs):
        t0 = time.perf_counter()
        rt.generate("warm, chaotic, vivid", seed=seed, steps=steps)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    print(f"{cpu_name()}, {args.threads} threads, batch 1, p50 of {args.runs} runs")
    for spin in (True, False):
        rt = Runtime(args.bundle, threads=args.threads, spin_wait=spin)
        one, eight = p50_ms(rt, 1, args.runs), p50_ms(rt, 8, max(10, args.runs // 4))
        print(f"spin_wait={spin!s:5}  one-shot {one:6.1f} ms   8-step refine {eight:6.1f} ms")


if __name__ == "__main__":
    main()
