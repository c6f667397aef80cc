"""Open a bench report.html in headless Chromium and check every image really renders.

    python scripts/check_report_html.py artgen-work/reports/bench/report.html [--screenshot out.png]

Chromium loads a copy of the page with a small script appended that, after the load event,
records each <img>'s decoded size (`naturalWidth` x `naturalHeight`) on the element;
`--dump-dom` then prints the DOM and this script reads those marks. It fails when an image
has no `data:` source (the page must be self-contained), did not decode (0 x 0), or the
page has no images at all. Exit status: 0 all images render, 1 a broken image, 3 no
Chromium here (install Debian's with `apt-get install -y chromium`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files"]
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = document.getElementsByTagName('img');
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-rendered', imgs[i].complete ? imgs[i].naturalWidth + 'x' + imgs[i].naturalHeight : '0x0');
  }
  document.body.setAttribute('data-probe', 'done');
});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def check(html_path: Path, screenshot: Path | None = None, timeout: int = 120) -> tuple[bool, list[str]]:
    """(all images render, one line per image) for a report.html."""
    browser = find_chromium()
    if browser is None:
        print("chromium is not installed: `apt-get install -y chromium` (Debian) to run this check")
        sys.exit(3)
    page = html_path.read_text(encoding="utf-8")
    lines: list[str] = []
    ok = True
    for i, src in enumerate(re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)):
        if not src.startswith("data:image/"):
            ok = False
            lines.append(f"image {i}: source is not embedded (data:): {src[:60]}")
    with tempfile.TemporaryDirectory(prefix="artgen-chromium-") as tmp:
        probe_page = Path(tmp) / "page.html"
        probe_page.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        profile = ["--user-data-dir=" + str(Path(tmp) / "profile")]
        dom = subprocess.run([browser, *FLAGS, *profile, "--virtual-time-budget=10000", "--dump-dom",
                              probe_page.as_uri()], capture_output=True, text=True, timeout=timeout).stdout
        if screenshot is not None:
            subprocess.run([browser, *FLAGS, *profile, "--window-size=1400,3000", f"--screenshot={screenshot}",
                            html_path.resolve().as_uri()], capture_output=True, timeout=timeout)
    if 'data-probe="done"' not in dom:
        return False, lines + ["chromium did not finish loading the page (no probe mark in the DOM)"]
    marks = re.findall(r'<img[^>]*?alt="([^"]*)"[^>]*?data-rendered="(\d+)x(\d+)"', dom) or \
        [("?", w, h) for w, h in re.findall(r'data-rendered="(\d+)x(\d+)"', dom)]
    if not marks:
        return False, lines + ["the page has no images"]
    for alt, w, h in marks:
        rendered = int(w) > 0 and int(h) > 0
        ok &= rendered
        lines.append(f"{'ok    ' if rendered else 'BROKEN'} {w}x{h} {alt}")
    return ok, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--screenshot", type=Path, default=None, help="also save a PNG screenshot of the page")
    args = parser.parse_args()
    if not args.html.is_file():
        print(f"no such file: {args.html}")
        return 1
    ok, lines = check(args.html, args.screenshot)
    print("\n".join(lines))
    print("all images render" if ok else "BROKEN images in the report")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
