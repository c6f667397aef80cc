"""`artgen serve`: the HTTP API over the shipped tiny bundle, every status it answers, and
request merging that never changes an image."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import ROOT, assert_one_line_error, run_cli

from artgen.app.serve import EXAMPLE, MAX_SEED, ServeConfig, batch_invariant, create_app, grid_png, image_png
from artgen.errors import ArtgenError
from artgen.workspace import SHIPPED_MODEL
from export.runtime import Runtime, save_png

PROMPT = "warm, chaotic, vivid"


@pytest.fixture(scope="module")
def rt():
    return Runtime(SHIPPED_MODEL, threads=1)


@pytest.fixture(scope="module")
def client(rt):
    with TestClient(create_app(rt, ServeConfig())) as c:
        yield c


class Gated:
    """The real runtime, except that each call first waits for `gate`: requests pile up in the
    queue meanwhile, so a test decides what the worker finds there."""

    def __init__(self, rt):
        self.rt, self.gate, self.entered, self.calls = rt, threading.Event(), threading.Event(), []

    def __getattr__(self, name):
        return getattr(self.rt, name)

    def sample_codes(self, prompts, **kw):
        self.entered.set()
        assert self.gate.wait(60)
        self.calls.append(list(zip(prompts, kw["seeds"])))
        return self.rt.sample_codes(prompts, **kw)


class FakeRuntime(Gated):
    """A batch-invariant stand-in (as an fp32 bundle is): image i is one grey level from its
    prompt and seed, 4x4 px. `fail` makes every call raise it."""

    generator = "masked"
    bundle = Path("/private/bundles/fake")

    def __init__(self, fail: Exception | None = None):
        super().__init__(None)
        self.gate.set()
        self.fail = fail
        self.meta = {"encoder": "fake", "precision": "fp32", "int8_graphs": [], "image_size": 4, "grid": 1,
                     "codebook_size": 512, "tokenizer": {"max_tokens": 48},
                     "sampling": {"steps": 8, "max_steps": 16, "guidance": 3.0, "temperature": 1.0},
                     "prompt_limits": {"max_chars": 200, "max_words": 16}}

    def __getattr__(self, name):
        raise AttributeError(name)

    def tokenizer(self, prompts):
        return None

    def sample_codes(self, prompts, **kw):
        self.entered.set()
        assert self.gate.wait(60)
        if self.fail is not None:
            raise self.fail
        self.calls.append(list(zip(prompts, kw["seeds"])))
        return np.array([[[(7 * s + len(p)) % 256]] for p, s in zip(prompts, kw["seeds"])])  # (B, 1, 1)

    def decode(self, codes):
        return np.broadcast_to(codes.reshape(-1, 1, 1, 1).astype(np.uint8), (len(codes), 4, 4, 3)).copy()  # (B, 4, 4, 3)


def post(c, **body):
    return c.post("/v1/images", json={"prompt": PROMPT, **body})


def wait_until(condition, timeout=30.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_png_is_the_grid_of_the_runtimes_images(client, rt, tmp_path):
    from PIL import Image

    from artgen.images import image_grid

    r = post(client, n=3, seed=5)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-seeds"] == "5,6,7"
    images = rt.generate([PROMPT] * 3, seed=5)
    # the layout of `artgen generate -n 3 --seed 5` with the shipped model
    grid = Image.fromarray(image_grid(images, columns=3))
    grid.resize((grid.width * 2, grid.height * 2), Image.NEAREST).save(tmp_path / "cli.png", format="PNG")
    assert r.content == (tmp_path / "cli.png").read_bytes() == grid_png(images)


def test_json_holds_each_image_as_save_png_writes_it(client, rt, tmp_path):
    r = post(client, n=2, seed=11, format="json", guidance=2.0, temperature=0.5, top_k=20)
    assert r.status_code == 200
    body = r.json()
    assert body["seeds"] == [11, 12] and body["prompt"] == PROMPT
    assert body["sampling"] == {"generator": "ar", "steps": 256, "guidance": 2.0, "temperature": 0.5, "top_k": 20,
                                "candidates": rt.meta["sampling"].get("candidates", 1)}  # the bundle's default
    images = rt.generate([PROMPT] * 2, seed=11, guidance=2.0, temperature=0.5, top_k=20)
    for i, b64 in enumerate(body["images"]):
        save_png(images[i:i + 1], tmp_path / f"{i}.png")
        assert base64.b64decode(b64) == (tmp_path / f"{i}.png").read_bytes()


def test_a_vanishing_temperature_samples_the_most_likely_code(client, rt):
    # 1e-320 is 0 in float32: the logits divided by it were inf and nan, and every code came out 0
    greedy = rt.sample_codes([PROMPT], seed=3, temperature=0.0)
    for t in (5e-324, 1e-320, 1e-40, 1e-7):
        assert np.array_equal(rt.sample_codes([PROMPT], seed=3, temperature=t), greedy), t
    r = post(client, seed=3, temperature=1e-320, format="json")
    assert r.status_code == 200 and r.json()["sampling"]["temperature"] == 0.0  # the temperature it ran with
    assert r.json()["images"] == post(client, seed=3, temperature=0.0, format="json").json()["images"]
    from artgen.sampling import MIN_TEMPERATURE
    from export.runtime import MIN_TEMPERATURE as RUNTIME_MIN_TEMPERATURE

    assert MIN_TEMPERATURE == RUNTIME_MIN_TEMPERATURE == 1e-6  # PyTorch and the runtime draw alike


def test_an_unseeded_request_says_which_seed_it_drew(client):
    body = post(client, format="json").json()
    again = post(client, format="json", seed=body["seeds"][0]).json()
    assert again["images"] == body["images"]


@pytest.mark.parametrize("body, status, needle", [
    ({"prompt": ""}, 422, "the prompt is empty"),
    ({"prompt": "   "}, 422, "the prompt is empty"),
    ({"prompt": "warm " * 41}, 422, "limit 200"),
    ({"prompt": PROMPT, "n": 0}, 422, "n: input should be greater than or equal to 1"),
    ({"prompt": PROMPT, "n": 17}, 422, "n: input should be less than or equal to 16"),
    ({"prompt": PROMPT, "n": "2"}, 422, "n: input should be a valid integer"),
    ({"prompt": PROMPT, "n": 2.5}, 422, "n: input should be a valid integer"),
    ({"prompt": 3}, 422, "prompt: input should be a valid string"),
    ({"prompt": PROMPT, "seed": -1}, 422, "seed: input should be greater than or equal to 0"),
    ({"prompt": PROMPT, "seed": 2**32 - 1, "n": 2}, 422, "the largest seed for n=2 is 4294967294"),
    ({"prompt": PROMPT, "style": "cubist"}, 422, "unknown field 'style'"),
    ({"prompt": PROMPT, "format": "gif"}, 422, "'png' or 'json'"),
    ({"prompt": PROMPT, "steps": 8}, 422, "leave steps out"),
    ({"prompt": PROMPT, "top_k": 513}, 422, "top_k must be between 0 and 512"),
    ({"n": 2}, 422, "prompt is missing"),
])
def test_bad_fields_are_one_line_naming_the_fix(client, body, status, needle):
    r = client.post("/v1/images", json=body)
    assert r.status_code == status
    assert list(r.json()) == ["error"] and needle in r.json()["error"], r.text
    assert "\n" not in r.json()["error"] and "Traceback" not in r.text


@pytest.mark.parametrize("raw, status, needle", [
    (b'{"prompt": "warm", "guidance": NaN}', 422, "guidance must be a finite number (got nan)"),
    (b'{"prompt": "warm", "temperature": -Infinity}', 422, "temperature must be a finite number"),
    (b'{"prompt": "warm", ', 400, "not valid JSON"),
    (b'["warm"]', 400, "must be a JSON object"),
    (b"", 400, "must be a JSON object"),
    (b'{"prompt": "warm \\ud83d"}', 422, "the prompt is not valid Unicode text"),  # an emoji cut in half
    (b'{"prompt": "warm caf\xe9"}', 400, "not UTF-8 text (byte 0xe9 at offset 20)"),  # Latin-1, as some clients send
    (b'{"prompt": "warm", "n": ' + b"1" * 5000 + b"}", 400, "a number with too many digits"),
    (b'{"prompt": "warm", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested too deeply"),
])
def test_bodies_that_are_not_a_request(client, raw, status, needle):
    r = client.post("/v1/images", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status and list(r.json()) == ["error"] and needle in r.json()["error"], r.text
    assert "\n" not in r.json()["error"]


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None])
def test_a_json_body_is_read_whatever_its_content_type(content_type):
    # a page's fetch sends text/plain to skip the CORS preflight, `curl -d` a form's type, some clients none
    headers = {} if content_type is None else {"content-type": content_type}
    with TestClient(create_app(FakeRuntime())) as c:
        r = c.post("/v1/images", content=json.dumps({"prompt": PROMPT, "seed": 5, "n": 2}), headers=headers)
        assert r.status_code == 200 and r.headers["x-seeds"] == "5,6" and r.content == post(c, seed=5, n=2).content
        for raw, status, needle in ((b"prompt=warm&n=2", 400, "not valid JSON"), (b"", 400, "must be a JSON object"),
                                    (b'["warm"]', 400, "must be a JSON object"),
                                    (b'{"prompt": "warm", "style": "cubist"}', 422, "unknown field 'style'"),
                                    (b'{"prompt": "warm", "n": "2"}', 422, "n: input should be a valid integer"),
                                    (json.dumps({"prompt": "a" * 20000}).encode(), 413, "16384 bytes")):
            r = c.post("/v1/images", content=raw, headers=headers)
            assert r.status_code == status and list(r.json()) == ["error"] and needle in r.json()["error"], (raw, r.text)
            assert "\n" not in r.json()["error"] and (status != 400 or 'such as {"prompt": ' in r.json()["error"])


def test_parameters_in_the_query_string_are_a_400_naming_the_json_body():
    # `curl -X POST '.../v1/images?prompt=warm&n=2'`: the query was ignored and the answer spoke of the body alone
    rt = FakeRuntime()
    with TestClient(create_app(rt)) as c:
        for path in ("/v1/images?prompt=warm&n=2", "/v1/images/?n=2"):
            for kw in ({}, {"json": {"prompt": PROMPT}}, {"content": b"", "headers": {"content-type": "text/plain"}}):
                r = c.post(path, **kw)
                assert r.status_code == 400 and list(r.json()) == ["error"], (path, kw, r.text)
                error = r.json()["error"]
                assert "in a JSON body, not the query string" in error and EXAMPLE in error and "\n" not in error, error
        assert rt.calls == []  # a body that came too is not served without half its parameters
        assert post(c, seed=5).headers["x-seeds"] == "5"


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None])
def test_a_page_on_another_origin_cannot_post_without_a_preflight(content_type):
    # text/plain, the form types and none are "simple" requests a browser sends cross-site with no
    # preflight: read as JSON, any page a visitor opened could fill a localhost or LAN server's queue
    body, plain = json.dumps({"prompt": PROMPT, "seed": 5}), {} if content_type is None else {"content-type": content_type}
    evil = {**plain, "Origin": "https://evil.example"}
    rt = FakeRuntime()
    with TestClient(create_app(rt)) as c:
        for headers in (evil, {**plain, "Sec-Fetch-Site": "cross-site"}, {**plain, "Origin": "null"},
                        {**plain, "Origin": "http://testserver:8080"}, {**plain, "Origin": "https://testserver"}):
            r = c.post("/v1/images", content=body, headers=headers)
            assert r.status_code == 400 and list(r.json()) == ["error"], (headers, r.text)
            assert "application/json" in r.json()["error"] and "--cors-origin" in r.json()["error"], r.text
            assert "access-control-allow-origin" not in r.headers
        assert rt.calls == []  # the runtime never ran
        for headers in (plain, {**plain, "Origin": "http://testserver"}, {**plain, "Host": "art.lan:8000", "Origin": "http://art.lan:8000"},
                        {**plain, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}):  # curl, and a page served by --web
            r = c.post("/v1/images", content=body, headers=headers)
            assert r.status_code == 200 and r.headers["x-seeds"] == "5", (headers, r.text)
        assert len(rt.calls) == 4
        r = c.post("/v1/images", json={"prompt": PROMPT}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # JSON needs a preflight in a browser
    for origins in (("https://evil.example",), ("*",)):
        rt = FakeRuntime()
        with TestClient(create_app(rt, ServeConfig(cors_origins=origins))) as c:
            r = c.post("/v1/images", content=body, headers={**evil, "Sec-Fetch-Site": "cross-site"})
            assert r.status_code == 200 and r.headers["x-seeds"] == "5" and len(rt.calls) == 1, (origins, r.text)
            assert r.headers["access-control-allow-origin"] in ("https://evil.example", "*")
            r = c.post("/v1/images", content=body, headers={**plain, "Origin": "https://other.example"})
            assert r.status_code == (200 if origins == ("*",) else 400), (origins, r.text)


def test_a_page_behind_a_tls_proxy_may_post_to_its_own_server():
    # a proxy terminates TLS and forwards plain http: the page's Origin is https://example.com while the
    # server sees http://example.com, and only the browser's Sec-Fetch-Site says the page is its own
    proxied = {"Origin": "https://example.com", "Host": "example.com", "Content-Type": "text/plain;charset=UTF-8"}
    body = json.dumps({"prompt": PROMPT, "seed": 5, "n": 2})
    rt = FakeRuntime()
    with TestClient(create_app(rt)) as c:
        r = c.post("/v1/images", content=body, headers={**proxied, "Sec-Fetch-Site": "same-origin"})
        assert r.request.url.scheme == "http"
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-seeds"] == "5,6", r.text
        for site in (None, "same-site", "cross-site"):  # a browser too old to send it, another origin of the site, another site
            r = c.post("/v1/images", content=body, headers=proxied if site is None else {**proxied, "Sec-Fetch-Site": site})
            assert r.status_code == 400 and "--cors-origin" in r.json()["error"], (site, r.text)
        assert len(rt.calls) == 1


def test_a_big_body_is_413_and_unknown_pages_404(client):
    r = client.post("/v1/images", content=json.dumps({"prompt": "a" * 20000}), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "16384 bytes" in r.json()["error"]
    chunks = iter([b'{"prompt": "', b"a" * 10000, b"a" * 10000, b'"}'])  # no Content-Length: counted as it streams
    r = client.post("/v1/images", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.get("/v2/images")
    assert r.status_code == 404 and "POST /v1/images" in r.json()["error"]
    assert client.get("/v1/images").status_code == 405


def test_seeds_stay_within_the_largest_seed():
    with TestClient(create_app(FakeRuntime())) as c:
        r = post(c, seed=MAX_SEED - 1, n=2)
        assert r.status_code == 200 and r.headers["x-seeds"] == "4294967294,4294967295"
        assert post(c, seed=MAX_SEED).headers["x-seeds"] == "4294967295"
        # a drawn seed leaves room for all n: the largest draw still ends at MAX_SEED
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("artgen.app.serve.secrets.randbelow", lambda k: k - 1)
            seeds = post(c, n=16, format="json").json()["seeds"]
        assert seeds[-1] == MAX_SEED and seeds == list(range(MAX_SEED - 15, MAX_SEED + 1))


def test_a_wrong_method_names_every_allowed_one(client):
    r = client.post("/healthz")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD" and "not allowed" in r.json()["error"]
    r = client.get("/v1/images")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_head_is_answered_on_the_get_routes(client):
    for path in ("/healthz", "/v1/model", "/openapi.json"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == str(len(get.content))
    r = client.head("/v1/images")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/healthz"]) == set(paths["/v1/model"]) == {"get"}  # HEAD stays out of the schema


def test_a_trailing_slash_is_served_as_the_plain_path(client):
    r = client.post("/v1/images/", json={"prompt": PROMPT, "seed": 5}, follow_redirects=False)
    assert r.status_code == 200 and r.headers["x-seeds"] == "5" and r.content == post(client, seed=5).content
    assert client.get("/v1/model/", follow_redirects=False).json() == client.get("/v1/model").json()
    assert client.get("/healthz/", follow_redirects=False).json()["status"] == "ok"
    assert client.head("/healthz/", follow_redirects=False).status_code == 200
    assert client.get("/openapi.json/", follow_redirects=False).status_code == 200
    assert client.post("/v1/images/", json={"prompt": ""}, follow_redirects=False).status_code == 422
    for path in ("/v1/images//", "/v2/images/"):  # no bare 307 anywhere: a JSON 404 naming the API
        r = client.post(path, json={"prompt": PROMPT}, follow_redirects=False)
        assert r.status_code == 404 and "POST /v1/images" in r.json()["error"], path


def test_docs_work_offline(client):
    # FastAPI's /docs and /redoc load their scripts from a CDN: on a machine with no internet they were blank pages
    for path, count in (("/docs", 3), ("/redoc", 2)):  # Swagger UI: script, stylesheet, icon; ReDoc: script, icon
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert not re.search(r"(https?:)?//", page.text), page.text  # nothing from another host
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(assets) == count, assets
        for url in assets:
            r = client.get(url)
            assert r.status_code == 200 and r.content, url
        assert client.get(path + "/", follow_redirects=False).text == page.text
        head = client.head(path)
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(page.content))
    assert "'/openapi.json'" in client.get("/docs").text  # the schema it renders is the public one
    assert set(client.get("/openapi.json").json()["paths"]) == {"/v1/images", "/v1/model", "/healthz"}


PREFLIGHT = {"Origin": "https://art.example", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}


def test_cors_is_off_unless_asked_for(client):
    assert client.options("/v1/images", headers=PREFLIGHT).status_code == 405
    r = post(client, seed=0, n=1)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_origins_may_call_the_api():
    config = ServeConfig(cors_origins=("https://art.example,http://localhost:3000/", "https://other.example"))
    assert config.cors_origins == ("https://art.example", "http://localhost:3000", "https://other.example")
    with TestClient(create_app(FakeRuntime(), config)) as c:
        r = c.options("/v1/images", headers=PREFLIGHT)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://art.example"
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "content-type" in r.headers["access-control-allow-headers"].lower()
        r = c.post("/v1/images", json={"prompt": PROMPT, "seed": 3}, headers={"Origin": "https://art.example"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://art.example"
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"x-seeds", "retry-after"} <= exposed
        r = c.post("/v1/images", json={"prompt": ""}, headers={"Origin": "https://art.example"})
        assert r.status_code == 422 and r.headers["access-control-allow-origin"] == "https://art.example"  # errors too
        r = c.options("/v1/images", headers={**PREFLIGHT, "Origin": "https://evil.example"})
        assert r.status_code == 400 and list(r.json()) == ["error"] and "--cors-origin" in r.json()["error"]
        r = c.post("/v1/images", json={"prompt": PROMPT}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        # an allowed page asking for more than the API takes is told that, not to allow its origin again
        r = c.options("/v1/images", headers={**PREFLIGHT, "Access-Control-Request-Headers": "content-type, x-request-id"})
        assert r.status_code == 400 and "Content-Type" in r.json()["error"] and "--cors-origin" not in r.json()["error"]
        # Chrome's preflight from a public page to a server on this machine or the LAN (Private Network Access)
        r = c.options("/v1/images", headers={**PREFLIGHT, "Access-Control-Request-Private-Network": "true"})
        assert r.status_code == 200 and r.headers["access-control-allow-private-network"] == "true"
    with TestClient(create_app(FakeRuntime(), ServeConfig(cors_origins=("*",)))) as c:
        r = c.options("/healthz", headers={**PREFLIGHT, "Access-Control-Request-Method": "GET"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_cors_origins_are_matched_as_browsers_spell_them():
    """A browser's Origin is lower case without the scheme's default port: an origin given as
    http://LocalHost:3000 or http://localhost:80 must still let those pages in."""
    config = ServeConfig(cors_origins=("http://LocalHost:3000", "http://localhost:80", "HTTPS://Art.Example:443", "http://[::1]:8080",
                                       "http://[0:0:0:0:0:0:0:1]:9000", "https://Bücher.example"))
    assert config.cors_origins == ("http://localhost:3000", "http://localhost", "https://art.example", "http://[::1]:8080",
                                   "http://[::1]:9000", "https://xn--bcher-kva.example")
    with TestClient(create_app(FakeRuntime(), config)) as c:
        for origin in ("http://localhost:3000", "http://localhost", "https://art.example"):
            r = c.options("/v1/images", headers={**PREFLIGHT, "Origin": origin})
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
            r = c.post("/v1/images", content=json.dumps({"prompt": PROMPT, "seed": 1}),
                       headers={"Origin": origin, "Content-Type": "text/plain"})  # read as JSON only from an allowed page
            assert r.status_code == 200, r.text


class BrokenTokenizer(FakeRuntime):
    """A runtime whose tokenizer fails outside any handler of the route: the prompt "boom" escapes as a crash."""

    def tokenizer(self, prompts):
        if prompts == ["boom"]:
            raise RuntimeError("sentencepiece failed in /private/bundles/fake/tokenizer/spm.model")


def test_every_error_carries_the_cors_headers_of_a_success(caplog):
    # Starlette answers an unhandled exception outside every middleware: its 500 had no CORS headers,
    # so a page on an allowed origin saw a CORS failure instead of the JSON error
    def cors(r):
        return {k: v for k, v in r.headers.items() if k.startswith("access-control-") or k == "vary"}

    for origins, origin in ((("https://art.example",), "https://art.example"), (("*",), "https://any.example")):
        with TestClient(create_app(BrokenTokenizer(), ServeConfig(cors_origins=origins)),
                        raise_server_exceptions=False) as c:
            page = {"Origin": origin}
            ok = c.post("/v1/images", json={"prompt": PROMPT}, headers=page)
            assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] in (origin, "*")
            r = c.post("/v1/images", json={"prompt": "boom"}, headers=page)
            assert r.status_code == 500 and list(r.json()) == ["error"] and "private" not in r.text
            assert cors(r) == cors(ok), origins
            assert "/private/bundles/fake/tokenizer/spm.model" in caplog.text  # logged in full on the server
            for r in (c.post("/v1/images", content=b"x" * 20000, headers=page), c.get("/v2", headers=page),
                      c.get("/v1/images", headers=page), c.post("/v1/images", content=b"{", headers=page)):
                assert r.status_code in (400, 404, 405, 413) and cors(r) == cors(ok), r.text
            assert post(c).status_code == 200  # still serving
        if origins != ("*",):
            with TestClient(create_app(BrokenTokenizer(), ServeConfig(cors_origins=origins)),
                        raise_server_exceptions=False) as c:
                r = c.post("/v1/images", json={"prompt": "boom"}, headers={"Origin": "https://evil.example"})
                assert r.status_code == 500 and "access-control-allow-origin" not in r.headers


def test_model_health_and_schema(client):
    meta = json.loads((SHIPPED_MODEL / "bundle.json").read_text())
    r = client.get("/v1/model")
    card = r.json()
    assert {k: card[k] for k in ("encoder", "generator", "weights", "precision", "image_size", "grid", "codebook_size")} == \
        {k: meta[k] for k in ("encoder", "generator", "weights", "precision", "image_size", "grid", "codebook_size")}
    assert card["vocabulary"] == meta["vocabulary"]
    assert card["prompt_limits"] == {**meta["prompt_limits"], "max_tokens": meta["tokenizer"]["max_tokens"]}
    assert card["sampling"]["guidance"] == meta["sampling"]["guidance"]
    assert card["serving"]["max_images"] == 16 and card["serving"]["merges_requests"] is False  # int8: see below
    assert str(SHIPPED_MODEL) not in r.text and "/" + "work" not in r.text
    assert client.get("/healthz").json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["ImageRequest"]
    assert request["additionalProperties"] is False and request["required"] == ["prompt"]


def test_requests_waiting_together_get_the_images_they_get_alone(rt):
    """The shipped bundle is int8: merged rows would share activation scales, so the default
    "exact" batching runs each request as its own call; the responses equal the runtime's."""
    gated = Gated(rt)
    assert not batch_invariant(rt)
    with TestClient(create_app(gated, ServeConfig(batch_window_ms=200))) as c, ThreadPoolExecutor(3) as pool:
        first = pool.submit(post, c, seed=1, format="json")
        assert gated.entered.wait(30)
        waiting = [pool.submit(post, c, seed=s, n=2, format="json") for s in (20, 30)]
        wait_until(lambda: len(c.app.state.batcher.waiting) == 2)
        gated.gate.set()
        bodies = [f.result().json() for f in [first, *waiting]]
        assert [len(call) for call in gated.calls] == [1, 2, 2]
        for body in bodies:
            alone = post(c, seed=body["seeds"][0], n=len(body["seeds"]), format="json").json()
            assert alone["images"] == body["images"]
    images = rt.generate([PROMPT] * 2, seed=20)
    assert [base64.b64decode(b) for b in bodies[1]["images"]] == [image_png(im) for im in images]


def test_merged_requests_are_split_back_exactly():
    """A batch-invariant runtime (as an fp32 bundle is) gets the waiting requests with equal
    settings as one call, up to --max-batch images; each response equals the request alone."""
    fake = FakeRuntime()
    fake.gate.clear()
    with TestClient(create_app(fake, ServeConfig(max_batch=5))) as c, ThreadPoolExecutor(6) as pool:
        first = pool.submit(post, c, seed=0, format="json")
        assert fake.entered.wait(30)
        waiting = []
        for kw in ({"seed": 10, "n": 2}, {"seed": 20, "n": 3, "temperature": 0.5}, {"seed": 30, "n": 3},
                   {"seed": 40, "n": 1}):  # one after another: the queue keeps this order
            waiting.append(pool.submit(post, c, **kw, format="json"))
            wait_until(lambda: len(c.app.state.batcher.waiting) == len(waiting))
        fake.gate.set()
        bodies = [f.result().json() for f in [first, *waiting]]
        # seeds 10-11 and 30-32 share settings and fit in 5; the temperature-0.5 request runs apart;
        # 40 no longer fits beside them
        assert [[s for _, s in call] for call in fake.calls] == [[0], [10, 11, 30, 31, 32], [20, 21, 22], [40]]
        assert c.app.state.batcher.calls[1] == (2, 5)
        for body in bodies:
            alone = post(c, seed=body["seeds"][0], n=len(body["seeds"]), format="json",
                         temperature=body["sampling"]["temperature"]).json()
            assert alone["images"] == body["images"]


def test_merging_an_int8_bundle_is_asked_for_and_split_back_exactly(rt):
    """--batching merge runs waiting requests as one call even on the int8 bundle; each request
    gets its own rows of that call (which may differ from the request alone)."""
    gated = Gated(rt)
    with TestClient(create_app(gated, ServeConfig(batching="merge"))) as c, ThreadPoolExecutor(3) as pool:
        first = pool.submit(post, c, seed=1)
        assert gated.entered.wait(30)
        waiting = []
        for p, s in (("cool, calm", 5), ("dark, dense, geometric", 9)):
            waiting.append(pool.submit(post, c, prompt=p, seed=s, format="json"))
            wait_until(lambda: len(c.app.state.batcher.waiting) == len(waiting))
        gated.gate.set()
        assert first.result().status_code == 200
        bodies = [f.result().json() for f in waiting]
    assert gated.calls[1] == [("cool, calm", 5), ("dark, dense, geometric", 9)]
    merged = rt.decode(rt.sample_codes(["cool, calm", "dark, dense, geometric"], seeds=[5, 9], merge=True))
    assert [base64.b64decode(b["images"][0]) for b in bodies] == [image_png(im) for im in merged]


def test_a_full_queue_is_503_with_retry_after():
    fake = FakeRuntime()
    fake.gate.clear()
    with TestClient(create_app(fake, ServeConfig(queue=1))) as c, ThreadPoolExecutor(2) as pool:
        running = pool.submit(post, c, seed=0)
        assert fake.entered.wait(30)
        queued = pool.submit(post, c, seed=1)
        wait_until(lambda: len(c.app.state.batcher.waiting) == 1)
        r = post(c, seed=2)
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        fake.gate.set()
        assert running.result().status_code == queued.result().status_code == 200
        assert post(c, seed=2).status_code == 200


def test_a_slow_request_is_504_and_leaves_the_queue():
    fake = FakeRuntime()
    fake.gate.clear()
    with TestClient(create_app(fake, ServeConfig(timeout_s=0.2))) as c:
        r = post(c)
        assert r.status_code == 504 and list(r.json()) == ["error"] and "0.2 s" in r.json()["error"]
        r = post(c)  # waits behind the stuck call, times out in the queue
        assert r.status_code == 504 and not c.app.state.batcher.waiting
        fake.gate.set()
        wait_until(lambda: len(fake.calls) == 1)  # the queued one was dropped, not run
        time.sleep(0.05)
        assert len(fake.calls) == 1


def test_a_request_whose_client_hung_up_leaves_the_queue_undrawn():
    import asyncio

    fake = FakeRuntime()
    fake.gate.clear()
    app = create_app(fake, ServeConfig())

    async def call(body: dict, hang_up: asyncio.Event | None = None) -> int:
        """POST body straight to the ASGI app; the client hangs up when hang_up is set."""
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/v1/images", "raw_path": b"/v1/images", "root_path": "", "query_string": b"",
                 "headers": [(b"content-type", b"application/json")], "client": ("t", 1), "server": ("t", 80)}
        messages = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
        sent = []

        async def receive():
            if messages:
                return messages.pop(0)
            await (hang_up or asyncio.Event()).wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"]

    async def main():
        running = asyncio.ensure_future(call({"prompt": "first", "seed": 1}))
        while not fake.entered.is_set():  # the worker is stuck in its runtime call
            await asyncio.sleep(0.005)
        hang_up = asyncio.Event()
        left = asyncio.ensure_future(call({"prompt": "left", "seed": 2}, hang_up))
        while not app.state.batcher.waiting:
            await asyncio.sleep(0.005)
        hang_up.set()
        try:  # answered at once, not after the call ahead of it
            assert await asyncio.wait_for(left, 5) == 499 and not app.state.batcher.waiting
        finally:
            fake.gate.set()
        assert await running == 200
        assert await call({"prompt": "next", "seed": 3}) == 200

    asyncio.run(main())
    assert fake.calls == [[("first", 1)], [("next", 3)]]  # the request nobody waits for was never drawn


def test_a_crash_is_500_without_internals(caplog):
    fake = FakeRuntime(fail=RuntimeError("onnxruntime failed in /private/bundles/fake/ar_step.onnx"))
    with TestClient(create_app(fake, ServeConfig()), raise_server_exceptions=False) as c:
        r = post(c)
        assert r.status_code == 500 and list(r.json()) == ["error"]
        assert "private" not in r.text and "onnx" not in r.text and "Traceback" not in r.text
        assert "/private/bundles/fake/ar_step.onnx" in caplog.text  # the detail is in the server log
        fake.fail = None
        assert post(c).status_code == 200  # the worker keeps serving


def test_masked_bundles_take_steps_and_refuse_top_k():
    with TestClient(create_app(FakeRuntime())) as c:
        assert post(c, steps=1, format="json").json()["sampling"]["steps"] == 1
        assert post(c, format="json").json()["sampling"] == {"generator": "masked", "steps": 8, "guidance": 3.0,
                                                              "temperature": 1.0, "top_k": None}
        assert "steps must be between 1 and 16" in post(c, steps=17).json()["error"]
        assert "top_k is for autoregressive bundles" in post(c, top_k=5).json()["error"]


def test_a_web_folder_is_served_at_the_root(rt, tmp_path):
    (tmp_path / "index.html").write_text("<h1>artgen</h1>")
    with TestClient(create_app(rt, ServeConfig(), static_dir=tmp_path)) as c:
        assert c.get("/").text == "<h1>artgen</h1>"
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/healthz/").json()["status"] == "ok"  # not a file of the folder
        assert c.get("/missing.js").status_code == 404
        assert c.get("/docs").status_code == c.get("/docs/assets/swagger-ui.css").status_code == 200  # not the folder's
        # the folder at / matches every path: an API call with the wrong method is still a 405, a POST elsewhere a 404
        for method in ("GET", "PUT", "DELETE"):
            r = c.request(method, "/v1/images")
            assert r.status_code == 405 and r.headers["allow"] == "POST" and "not allowed" in r.json()["error"], method
        r = c.post("/healthz")
        assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
        r = c.post("/nope", json={"prompt": PROMPT})
        assert r.status_code == 404 and "no such page '/nope'" in r.json()["error"]
        assert c.post("/v1/images/", json={"prompt": PROMPT, "seed": 0}).status_code == 200


def test_a_compressed_body_is_415_naming_the_fix(client):
    import gzip

    r = client.post("/v1/images", content=gzip.compress(json.dumps({"prompt": PROMPT}).encode()),
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 415 and "Content-Encoding gzip is not supported" in r.json()["error"]
    r = client.post("/v1/images", json={"prompt": PROMPT, "seed": 0}, headers={"Content-Encoding": "identity"})
    assert r.status_code == 200


def test_requests_still_waiting_when_the_server_stops_get_a_503():
    """uvicorn cancels the handlers its grace period did not see finish: they answer 503 with
    Retry-After, not a text/plain 500 and a traceback in the log."""
    import httpx
    import uvicorn

    fake = FakeRuntime()
    fake.gate.clear()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(fake, ServeConfig()), log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/images"
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(httpx.post, url, json={"prompt": PROMPT, "seed": 1}, timeout=30)
            assert fake.entered.wait(20)
            queued = pool.submit(httpx.post, url, json={"prompt": PROMPT, "seed": 2}, timeout=30)
            wait_until(lambda: len(server.server_state.tasks) == 2)
            server.should_exit = True
            for r in (queued.result(), running.result()):
                assert r.status_code == 503 and r.headers["retry-after"] == "1" and "shutting down" in r.json()["error"]
    finally:
        fake.gate.set()
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_the_cli_keep_alive_default_is_the_servers():
    import inspect

    from artgen.app.cli import serve_cmd
    from artgen.app.serve import KEEP_ALIVE_S

    assert inspect.signature(serve_cmd).parameters["keep_alive_s"].default.default == KEEP_ALIVE_S


@contextmanager
def uvicorn_server(app):
    """`app` served by uvicorn in a thread, on a free port: yields the port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive())
        assert server.started
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_a_body_that_stops_arriving_is_408_and_frees_the_connection():
    # uvicorn has no timeout on reading a body: a client that sent 10 of its 100 bytes held its request forever
    import httpx

    with pytest.raises(ArtgenError, match="body_timeout_s"):
        ServeConfig(body_timeout_s=0)
    fake = FakeRuntime()
    fake.gate.clear()
    with uvicorn_server(create_app(fake, ServeConfig(body_timeout_s=0.5))) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            conn.sendall(b"POST /v1/images HTTP/1.1\r\nHost: art\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                         b'{"prompt":')
            answer = b""
            while chunk := conn.recv(4096):  # until the server closes the connection; a timeout here fails the test
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower(), answer
        assert list(json.loads(body)) == ["error"] and "10 of 100 bytes" in json.loads(body)["error"]
        assert "send the whole body at once" in json.loads(body)["error"]
        # the wait for a hang-up while the images are drawn is no body read: it outlasts body_timeout_s
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(httpx.post, f"http://127.0.0.1:{port}/v1/images", json={"prompt": PROMPT, "seed": 4}, timeout=20)
            assert fake.entered.wait(20)
            time.sleep(1.0)  # twice body_timeout_s inside the runtime call
            fake.gate.set()
            r = running.result()
        assert r.status_code == 200 and r.headers["x-seeds"] == "4" and fake.calls == [[(PROMPT, 4)]]


@pytest.mark.parametrize("args, needle", [
    (["--batching", "fast"], "batching must be one of exact, merge"),
    (["--web", "no-such-folder"], "build it with `artgen web`"),
    (["--bundle", "tests"], "not an artgen bundle"),
    (["--cors-origin", "localhost:3000"], "--cors-origin 'localhost:3000' is not an origin"),
])
def test_serve_reports_bad_options_in_one_line(args, needle):
    assert_one_line_error(run_cli("serve", *args, timeout=60), needle)  # each fails before it listens


def test_serve_reports_a_taken_port_in_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert_one_line_error(run_cli("serve", "--port", str(s.getsockname()[1]), timeout=60), "pick another --port")


@pytest.mark.slow
def test_artgen_serve_answers_over_http(tmp_path):
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "artgen", "serve", "--port", str(port), "--threads", "1", "--body-timeout-s", "5"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < end, proc.stdout.read() if proc.poll() is not None else "no answer"
                time.sleep(0.2)
        r = httpx.post(f"{url}/v1/images", json={"prompt": PROMPT, "n": 2, "seed": 3}, timeout=60)
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n" and r.headers["x-seeds"] == "3,4"
        assert r.content == grid_png(Runtime(SHIPPED_MODEL).generate([PROMPT] * 2, seed=3))
        assert httpx.get(f"{url}/v1/model", timeout=10).json()["serving"]["body_timeout_s"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=30)
