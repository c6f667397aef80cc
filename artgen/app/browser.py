"""The page `artgen web` builds, in headless Chromium: a local static server for the folder and a
Playwright page on it. Used by tests/test_web.py and scripts/bench_web.py.

Chromium is Debian's (`make web-browser`: apt-get install chromium), driven by the `playwright`
Python package through `executable_path`, so nothing downloads a browser build of its own.
Playwright rather than raw DevTools-protocol calls: waiting for a selector, typing, clicking
and screenshots are one line each, and its errors say what it waited for.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def missing() -> str | None:
    """Why the page cannot be driven here (a sentence naming the fix), or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed: run `make web-browser`"
    if chromium_path() is None:
        return "no chromium on PATH: run `make web-browser` (apt-get install chromium, as root)"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def static_server(folder: Path) -> Iterator[str]:
    """Serve `folder` on a free local port in a thread, as `python -m http.server` does; yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def chromium():
    """Headless Chromium (Debian's, through Playwright); yields the Playwright browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: tests run as root, where Chromium's sandbox refuses to start
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str, timeout_s: float = 120.0, width: int = 1000, height: int = 820):
    """A new page at the built page `url`, waited on until the model has loaded (or failed to:
    read `#status`). Console errors land in `page.console_errors`."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(timeout_s * 1000)
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#status[data-state=ready], #status[data-state=error]")
    return page


def generate_in_page(page, prompt: str, seed: int = 0, steps: int | None = None) -> dict:
    """Type a prompt and seed, press Generate, wait: window.artgen.last (codes, ms, unknown or error)."""
    runs = page.evaluate("window.artgen.runs")
    page.fill("#prompt", prompt)
    page.fill("#seed", str(seed))
    if steps is not None:
        page.fill("#steps", str(steps))
    page.click("#generate")
    page.wait_for_function(f"window.artgen.runs > {runs}")
    return page.evaluate("window.artgen.last")
