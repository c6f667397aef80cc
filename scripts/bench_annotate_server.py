"""Throughput of `artgen annotate --backend openai` against a local OpenAI-compatible server.

    python scripts/bench_annotate_server.py [--workdir W] [--latency 0.05] [--concurrency 8]
                                            [--images 1000] [--runs 3] [--mode vision stats]

Starts `annotate.local_server.LocalChatServer` in its own process (loopback, answering every
request after --latency seconds), then runs the real CLI in a subprocess on a scratch
workspace that shares W's corpus (built with `artgen data synth` when W has none), and
reads the images/s of each run from the CLI's end summary (the clock starts once the corpus
is open and the client imported). Prints the median of --runs runs per mode.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _serve(latency: float, q) -> None:
    from annotate.local_server import LocalChatServer

    server = LocalChatServer(latency=latency).start()
    q.put(server.base_url)
    while True:
        time.sleep(3600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", nargs="+", default=["vision", "stats"])
    args = ap.parse_args()

    from artgen.workspace import Workspace

    ws = Workspace.resolve(args.workdir)
    if not (ws.data / "dataset_dict.json").exists():
        subprocess.run([sys.executable, "-m", "artgen", "--workdir", str(ws.root), "data", "synth"], check=True)
    q = mp.Queue()
    server = mp.Process(target=_serve, args=(args.latency, q), daemon=True)
    server.start()
    base_url = q.get(timeout=60)
    env = {**os.environ, "OPENAI_API_KEY": "local-benchmark"}
    print(f"server {base_url}, latency {args.latency * 1000:.0f} ms; {args.images} images per run, "
          f"--concurrency {args.concurrency}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    try:
        for mode in args.mode:
            rates = []
            for run in range(args.runs):
                scratch = Path(tempfile.mkdtemp(prefix="artgen-bench-annotate-"))
                (scratch / "data").symlink_to(ws.data)
                r = subprocess.run([sys.executable, "-m", "artgen", "--workdir", str(scratch), "annotate",
                                    "--backend", "openai", "--mode", mode, "--base-url", base_url, "--model", "local",
                                    "--concurrency", str(args.concurrency), "--limit", str(args.images)],
                                   env=env, capture_output=True, text=True, cwd=ROOT)
                shutil.rmtree(scratch, ignore_errors=True)
                m = re.search(r"(\d+) done.*?([\d.]+) images/s", r.stderr)
                if r.returncode != 0 or not m or int(m.group(1)) != args.images:
                    sys.exit(f"run failed (rc {r.returncode}):\n{r.stderr[-2000:]}")
                rates.append(float(m.group(2)))
                print(f"  {mode} run {run + 1}: {rates[-1]:.1f} images/s")
            print(f"{mode}: median {statistics.median(rates):.1f} images/s over {args.runs} runs "
                  f"(min {min(rates):.1f}, max {max(rates):.1f})")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
