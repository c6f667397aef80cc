"""The README and docs/*.md as a user reads them: the snippets they mark runnable run, and
every relative link and image points at a file that is there.

A ```python block is runnable when the line right before its opening fence is
`<!-- runnable -->`. Each one runs in its own process with this interpreter, from the
repository root (as a user who copied it into `python` there would), in an empty workspace
(ARTGEN_HOME); it must exit 0."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = "<!-- runnable -->"
FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
# [text](target) and ![alt](target); a target may carry a "title" after a space.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def split_page(text: str) -> tuple[list[tuple[int, str, str, bool]], list[tuple[int, str]]]:
    """The page's fenced blocks as (line, language, code, runnable) and its prose lines as
    (line, text): links inside code blocks are code, not links."""
    blocks, prose = [], []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2).lower(), i
        runnable = start > 0 and lines[start - 1].strip() == RUNNABLE
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence[0] * len(fence)):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        blocks.append((start + 1, lang, "\n".join(body) + "\n", runnable))
    return blocks, prose


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in split_page(page.read_text())[1]:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def runnable_blocks() -> list:
    found = []
    for page in PAGES:
        for line, lang, code, runnable in split_page(page.read_text())[0]:
            if runnable:
                found.append(pytest.param(page, line, lang, code, id=f"{rel(page)}:{line}"))
    return found


def test_the_readme_marks_a_snippet_runnable():
    blocks = split_page((REPO / "README.md").read_text())[0]
    assert any(runnable and lang == "python" for _, lang, _, runnable in blocks), \
        f"README.md has no ```python block after a {RUNNABLE} line"


@pytest.mark.parametrize("page, line, lang, code", runnable_blocks())
def test_runnable_snippet_runs(page, line, lang, code, tmp_path):
    assert lang == "python", f"{rel(page)}:{line}: {RUNNABLE} marks a ```{lang} block; only python blocks run"
    env = dict(os.environ, ARTGEN_HOME=str(tmp_path / "artgen-work"))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (f"{rel(page)}:{line}: the snippet exited {done.returncode}\n"
                                  f"--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-4000:]}")


def targets(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link and image outside code; a link's text may wrap onto the next line."""
    lines = dict(split_page(page.read_text())[1])
    prose = "\n".join(lines.get(n, "") for n in range(1, max(lines, default=0) + 1))
    prose = re.sub(r"(`+)[^`\n]*?\1", lambda m: "x" * len(m.group(0)), prose)  # inline code is not a link
    return [(prose.count("\n", 0, m.start()) + 1, m.group(1)) for pattern in (LINK, HTML_SRC)
            for m in pattern.finditer(prose)]


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_and_image_exists(page):
    broken = []
    for line, target in targets(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        path, _, fragment = unquote(target).partition("#")
        file = (page.parent / path).resolve() if path else page
        where = f"{rel(page)}:{line}: {target}"
        if not file.exists():
            broken.append(f"{where} (no such file)")
        elif REPO not in file.parents and file != REPO:
            broken.append(f"{where} (outside the repository)")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{where} (no heading #{fragment} in {rel(file)})")
    assert not broken, "broken links:\n" + "\n".join(broken)
