"""What checking a bundle's files costs when the runtime loads it: the sha256 of every file
bundle.json records (the default, `Runtime(verify="hash")`) against their sizes alone
(`verify="size"`), beside the whole load of the bundle for scale.

    python scripts/bench_bundle_verify.py [BUNDLE] [--runs 20]

Prints the median and the range over `--runs` runs of each, in ms. The files are read once
before timing, so the figures are for a warm page cache (a bundle the app just installed or
loaded before); a cold first read from disk adds the disk's time to both.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from artgen.machine import cpu_name
from artgen.workspace import SHIPPED_MODEL
from export.runtime import Runtime, load_meta, verify_files


def _times_ms(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default=str(SHIPPED_MODEL))
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    bundle = Path(args.bundle)
    meta = load_meta(bundle)
    if "files" not in meta:
        raise SystemExit(f"{bundle}/bundle.json records no files: export it again with `artgen export`")
    size_mb = sum(f["bytes"] for f in meta["files"].values()) / 1e6
    verify_files(bundle, meta, "hash")  # warm the page cache
    print(f"{cpu_name()}; {bundle}: {len(meta['files'])} files, {size_mb:.2f} MB; median (min-max) of {args.runs} runs")
    for what, fn in (("sha256 + size", lambda: verify_files(bundle, meta, "hash")),
                     ("size only", lambda: verify_files(bundle, meta, "size")),
                     ("whole Runtime load (hash)", lambda: Runtime(bundle, threads=1))):
        t = _times_ms(fn, args.runs)
        print(f"{what:26} {statistics.median(t):7.1f} ms ({min(t):.1f}-{max(t):.1f})")


if __name__ == "__main__":
    main()
