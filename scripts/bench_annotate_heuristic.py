"""Wall time of `artgen annotate` (heuristic backend) on a whole corpus, then its quality.

    python scripts/bench_annotate_heuristic.py [--workdir W] [--runs 3]

Each run labels every painting of W's corpus (built with `artgen data synth` when W has
none) from scratch in a scratch workspace that shares the corpus: the whole command, from
process start to the last fsync'd record. Then `artgen annotate report` (test split, against
the ground truth) runs on the last run's labels. Prints the median wall time and micro-F1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from artgen.workspace import Workspace

    ws = Workspace.resolve(args.workdir)
    cli = [sys.executable, "-m", "artgen"]
    if not (ws.data / "dataset_dict.json").exists():
        subprocess.run([*cli, "--workdir", str(ws.root), "data", "synth"], check=True)
    scratch = Path(tempfile.mkdtemp(prefix="artgen-bench-heuristic-"))
    (scratch / "data").symlink_to(ws.data)
    times = []
    try:
        for run in range(args.runs):
            shutil.rmtree(scratch / "annotations", ignore_errors=True)
            t0 = time.perf_counter()
            r = subprocess.run([*cli, "--workdir", str(scratch), "annotate"], capture_output=True, text=True, cwd=ROOT)
            times.append(time.perf_counter() - t0)
            if r.returncode != 0:
                sys.exit(r.stderr[-2000:])
            n = sum(1 for _ in open(scratch / "annotations" / "heuristic.jsonl"))
            print(f"run {run + 1}: {n} paintings in {times[-1]:.1f} s ({n / times[-1]:.0f} images/s)")
        r = subprocess.run([*cli, "--workdir", str(scratch), "annotate", "report"], capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            sys.exit(r.stderr[-2000:])
        rep = json.loads((scratch / "reports" / "annotation" / "report.json").read_text())
        print(f"median {statistics.median(times):.1f} s over {args.runs} runs for {n} paintings "
              f"({os.cpu_count()} CPUs); test split micro-F1 {rep['micro_f1']:.3f}, macro-F1 {rep['macro_f1']:.3f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
