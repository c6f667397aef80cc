"""The full bench of one exported bundle at other sampling defaults: for each guidance:temperature
setting, a copy of the bundle whose `bundle.json` says that setting (the graphs untouched) is
benched by `artgen bench --bundle` against the workspace's corpus, and the quality targets of
every setting are printed side by side. The FID, judges and references are cached in the
workspace after the first run, so each further setting costs ~3 minutes on 2 CPU cores.

    python scripts/bundle_sampling_bench.py --workdir W --bundle artgen/assets/tiny \\
        --settings 2.5:0.8,3:0.8,2:0.8,2.5:0.7,2.5:0.9 --out reports/sampling [--labels gt]

Writes OUT/g<guidance>_t<temperature>/report.{json,md,html} and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TARGETS = (  # the report's criteria, by the start of their names, and the column each becomes
    ("style_consistency / retrieval", "style ÷ retrieval"),
    ("attribute accuracy, seen adjectives", "seen attributes"),
    ("FID / VQ-VAE reconstruction FID", "FID ÷ ceiling"),
    ("styles covered", "styles / top share"),
    ("reasonable unseen-adjective control", "unseen control"),
)


def parse_settings(text: str) -> list[tuple[float, float]]:
    out = []
    for part in text.split(","):
        try:
            guidance, temperature = (float(x) for x in part.split(":"))
        except ValueError:
            raise SystemExit(f"error: setting {part!r} is not guidance:temperature (e.g. 2.5:0.8)") from None
        out.append((guidance, temperature))
    return out


def bundle_at(bundle: Path, guidance: float, temperature: float, where: Path) -> Path:
    """A copy of `bundle` whose sampling defaults are the given ones (its earlier bench left out)."""
    copy = where / f"g{guidance:g}_t{temperature:g}"
    shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns("bench"))
    meta = json.loads((copy / "bundle.json").read_text())
    meta["sampling"].update(guidance=guidance, temperature=temperature)
    (copy / "bundle.json").write_text(json.dumps(meta, indent=2))
    return copy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--bundle", default="artgen/assets/tiny")
    ap.add_argument("--settings", required=True, help="comma-separated guidance:temperature pairs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels", default="gt")
    args = ap.parse_args()
    settings, out = parse_settings(args.settings), Path(args.out)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for guidance, temperature in settings:
            copy = bundle_at(Path(args.bundle), guidance, temperature, Path(tmp))
            report_dir = out / copy.name
            cmd = [sys.executable, "-m", "artgen", "--workdir", args.workdir, "bench", "--bundle", str(copy),
                   "--labels", args.labels, "-o", str(report_dir)]
            print(f"guidance {guidance:g}, temperature {temperature:g}: {' '.join(cmd[1:])}", flush=True)
            subprocess.run(cmd, check=True)
            criteria = json.loads((report_dir / "report.json").read_text())["criteria"]
            measured = {name: next((c["measured"] for c in criteria if c["target"].startswith(prefix)), "–")
                        for prefix, name in TARGETS}
            rows.append((guidance, temperature, measured))
    lines = ["| guidance | temperature | " + " | ".join(name for _, name in TARGETS) + " |",
             "|---|---|" + "---|" * len(TARGETS)]
    lines += [f"| {g:g} | {t:g} | " + " | ".join(str(m[name]) for _, name in TARGETS) + " |" for g, t, m in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
