"""`artgen serve`: the torch-free runtime behind a small HTTP API (FastAPI + uvicorn).

    POST /v1/images  {"prompt": "warm, chaotic, vivid", "n": 4, "seed": 0}  -> image/png grid
                     {..., "format": "json"}  -> base64 PNGs, the seeds and the sampling used
    GET  /v1/model   the bundle's public description (from bundle.json) and the serving limits
    GET  /healthz    liveness and queue depth
    GET  /openapi.json  the request schema, from FastAPI
    GET  /docs, /redoc  Swagger UI and ReDoc over that schema, their files served from the fastapi-offline
                        package rather than a CDN, so that they work offline

Every GET route answers HEAD too, every route is served at its path plus one trailing slash as
well (no redirect), a POST body is read as JSON whatever its content type unless a page on an
origin not allowed sent it (see JsonBody), the parameters come only from that body (a query
string is a 400), a body that stops arriving mid-way is a 408 after `body_timeout_s` (see
BodyLimit), and with `cors_origins` pages on those origins may call the API (CORS), errors and
500s included.

Requests wait in a bounded queue (full: 503 with Retry-After; one whose client hangs up leaves
it undrawn) and one worker thread runs every ONNX Runtime call. After taking the first waiting
request the worker waits up to `batch_window_ms` for more with the same sampling settings, up
to `max_batch` images, and runs them as one `Runtime.sample_codes` call in which every image
keeps the seed it gets alone (request seed + i), then splits the images back per request.

Merging requests is exact only where the bundle's graphs are batch-invariant. An int8 graph
quantises its activations with one scale per tensor, taken over every row of the batch, so
a row's numbers depend on its batch-mates (and an autoregressive sampler's codes, from the
first flipped code on). With `batching="exact"` (the default) requests are merged only for
fp32 bundles, whose rows do not interact; an int8 bundle, the shipped one included, runs each
request as its own call, so every response is byte-identical to `Runtime.generate` of that
request. `batching="merge"` merges regardless: more images per second, but an image may then
differ from the same request served alone.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import math
import re
import secrets
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import numpy as np
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from artgen.errors import ArtgenError
from artgen.images import grid_png as images_grid_png
from artgen.images import png_bytes
from artgen.workspace import SHIPPED_MODEL
from export.runtime import MAX_CANDIDATES, BundleError, Runtime, check_int, check_prompt, check_temperature
from export.runtime import batch_invariant as runtime_batch_invariant

log = logging.getLogger("artgen.app.serve")

MAX_IMAGES = 16  # per request
MAX_BATCH = 64  # per merged runtime call: the most export.runtime generates in one call
MAX_SEED = 2**32 - 1
MAX_WINDOW_MS = 1000.0  # a merge window longer than a second only adds latency
MAX_TIMEOUT_S = 3600.0
KEEP_ALIVE_S = 75.0  # idle connection lifetime (uvicorn's default, 5 s, is shorter than a proxy's: a 502 now and then)
GRID_PAD, GRID_SCALE = 2, 2  # the PNG grid of `artgen generate`: 2 px white gaps, upscaled 2x
BATCHING = ("exact", "merge")
EXAMPLE = '{"prompt": "warm, chaotic, vivid", "n": 4}'
EXPOSED_HEADERS = ("X-Seeds", "Retry-After")  # the response headers a cross-origin page may read
CRASH = "internal error (logged on the server): try again, and report it if it persists"
DOCS_ASSETS = "/docs/assets"  # Swagger UI's and ReDoc's files, from the fastapi-offline package: /docs works offline
DOCS_EXAMPLES = {"grid": {"summary": "four images as one PNG", "value": json.loads(EXAMPLE)}}  # /docs' "Try it out" body
ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s?#]+")  # scheme://host[:port], as a browser's Origin header


@dataclass
class ServeConfig:
    """The knobs of `artgen serve` (its flags carry the same names)."""

    max_batch: int = 16  # images per merged runtime call; a request of n images always runs whole
    batch_window_ms: float = 5.0  # how long the worker waits for more requests after taking one
    queue: int = 64  # requests waiting for the worker; one more is answered 503 + Retry-After
    timeout_s: float = 30.0  # queue wait + generation of one request; beyond it 504
    max_body_bytes: int = 16 * 1024  # a larger request body is answered 413
    body_timeout_s: float = 30.0  # the longest wait for the next part of a request body; beyond it 408
    threads: int | None = None  # ONNX Runtime threads, when create_app loads the bundle itself
    batching: str = "exact"  # "exact": merge requests only where that cannot change an image; "merge": always
    cors_origins: tuple[str, ...] = ()  # origins whose pages may call the API ("*": any); each may be comma-separated

    def __post_init__(self) -> None:
        origins = [self.cors_origins] if isinstance(self.cors_origins, str) else list(self.cors_origins)
        origins = [o.strip() for item in origins for o in str(item).split(",") if o.strip()]
        origins = [o[:-1] if o.endswith("/") and ORIGIN.fullmatch(o[:-1]) else o for o in origins]
        for o in origins:
            if o != "*" and canonical_origin(o) is None:
                raise ArtgenError(f"--cors-origin {o!r} is not an origin: give scheme://host[:port] without a path, "
                                  "e.g. http://localhost:3000, or * for any origin")
        # as a browser sends it (lower case, no default port): CORS compares Origin headers by string
        self.cors_origins = tuple(dict.fromkeys(o if o == "*" else canonical_origin(o) for o in origins))
        for name in ("max_batch", "queue", "max_body_bytes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ArtgenError(f"{name} must be a whole number >= 1 (got {getattr(self, name)!r})")
        if self.max_batch > MAX_BATCH:
            raise ArtgenError(f"max_batch must be at most {MAX_BATCH} (got {self.max_batch}): the images of one runtime call")
        if not 0 <= self.batch_window_ms <= MAX_WINDOW_MS or not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise ArtgenError(f"batch_window_ms must be 0-{MAX_WINDOW_MS} and timeout_s in (0, {MAX_TIMEOUT_S}] "
                              f"(got {self.batch_window_ms!r}, {self.timeout_s!r}): fix --batch-window-ms / --timeout-s")
        if not 0 < self.body_timeout_s <= MAX_TIMEOUT_S:
            raise ArtgenError(f"body_timeout_s must be in (0, {MAX_TIMEOUT_S}] (got {self.body_timeout_s!r})")
        if self.batching not in BATCHING:
            raise ArtgenError(f"batching must be one of {', '.join(BATCHING)} (got {self.batching!r})")


class ImageRequest(BaseModel):
    """The body of POST /v1/images. Unset sampling settings take the bundle's defaults
    (GET /v1/model lists them); image i of n is drawn with seed + i."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(description="A few adjectives, e.g. \"warm, chaotic, vivid\" (limits: GET /v1/model).",
                        examples=["warm, chaotic, vivid"])
    n: int = Field(1, ge=1, le=MAX_IMAGES, description="Images to draw, with seeds seed .. seed + n - 1.")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="The first image's seed, with seed + n - 1 at most "
                             f"{MAX_SEED} (default: a random one, returned).")
    steps: int | None = Field(None, ge=1, description="Masked bundles: decoding steps (1: one shot). "
                              "Autoregressive bundles draw one position per step: leave it out.")
    guidance: float | None = Field(None, ge=0.0, le=20.0, allow_inf_nan=False,
                                   description="Classifier-free guidance scale (1: none).")
    temperature: float | None = Field(None, ge=0.0, le=10.0, allow_inf_nan=False,
                                      description="Sampling temperature (0: the most likely code).")
    top_k: int | None = Field(None, ge=0, description="Autoregressive bundles: sample among the k most likely codes (0: all).")
    candidates: int | None = Field(None, ge=1, le=MAX_CANDIDATES,
                                   description="Autoregressive bundles with a caption picker or a code scorer: draw this many "
                                               "per image and keep the one closest to the prompt's words (default: the bundle's).")
    format: Literal["png", "json"] = Field("png", description="png: one grid image; json: base64 PNGs, seeds and settings.")


@dataclass(frozen=True)
class Sampling:
    """The settings of one runtime call, the bundle's defaults filled in: requests merge only when equal."""

    steps: int | None  # None: the autoregressive generator (one position per step)
    guidance: float
    temperature: float
    top_k: int | None  # None: the masked generator
    candidates: int | None = None  # None: the masked generator

    def to_dict(self, rt: Runtime) -> dict:
        steps = rt.meta["sampling"]["steps"] if self.steps is None else self.steps
        return {"generator": rt.generator, "steps": steps, "guidance": self.guidance, "temperature": self.temperature,
                "top_k": self.top_k, **({"candidates": self.candidates} if self.candidates is not None else {})}


def resolve_sampling(rt: Runtime, req: ImageRequest) -> Sampling:
    """The request's settings with the bundle's defaults, checked as `Runtime.sample_codes` checks
    them (BundleError, one line), so that a bad request fails alone rather than its whole batch."""
    meta, d = rt.meta, rt.meta["sampling"]
    check_prompt(req.prompt, meta["prompt_limits"])
    rt.tokenizer([req.prompt])  # raises when the prompt has more tokens than the encoder reads
    guidance = float(d["guidance"] if req.guidance is None else req.guidance)
    temperature = check_temperature(d["temperature"] if req.temperature is None else req.temperature)  # < 1e-6: 0
    if rt.generator == "ar":
        if req.steps is not None and req.steps != d["steps"]:
            raise BundleError(f"steps {req.steps} does not apply to this autoregressive bundle: it draws the "
                              f"{d['steps']} positions one per step; leave steps out")
        top_k = check_int("top_k", d.get("top_k", 0) if req.top_k is None else req.top_k, 0, meta["codebook_size"])
        candidates = check_int("candidates", d.get("candidates", 1) if req.candidates is None else req.candidates, 1,
                               MAX_CANDIDATES)
        if candidates > 1 and rt.chooser is None:
            raise BundleError(f"candidates {candidates} needs a bundle with a caption picker or a code scorer (this one has "
                              "neither): leave candidates out")
        return Sampling(None, guidance, temperature, top_k, candidates)
    if req.top_k:
        raise BundleError("top_k is for autoregressive bundles; this bundle holds the masked generator: leave top_k out")
    if req.candidates not in (None, 1):
        raise BundleError("candidates is for autoregressive bundles; this bundle holds the masked generator: leave it out")
    steps = check_int("steps", d["steps"] if req.steps is None else req.steps, 1, d["max_steps"])
    return Sampling(steps, guidance, temperature, None)


def batch_invariant(rt: Runtime) -> bool:
    """Whether an image is the same whatever else shares its runtime call (export.runtime's rule)."""
    return runtime_batch_invariant(rt.meta)


class QueueFull(Exception):
    """The waiting queue holds `ServeConfig.queue` requests already."""


class ClientGone(Exception):
    """The client closed its connection before its images were ready: its request left the queue
    undrawn, or its batch's images are dropped."""


@dataclass(eq=False)
class _Job:
    prompt: str
    seeds: list[int]
    sampling: Sampling
    future: asyncio.Future


class Batcher:
    """Gathers waiting requests into runtime calls, run one at a time on one worker thread."""

    def __init__(self, rt: Runtime, config: ServeConfig):
        self.rt, self.config = rt, config
        self.merge = config.batching == "merge" or batch_invariant(rt)
        self.calls: deque[tuple[int, int]] = deque(maxlen=1000)  # (requests, images) per runtime call, newest last
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artgen-ort")
        self.waiting: deque[_Job] = deque()
        self.runtime_calls = self.images = 0  # totals since start, for GET /healthz
        self._loop = self._task = self._arrived = None

    def start(self) -> None:
        """Start the worker in the running event loop (again if an earlier loop has gone)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._loop, self._arrived = loop, asyncio.Event()
        self._task = loop.create_task(self._work(), name="artgen-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for job in self.waiting:
            if not job.future.done():
                job.future.set_exception(QueueFull())
        self.waiting.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, prompt: str, seeds: list[int], sampling: Sampling, gone=None) -> np.ndarray:
        """(n, H, W, 3) uint8 images of one request; QueueFull at once when the queue is full,
        TimeoutError after `timeout_s`, ClientGone as soon as `gone()` (an awaitable that returns
        when the client has hung up) returns; either way the request then leaves the queue, so
        that the worker draws no images nobody will read."""
        self.start()
        if len(self.waiting) >= self.config.queue:
            raise QueueFull()
        job = _Job(prompt, seeds, sampling, self._loop.create_future())
        self.waiting.append(job)
        self._arrived.set()
        watch = asyncio.ensure_future(gone()) if gone is not None else None
        try:
            if watch is None:
                return await asyncio.wait_for(job.future, self.config.timeout_s)
            await asyncio.wait((job.future, watch), timeout=self.config.timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if job.future.done():
                return job.future.result()
            if watch.done() and watch.exception() is not None:  # the watcher broke: not a hang-up
                raise watch.exception()
            raise ClientGone() if watch.done() else asyncio.TimeoutError()
        finally:
            if watch is not None:
                watch.cancel()
                job.future.cancel()  # unless settled: the worker skips it, and drops it from a batch not yet run
            if job in self.waiting:
                self.waiting.remove(job)

    def _take(self, jobs: list[_Job]) -> None:
        """Move waiting jobs with the first job's settings into `jobs` while they fit in max_batch."""
        count = sum(len(j.seeds) for j in jobs)
        for job in list(self.waiting):
            if job.future.done():
                self.waiting.remove(job)
            elif job.sampling == jobs[0].sampling and count + len(job.seeds) <= self.config.max_batch:
                self.waiting.remove(job)
                jobs.append(job)
                count += len(job.seeds)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.waiting:
                self._arrived.clear()
                await self._arrived.wait()
            job = self.waiting.popleft()
            if job.future.done():  # timed out while waiting
                continue
            jobs = [job]
            if self.merge:
                deadline = loop.time() + self.config.batch_window_ms / 1000
                self._take(jobs)
                while sum(len(j.seeds) for j in jobs) < self.config.max_batch and loop.time() < deadline:
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
                    except asyncio.TimeoutError:
                        pass
                    self._take(jobs)
            try:
                await self._run(jobs)
            except Exception:  # keep serving; the jobs already carry the error
                log.exception("the batch worker failed")

    async def _run(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        jobs = [j for j in jobs if not j.future.done()]  # drop those that timed out meanwhile
        if not jobs:
            return
        prompts = [j.prompt for j in jobs for _ in j.seeds]
        seeds = [s for j in jobs for s in j.seeds]
        try:
            images = await loop.run_in_executor(self.executor, self._generate, prompts, seeds, jobs[0].sampling)
        except BundleError as e:
            if len(jobs) > 1:  # a request the checks let through: run each alone, so that it fails alone
                for j in jobs:
                    await self._run([j])
                return
            _settle(jobs[0].future, error=e)
            return
        except Exception as e:
            for j in jobs:
                _settle(j.future, error=e)
            return
        self.calls.append((len(jobs), len(seeds)))
        self.runtime_calls, self.images = self.runtime_calls + 1, self.images + len(seeds)
        start = 0
        for j in jobs:  # (B, H, W, 3) -> each request's rows, in order
            _settle(j.future, images[start:start + len(j.seeds)])
            start += len(j.seeds)

    def _generate(self, prompts: list[str], seeds: list[int], s: Sampling) -> np.ndarray:
        decoded: list[np.ndarray] = []  # the kept candidates' images, where the caption picker decoded them already
        # merge: a merged call is one batch (in exact batching only batch-invariant bundles merge at all);
        # one request's rows are drawn as the runtime draws a list, each as it is alone
        merged = {"merge": True} if len(set(prompts)) > 1 else {}  # a runtime of one's own need not take it otherwise
        codes = self.rt.sample_codes(prompts, seeds=seeds, steps=s.steps, guidance=s.guidance, temperature=s.temperature,
                                     top_k=s.top_k, candidates=s.candidates, decoded=decoded, **merged)  # (B, h, w)
        return decoded[0] if decoded else self.rt.decode(codes)  # (B, H, W, 3) uint8


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():  # the request timed out meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def image_png(image: np.ndarray) -> bytes:
    """One (H, W, 3) uint8 image as PNG bytes, as `export.runtime.save_png` writes it."""
    return png_bytes(image)


def grid_png(images: np.ndarray) -> bytes:
    """(n, H, W, 3) images in one row: the PNG `artgen generate -n n` writes for one prompt."""
    return images_grid_png(images, columns=len(images), scale=GRID_SCALE)


def model_card(rt: Runtime, config: ServeConfig, merges: bool) -> dict:
    """The bundle's public description: what bundle.json says a user may rely on (no paths)."""
    meta, d = rt.meta, rt.meta["sampling"]
    sampling = {k: d[k] for k in ("steps", "max_steps", "guidance", "temperature", "top_k", "candidates") if k in d}
    if rt.generator == "ar":
        sampling.pop("max_steps", None)
    keys = ("encoder", "generator", "weights", "precision", "int8_graphs", "producer", "format", "image_size",
            "grid", "codebook_size", "text_width", "size_bytes", "vocabulary_hash")
    return {**{k: meta[k] for k in keys if k in meta},
            "sampling": sampling,
            "prompt_limits": {**meta["prompt_limits"], "max_tokens": meta["tokenizer"]["max_tokens"]},
            "vocabulary": meta.get("vocabulary", []),
            "serving": {"max_images": MAX_IMAGES, "max_seed": MAX_SEED, "max_batch": config.max_batch,
                        "batch_window_ms": config.batch_window_ms, "queue": config.queue,
                        "timeout_s": config.timeout_s, "max_body_bytes": config.max_body_bytes,
                        "body_timeout_s": config.body_timeout_s,
                        "batching": config.batching, "merges_requests": merges,
                        "png_grid": {"pad": GRID_PAD, "scale": GRID_SCALE}}}


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """Every error body: {"error": "<one line naming the fix>"}."""
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validation_message(err: dict) -> tuple[int, str]:
    """(status, one line) for pydantic's first complaint about a request body: 400 for a body
    that is no JSON object, 422 for a field that breaks the schema."""
    where = [str(x) for x in err.get("loc", ()) if x != "body"]
    kind, got = err.get("type", ""), err.get("input")
    if kind == "json_invalid":
        reason = (err.get("ctx") or {}).get("error", "JSON decode error")
        return 400, f"the body is not valid JSON ({reason}): send a JSON object such as {EXAMPLE}"
    if not where or kind in ("model_attributes_type", "model_type", "dict_type"):
        return 400, f"the body must be a JSON object such as {EXAMPLE}"
    name = where[0]
    if kind == "extra_forbidden":
        return 422, f"unknown field {name!r}: the fields are {', '.join(ImageRequest.model_fields)}"
    if kind == "missing":
        return 422, f"{name} is missing: send e.g. {EXAMPLE}"
    if kind == "finite_number":
        return 422, f"{name} must be a finite number (got {_short(got)})"
    msg = err.get("msg", "is invalid")
    return 422, f"{name}: {msg[:1].lower() + msg[1:]} (got {_short(got)})"


def unreadable_body(cause: BaseException | None) -> str:
    """One line for a body FastAPI could not read as JSON at all, where its own 400 says only
    "There was an error parsing the body" (`cause`: the exception it raised that from)."""
    if isinstance(cause, UnicodeDecodeError):  # JSON is UTF-8 (RFC 8259); a charset parameter is not read
        byte = cause.object[cause.start:cause.start + 1].hex()
        return (f"the body is not UTF-8 text (byte 0x{byte} at offset {cause.start}): send the JSON encoded as UTF-8, "
                f"e.g. {EXAMPLE}")
    if isinstance(cause, RecursionError):
        return f"the body's JSON is nested too deeply to read: send a flat JSON object such as {EXAMPLE}"
    if isinstance(cause, ValueError) and "digits" in str(cause):  # an integer over Python's 4,300-digit conversion limit
        return f"the body holds a number with too many digits to read: send a JSON object such as {EXAMPLE}"
    return f"the body could not be read as JSON: send a JSON object such as {EXAMPLE}"


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413, whether it declares its
    Content-Length or streams chunks; a body whose next part does not come within `timeout_s`
    gets 408 and its connection closed. uvicorn has no timeout on reading a body, so a client
    that stalls mid-body (headers and 10 of its 100 bytes, then nothing) would hold its
    request, and a connection, until it hangs up."""

    def __init__(self, app, limit: int, timeout_s: float = 30.0):
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self.too_big()(scope, receive, send)
        seen, started, answered, read = 0, False, False, False  # read: the whole body has arrived

        async def answer(response: JSONResponse):  # here: the app may turn the error raised after it into a 400
            nonlocal answered
            if not started and not answered:
                answered = True
                await response(scope, receive, send)
            raise _Answered()

        async def counted():
            nonlocal seen, read
            if read:  # only http.disconnect is left to come, which the /v1/images handler waits for while it generates
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                await answer(self.stalled(seen, length))
            read = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    await answer(self.too_big())
            return message

        async def watched(message):
            nonlocal started
            if answered:  # the 413 went out already
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _Answered:
            pass

    def too_big(self) -> JSONResponse:
        return error_response(413, f"the request body is over {self.limit} bytes: send one prompt of a few adjectives")

    def stalled(self, seen: int, length: bytes | None) -> JSONResponse:
        of = f" of {length.decode('latin-1')[:20]}" if length is not None else ""
        return error_response(408, f"the request body stopped arriving ({seen}{of} bytes, then nothing for {self.timeout_s:g} s): "
                                   "send the whole body at once", headers={"Connection": "close"})


class _Answered(Exception):
    """BodyLimit has answered the request itself (413 or 408): the app's own answer is dropped."""


class JsonBody:
    """ASGI middleware: a POST body is read as JSON whatever its content type, unless it comes
    from a page on another origin that `cors_origins` does not allow. FastAPI reads JSON only
    under application/json, but `curl -d` sends application/x-www-form-urlencoded, some clients
    send none, and a page may send text/plain; the body must still parse as a JSON object and
    pass the same checks. text/plain and the form types are CORS "simple" requests a browser
    sends cross-site without a preflight, so reading them from any page would let every site a
    visitor opens run generations on a server on their machine or LAN: a cross-site request keeps
    its content type, and the strict path refuses it (a 400 naming the fix).

    A POST /v1/images with a query string (`curl -X POST '.../v1/images?prompt=warm&n=2'`) is a
    400 saying the parameters go in the JSON body, body or not: FastAPI would ignore the query and
    answer about the body, and serving half a request silently is worse."""

    def __init__(self, app, cors_origins: tuple[str, ...] = ()):
        self.app, self.cors_origins = app, tuple(cors_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            if scope.get("query_string") and route_path(scope) == "/v1/images":  # TrailingSlash has dropped a last "/"
                query = scope["query_string"].decode("latin-1")
                return await error_response(400, f"POST /v1/images takes its parameters in a JSON body, not the query string "
                                                 f"(got ?{query[:80]}): send a JSON object such as {EXAMPLE}")(scope, receive, send)
            headers = scope.get("headers", [])
            named = dict(headers)
            encoding = named.get(b"content-encoding", b"identity").strip().lower()
            if encoding not in (b"identity", b""):  # its bytes would be read as the JSON text itself
                return await error_response(415, f"Content-Encoding {encoding.decode('latin-1')[:20]} is not supported: send the JSON "
                                                 "body uncompressed (it is at most a few hundred bytes)")(scope, receive, send)
            declared = named.get(b"content-type", b"").split(b";")[0].strip().lower()  # b"": none
            if declared != b"application/json" and not (declared.startswith(b"application/") and declared.endswith(b"+json")):
                if self.allowed(scope):
                    scope = {**scope, "headers": [*((k, v) for k, v in headers if k != b"content-type"),
                                                  (b"content-type", b"application/json")]}
                elif declared:
                    scope = {**scope, CROSS_SITE: True}
                else:  # no type (a fetch of a Blob): labelled, as some FastAPI versions read an unlabelled body as JSON
                    scope = {**scope, CROSS_SITE: True,
                             "headers": [*headers, (b"content-type", b"application/octet-stream")]}
        await self.app(scope, receive, send)

    def allowed(self, scope) -> bool:
        """Whether the request is not cross-site: no Origin (curl, scripts) and no
        `Sec-Fetch-Site: cross-site`, the server's own origin (a page served by --web), an
        origin `cors_origins` allows, or `Sec-Fetch-Site: same-origin`. That last is a page served
        by this server behind a proxy that terminates TLS: its Origin is https://host while the
        server sees http, yet the browser, which no page can make lie in Sec-Fetch-* headers,
        says the request comes from the page's own origin. `same-site` is another origin of the
        same site (another port or subdomain): it must match as an Origin would."""
        if "*" in self.cors_origins:
            return True
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1").strip()
        if origin and canonical_origin(origin.rstrip("/")) in self.cors_origins:
            return True
        site = headers.get(b"sec-fetch-site", b"").strip().lower()
        if site == b"cross-site":  # the browser says so, Origin or not
            return False
        if site == b"same-origin":  # the browser says so, whatever scheme the server sees
            return True
        if not origin:
            return True
        own = _origin_key(f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'').decode('latin-1').strip()}")
        return own is not None and _origin_key(origin) == own


CROSS_SITE = "artgen.cross_site"  # scope key: a POST from a page on an origin not allowed, body not read as JSON
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin_key(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of scheme://host[:port], the default port filled in; None if unreadable
    ("null", a path, a bad port)."""
    if not ORIGIN.fullmatch(origin):
        return None
    try:
        url = urlsplit(origin.lower())
        port = url.port
    except ValueError:
        return None
    if not url.hostname:
        return None
    return url.scheme, url.hostname, port if port is not None else DEFAULT_PORTS.get(url.scheme)


def canonical_origin(origin: str) -> str | None:
    """scheme://host[:port] as a browser's Origin header spells it: lower case, the scheme's
    default port left out (`HTTP://LocalHost:80` -> `http://localhost`); None if unreadable."""
    key = _origin_key(origin)
    if key is None:
        return None
    scheme, host, port = key
    try:  # an IP address as browsers write it: [0:0:0:0:0:0:0:1] is [::1]
        host = ipaddress.ip_address(host).compressed
    except ValueError:
        try:  # a name with letters outside ASCII as browsers send it: bücher.example is xn--bcher-kva.example
            host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError:
            return None
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"{scheme}://{host}" if port is None or port == DEFAULT_PORTS.get(scheme) else f"{scheme}://{host}:{port}"


class Crash:
    """ASGI middleware: an exception nothing else handled is a JSON 500, logged in full here.
    Starlette answers it in ServerErrorMiddleware, outside every middleware of the app, so the
    500 would miss the CORS headers and a page would see a CORS failure; under Cors it gets them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # too late for a JSON body: Starlette's handler logs it and the server drops the connection
                raise
            log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            await error_response(500, CRASH)(scope, receive, send)


class TrailingSlash:
    """ASGI middleware: a route's path with one trailing slash (`POST /v1/images/`) is served as
    the route, where Starlette would answer a bare 307 that many clients do not follow with a POST."""

    def __init__(self, app, routes: list):
        self.app, self.routes = app, routes  # the app's route list, read per request

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            if any(getattr(r, "path", None) == route_path(scope)[:-1] for r in self.routes if not isinstance(r, Mount)):
                scope = {**scope, "path": path[:-1]}
                if scope.get("raw_path", b"").endswith(b"/"):
                    scope["raw_path"] = scope["raw_path"][:-1]
        await self.app(scope, receive, send)


class WebMethods:
    """ASGI middleware under `--web`, whose folder is mounted at / and so matches every path:
    Starlette would hand it an API call with the wrong method (GET /v1/images: a 404 "no such
    page") and a POST anywhere else (a 405 for a page that does not exist). Here an API path with
    another method is a 405 with Allow, and any method but GET / HEAD off the API a 404."""

    def __init__(self, app, routes: list):
        self.app, self.routes = app, routes  # the app's route list, read per request

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path, method = route_path(scope), scope["method"]
            methods = path_methods(self.routes, path)
            if methods and method not in methods:
                return await error_response(405, f"{method} is not allowed on {path[:80]}: see /openapi.json",
                                            headers={"Allow": ", ".join(sorted(methods))})(scope, receive, send)
            if not methods and method not in ("GET", "HEAD"):
                return await error_response(404, no_such_page(path))(scope, receive, send)
        await self.app(scope, receive, send)


def path_methods(routes: list, path: str) -> set[str]:
    """Every method the app's routes (a route per method) take on `path`; none off the API."""
    return {m for r in routes if not isinstance(r, Mount) and getattr(r, "path", None) == path
            for m in (getattr(r, "methods", None) or ())}


def no_such_page(path: str) -> str:
    return (f"no such page {path[:80]!r}: the API is POST /v1/images, GET /v1/model, GET /healthz "
            "(schema at /openapi.json, docs at /docs)")


def route_path(scope) -> str:
    """The request's path as the app's routes spell it: without the root_path a proxy mounts it under."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if path.startswith(root) else path


class Cors(CORSMiddleware):
    """Starlette's CORS middleware, with a refused preflight as the API's JSON error."""

    def preflight_response(self, request_headers):
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        reason = response.body.decode()  # "Disallowed CORS origin, method, headers"
        if "origin" in reason:
            fix = "start the server with --cors-origin naming this page's origin"
        else:  # the origin is allowed: the request asks for more than the API takes
            fix = ("call the API with GET, HEAD or POST and no request header but Content-Type (got "
                   f"{request_headers.get('access-control-request-method', '')[:20]!r} with headers "
                   f"{request_headers.get('access-control-request-headers', '')[:80]!r})")
        return error_response(response.status_code, f"CORS preflight refused ({reason}): {fix}", headers=headers)


def load_runtime(bundle: str | Path, threads: int | None = None) -> Runtime:
    try:
        return Runtime(bundle, threads=threads)
    except BundleError as e:
        raise ArtgenError(str(e)) from None


def create_app(runtime_or_bundle: Runtime | str | Path | None = None, config: ServeConfig | None = None,
               static_dir: Path | None = None) -> FastAPI:
    """The ASGI app serving one bundle (a loaded Runtime, or a bundle folder; None: the shipped
    tiny model). `static_dir`, when given, is served at / (index.html for a folder)."""
    config = config or ServeConfig()
    if static_dir is not None and not Path(static_dir).is_dir():
        raise ArtgenError(f"the web folder {static_dir} does not exist: build it with `artgen web` or leave --web out")
    if runtime_or_bundle is None or isinstance(runtime_or_bundle, (str, Path)):
        rt = load_runtime(SHIPPED_MODEL if runtime_or_bundle is None else runtime_or_bundle, config.threads)
    else:  # a Runtime, or anything with its meta, generator, tokenizer, sample_codes and decode
        rt = runtime_or_bundle
    batcher = Batcher(rt, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.close()

    # FastAPI's /docs and /redoc load their scripts from a CDN: blank pages offline. FastAPIOffline is FastAPI
    # with the same pages over its own copies of those files, served at DOCS_ASSETS (before --web's mount at /)
    app = FastAPIOffline(title="artgen", version=rt.meta.get("producer", "artgen").split()[-1], lifespan=lifespan,
                         description="Abstract art from a few adjectives: the artgen ONNX runtime over HTTP.",
                         redirect_slashes=False,  # TrailingSlash serves the slash forms; anything else is a JSON 404
                         static_url=DOCS_ASSETS)
    app.state.runtime, app.state.batcher, app.state.config = rt, batcher, config
    app.add_middleware(JsonBody, cors_origins=config.cors_origins)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes, timeout_s=config.body_timeout_s)
    if static_dir is not None:
        app.add_middleware(WebMethods, routes=app.router.routes)
    app.add_middleware(TrailingSlash, routes=app.router.routes)
    app.add_middleware(Crash)  # under Cors: a 500 carries the CORS headers as every other answer does
    if config.cors_origins:  # outermost: preflights are answered first, and errors carry the CORS headers too
        app.add_middleware(Cors, allow_origins=config.cors_origins, allow_methods=("GET", "HEAD", "POST"),
                           allow_headers=("Content-Type",), expose_headers=EXPOSED_HEADERS,
                           allow_private_network=True)  # a page on an allowed origin may call a server on this machine or LAN

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, message = validation_message(exc.errors()[0])
        if status == 400 and request.scope.get(CROSS_SITE):  # its body was not read as JSON: that is the problem to name
            message = (f"a page on another origin ({request.headers.get('origin', 'a cross-site page')[:80]}) must send "
                       "Content-Type: application/json and be allowed with --cors-origin: until then its body is not read "
                       f"as JSON (a JSON object such as {EXAMPLE})")
        return error_response(status, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error_response(404, no_such_page(request.url.path))
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # FastAPI's, naming no fix
            return error_response(400, unreadable_body(exc.__cause__))
        if exc.status_code == 405:  # Allow: every method of the path (a route per method: GET's answer would omit HEAD)
            methods = path_methods(app.router.routes, route_path(request.scope))
            headers = {**(getattr(exc, "headers", None) or {}), **({"Allow": ", ".join(sorted(methods))} if methods else {})}
            return error_response(405, f"{request.method} is not allowed on {request.url.path[:80]}: see /openapi.json",
                                  headers=headers)
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)  # the rest: a failure in Cors itself, or after a response has begun
    async def _crash(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, CRASH)

    error_docs = {s: {"description": d, "content": {"application/json": {"example": {"error": "..."}}}}
                  for s, d in ((400, "body is not a JSON object"), (413, "body too large"),
                               (422, "a field breaks the schema or the bundle's limits"),
                               (503, "queue full: retry after Retry-After seconds"), (504, "timed out"))}

    @app.post("/v1/images", summary="Generate images from a prompt",
              responses={200: {"content": {"image/png": {}, "application/json": {}},
                               "description": "a PNG grid of n images, or JSON with base64 PNGs"}, **error_docs})
    async def images(req: Annotated[ImageRequest, Body(openapi_examples=DOCS_EXAMPLES)], request: Request):
        if req.seed is not None and req.seed + req.n - 1 > MAX_SEED:
            return error_response(422, f"seed {req.seed} with n={req.n} goes past the largest seed {MAX_SEED} "
                                       f"(image i is drawn with seed + i): the largest seed for n={req.n} is {MAX_SEED - req.n + 1}")
        try:
            sampling = resolve_sampling(rt, req)
        except BundleError as e:
            return error_response(422, str(e))
        seed = req.seed if req.seed is not None else secrets.randbelow(MAX_SEED - req.n + 2)  # seed + n - 1 <= MAX_SEED
        seeds = [seed + i for i in range(req.n)]

        async def gone():  # returns when the client hangs up (the body is read: nothing else arrives)
            while (await request.receive())["type"] != "http.disconnect":
                await asyncio.sleep(0.05)  # a server that answers at once with empty bodies is polled, not spun on

        try:
            out = await batcher.submit(req.prompt, seeds, sampling, gone)
        except asyncio.CancelledError:  # the server is stopping and its grace period ran out (uvicorn cancels the handlers)
            return error_response(503, "the server is shutting down: retry in a moment",
                                  headers={"Retry-After": "1", "Connection": "close"})
        except ClientGone:  # no one reads it (nginx logs the case as 499, "client closed request")
            return error_response(499, "the client closed the connection before its images were drawn")
        except QueueFull:
            return error_response(503, f"the server is busy ({config.queue} requests waiting): retry in a second",
                                  headers={"Retry-After": "1"})
        except asyncio.TimeoutError:
            return error_response(504, f"no image within {config.timeout_s:g} s (the server is busy): retry later or ask for fewer images")
        except BundleError as e:
            return error_response(422, str(e))
        except Exception:
            log.exception("generation failed for a request of %d image(s)", len(seeds))
            return error_response(500, "internal error while generating (logged on the server): try again, and report it if it persists")
        seed_header = {"X-Seeds": ",".join(map(str, seeds))}
        if req.format == "png":
            return Response(await asyncio.to_thread(grid_png, out), media_type="image/png", headers=seed_header)
        pngs = await asyncio.to_thread(lambda: [base64.b64encode(image_png(im)).decode("ascii") for im in out])
        return JSONResponse({"prompt": req.prompt, "seeds": seeds, "sampling": sampling.to_dict(rt),
                             "width": int(out.shape[2]), "height": int(out.shape[1]), "images": pngs},
                            headers=seed_header)

    @app.get("/v1/model", summary="The served bundle's public description")
    async def model():
        return model_card(rt, config, batcher.merge)

    @app.get("/healthz", summary="Liveness and queue depth")
    async def healthz():
        return {"status": "ok", "generator": rt.generator, "waiting": len(batcher.waiting), "queue": config.queue,
                "runtime_calls": batcher.runtime_calls, "images": batcher.images}

    for route in list(app.routes):  # HEAD on each GET route (uptime monitors, curl -I): its headers, no body
        if isinstance(route, APIRoute) and "GET" in route.methods:
            app.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)

    if static_dir is not None:
        app.mount("/", StaticFiles(directory=str(static_dir), html=True), name="web")
    return app


def serve(bundle: str | Path | None, config: ServeConfig, host: str = "127.0.0.1", port: int = 8000,
          static_dir: Path | None = None, log_level: str = "info", keep_alive_s: float = KEEP_ALIVE_S) -> None:
    """Load the bundle and serve it with uvicorn until interrupted: on Ctrl-C / SIGTERM the
    requests already taken get up to `timeout_s` (+1) to finish, the ones still waiting then a
    503 (a second Ctrl-C stops at once). An idle connection is kept `keep_alive_s`: longer than
    the proxies in front of it keep theirs idle (nginx, ALB: 60 s), else a proxy may send a POST
    on a connection the server is closing and answer its client 502."""
    import socket

    import uvicorn

    app = create_app(bundle, config, static_dir=static_dir)
    try:  # a taken port as one line, not uvicorn's log and exit status 1
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise ArtgenError(f"cannot listen on {host}:{port} ({e.strerror}): pick another --port or --host") from None
    rt = app.state.runtime
    print(f"serving the {rt.meta.get('precision', 'fp32')} {rt.meta.get('encoder', '?')} {rt.generator} bundle "
          f"{rt.bundle} at http://{host}:{port} (POST /v1/images, docs at /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=math.ceil(config.timeout_s) + 1,
                timeout_keep_alive=keep_alive_s)
