"""In-browser latency of the `artgen web` page beside the Python runtime's, same bundle and prompt.

Builds the page for a bundle (default: the shipped tiny model), opens it in headless Chromium
(artgen/app/browser.py) and times `window.artgen.generator.generate` end to end: tokenize, encode,
sample, decode (the canvas drawing is left out) with seeds 0..runs-1 after one warm-up, then
`Runtime.generate` in this process on the same prompt and seeds. A masked bundle is timed at
one step (the one-shot prediction) and at its default step count; an autoregressive one at
its only setting. Prints a Markdown table for docs/web.md; `--screenshot` also saves the page.

    make web web-browser
    python scripts/bench_web.py --screenshot docs/web.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artgen.app import browser  # noqa: E402
from artgen.app.web import build_web  # noqa: E402
from artgen.workspace import SHIPPED_MODEL  # noqa: E402
from export.runtime import Runtime  # noqa: E402

TIME_IN_PAGE = """async ([prompt, runs, steps]) => {
  const gen = window.artgen.generator, ms = [];
  await gen.generate(prompt, 0, { steps });  // warm-up: WebAssembly tier-up, first allocations
  for (let seed = 0; seed < runs; seed++) ms.push((await gen.generate(prompt, seed, { steps })).ms);
  return ms;
}"""


def time_python(rt: Runtime, prompt: str, runs: int, steps: int | None) -> list[float]:
    rt.generate(prompt, seed=0, steps=steps)  # warm-up
    ms = []
    for seed in range(runs):
        t0 = time.perf_counter()
        rt.generate(prompt, seed=seed, steps=steps)
        ms.append((time.perf_counter() - t0) * 1000)
    return ms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=SHIPPED_MODEL, help="exported bundle (default: the shipped tiny model)")
    ap.add_argument("--prompt", default="warm, chaotic, vivid")
    ap.add_argument("--runs", type=int, default=20, help="timed images per setting (median reported)")
    ap.add_argument("--threads", type=int, default=None, help="Python runtime threads (default: ONNX Runtime's choice)")
    ap.add_argument("--screenshot", type=Path, default=None, help="save a screenshot of the page after one Generate")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    why = browser.missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2

    rt = Runtime(args.bundle, threads=args.threads)
    settings = [None] if rt.generator == "ar" else sorted({1, rt.meta["sampling"]["steps"]})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build_web(site, args.bundle)
        with browser.static_server(site) as url, browser.chromium() as chromium:
            page = browser.open_page(chromium, url)
            if page.get_attribute("#status", "data-state") != "ready":
                print(f"error: the page did not load: {page.text_content('#status')}", file=sys.stderr)
                return 1
            version = chromium.version
            for steps in settings:
                web = page.evaluate(TIME_IN_PAGE, [args.prompt, args.runs, steps])
                py = time_python(rt, args.prompt, args.runs, steps)
                rows.append({"setting": "AR, 256 positions" if steps is None else f"masked, {steps} step{'s' * (steps > 1)}",
                             "web_ms": statistics.median(web), "python_ms": statistics.median(py),
                             "web_all_ms": web, "python_all_ms": py})
            if args.screenshot:
                browser.generate_in_page(page, args.prompt, seed=0)
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.screenshot), full_page=True)

    load = os.getloadavg()[0]
    meta = rt.meta
    print(f"{meta.get('encoder')} {rt.generator} bundle ({meta.get('precision')}) at {args.bundle}, prompt {args.prompt!r}, "
          f"median of {args.runs}; Chromium {version} (onnxruntime-web WASM, 1 thread) vs Python onnxruntime "
          f"({'ORT default' if args.threads is None else args.threads} threads); {os.cpu_count()} cores, load average {load:.2f}")
    print()
    print("| setting | in-browser median (ms) | Python runtime median (ms) | browser / Python |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['setting']} | {r['web_ms']:.0f} | {r['python_ms']:.0f} | {r['web_ms'] / r['python_ms']:.1f}x |")
    if args.json:
        args.json.write_text(json.dumps({"bundle": str(args.bundle), "prompt": args.prompt, "runs": args.runs,
                                         "chromium": version, "load_average": load, "rows": rows}, indent=2))
    if args.screenshot:
        print(f"\nwrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
