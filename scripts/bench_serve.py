"""Throughput and latency of `artgen serve` under concurrent clients.

    python scripts/bench_serve.py [--bundle DIR] [--seconds 20] [--clients 16] [--n 1]
                                  [--overload-clients 64] [--overload-queue 4] [--threads 1]

Each run starts the server in its own process on 127.0.0.1 (a free port), warms it up, then
runs K asyncio clients (httpx) that each POST /v1/images back to back for --seconds (a client
answered 503 waits the Retry-After it was given, as a polite client does) and stops it. Runs:

- batching off: --max-batch 1, one request per runtime call;
- batching on, exact: --max-batch 16 with the default --batching exact (merges requests only
  for fp32 bundles: on the shipped int8 bundle it runs like "off", images unchanged);
- batching on, merge: --max-batch 16 --batching merge (merges int8 rows too; faster, but an
  image may then differ from the same request served alone);
- overload: --overload-clients clients against the default --queue 64 (latency grows with the
  queue) and against --queue --overload-queue (the rest get 503 at once; latency stays flat).

Prints a Markdown table: requests and images per second (200s only), p50/p99 latency of the
200s, responses by status and the mean images per runtime call (from GET /healthz).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import socket
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPTS = ["warm, chaotic, vivid", "cool, calm, minimal", "dark, dense, geometric", "pastel, soft, circular"]


def _serve(bundle: str | None, port: int, config: dict, threads: int | None) -> None:
    from artgen.app.serve import ServeConfig, serve
    from artgen.workspace import SHIPPED_MODEL

    serve(bundle or SHIPPED_MODEL, ServeConfig(threads=threads, **config), port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _clients(url: str, clients: int, seconds: float, n: int) -> tuple[list[float], Counter, float]:
    import httpx

    latencies, statuses = [], Counter()
    deadline = time.perf_counter() + seconds

    async def client(k: int, http: httpx.AsyncClient) -> None:
        i = 0
        while time.perf_counter() < deadline:
            body = {"prompt": PROMPTS[k % len(PROMPTS)], "n": n, "seed": 1000 * k + i}
            t = time.perf_counter()
            try:
                r = await http.post(f"{url}/v1/images", json=body)
                status = r.status_code
            except httpx.HTTPError as e:
                status = type(e).__name__
            dt = time.perf_counter() - t
            statuses[status] += 1
            if status == 200:
                latencies.append(dt)
            elif status == 503:
                await asyncio.sleep(min(float(r.headers.get("retry-after", 1)), max(0.0, deadline - time.perf_counter())))
            i += 1

    start = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
    return latencies, statuses, time.perf_counter() - start


def run(name: str, config: dict, clients: int, args) -> dict:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = mp.get_context("spawn").Process(target=_serve, args=(args.bundle, port, config, args.threads), daemon=True)
    server.start()
    try:
        end = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if not server.is_alive() or time.monotonic() > end:
                raise SystemExit(f"error: the server for run {name!r} did not start")
            time.sleep(0.2)
        for seed in range(3):  # warm-up: sessions, allocator, tokenizer
            httpx.post(f"{url}/v1/images", json={"prompt": PROMPTS[0], "n": args.n, "seed": seed}, timeout=120)
        before = httpx.get(f"{url}/healthz").json()
        latencies, statuses, wall = asyncio.run(_clients(url, clients, args.seconds, args.n))
        after = httpx.get(f"{url}/healthz").json()
    finally:
        server.terminate()
        server.join(30)
    ok = statuses.get(200, 0)
    calls = after["runtime_calls"] - before["runtime_calls"]
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) >= 2 else [float("nan")] * 99
    return {"name": name, "flags": " ".join(f"--{k.replace('_', '-')} {v}" for k, v in config.items()),
            "clients": clients, "rps": ok / wall, "ips": ok * args.n / wall,
            "p50": 1000 * statistics.median(latencies) if latencies else float("nan"), "p99": 1000 * q[98],
            "statuses": statuses, "per_call": (after["images"] - before["images"]) / calls if calls else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped tiny model)")
    ap.add_argument("--seconds", type=float, default=20.0, help="load time per run (each run also starts a server)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--n", type=int, default=1, help="images per request")
    ap.add_argument("--overload-clients", type=int, default=64)
    ap.add_argument("--overload-queue", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the server")
    args = ap.parse_args()
    if not 0 < args.seconds <= 600 or args.clients < 1 or args.overload_clients < 1 or not 1 <= args.n <= 16:
        raise SystemExit("error: --seconds must be in (0, 600], --clients and --overload-clients >= 1, --n in 1..16")

    runs = [("batching off", {"max_batch": 1}, args.clients),
            ("batching on, exact", {"max_batch": 16}, args.clients),
            ("batching on, merge", {"max_batch": 16, "batching": "merge"}, args.clients),
            ("overload, long queue", {"max_batch": 16, "queue": 64}, args.overload_clients),
            ("overload, short queue", {"max_batch": 16, "queue": args.overload_queue}, args.overload_clients)]
    print(f"bench_serve: {platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()}; {args.seconds:g} s per run, {args.n} image(s) per request, "
          f"server --threads {args.threads}; clients run on the same machine", flush=True)
    rows = []
    for name, config, clients in runs:
        rows.append(run(name, config, clients, args))
        r = rows[-1]
        print(f"  {name}: {r['ips']:.1f} images/s, p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, "
              f"{dict(r['statuses'])}", flush=True)
    print()
    print("| run | server flags | clients | requests/s | images/s | p50 ms | p99 ms | images per call | responses |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items(), key=lambda kv: str(kv[0])))
        print(f"| {r['name']} | `{r['flags']}` | {r['clients']} | {r['rps']:.1f} | {r['ips']:.1f} | {r['p50']:.0f} | "
              f"{r['p99']:.0f} | {r['per_call']:.1f} | {statuses} |")


if __name__ == "__main__":
    main()
