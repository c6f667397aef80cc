"""`artgen annotate`: label the corpus's paintings with 3-5 vocabulary adjectives each.

Records go to `annotations/<backend>.jsonl` (one JSON object per image, fsync'd per
record), failures to `annotations/<backend>.failures.jsonl`. A rerun skips ids already
written, so a run stopped by Ctrl-C or killed outright resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from annotate.writer import JsonlWriter
from artgen.errors import ArtgenError
from artgen.locks import stage_lock
from artgen.progress import console, progress_bar
from artgen.workspace import Workspace

BACKENDS = ("heuristic", "openai")
PROMPT_BATCH = 32  # images whose prompts are built together (statistics are measured batched)
SPLITS = ("train", "test", "all")


@dataclass
class AnnotateConfig:
    backend: str = "heuristic"
    mode: str = "vision"  # openai only: vision (image sent) | stats (statistics as text)
    base_url: str | None = None
    model: str | None = None  # openai: default gpt-4o-mini
    concurrency: int = 8  # requests in flight (openai)
    limit: int | None = None  # annotate at most this many new images
    split: str = "all"
    price_in: float | None = None  # USD per million prompt tokens
    price_out: float | None = None  # USD per million completion tokens
    dry_run: bool = False
    timeout: float = 60.0
    max_retries: int = 5
    base_delay: float = 1.0
    max_tokens: int = 120  # openai: the answer's token budget
    workers: int = 0  # heuristic: processes (0: one per CPU core)
    show_progress: bool = True


@dataclass
class Summary:
    backend: str
    model: str
    mode: str
    out_path: Path
    failures_path: Path
    selected: int = 0  # images in the chosen split(s)
    done: int = 0  # annotated in this run
    skipped: int = 0  # already in the annotation file
    failed: int = 0
    retries: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    price_in: float | None = None
    price_out: float | None = None
    seconds: float = 0.0
    interrupted: bool = False
    repaired_bytes: int = 0

    @property
    def cost(self) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (self.prompt_tokens * (self.price_in or 0.0) + self.completion_tokens * (self.price_out or 0.0)) / 1e6

    def lines(self) -> list[str]:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        head = "interrupted" if self.interrupted else "finished"
        out = [f"annotate {head}: backend {self.backend} ({self.model}, mode {self.mode})",
               f"  images: {self.done} done, {self.skipped} skipped (already annotated), {self.failed} failed"
               f" of {self.selected} selected; {self.seconds:.1f} s, {rate:.1f} images/s"]
        if self.retries:
            out.append("  retries: " + ", ".join(f"{k} {v}" for k, v in sorted(self.retries.items())))
        else:
            out.append("  retries: none")
        if self.events:
            from annotate.openai_backend import EVENT_NOTES

            for k, v in sorted(self.events.items()):
                out.append(f"  note: {EVENT_NOTES.get(k, k.replace('_', ' '))} ({v}x)")
        out.append(f"  tokens: {self.prompt_tokens} prompt, {self.completion_tokens} completion"
                   + (" (the server reported no token usage, so no cost can be estimated from it)"
                      if self.done and not self.prompt_tokens and self.backend == "openai" else ""))
        if self.cost is not None:
            out.append(f"  estimated cost: ${self.cost:.4f} (at ${self.price_in or 0:g} / ${self.price_out or 0:g} "
                       "per million prompt / completion tokens)")
        if self.repaired_bytes:
            out.append(f"  repaired: cut a torn last line ({self.repaired_bytes} bytes) left by an earlier killed run")
        out.append(f"  labels: {self.out_path}")
        if self.failed:
            out.append(f"  failures: {self.failures_path} (rerun to retry them)")
            if self.retries.get("rate_limit"):
                out.append("  hint: the server rate-limited this run (429): a lower --concurrency fails fewer paintings")
        if self.interrupted:
            out.append("  rerun the same command to resume: finished images are skipped")
        return out


def _select_rows(ws: Workspace, split: str):
    """[(split, dataset)] of the chosen split(s), images left as PNG bytes."""
    import datasets

    from artgen.data.corpus import load_corpus

    if split not in SPLITS:
        raise ArtgenError(f"unknown split {split!r}: use --split train, test or all")
    dd = load_corpus(ws.data)
    names = ["train", "test"] if split == "all" else [split]
    return [(n, dd[n].cast_column("image", datasets.Image(decode=False))) for n in names]


def _png_bytes(cell) -> bytes:
    return cell["bytes"] if isinstance(cell, dict) else cell


def _model_name(cfg: AnnotateConfig) -> str:
    if cfg.backend == "heuristic":
        from annotate.heuristic import MODEL_PATH

        digest = hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest()[:8] if MODEL_PATH.exists() else "missing"
        return f"image-stats-{digest}"
    from annotate.openai_backend import DEFAULT_MODEL

    return cfg.model or DEFAULT_MODEL


def resolve_base_url(flag: str | None) -> str | None:
    """The server's base URL: --base-url, else $OPENAI_BASE_URL (as the openai client reads it),
    else None (OpenAI). Spaces and a pasted `/chat/completions` are dropped; a query string
    (Azure's `?api-version=...`) is kept for every request by `split_query`."""
    url = (flag if flag is not None else os.environ.get("OPENAI_BASE_URL", "")).strip()
    if not url:
        return None
    name = "--base-url" if flag is not None else "OPENAI_BASE_URL"
    if not url.lower().startswith(("http://", "https://")):
        example = f"http://{url}" if "://" not in url else "http://localhost:8000/v1"
        raise ArtgenError(f"{name} {url!r} does not start with http:// or https://: pass the full URL, e.g. {example}")
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for tail in ("/chat/completions", "/completions"):
        if path.endswith(tail):  # the endpoint pasted whole: the client adds it itself
            path = path[:-len(tail)]
    return urlunsplit(parts._replace(path=path))


def split_query(base_url: str | None) -> tuple[str | None, dict | None]:
    """(the base URL without its query string, that query as parameters for every request)."""
    if base_url is None or not urlsplit(base_url).query:
        return base_url, None
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(query="")), dict(parse_qsl(parts.query, keep_blank_values=True))


def check_same_labelling(out_path: Path, model: str, mode: str) -> None:
    """Refuse to add to an annotation file that another model or mode began: training reads
    one file as one labelling, and a mix of two would pass for one without a word."""
    from artgen.data.captions import read_records

    if not out_path.exists():
        return
    others = Counter((str(r.get("model")), str(r.get("mode"))) for r in read_records(out_path)
                     if (r.get("model"), r.get("mode")) != (model, mode))
    if others:
        (m, md), n = others.most_common(1)[0]
        raise ArtgenError(f"{out_path} already holds {sum(others.values())} paintings labelled by model {m!r} ({md} mode) "
                          f"and this run uses {model!r} ({mode} mode): finish that labelling with --model {m} --mode {md}, "
                          f"or move {out_path.name} aside to start a new one (it is kept as it is)")


def run_annotation(ws: Workspace, cfg: AnnotateConfig) -> Summary:
    """Annotate the pending images of the chosen split(s); returns the run's summary."""
    if cfg.backend not in BACKENDS:
        raise ArtgenError(f"unknown backend {cfg.backend!r}: use --backend heuristic or --backend openai")
    if cfg.mode not in ("vision", "stats"):
        raise ArtgenError(f"unknown mode {cfg.mode!r}: use --mode vision or --mode stats")
    if cfg.concurrency < 1:
        raise ArtgenError(f"--concurrency must be at least 1 (got {cfg.concurrency})")
    if cfg.limit is not None and cfg.limit < 0:
        raise ArtgenError(f"--limit must be 0 or more (got {cfg.limit})")
    for name, price in (("--price-in", cfg.price_in), ("--price-out", cfg.price_out)):
        if price is not None and price < 0:
            raise ArtgenError(f"{name} must be a price in USD per million tokens, 0 or more (got {price})")
    if cfg.max_tokens < 1:
        raise ArtgenError(f"--max-tokens must be at least 1 (got {cfg.max_tokens})")
    if cfg.backend == "openai":
        cfg = replace(cfg, base_url=resolve_base_url(cfg.base_url))
    mode = "stats" if cfg.backend == "heuristic" else cfg.mode
    api_key = None
    if cfg.backend == "openai" and not cfg.dry_run:
        from annotate.openai_backend import resolve_api_key  # imports the openai client: before the clock starts

        api_key = resolve_api_key(cfg.base_url)
    parts = _select_rows(ws, cfg.split)
    out_path = ws.annotations / f"{cfg.backend}.jsonl"
    failures_path = ws.annotations / f"{cfg.backend}.failures.jsonl"
    summary = Summary(cfg.backend, _model_name(cfg), mode, out_path, failures_path,
                      price_in=cfg.price_in, price_out=cfg.price_out)

    if cfg.dry_run:
        done_ids = set()
        if out_path.exists():
            from artgen.data.captions import read_records

            done_ids = {str(r.get("id")) for r in read_records(out_path)}
        pending = [(ds, i) for _, ds in parts for i, id_ in enumerate(ds["id"]) if id_ not in done_ids]
        summary.selected = sum(len(ds) for _, ds in parts)
        summary.skipped = summary.selected - len(pending)
        if cfg.limit is not None:
            pending = pending[:cfg.limit]
        _dry_run(cfg, summary, pending)
        return summary

    # one writer per annotation file: a second run would label (and bill) every painting twice
    with stage_lock(ws, f"annotations-{cfg.backend}", f"{out_path.name}"), \
            JsonlWriter(out_path) as writer, JsonlWriter(failures_path) as failures:
        if cfg.backend == "openai":
            check_same_labelling(out_path, summary.model, mode)
        summary.repaired_bytes = writer.repaired_bytes
        pending = []  # (dataset, row index)
        for _, ds in parts:
            for i, id_ in enumerate(ds["id"]):
                summary.selected += 1
                if id_ in writer.done_ids:
                    summary.skipped += 1
                else:
                    pending.append((ds, i))
        if cfg.limit is not None:
            pending = pending[:cfg.limit]
        already = len(writer.done_ids)
        t0 = time.perf_counter()
        try:
            if cfg.backend == "heuristic":
                _run_heuristic(cfg, summary, pending, writer)
            else:
                asyncio.run(_run_openai(cfg, summary, pending, writer, failures, api_key))
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            summary.seconds = time.perf_counter() - t0
            # counted from the file's own record of ids, so a Ctrl-C between a write and the
            # counter cannot make the summary disagree with the file
            summary.done = len(writer.done_ids) - already
    return summary


# ---------------------------------------------------------------- heuristic


def _heuristic_chunk(chunk: list[tuple[str, bytes]]) -> list[tuple[str, list[str]]]:
    from annotate.heuristic import annotate_images
    from artgen.data.corpus import decode_image

    images = [decode_image({"bytes": png}) for _, png in chunk]
    return list(zip([i for i, _ in chunk], annotate_images(images)))


def _run_heuristic(cfg: AnnotateConfig, summary: Summary, pending: list, writer: JsonlWriter) -> None:
    from annotate.heuristic import load_model

    load_model()  # a missing or stale model is an error before any work starts
    chunk_size = 128
    columns: dict[int, tuple[list, list]] = {}  # one read of each split's columns, not one per row
    for ds, _ in pending:
        if id(ds) not in columns:
            columns[id(ds)] = (list(ds["id"]), list(ds["image"]))
    items = [(columns[id(ds)][0][i], _png_bytes(columns[id(ds)][1][i])) for ds, i in pending]
    chunks = [items[s:s + chunk_size] for s in range(0, len(items), chunk_size)]
    workers = min(cfg.workers or os.cpu_count() or 1, max(len(chunks), 1))

    def write(results):
        for id_, adjectives in results:
            writer.append({"id": id_, "adjectives": adjectives, "extra": [], "backend": "heuristic",
                           "model": summary.model, "mode": "stats",
                           "usage": {"prompt_tokens": 0, "completion_tokens": 0}})
            summary.done += 1
        advance(len(results))

    pool = None
    if workers > 1:
        # workers are forked now, before the progress bar starts its refresh thread
        pool = ProcessPoolExecutor(max_workers=workers)
        pool.submit(int).result()
    try:
        with progress_bar("annotate (heuristic)", total=len(items), enabled=cfg.show_progress) as advance:
            for results in (pool.map(_heuristic_chunk, chunks) if pool else map(_heuristic_chunk, chunks)):
                write(results)
    except KeyboardInterrupt:
        if pool:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if pool:
        pool.shutdown()


# ---------------------------------------------------------------- openai


def _messages_for(cfg: AnnotateConfig, batch: list) -> list[tuple[str, list[dict]]]:
    """(id, chat messages) for a batch of (dataset, row index); statistics are measured batched."""
    import numpy as np

    from annotate.prompt import build_messages
    from artgen.data.corpus import decode_image
    from artgen.data.image_stats import STAT_NAMES, statistics_matrix

    rows = [ds[i] for ds, i in batch]
    pngs = [_png_bytes(row["image"]) for row in rows]
    if cfg.mode == "vision":
        out = []
        for row, png in zip(rows, pngs):
            if png[:8] == b"\x89PNG\r\n\x1a\n":  # the stored PNG is sent as it is
                out.append((row["id"], build_messages("vision", png=png)))
            else:
                out.append((row["id"], build_messages("vision", pixels=np.asarray(decode_image({"bytes": png})))))
        return out
    stats = statistics_matrix([decode_image({"bytes": png}) for png in pngs])  # (B, F)
    return [(row["id"], build_messages("stats", stats=dict(zip(STAT_NAMES, map(float, st)))))
            for row, st in zip(rows, stats)]


async def _run_openai(cfg: AnnotateConfig, summary: Summary, pending: list, writer: JsonlWriter,
                      failures: JsonlWriter, api_key: str) -> None:
    from annotate.openai_backend import ClientConfig, Failure, OpenAIAnnotator, Stopped

    base_url, query = split_query(cfg.base_url)
    annotator = OpenAIAnnotator(ClientConfig(base_url=base_url, default_query=query, model=summary.model, timeout=cfg.timeout,
                                             max_retries=cfg.max_retries, base_delay=cfg.base_delay,
                                             max_tokens=cfg.max_tokens), api_key)
    summary.retries = annotator.retries  # shared: an interrupted run still reports them
    summary.events = annotator.events
    loop = asyncio.get_running_loop()
    # Records are written (and fsync'd) by one thread, in order, so the event loop never
    # waits on the disk; prompts (image statistics, PNG) are built in batches on another
    # thread, a few batches ahead of the requests.
    disk = ThreadPoolExecutor(max_workers=1)

    prompts: asyncio.Queue = asyncio.Queue(maxsize=4 * PROMPT_BATCH)
    n_workers = min(cfg.concurrency, max(len(pending), 1))

    # Ctrl-C sets `stop` instead of cancelling tasks: a cancellation can be swallowed inside
    # the HTTP client and retried as a dropped connection. Requests in flight finish and are
    # written; no retry or back-off wait begins; queued ones are dropped; the run then ends as
    # interrupted. A second Ctrl-C raises KeyboardInterrupt at once (records written are kept).
    stop = asyncio.Event()
    annotator.stop = stop
    # An error that ends the run (bad key, no such model, no server at the URL) stops it the
    # same way, so answers already on their way are still written; it is raised at the end.
    fatal: list[ArtgenError] = []

    def first_interrupt() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl-C is Python's own KeyboardInterrupt
        console.print("stopping: the answers on their way are kept (Ctrl-C again to stop at once)")

    try:
        loop.add_signal_handler(signal.SIGINT, first_interrupt)
        handler = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
        handler = False

    async def producer():
        for s in range(0, len(pending), PROMPT_BATCH):
            if stop.is_set():
                break
            for item in await asyncio.to_thread(_messages_for, cfg, pending[s:s + PROMPT_BATCH]):
                await prompts.put(item)
        for _ in range(n_workers):
            await prompts.put(None)

    def billed(e: Exception) -> tuple[int, int]:
        """Count the tokens of a painting that ended without labels (its `usage`): they are billed all the same."""
        u = getattr(e, "usage", None)
        pt, ct = (u.prompt_tokens, u.completion_tokens) if u else (0, 0)
        summary.prompt_tokens += pt
        summary.completion_tokens += ct
        return pt, ct

    async def worker(advance):
        while (item := await prompts.get()) is not None:
            if stop.is_set():
                continue  # drain the queue without sending, so the producer never blocks
            id_, messages = item
            base = {"id": id_, "backend": "openai", "model": summary.model, "mode": cfg.mode}
            try:
                ann = await annotator.annotate(messages)
            except Stopped as e:  # left for the next run, not a failure; its attempts' tokens are counted
                billed(e)
                continue
            except ArtgenError as e:
                fatal.append(e)
                stop.set()
                continue
            except Failure as e:
                pt, ct = billed(e)
                await loop.run_in_executor(disk, failures.append, {
                    **base, "reason": annotator.redact(str(e)), "usage": {"prompt_tokens": pt, "completion_tokens": ct},
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                summary.failed += 1
            else:
                summary.prompt_tokens += ann.prompt_tokens
                summary.completion_tokens += ann.completion_tokens
                record = {**base, "adjectives": ann.adjectives, "extra": ann.extra,
                          "usage": {"prompt_tokens": ann.prompt_tokens, "completion_tokens": ann.completion_tokens},
                          "attempts": ann.attempts}
                if ann.overflow:
                    record["overflow"] = ann.overflow
                await loop.run_in_executor(disk, writer.append, record)
                summary.done += 1
            advance(1)

    try:
        with progress_bar(f"annotate ({summary.model}, {cfg.mode})", total=len(pending),
                          enabled=cfg.show_progress) as advance:
            await asyncio.gather(producer(), *(worker(advance) for _ in range(n_workers)))
        if fatal:
            raise fatal[0]
        if stop.is_set():
            raise KeyboardInterrupt
    finally:
        if handler:
            loop.remove_signal_handler(signal.SIGINT)
        disk.shutdown(wait=True)  # every record handed to the writer is on disk before we return
        await annotator.close()


# ---------------------------------------------------------------- dry run


def _dry_run(cfg: AnnotateConfig, summary: Summary, pending: list) -> None:
    if not pending:
        console.print(f"nothing to annotate: all {summary.selected} selected images are in {summary.out_path}")
        return
    ds, i = pending[0]
    if cfg.backend == "heuristic":
        from annotate.heuristic import annotate_images
        from artgen.data.corpus import decode_image
        from artgen.data.image_stats import image_statistics

        pixels = decode_image({"bytes": _png_bytes(ds[i]["image"])})
        stats = image_statistics(pixels)
        print(f"image {ds[i]['id']}: the heuristic backend sends no prompt; it measures these statistics")
        for k, v in stats.items():
            print(f"  {k} = {v:.4f}")
        print(f"and would label it: {', '.join(annotate_images([pixels])[0])}")
        return
    from annotate.prompt import estimate_tokens, render_messages

    [(id_, messages)] = _messages_for(cfg, [(ds, i)])
    tokens = estimate_tokens(messages)
    print(f"prompt for image {id_} (model {summary.model}, mode {cfg.mode}):")
    print(render_messages(messages))
    print("---")
    completion = 20  # {"adjectives": [...five words...]}
    print(f"estimated tokens per image: ~{tokens} prompt + ~{completion} completion "
          f"(~4 characters per token{', plus 85 for a low-detail image' if cfg.mode == 'vision' else ''}); "
          f"{len(pending)} images pending")
    if cfg.price_in is not None or cfg.price_out is not None:
        per = (tokens * (cfg.price_in or 0) + completion * (cfg.price_out or 0)) / 1e6
        print(f"estimated cost: ${per:.6f} per image, ${per * len(pending):.2f} for the {len(pending)} pending images")
