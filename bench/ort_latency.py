"""ONNX Runtime latency of a bundle, measured in a process of its own that never loads torch,
as an app embedding the bundle runs it (the bench process itself holds torch's thread pool,
the FID network and the PyTorch models, which slow ONNX Runtime down by 10-20 % here).

    python -m bench.ort_latency BUNDLE [--threads 2] [--runs 100] [--warmup 10]
        [--refine-steps 8] [--guidance 3] [--temperature 1] [--prompt "warm, chaotic, vivid"]
        [--spinning none|predictor|all]

Prints one JSON object, for a masked bundle {"one_shot": summary, "refine_<K>": summary}, for
an autoregressive one {"autoregressive": summary} (all N positions, the bundle's default
sampler), each summary the p50 / p95 / mean / min milliseconds of `Runtime.generate` for one
prompt (batch 1) with the runs, warm-up and threads it used; "generator" names the bundle's.
`time_in_fresh_process(..., rounds=R)` runs R such processes one after another and reports each
sampler's median over them (`combine_rounds`): a slow spell of a busy 2-core machine then moves
one process's figure, not the reported one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.timing import LatencyConfig, measure_latency
from export.runtime import BundleError, Runtime


def time_in_fresh_process(bundle: str | Path, threads: int = 2, runs: int = 100, warmup: int = 10,
                          refine_steps: int = 8, guidance: float | None = None, temperature: float | None = None,
                          prompt: str = "warm, chaotic, vivid", spinning: str = "none", timeout: float = 1800,
                          rounds: int = 1, candidates: int | None = None) -> dict:
    """This module's JSON result for `bundle`, measured in a new Python process (`rounds` of
    them, combined by `combine_rounds`); a failure raises RuntimeError with the child's one-line
    error."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1 (got {rounds})")
    return combine_rounds([_time_once(bundle, threads, runs, warmup, refine_steps, guidance, temperature, prompt,
                                      spinning, timeout, candidates) for _ in range(rounds)])


def combine_rounds(results: list[dict]) -> dict:
    """One result from several processes' results: each sampler's p50, p95 and mean the median
    over the processes, its min the least, and every process's p50 kept (`p50_ms_per_round`)."""
    if len(results) == 1:
        return results[0]
    out = dict(results[0])
    for key, first in results[0].items():
        if not isinstance(first, dict):
            continue
        per = [r[key] for r in results]
        merged = dict(first)
        for stat in ("p50_ms", "p95_ms", "mean_ms"):
            merged[stat] = statistics.median(p[stat] for p in per)
        merged["min_ms"] = min(p["min_ms"] for p in per)
        merged["rounds"] = len(per)
        merged["p50_ms_per_round"] = [p["p50_ms"] for p in per]
        out[key] = merged
    out["torch_loaded"] = any(r.get("torch_loaded") for r in results)
    return out


def _time_once(bundle, threads, runs, warmup, refine_steps, guidance, temperature, prompt, spinning, timeout,
               candidates=None) -> dict:
    argv = [sys.executable, "-m", "bench.ort_latency", str(bundle), "--threads", str(threads), "--runs", str(runs),
            "--warmup", str(warmup), "--refine-steps", str(refine_steps), "--prompt", prompt, "--spinning", spinning]
    for flag, value in (("--guidance", guidance), ("--temperature", temperature), ("--candidates", candidates)):
        if value is not None:
            argv += [flag, str(value)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError((r.stderr.strip().splitlines() or ["bench.ort_latency failed without output"])[-1])
    return json.loads(r.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ort_latency", description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--refine-steps", type=int, default=8)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--candidates", type=int, default=None, help="autoregressive bundles: best of N (default: the bundle's)")
    ap.add_argument("--prompt", default="warm, chaotic, vivid")
    ap.add_argument("--spinning", default="none", help="which thread pools spin-wait: none, predictor or all")
    args = ap.parse_args(argv)
    lat = LatencyConfig(runs=args.runs, warmup=args.warmup, threads=args.threads)
    try:
        rt = Runtime(args.bundle, threads=args.threads, spinning=args.spinning)
        runs = ((("autoregressive", None),) if rt.generator == "ar"
                else (("one_shot", 1), (f"refine_{args.refine_steps}", args.refine_steps)))
        extra = {"candidates": args.candidates} if args.candidates is not None else {}
        out = {name: measure_latency(lambda: rt.generate(args.prompt, seed=0, steps=steps, guidance=args.guidance,
                                                         temperature=args.temperature, **extra), lat)
               for name, steps in runs}
        out["generator"] = rt.generator
        out["torch_loaded"] = "torch" in sys.modules  # the point of this process: must stay False
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
