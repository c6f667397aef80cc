"""Time the torch-free runtime with ONNX Runtime's spin-waiting thread pools on no session (the
default), on the predictor session only, and on every session (ONNX Runtime's default).

    python scripts/bench_runtime_spin.py [BUNDLE] [--threads 2] [--runs 50] [--rounds 3]

Each setting runs `--rounds` times, every time in a fresh torch-free process
(`python -m bench.ort_latency`), the settings taking turns so a slow spell of the machine
hits all of them. Prints each process's p50 one-shot and 8-step latency (batch 1) and the
median over the processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from artgen.machine import cpu_name
from artgen.workspace import SHIPPED_MODEL
from bench.ort_latency import time_in_fresh_process
from export.runtime import Runtime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default=str(SHIPPED_MODEL))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{cpu_name()}, {args.threads} threads, batch 1, p50 of {args.runs} runs per process, {args.rounds} processes each")
    results = {how: ([], []) for how in Runtime.SPINNING}
    for _ in range(args.rounds):
        for how in Runtime.SPINNING:
            try:
                out = time_in_fresh_process(args.bundle, threads=args.threads, runs=args.runs, warmup=5, spinning=how)
            except RuntimeError as e:
                sys.exit(str(e))
            results[how][0].append(out["one_shot"]["p50_ms"])
            results[how][1].append(out["refine_8"]["p50_ms"])
    for how, (one, eight) in results.items():
        print(f"spinning={how:9}  one-shot {statistics.median(one):6.1f} ms ({', '.join(f'{x:.1f}' for x in one)})   "
              f"8-step {statistics.median(eight):6.1f} ms ({', '.join(f'{x:.1f}' for x in eight)})")


if __name__ == "__main__":
    main()
