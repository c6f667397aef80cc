#!/usr/bin/env python
"""Fault probe (issue 16): bad inputs and damaged artefacts against every command.

    .venv/bin/python scripts/probe_inputs.py            # 197 cases, ~6 min on 2 CPU cores
    .venv/bin/python scripts/probe_inputs.py --quick    # 54 of them, ~2 min
    .venv/bin/python scripts/probe_inputs.py --only serve --keep

It builds what it needs in a temporary folder (a 60-painting synthetic corpus, a 2-step VQ-VAE,
a 4-step tiny predictor with the test suite's tiny preset, its fp32 bundle, heuristic labels,
a copy of the shipped bundle and damaged copies of all of these), runs each case as a user
would (`artgen ...` or `python -m export.runtime ...`, one process at a time), and prints one
row per case:

    case, command, expected (error | ok), exit code, result, work intact, verdict

result: "one line" (a non-zero exit whose last stderr line is the `error: ...` line and the
only one), "ok" (exit 0), "traceback", "timeout" (still running at the case's time limit:
it went to work instead of refusing), or "other" (any other non-zero exit).
work intact: the sha256 of every finished file the case must not touch (the workspace's
corpus, checkpoints, latents, bundles, annotations; the shipped model; the user's files the
case points at) is unchanged; "+N new" counts files that appeared beside them.

Totals at the end: tracebacks, silent wrong results (exit 0, or still working at the time
limit, where an error was expected; or an "ok" that did not do its job), lost work (a
protected file changed or vanished), and mismatches (an error with another exit code or
without its one line, an expected "ok" that failed). The exit status is 1 when any total is
non-zero. Every process it starts is ended by its own id; the temporary folder is removed
unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHIPPED = ROOT / "artgen" / "assets" / "tiny"
_script = Path(sys.executable).with_name("artgen")
ARTGEN = [str(_script)] if _script.exists() else [sys.executable, "-m", "artgen"]
RUNTIME = [sys.executable, "-m", "export.runtime"]
LONG_PROMPT = ("warm, vivid, " * 1000)[:10_000]
IGNORED_PARTS = {".locks", "__pycache__"}

# the test suite's tiny preset (tests/test_generate.py)
TRAIN_TINY = """
import sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from artgen.training.predictor import PredictorPreset, train_predictor
from artgen.workspace import Workspace
TINY = PredictorPreset(predictor=dict(width=32, layers=1, heads=2, mlp_ratio=2), encoder=dict(width=32, layers=1, heads=2),
                       train=dict(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, checkpoint_every=2, log_every=1))
train_predictor(Workspace(Path(sys.argv[1])), "tiny", preset=TINY, annotations="gt", device="cpu", show_progress=False)
"""


# ---------------------------------------------------------------- cases

@dataclass
class Case:
    name: str
    group: str  # the command, for grouping rows
    argv: Callable[[], list[str]]  # ["artgen", ...] or ["runtime", ...]; evaluated right before the run
    expect: str  # "error" (exit 2, one line) or "ok" (exit 0)
    protect: Callable[[], list[Path]] = lambda: []
    check: Callable[["Result"], list[tuple[str, str]]] | None = None  # -> [(wrong | lost | mismatch, why)]
    needles: tuple[str, ...] = ()  # what the error line must name
    timeout: float = 120
    quick: bool = False
    env: dict = field(default_factory=dict)
    setup: Callable[[], None] | None = None
    teardown: Callable[[], None] | None = None
    runner: Callable[["Case", list[str], dict], tuple] | None = None  # custom run -> (rc, stdout, stderr, timed_out)


@dataclass
class Result:
    case: Case
    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    outcome: str = ""
    intact: str = ""
    verdict: str = "pass"
    notes: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


class Probe:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.ws = tmp / "ws"
        self.out = tmp / "out"
        self.afile = tmp / "afile.txt"  # a user's regular file: never to be touched
        self.others = tmp / "others"  # a folder of someone else's files
        self._memo: dict[str, Path] = {}
        self.env = self._env()

    # -------------------------------------------------------------- environment and build
    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("ARTGEN_HOME", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", OPENAI_API_KEY="sk-probe-not-a-key", PYTHONDONTWRITEBYTECODE="1",
                   COLUMNS="200")
        return env

    def build(self) -> None:
        t0 = time.perf_counter()
        self.out.mkdir(parents=True)
        self.afile.write_text("mine\n")
        self.others.mkdir()
        (self.others / "notes.txt").write_text("someone's notes\n")
        (self.others / "photo.jpg").write_bytes(b"\xff\xd8 not really a photo")
        steps = [
            ARTGEN + ["--workdir", str(self.ws), "data", "synth", "--count", "60", "--size", "32", "--workers", "1"],
            ARTGEN + ["--workdir", str(self.ws), "train", "vqvae", "--steps", "2", "--batch-size", "8", "--threads", "1",
                      "--device", "cpu"],
            [sys.executable, "-c", TRAIN_TINY, str(self.ws)],
            ARTGEN + ["--workdir", str(self.ws), "export"],  # bundles/tiny: the fp32 masked bundle
            ARTGEN + ["--workdir", str(self.ws), "annotate", "--backend", "heuristic", "--workers", "1"],
        ]
        for cmd in steps:
            r = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                sys.exit(f"probe setup failed: {shlex.join(cmd)}\n{r.stderr[-2000:]}")
        print(f"built the probe workspace in {time.perf_counter() - t0:.0f} s: {self.ws}", flush=True)

    # -------------------------------------------------------------- fixtures (made on first use)
    def memo(self, key: str, make: Callable[[Path], None]) -> Path:
        if key not in self._memo:
            path = self.tmp / "fixtures" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            make(path)
            self._memo[key] = path
        return self._memo[key]

    def copy(self, key: str, damage: Callable[[Path], None] | None = None, keep=("data", "checkpoints", "latents",
                                                                                    "bundles", "annotations")) -> Path:
        """A copy of the probe workspace (only the parts in `keep`), damaged by `damage`."""
        def make(path: Path) -> None:
            path.mkdir()
            for part in keep:
                if (self.ws / part).exists():
                    shutil.copytree(self.ws / part, path / part, symlinks=True)
            if damage:
                damage(path)
        return self.memo(f"ws-{key}", make)

    def empty(self, key: str) -> Path:
        return self.memo(f"empty-{key}", lambda p: p.mkdir())

    def bundle(self, kind: str) -> Path:
        def make(path: Path) -> None:
            if kind.startswith("masked"):
                shutil.copytree(self.ws / "bundles" / "tiny", path)
            else:
                shutil.copytree(SHIPPED, path, ignore=shutil.ignore_patterns("__pycache__"))
            meta_path = path / "bundle.json"
            meta = json.loads(meta_path.read_text())
            if kind == "list":
                meta_path.write_text("[1, 2, 3]\n")
            elif kind == "garbage":
                meta_path.write_text("{this is not json")
            elif kind in ("flipped", "masked-flipped"):
                flip(path / meta["graphs"]["decoder"]["file"])
            elif kind == "truncated":
                truncate(path / meta["graphs"]["decoder"]["file"])
            elif kind == "masked-mask0":
                meta["mask_id"] = 0
                meta_path.write_text(json.dumps(meta, indent=2))
            elif kind == "no-tokenizer":
                (path / meta["tokenizer"]["file"]).unlink()
        return self.memo(f"bundle-{kind}", make)

    def finished(self, ws: Path) -> list[Path]:
        """The finished artefacts of a workspace that no command may damage."""
        return [ws / p for p in ("data", "checkpoints", "latents", "bundles", "annotations")]

    def guarded(self, *extra: Path | Callable[[], Path]) -> Callable[[], list[Path]]:
        """Protect the probe workspace, the shipped model, the user's files and `extra`."""
        def paths() -> list[Path]:
            return [*self.finished(self.ws), SHIPPED, self.afile, self.others,
                    *[e() if callable(e) else e for e in extra]]
        return paths


# ---------------------------------------------------------------- damage

def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip(path: Path, count: int = 64) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def corpus_ids(ws: Path) -> list[str]:
    from datasets import load_from_disk

    dd = load_from_disk(str(ws / "data"))
    return [i for split in dd for i in dd[split]["id"]]


def jsonl_ids(path: Path) -> list[str]:
    ids = []
    if path.exists():
        for line in path.read_bytes().split(b"\n"):
            try:
                ids.append(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                pass
    return ids


# ---------------------------------------------------------------- hashing

def digest(paths: list[Path]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in paths:
        p = Path(p)
        if p.is_symlink() or p.is_file():
            out[str(p)] = _sha(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not IGNORED_PARTS.intersection(f.relative_to(p).parts):
                    out[str(f)] = _sha(f)
        else:
            out[str(p)] = None  # absent: must stay absent or appear as "new"
    return out


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable: {e}"


def compare(before: dict, after: dict) -> tuple[list[str], list[str]]:
    """(changed or removed files, new files)."""
    lost = [k for k, v in before.items() if v is not None and after.get(k) != v]
    new = [k for k, v in after.items() if v is not None and before.get(k) is None]
    return lost, new


# ---------------------------------------------------------------- running one case

def resolve(argv: list[str]) -> list[str]:
    head, rest = argv[0], argv[1:]
    return (ARTGEN if head == "artgen" else RUNTIME if head == "runtime" else [head]) + rest


def run_process(cmd: list[str], env: dict, timeout: float) -> tuple[int | None, str, str, bool]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: a timeout ends it and its children
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group of the process started here, by its id
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        return proc.returncode, out, err, True


def classify(rc: int | None, stdout: str, stderr: str, timed_out: bool) -> str:
    if "Traceback (most recent call last)" in stderr or "Traceback (most recent call last)" in stdout:
        return "traceback"
    if timed_out:
        return "timeout"
    if rc == 0:
        return "ok"
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or ": error:" in line]
    if lines and len(errors) == 1 and errors[0] == lines[-1]:
        return "one line"
    return "other"


def run_case(probe: Probe, case: Case) -> Result:
    if case.setup:
        case.setup()
    argv = [str(a) for a in case.argv()]
    protected = case.protect()
    before = digest(protected)
    env = {**probe.env, **case.env}
    t0 = time.perf_counter()
    try:
        if case.runner:
            rc, out, err, timed_out = case.runner(case, resolve(argv), env)
        else:
            rc, out, err, timed_out = run_process(resolve(argv), env, case.timeout)
    finally:
        if case.teardown:
            case.teardown()
    res = Result(case, argv, rc, out, err, timed_out, time.perf_counter() - t0)
    res.outcome = classify(rc, out, err, timed_out)
    lost, new = compare(before, digest(protected))
    res.intact = "yes" if not lost else f"NO: {len(lost)} changed"
    if new:
        res.intact += f" (+{len(new)} new)"
        res.notes.append("new files: " + ", ".join(display(n, probe) for n in new[:3]))
    problems: list[tuple[str, str]] = []
    if lost:
        problems.append(("lost", "changed or removed: " + ", ".join(display(p, probe) for p in lost[:3])))
    if res.outcome == "traceback":
        problems.append(("traceback", last_line(err or out)))
    elif case.expect == "error":
        if res.outcome in ("ok", "timeout"):
            problems.append(("wrong", "exit 0 where an error was expected" if res.outcome == "ok" else
                             f"still working after {case.timeout:.0f} s where a refusal was expected"))
        elif res.outcome != "one line" or rc != 2:
            problems.append(("mismatch", f"exit {rc}, {res.outcome}: {last_line(err)}"))
        else:
            error_line = [line for line in err.splitlines() if line.strip()][-1]
            for needle in case.needles:
                if needle not in error_line:
                    problems.append(("mismatch", f"the error line does not name {needle!r}: {error_line}"))
    elif res.outcome != "ok":
        problems.append(("mismatch", f"expected ok, got exit {rc} ({res.outcome}): {last_line(err)}"))
    if "No such option" in err or "unrecognized arguments" in err:  # the probe's own mistake, not a finding
        problems.append(("mismatch", f"the probe passed an option the command does not have: {last_line(err)}"))
    refused = re.search(r"Invalid value for '([^']+)'", err)
    if refused and refused.group(1) not in case.name:  # refused for another option than the one under test
        problems.append(("mismatch", f"refused for {refused.group(1)}, not what the case tests: {last_line(err)}"))
    if case.check and res.outcome != "traceback":
        problems.extend(case.check(res))
    kinds = {k for k, _ in problems}
    res.verdict = ("TRACEBACK" if "traceback" in kinds else "LOST WORK" if "lost" in kinds else
                   "WRONG" if "wrong" in kinds else "MISMATCH" if "mismatch" in kinds else "pass")
    res.problems = problems
    res.notes = [why for _, why in problems] + res.notes
    return res


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else ""


def display(path_or_arg: str, probe: Probe) -> str:
    s = re.sub(r"http://127\.0\.0\.1:\d+/v1", "$SERVER", str(path_or_arg))
    s = s.replace(str(probe.ws), "$WS").replace(str(probe.tmp), "$TMP").replace(str(ROOT) + "/", "")
    return s


def show_argv(argv: list[str], probe: Probe) -> str:
    head = "artgen" if argv[0] == "artgen" else "python -m export.runtime"
    parts = []
    for a in argv[1:]:
        if len(a) > 60:
            a = f"<{len(a):,} chars>"
        parts.append(display(a, probe))
    return head + " " + " ".join(shlex.quote(p) if p and not p.startswith(("$", "<")) else (p or "''") for p in parts)


# ---------------------------------------------------------------- checks

def png_written(path: Path) -> Callable[[Result], list[tuple[str, str]]]:
    def check(res: Result) -> list[tuple[str, str]]:
        if res.rc == 0 and not (path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"):
            return [("wrong", f"exit 0 but no PNG at {path}")]
        return []
    return check


def file_under(path: Callable[[], Path], exists: bool = True) -> Callable[[Result], list[tuple[str, str]]]:
    def check(res: Result) -> list[tuple[str, str]]:
        p = path()
        if res.rc == 0 and p.exists() != exists:
            return [("wrong", f"exit 0 but {p.name} {'missing' if exists else 'written'}")]
        return []
    return check


def mentions(*words: str) -> Callable[[Result], list[tuple[str, str]]]:
    def check(res: Result) -> list[tuple[str, str]]:
        text = res.stdout + res.stderr
        missing = [w for w in words if w not in text]
        return [("wrong", f"ran without saying {', '.join(map(repr, missing))}")] if res.rc == 0 and missing else []
    return check


# ---------------------------------------------------------------- the table of cases

def cases(p: Probe) -> list[Case]:
    T, W, out, afile = p.tmp, p.ws, p.out, p.afile
    g = p.guarded
    C: list[Case] = []

    def add(name, group, argv, expect="error", **kw):
        kw.setdefault("protect", g())
        C.append(Case(name, group, argv, expect, **kw))

    bad_outputs = [  # (label, -o path), each refused before any work
        ("a folder", lambda: out), ("under a regular file", lambda: afile / "x.png"),
        ("no extension", lambda: out / "grid"), ("/proc/x.png", lambda: "/proc/x.png"), ("/dev/full", lambda: "/dev/full"),
    ]

    # ------------------------------------------------------------ generate
    G = "generate"
    add("generate: trained model", G, lambda: ["artgen", "--workdir", W, "generate", "warm, vivid", "-n", "1",
                                                "-o", out / "gen-ok.png"],
        "ok", check=png_written(out / "gen-ok.png"), quick=True)
    for label, opts in [("--guidance nan", ["--guidance", "nan"]), ("--guidance inf", ["--guidance", "inf"]),
                        ("--temperature -1", ["--temperature", "-1"]), ("--temperature nan", ["--temperature", "nan"]),
                        ("--temperature inf", ["--temperature", "inf"]), ("-n 100000", ["-n", "100000"]),
                        ("-n 0", ["-n", "0"]), ("--steps 0", ["--steps", "0"]), ("--steps 100000", ["--steps", "100000"]),
                        ("--seed -1", ["--seed", "-1"]), ("--top-k -1", ["--top-k", "-1"]),
                        ("-n abc", ["-n", "abc"])]:
        add(f"generate {label}", G, lambda o=opts: ["artgen", "--workdir", W, "generate", "warm, vivid", *o,
                                                    "-o", out / "gen-bad.png"],
            check=file_under(lambda: out / "gen-bad.png", exists=False), quick=label in ("--guidance nan", "-n 100000"))
    for label, prompt in [("empty prompt", ""), ("blank prompt", "   "), ("10,000-character prompt", LONG_PROMPT)]:
        add(f"generate: {label}", G, lambda t=prompt: ["artgen", "--workdir", W, "generate", t, "-n", "1",
                                                       "-o", out / "gen-bad.png"], quick=label.startswith("empty"))
    add("generate: no prompt", G, lambda: ["artgen", "--workdir", W, "generate", "-o", out / "gen-bad.png"])
    add("generate: --prompts missing file", G, lambda: ["artgen", "--workdir", W, "generate", "--prompts", T / "nofile.txt",
                                                        "-o", out / "gen-bad.png"])
    add("generate: --prompts empty file", G, lambda: ["artgen", "--workdir", W, "generate", "--prompts",
                                                      p.memo("empty.txt", lambda f: f.write_text("\n\n")),
                                                      "-o", out / "gen-bad.png"])
    add("generate: unknown encoder", G, lambda: ["artgen", "--workdir", W, "generate", "warm", "--encoder", "bogus",
                                                 "-o", out / "gen-bad.png"], quick=True)
    add("generate: unknown generator", G, lambda: ["artgen", "--workdir", W, "generate", "warm", "--generator", "bogus",
                                                   "-o", out / "gen-bad.png"])
    for label, path in bad_outputs:
        add(f"generate -o {label}", G, lambda q=path: ["artgen", "--workdir", W, "generate", "warm", "-n", "1", "-o", q()],
            quick=label == "/dev/full")
    add("generate: workdir is a file", G, lambda: ["artgen", "--workdir", afile, "generate", "warm", "-n", "1",
                                                   "-o", out / "gen-wd.png"], quick=True)
    add("generate: empty workspace (shipped model)", G,
        lambda: ["artgen", "--workdir", p.empty("gen"), "generate", "warm, vivid", "-n", "1", "-o", out / "gen-shipped.png"],
        "ok", check=png_written(out / "gen-shipped.png"), quick=True)
    add("generate: empty workspace, --encoder clip", G,
        lambda: ["artgen", "--workdir", p.empty("gen"), "generate", "warm", "--encoder", "clip", "-o", out / "gen-bad.png"])
    trunc_ws = lambda: p.copy("trunc", lambda w: truncate(w / "checkpoints/tiny/model.safetensors"))  # noqa: E731
    garbage_ws = lambda: p.copy("garbage", lambda w: (w / "checkpoints/tiny/config.json").write_text("garbage{"))  # noqa: E731
    vq_ws = lambda: p.copy("vq-trunc", lambda w: truncate(w / "checkpoints/vqvae/model.safetensors"))  # noqa: E731
    add("generate: truncated model.safetensors", G,
        lambda: ["artgen", "--workdir", trunc_ws(), "generate", "warm", "-n", "1", "-o", out / "gen-bad.png"],
        protect=g(lambda: trunc_ws() / "bundles", lambda: trunc_ws() / "data"), quick=True)
    add("generate: config.json of garbage", G,
        lambda: ["artgen", "--workdir", garbage_ws(), "generate", "warm", "-n", "1", "-o", out / "gen-bad.png"],
        protect=g(lambda: garbage_ws() / "checkpoints/tiny/model.safetensors"), quick=True)
    add("generate: truncated VQ-VAE weights", G,
        lambda: ["artgen", "--workdir", vq_ws(), "generate", "warm", "-n", "1", "-o", out / "gen-bad.png"],
        protect=g(lambda: vq_ws() / "checkpoints/tiny"))

    # ------------------------------------------------------------ data synth
    D = "data synth"
    synth = ["data", "synth", "--count", "6", "--size", "16", "--workers", "1"]
    for label, opts in [("--count 1", ["--count", "1"]), ("--count 0", ["--count", "0"]), ("--size 8", ["--size", "8"]),
                        ("--size 100000", ["--size", "100000"]), ("--workers -1", ["--workers", "-1"]),
                        ("--count abc", ["--count", "abc"])]:
        add(f"data synth {label}", D, lambda o=opts: ["artgen", "--workdir", p.empty("synth"), *synth, *o],
            check=file_under(lambda: p.empty("synth") / "data", exists=False), quick=label == "--count 1")
    add("data synth over a corpus (no --force)", D, lambda: ["artgen", "--workdir", W, *synth], needles=("--force",),
        quick=True)
    add("data synth: workdir is a file", D, lambda: ["artgen", "--workdir", afile, *synth], quick=True)
    add("data synth: workdir under a file", D, lambda: ["artgen", "--workdir", afile / "ws", *synth])
    add("data synth --force over a corpus", D, lambda: ["artgen", "--workdir", p.copy("force"), *synth, "--force"], "ok",
        check=lambda r: [] if len(corpus_ids(p.copy("force"))) == 6 else [("wrong", "--force did not replace the corpus")])

    # ------------------------------------------------------------ data import
    D = "data import"
    folder_txt = lambda: p.memo("not-images", lambda f: (f.mkdir(), (f / "a.txt").write_text("x"), (f / "b.png").write_bytes(b"not a png")))  # noqa: E731
    for label, src in [("missing folder", lambda: T / "nowhere"), ("empty folder", lambda: p.empty("import-src")),
                       ("a folder of non-images", folder_txt), ("a regular file", lambda: afile)]:
        add(f"data import: {label}", D, lambda s=src: ["artgen", "--workdir", p.empty("import"), "data", "import", s(),
                                                       "--size", "16"],
            check=file_under(lambda: p.empty("import") / "data", exists=False), quick=label == "missing folder")
    add("data import: hub id offline", D, lambda: ["artgen", "--workdir", p.empty("import"), "data", "import",
                                                   "someone/paintings"])
    add("data import --size 8", D, lambda: ["artgen", "--workdir", p.empty("import"), "data", "import", p.empty("import-src"),
                                            "--size", "8"])
    add("data import over a corpus (no --force)", D, lambda: ["artgen", "--workdir", W, "data", "import", folder_txt()],
        needles=("--force",), quick=True)
    add("data import: workdir is a file", D, lambda: ["artgen", "--workdir", afile, "data", "import", folder_txt()])

    # ------------------------------------------------------------ data show
    D = "data show"
    add("data show: ok", D, lambda: ["artgen", "--workdir", W, "data", "show", "--n", "4", "-o", out / "sheet.png"], "ok",
        check=png_written(out / "sheet.png"), quick=True)
    for label, opts in [("--split bogus", ["--split", "bogus"]), ("--n 0", ["--n", "0"]), ("--n 100000", ["--n", "100000"]),
                        ("--columns 0", ["--columns", "0"])]:
        add(f"data show {label}", D, lambda o=opts: ["artgen", "--workdir", W, "data", "show", *o, "-o", out / "sheet-bad.png"],
            check=file_under(lambda: out / "sheet-bad.png", exists=False), quick=label == "--split bogus")
    for label, path in bad_outputs:
        add(f"data show -o {label}", D, lambda q=path: ["artgen", "--workdir", W, "data", "show", "--n", "2", "-o", q()])
    add("data show: no corpus", D, lambda: ["artgen", "--workdir", p.empty("show"), "data", "show", "-o", out / "sheet-bad.png"])
    add("data show: workdir is a file", D, lambda: ["artgen", "--workdir", afile, "data", "show", "-o", out / "sheet-bad.png"])
    dd_ws = lambda: p.copy("dd-garbage", lambda w: (w / "data/dataset_dict.json").write_text("[garbage"), keep=("data",))  # noqa: E731
    add("data show: dataset_dict.json of garbage", D,
        lambda: ["artgen", "--workdir", dd_ws(), "data", "show", "-o", out / "sheet-bad.png"], quick=True)

    # ------------------------------------------------------------ annotate
    A = "annotate"
    ann_ws = lambda: p.copy("ann", keep=("data",))  # noqa: E731  (nothing labelled yet: every option matters)
    for label, opts in [("--backend bogus", ["--backend", "bogus"]), ("--split bogus", ["--split", "bogus"]),
                        ("--mode bogus", ["--backend", "openai", "--mode", "bogus"]),
                        ("--concurrency 0", ["--backend", "openai", "--concurrency", "0"]),
                        ("--limit -1", ["--limit", "-1"]), ("--timeout nan", ["--timeout", "nan"]),
                        ("--workers -1", ["--workers", "-1"]), ("--price-in inf", ["--backend", "openai", "--price-in", "inf"]),
                        ("--max-retries -1", ["--backend", "openai", "--max-retries", "-1"])]:
        add(f"annotate {label}", A, lambda o=opts: ["artgen", "--workdir", ann_ws(), "annotate", *o],
            protect=g(lambda: ann_ws() / "annotations", lambda: ann_ws() / "data"), quick=label == "--backend bogus")
    add("annotate: no corpus", A, lambda: ["artgen", "--workdir", p.empty("ann"), "annotate", "--workers", "1"])
    add("annotate: workdir is a file", A, lambda: ["artgen", "--workdir", afile, "annotate", "--workers", "1"])

    torn = {}

    def torn_setup(w: Path) -> None:
        path = w / "annotations/heuristic.jsonl"
        data = path.read_bytes()
        lines = data.split(b"\n")[:-1]
        keep = b"".join(line + b"\n" for line in lines[:40])
        torn["prefix"] = keep
        path.write_bytes(keep + lines[40][: len(lines[40]) // 2])  # a writer killed mid-line

    torn_ws = lambda: p.copy("torn", torn_setup, keep=("data", "annotations"))  # noqa: E731

    def torn_check(res: Result) -> list[tuple[str, str]]:
        path = torn_ws() / "annotations/heuristic.jsonl"
        data, ids = path.read_bytes(), jsonl_ids(path)
        problems = []
        if not data.startswith(torn["prefix"]):
            problems.append(("lost", "the 40 finished labels were rewritten"))
        if sorted(ids) != sorted(corpus_ids(torn_ws())):
            problems.append(("wrong", f"{len(ids)} labels for {len(set(ids))} ids: not every painting exactly once"))
        return problems

    add("annotate: resume after a torn last line", A,
        lambda: ["artgen", "--workdir", torn_ws(), "annotate", "--backend", "heuristic", "--workers", "1"], "ok",
        check=torn_check, protect=g(lambda: torn_ws() / "data"), quick=True)
    mid_ws = lambda: p.copy("mid-garbage", lambda w: _garbage_middle(w / "annotations/heuristic.jsonl"),  # noqa: E731
                            keep=("data", "annotations"))
    add("annotate: a damaged line mid-file", A,
        lambda: ["artgen", "--workdir", mid_ws(), "annotate", "--backend", "heuristic", "--workers", "1"],
        protect=g(lambda: mid_ws() / "annotations"))

    server = {}

    def failing_server() -> None:
        from annotate.local_server import LocalChatServer

        server["s"] = LocalChatServer(plan=lambda n, body: "500").start()

    def stop_server() -> None:
        if "s" in server:
            server.pop("s").stop()

    fail_ws = lambda: p.copy("ann-fail", keep=("data", "annotations"))  # noqa: E731
    add("annotate --backend openai: every request fails", A,
        lambda: ["artgen", "--workdir", fail_ws(), "annotate", "--backend", "openai", "--base-url", server["s"].base_url,
                 "--limit", "4", "--concurrency", "2", "--max-retries", "1", "--retry-delay", "0.01", "--timeout", "5"],
        setup=failing_server, teardown=stop_server, protect=g(lambda: fail_ws() / "annotations/heuristic.jsonl"),
        check=lambda r: [("wrong", "labels written from failed requests")] if jsonl_ids(fail_ws() / "annotations/openai.jsonl") else [],
        quick=True)

    conc_ws = lambda: p.copy("concurrent", keep=("data",))  # noqa: E731
    first = {}

    def concurrent(case: Case, cmd: list[str], env: dict):
        from annotate.local_server import LocalChatServer

        with LocalChatServer(latency=1.0) as srv:
            full = cmd[:-1] + [srv.base_url]  # the last argument is a placeholder for the server's URL
            p1 = subprocess.Popen(full, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
            first["pid"] = p1.pid
            holder = conc_ws() / ".locks" / "annotations-openai.holder.json"
            end = time.monotonic() + 60
            while time.monotonic() < end and p1.poll() is None:
                try:
                    if json.loads(holder.read_text()).get("pid") == p1.pid:
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.1)
            rc, out, err, timed_out = run_process(full, env, 60)
            first["running_when_refused"] = p1.poll() is None
            try:
                o1, e1 = p1.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(p1.pid, signal.SIGKILL)
                o1, e1 = p1.communicate()
            first["rc"], first["stderr"] = p1.returncode, e1
        case.needles = (f"pid {first['pid']}",)
        return rc, out, err, timed_out

    def concurrent_check(res: Result) -> list[tuple[str, str]]:
        ids = jsonl_ids(conc_ws() / "annotations/openai.jsonl")
        problems = []
        if len(ids) != len(set(ids)):
            problems.append(("wrong", f"{len(ids) - len(set(ids))} paintings labelled twice"))
        if first.get("rc") != 0 or len(set(ids)) != 12:
            problems.append(("mismatch", f"the first run ended with exit {first.get('rc')} and {len(set(ids))} of 12 labels: "
                                         f"{last_line(first.get('stderr', ''))}"))
        if not first.get("running_when_refused"):
            problems.append(("mismatch", "inconclusive: the first run had finished before the second was refused"))
        return problems

    add("annotate: two runs at once (second refused)", A,
        lambda: ["artgen", "--workdir", conc_ws(), "annotate", "--backend", "openai", "--limit", "12", "--concurrency", "2",
                 "--max-retries", "0", "--timeout", "20", "--base-url", "$SERVER"],
        runner=concurrent, check=concurrent_check, protect=g(lambda: conc_ws() / "data"), quick=True)

    def bad_labels(w: Path) -> None:
        ids = corpus_ids(w)
        rows = [{"id": ids[0], "adjectives": ["warm", "vivid", "dense"]}, {"id": ids[0], "adjectives": ["cool", "calm", "dark"]},
                {"id": ids[1], "adjectives": 5}, {"id": ids[2], "adjectives": ["cool", 7]}]
        rows += [{"id": i, "adjectives": ["bright", "geometric", "calm"]} for i in ids[3:]]
        (w / "annotations/heuristic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    bad_ws = lambda: p.copy("bad-labels", bad_labels)  # noqa: E731
    add("annotate report: adjectives 5, duplicate ids", A,
        lambda: ["artgen", "--workdir", bad_ws(), "annotate", "report", "--labels", "heuristic", "--split", "all"], "ok",
        check=mentions("more than once", "skipped 2 records"), protect=g(lambda: bad_ws() / "annotations"), quick=True)

    # ------------------------------------------------------------ train
    R = "train"
    tr_ws = lambda: p.copy("train-opts")  # noqa: E731
    for label, opts in [("no --encoder", []), ("--encoder bogus", ["--encoder", "bogus"]),
                        ("--generator bogus", ["--encoder", "tiny", "--generator", "bogus"]),
                        ("--annotations bogus", ["--encoder", "tiny", "--annotations", "bogus"]),
                        ("--annotations openai (none yet)", ["--encoder", "tiny", "--annotations", "openai"]),
                        ("--preset bogus", ["--encoder", "tiny", "--preset", "bogus"]),
                        ("--steps 0", ["--encoder", "tiny", "--steps", "0"]),
                        ("--device bogus", ["--encoder", "tiny", "--device", "bogus"]),
                        ("--pretrained missing", ["--encoder", "clip", "--pretrained", str(T / "nowhere")])]:
        add(f"train {label}", R, lambda o=opts: ["artgen", "--workdir", tr_ws(), "train", *o, "--steps", "1"]
            if "--steps" not in o and o else ["artgen", "--workdir", tr_ws(), "train", *o],
            protect=g(*[lambda s=s: tr_ws() / s for s in ("data", "checkpoints", "latents", "annotations")]),
            quick=label in ("--encoder bogus", "--preset bogus"))
    add("train --encoder tiny: no corpus", R, lambda: ["artgen", "--workdir", p.empty("train"), "train", "--encoder", "tiny",
                                                      "--steps", "1"])
    add("train --encoder tiny: workdir is a file", R, lambda: ["artgen", "--workdir", afile, "train", "--encoder", "tiny"])
    nothing_ws = lambda: p.copy("nothing-to-resume", lambda w: shutil.rmtree(w / "checkpoints/tiny"),  # noqa: E731
                                keep=("data", "latents", "checkpoints"))
    add("train --encoder tiny --resume: nothing to resume", R,
        lambda: ["artgen", "--workdir", nothing_ws(), "train", "--encoder", "tiny", "--annotations", "gt", "--resume"],
        protect=g(lambda: nothing_ws() / "data", lambda: nothing_ws() / "checkpoints/vqvae"), quick=True)
    corpus_only = lambda: p.copy("corpus-only", keep=("data",))  # noqa: E731
    add("train vqvae --resume: nothing to resume", R,
        lambda: ["artgen", "--workdir", corpus_only(), "train", "vqvae", "--resume"], protect=g(lambda: corpus_only() / "data"),
        quick=True)
    add("train --encoder tiny --resume: no VQ-VAE either", R,
        lambda: ["artgen", "--workdir", p.copy("corpus-only-2", keep=("data",)), "train", "--encoder", "tiny",
                 "--annotations", "gt", "--resume"], protect=g(lambda: p.copy("corpus-only-2", keep=("data",)) / "data"))
    state_ws = lambda: p.copy("state-trunc", lambda w: truncate(w / "checkpoints/tiny/train_state/model.safetensors"))  # noqa: E731
    add("train --resume: truncated train_state", R,
        lambda: ["artgen", "--workdir", state_ws(), "train", "--encoder", "tiny", "--annotations", "gt", "--resume"],
        protect=g(lambda: state_ws() / "checkpoints/tiny/model.safetensors", lambda: state_ws() / "checkpoints/vqvae"))
    vqcfg_ws = lambda: p.copy("vq-config", lambda w: (w / "checkpoints/vqvae/config.json").write_text("garbage{"))  # noqa: E731
    add("train --encoder tiny: VQ-VAE config.json of garbage", R,
        lambda: ["artgen", "--workdir", vqcfg_ws(), "train", "--encoder", "tiny", "--annotations", "gt", "--steps", "1"],
        protect=g(lambda: vqcfg_ws() / "checkpoints/tiny", lambda: vqcfg_ws() / "latents"))

    def thin_labels(w: Path) -> None:
        ids = corpus_ids(w)
        (w / "annotations/heuristic.jsonl").write_text(
            "".join(json.dumps({"id": i, "adjectives": ["warm", "vivid", "dense"]}) + "\n" for i in ids[:3]))

    thin_ws = lambda: p.copy("thin", thin_labels)  # noqa: E731
    add("train --annotations auto: 3 of 60 labelled", R,
        lambda: ["artgen", "--workdir", thin_ws(), "train", "--encoder", "tiny", "--steps", "1"], needles=("only 3 of 60",),
        protect=g(lambda: thin_ws() / "checkpoints", lambda: thin_ws() / "annotations"), quick=True)
    add("train --annotations heuristic: adjectives 5, duplicate ids", R,
        lambda: ["artgen", "--workdir", bad_ws(), "train", "--encoder", "tiny", "--annotations", "heuristic", "--steps", "1"],
        "ok", check=mentions("more than once", "skipped 2 records"), protect=g(lambda: bad_ws() / "annotations"),
        timeout=240)
    vq = ["train", "vqvae", "--threads", "1"]
    for label, opts in [("--preset bogus", ["--preset", "bogus"]), ("--steps 0", ["--steps", "0"]),
                        ("--batch-size 0", ["--batch-size", "0"]), ("--variant bogus", ["--variant", "bogus", "--steps", "1"]),
                        ("--device bogus", ["--device", "bogus", "--steps", "1"]), ("--threads -1", ["--threads", "-1"])]:
        add(f"train vqvae {label}", R, lambda o=opts: ["artgen", "--workdir", tr_ws(), *vq, *o],
            protect=g(*[lambda s=s: tr_ws() / s for s in ("data", "checkpoints", "latents")]), quick=label == "--preset bogus")
    add("train vqvae: no corpus", R, lambda: ["artgen", "--workdir", p.empty("train"), *vq, "--steps", "1"])

    # ------------------------------------------------------------ export
    E = "export"
    add("export: no trained model", E, lambda: ["artgen", "--workdir", p.empty("export"), "export"], quick=True)
    for label, opts in [("--encoder bogus", ["--encoder", "bogus"]), ("--generator bogus", ["--generator", "bogus"]),
                        ("--opset 5", ["--opset", "5", "--out", str(T / "exp-opset")]),
                        ("--generator ar (not trained)", ["--generator", "ar", "--out", str(T / "exp-ar")])]:
        add(f"export {label}", E, lambda o=opts: ["artgen", "--workdir", W, "export", *o])
    add("export --out a folder of other files (no --force)", E, lambda: ["artgen", "--workdir", W, "export", "--out", p.others],
        needles=("--force",), quick=True)
    add("export --out a regular file", E, lambda: ["artgen", "--workdir", W, "export", "--out", afile])
    add("export --out under a regular file", E, lambda: ["artgen", "--workdir", W, "export", "--out", afile / "bundle"])
    add("export: truncated model.safetensors", E, lambda: ["artgen", "--workdir", trunc_ws(), "export"],
        protect=g(lambda: trunc_ws() / "bundles", lambda: trunc_ws() / "checkpoints/vqvae"), quick=True)
    add("export: config.json of garbage", E, lambda: ["artgen", "--workdir", garbage_ws(), "export"],
        protect=g(lambda: garbage_ws() / "bundles"))
    add("export: workdir is a file", E, lambda: ["artgen", "--workdir", afile, "export"])
    add("export --out a new folder", E, lambda: ["artgen", "--workdir", W, "export", "--out", T / "exp-new"], "ok",
        check=file_under(lambda: T / "exp-new" / "bundle.json"))

    # ------------------------------------------------------------ bench (bad options only)
    B = "bench"
    for label, opts in [("--captions 1", ["--captions", "1"]), ("--latency-runs 0", ["--latency-runs", "0"]),
                        ("--threads 0", ["--threads", "0"]), ("--encoders ','", ["--encoders", ","]),
                        ("--encoders bogus", ["--encoders", "bogus"]), ("--labels bogus", ["--labels", "bogus"]),
                        ("--bundle missing", ["--bundle", str(T / "nowhere")])]:
        add(f"bench --quick {label}", B, lambda o=opts: ["artgen", "--workdir", W, "bench", "--quick", *o, "-o", T / "bench"],
            timeout=60, quick=label == "--labels bogus")
    add("bench --quick --bundle with --encoders", B,
        lambda: ["artgen", "--workdir", W, "bench", "--quick", "--bundle", p.bundle("shipped"), "--encoders", "tiny"])
    add("bench --quick --bundle: bundle.json a list", B,
        lambda: ["artgen", "--workdir", W, "bench", "--quick", "--bundle", p.bundle("list"), "-o", T / "bench"], timeout=60,
        protect=g(lambda: p.bundle("list")))
    add("bench --quick: no trained encoder", B, lambda: ["artgen", "--workdir", p.empty("bench"), "bench", "--quick"],
        timeout=60)
    add("bench --quick -o a regular file", B, lambda: ["artgen", "--workdir", W, "bench", "--quick", "-o", afile],
        timeout=90)  # refused only when the report is written, after the whole bench (~45 s here)
    add("bench: workdir is a file", B, lambda: ["artgen", "--workdir", afile, "bench", "--quick"], timeout=60)

    # ------------------------------------------------------------ release-model (bad options only)
    M = "release-model"
    rel_ws = lambda: p.copy("release")  # noqa: E731
    for label, opts in [("--preset bogus", ["--preset", "bogus"]), ("--generator bogus", ["--generator", "bogus"]),
                        ("--annotations bogus", ["--annotations", "bogus"])]:
        add(f"release-model {label}", M, lambda o=opts: ["artgen", "--workdir", rel_ws(), "release-model", "--quick-bench", *o],
            timeout=30, protect=g(*[lambda s=s: rel_ws() / s for s in ("data", "checkpoints", "latents", "bundles")]),
            quick=label != "--generator bogus")
    add("release-model: workdir is a file", M, lambda: ["artgen", "--workdir", afile, "release-model", "--quick-bench"],
        timeout=30)

    # ------------------------------------------------------------ serve (bad options only: nothing may start serving)
    S = "serve"
    taken = {}

    def take_port() -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken["s"] = s

    def release_port() -> None:
        if "s" in taken:
            taken.pop("s").close()

    for label, opts in [("--port 0", ["--port", "0"]), ("--port 70000", ["--port", "70000"]),
                        ("--max-batch 0", ["--max-batch", "0"]), ("--max-batch 65", ["--max-batch", "65"]),
                        ("--queue 0", ["--queue", "0"]), ("--timeout-s 0", ["--timeout-s", "0"]),
                        ("--timeout-s nan", ["--timeout-s", "nan"]), ("--batch-window-ms nan", ["--batch-window-ms", "nan"]),
                        ("--batch-window-ms -1", ["--batch-window-ms", "-1"]),
                        ("--batch-window-ms inf --batching merge", ["--batch-window-ms", "inf", "--batching", "merge"]),
                        ("--batching bogus", ["--batching", "bogus"]), ("--threads 0", ["--threads", "0"]),
                        ("--host not.a.host.invalid", ["--host", "not.a.host.invalid"]),
                        ("--web missing folder", ["--web", str(T / "nowhere")]),
                        ("--bundle missing folder", ["--bundle", str(T / "nowhere")])]:
        add(f"serve {label}", S, lambda o=opts: ["artgen", "serve", "--port", free_port(), *o] if "--port" not in o
            else ["artgen", "serve", *o], timeout=15, quick=label in ("--port 0", "--max-batch 0"))
    for kind in ("list", "garbage", "flipped", "masked-mask0"):
        add(f"serve --bundle: {kind.replace('masked-', '')}", S,
            lambda k=kind: ["artgen", "serve", "--port", free_port(), "--bundle", p.bundle(k)], timeout=15,
            protect=g(lambda k=kind: p.bundle(k)), quick=kind == "flipped")
    add("serve --port in use", S, lambda: ["artgen", "serve", "--port", str(taken["s"].getsockname()[1])], timeout=20,
        setup=take_port, teardown=release_port)

    # ------------------------------------------------------------ web
    Wb = "web"
    for kind in ("list", "garbage", "flipped", "truncated", "masked-mask0", "no-tokenizer"):
        add(f"web --bundle: {kind.replace('masked-', '')}", Wb,
            lambda k=kind: ["artgen", "--workdir", p.empty("web"), "web", "--bundle", p.bundle(k), "--out", T / f"web-{k}"],
            protect=g(lambda k=kind: p.bundle(k)), quick=kind in ("list", "flipped"),
            check=file_under(lambda k=kind: T / f"web-{k}" / "index.html", exists=False))
    add("web --bundle missing folder", Wb, lambda: ["artgen", "--workdir", p.empty("web"), "web", "--bundle", T / "nowhere",
                                                   "--out", T / "web-missing"])
    add("web --out a regular file", Wb, lambda: ["artgen", "--workdir", p.empty("web"), "web", "--out", afile])
    add("web --out a folder of other files", Wb, lambda: ["artgen", "--workdir", p.empty("web"), "web", "--out", p.others],
        quick=True)
    add("web: workdir is a file", Wb, lambda: ["artgen", "--workdir", afile, "web"])

    # ------------------------------------------------------------ python -m export.runtime
    X = "export.runtime"
    add("runtime: shipped bundle", X, lambda: ["runtime", p.bundle("shipped"), "warm, vivid", "-o", out / "rt-ok.png"], "ok",
        check=png_written(out / "rt-ok.png"), protect=g(lambda: p.bundle("shipped")), quick=True)
    add("runtime: exported masked bundle", X, lambda: ["runtime", p.bundle("masked"), "warm, vivid", "-o", out / "rt-m.png"],
        "ok", check=png_written(out / "rt-m.png"), protect=g(lambda: p.bundle("masked")))
    for label, opts in [("--guidance nan", ["--guidance", "nan"]), ("--guidance inf", ["--guidance", "inf"]),
                        ("--temperature -1", ["--temperature", "-1"]), ("--temperature nan", ["--temperature", "nan"]),
                        ("-n 100000", ["-n", "100000"]), ("-n 0", ["-n", "0"]), ("--scale 100000", ["--scale", "100000"]),
                        ("--scale 0", ["--scale", "0"]), ("--steps 0", ["--steps", "0"]), ("--steps -1", ["--steps", "-1"]),
                        ("--top-k -1", ["--top-k", "-1"]), ("--seed -1", ["--seed", "-1"]),
                        ("--threads -1", ["--threads", "-1"]), ("-n abc", ["-n", "abc"])]:
        add(f"runtime {label}", X, lambda o=opts: ["runtime", p.bundle("shipped"), "warm, vivid", *o, "-o", out / "rt-bad.png"],
            check=file_under(lambda: out / "rt-bad.png", exists=False), protect=g(lambda: p.bundle("shipped")),
            quick=label in ("--guidance nan", "--scale 100000", "--temperature -1", "-n 100000", "--steps 0"))
    add("runtime --threads 0 (ONNX Runtime's choice)", X,
        lambda: ["runtime", p.bundle("shipped"), "warm", "--threads", "0", "-o", out / "rt-t0.png"], "ok",
        check=png_written(out / "rt-t0.png"), protect=g(lambda: p.bundle("shipped")))
    for label, opts in [("--steps 0", ["--steps", "0"]), ("--guidance nan", ["--guidance", "nan"]),
                        ("--top-k 5 (AR only)", ["--top-k", "5"])]:
        add(f"runtime masked {label}", X, lambda o=opts: ["runtime", p.bundle("masked"), "warm", *o, "-o", out / "rt-bad.png"],
            check=file_under(lambda: out / "rt-bad.png", exists=False), protect=g(lambda: p.bundle("masked")))
    for label, prompt in [("empty prompt", ""), ("10,000-character prompt", LONG_PROMPT)]:
        add(f"runtime: {label}", X, lambda t=prompt: ["runtime", p.bundle("shipped"), t, "-o", out / "rt-bad.png"],
            protect=g(lambda: p.bundle("shipped")), quick=True)
    for label, path in bad_outputs:
        add(f"runtime -o {label}", X, lambda q=path: ["runtime", p.bundle("shipped"), "warm", "-o", q()],
            protect=g(lambda: p.bundle("shipped")), quick=label in ("a folder", "/dev/full"))
    for kind, label in [("list", "bundle.json a list"), ("garbage", "bundle.json of garbage"), ("flipped", "flipped .onnx bytes"),
                        ("truncated", "truncated .onnx"), ("masked-mask0", "mask_id 0"), ("no-tokenizer", "tokenizer missing")]:
        add(f"runtime: {label}", X, lambda k=kind: ["runtime", p.bundle(k), "warm", "-o", out / "rt-bad.png"],
            protect=g(lambda k=kind: p.bundle(k)), quick=kind in ("list", "flipped", "masked-mask0"))
    add("runtime: bundle folder missing", X, lambda: ["runtime", T / "nowhere", "warm", "-o", out / "rt-bad.png"])
    add("runtime: bundle is a regular file", X, lambda: ["runtime", afile, "warm", "-o", out / "rt-bad.png"])
    return C


def free_port() -> int:
    """A port nothing listens on now (where a case that should be refused would serve)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _garbage_middle(path: Path) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[10] = b"{garbage that is not json"
    path.write_bytes(b"\n".join(lines))


# ---------------------------------------------------------------- report

def print_row(i: int, res: Result, probe: Probe) -> None:
    rc = "-" if res.rc is None else str(res.rc)
    print(f"{i:3d} {res.verdict:<9} {res.case.name[:52]:<52} exp {res.case.expect:<5} exit {rc:>4} {res.outcome:<9} "
          f"intact {res.intact:<14} {res.seconds:5.1f}s", flush=True)
    print(f"      $ {show_argv(res.argv, probe)[:240]}", flush=True)
    for note in res.notes:
        print(f"      ! {display(note, probe)[:240]}", flush=True)


def totals(results: list[Result]) -> dict[str, int]:
    kinds = [{k for k, _ in r.problems} for r in results]
    return {"cases": len(results), "tracebacks": sum("traceback" in k for k in kinds),
            "silent wrong results": sum("wrong" in k for k in kinds), "lost work": sum("lost" in k for k in kinds),
            "mismatches": sum("mismatch" in k for k in kinds)}


def markdown(results: list[Result], probe: Probe, command: str, seconds: float) -> str:
    t = totals(results)
    lines = [f"`{command}`, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, {seconds / 60:.1f} min.", "",
             f"**{t['cases']} cases: {t['tracebacks']} tracebacks, {t['silent wrong results']} silent wrong results, "
             f"{t['lost work']} lost work** ({t['mismatches']} other mismatches).", "",
             "| command | cases | refused in one line, exit 2, as expected | ran, as expected | traceback | wrong result "
             "| lost work | other |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.case.group, []).append(r)
    for group, rs in groups.items():
        kinds = [{k for k, _ in r.problems} for r in rs]
        err_ok = sum(r.case.expect == "error" and r.verdict == "pass" for r in rs)
        ok_ok = sum(r.case.expect == "ok" and r.verdict == "pass" for r in rs)
        lines.append(f"| {group} | {len(rs)} | {err_ok} | {ok_ok} | {sum('traceback' in k for k in kinds)} | "
                     f"{sum('wrong' in k for k in kinds)} | {sum('lost' in k for k in kinds)} | "
                     f"{sum('mismatch' in k for k in kinds)} |")
    failed = [r for r in results if r.verdict != "pass"]
    if failed:
        lines += ["", "Cases that did not pass:", "", "| case | command | expected | exit | result | work intact | why |",
                  "|---|---|---|---:|---|---|---|"]
        for r in failed:
            lines.append(f"| {r.case.name} | `{md(show_argv(r.argv, probe))}` | {r.case.expect} | {r.rc} | {r.outcome} | "
                         f"{r.intact} | {md(display('; '.join(why for _, why in r.problems), probe))[:300]} |")
    lines += ["", "<details><summary>Every case</summary>", "", "| case | expected | exit | result | work intact | verdict |",
              "|---|---|---:|---|---|---|"]
    for r in results:
        lines.append(f"| {md(r.case.name)} | {r.case.expect} | {'-' if r.rc is None else r.rc} | {r.outcome} | {r.intact} | "
                     f"{r.verdict} |")
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def md(s: str) -> str:
    return s.replace("|", "\\|").replace("`", "'")


def machine() -> str:
    import platform

    return f"{os.cpu_count()} CPU cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a subset: one or two cases per command and the damaged artefacts")
    ap.add_argument("--only", default=None, help="run only the cases whose name or command contains this text")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--json", type=Path, default=None, help="write every case's result as JSON here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the summary tables (docs/reliability.md) here")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="artgen-probe-"))
    probe = Probe(tmp)
    results: list[Result] = []
    try:
        probe.build()
        todo = [c for c in cases(probe) if (c.quick or not args.quick)
                and (args.only is None or args.only in c.name or args.only in c.group)]
        print(f"{len(todo)} cases", flush=True)
        for i, case in enumerate(todo, 1):
            res = run_case(probe, case)
            results.append(res)
            print_row(i, res, probe)
    finally:
        seconds = time.perf_counter() - t0
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    t = totals(results)
    print(f"\n{t['cases']} cases in {seconds / 60:.1f} min: {t['tracebacks']} tracebacks, "
          f"{t['silent wrong results']} silent wrong results, {t['lost work']} lost work, {t['mismatches']} mismatches")
    command = "python scripts/probe_inputs.py" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    if args.json:
        args.json.write_text(json.dumps({"command": command, "seconds": seconds, "totals": t, "cases": [
            {"name": r.case.name, "group": r.case.group, "command": show_argv(r.argv, probe), "expect": r.case.expect,
             "exit": r.rc, "result": r.outcome, "intact": r.intact, "verdict": r.verdict,
             "notes": [display(n, probe) for n in r.notes], "stderr_tail": display(r.stderr[-600:], probe)}
            for r in results]}, indent=2))
    if args.markdown:
        args.markdown.write_text(markdown(results, probe, command, seconds))
    return 1 if any(t[k] for k in ("tracebacks", "silent wrong results", "lost work", "mismatches")) else 0


if __name__ == "__main__":
    sys.exit(main())
