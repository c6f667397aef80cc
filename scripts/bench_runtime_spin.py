"""Time the torch-free runtime with ONNX Runtime's spin-waiting thread pools on the predictor
session only (the default), on every session (ONNX Runtime's default) and on none.

    python scripts/bench_runtime_spin.py [BUNDLE] [--threads 2] [--runs 50] [--rounds 3]

Prints the median over rounds of the p50 one-shot and 8-step latency of `Runtime.generate`
for batch 1.
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
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{cpu_name()}, {args.threads} threads, batch 1, p50 of {args.runs} runs")
    runtimes = {how: Runtime(args.bundle, threads=args.threads, spinning=how) for how in Runtime.SPINNING}
    results = {how: ([], []) for how in runtimes}
    for _ in range(args.rounds):  # interleaved rounds, so a slow spell of the machine hits every setting
        for how, rt in runtimes.items():
            results[how][0].append(p50_ms(rt, 1, args.runs))
            results[how][1].append(p50_ms(rt, 8, max(10, args.runs // 4)))
    for how, (one, eight) in results.items():
        print(f"spinning={how:9}  one-shot {statistics.median(one):6.1f} ms   8-step {statistics.median(eight):6.1f} ms")


if __name__ == "__main__":
    main()
