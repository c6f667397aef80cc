"""Rendering the bench report: `report.json` is the source of truth; `report.md` and one
self-contained `report.html` (plots and sample grids embedded as base64 PNG) are drawn from it.

A renderer only: every figure is read from the report dict `bench.run` assembles (the plots
change units, no more), and nothing here imports torch or the bench's stages.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from artgen.files import atomic_write_bytes
from bench.prompts import SAMPLE_PROMPTS

# (column title, row key, format) of the main table; rows missing a key show "–".
SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("encoder", "name", "{}"),
    ("generator", "generator", "{}"),
    ("weights", "weights", "{}"),
    ("params (M)", "generation_parameters", "{:.2f}M"),
    ("fp32 MB", "generation_fp32_mb", "{:.1f}"),
    ("p50 ms", "latency_ms_p50", "{:.1f}"),
    ("p95 ms", "latency_ms_p95", "{:.1f}"),
    ("refine-8 p50 ms", "refine_8_ms_p50", "{:.1f}"),
    ("ORT fp32 p50 ms", "ort_fp32_ms_p50", "{:.1f}"),
    ("ORT int8 p50 ms", "ort_int8_ms_p50", "{:.1f}"),
    ("ORT int8 refine-8 p50 ms", "ort_int8_refine_8_ms_p50", "{:.1f}"),
    ("ORT int8 autoregressive p50 ms", "ort_int8_autoregressive_ms_p50", "{:.1f}"),
    ("int8 bundle MB", "bundle_int8_mb", "{:.2f}"),
    ("batch-16 img/s", "batch16_images_per_s", "{:.0f}"),
    ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
    ("FID", "fid", "{:.2f}"),
    ("KID", "kid", "{:.4f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("style cons.", "style_consistency", "{:.3f}"),
    ("styles covered", "styles_covered", "{}"),
    ("top style share", "top_style_share", "{:.2f}"),
    ("usage", "codebook_usage", "{:.3f}"),
    ("perplexity", "perplexity", "{:.0f}"),
    ("test CE", "test_ce", "{:.3f}"),
    ("CE kind", "test_ce_kind", "{}"),
    ("CE no text", "ce_no_text", "{:.3f}"),
    ("token acc", "token_accuracy", "{:.3f}"),
    ("attr acc", "attribute_accuracy", "{:.3f}"),
    ("unseen attr acc", "unseen_attribute_accuracy", "{:.3f}"),
    ("unseen pairs acc", "unseen_pair_accuracy", "{:.3f}"),
    ("interp. max/mean", "interpolation_smoothness", "{:.2f}"),
)
REFERENCE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("reference", "name", "{}"),
    ("FID", "fid", "{:.2f}"),
    ("KID", "kid", "{:.4f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("style cons.", "style_consistency", "{:.3f}"),
    ("styles covered", "styles_covered", "{}"),
    ("top style share", "top_style_share", "{:.2f}"),
    ("true style match", "true_style_match", "{:.3f}"),
    ("usage", "codebook_usage", "{:.3f}"),
    ("perplexity", "perplexity", "{:.0f}"),
    ("attr acc", "attribute_accuracy", "{:.3f}"),
    ("attr base rate", "attribute_base_rate", "{:.3f}"),
)


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key == "generation_parameters":
        return fmt.format(value / 1e6)
    if key == "styles_covered":  # "k of n": mode collapse reads at a glance
        return f"{value} of {row.get('styles_total', '?')}"
    return fmt.format(value)


def _table_rows(rows: Sequence[dict], columns) -> tuple[list[str], list[list[str]]]:
    return [c[0] for c in columns], [[_cell(r, key, fmt) for _, key, fmt in columns] for r in rows]


def _criteria_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    verdict = {True: "PASS", False: "FAIL", None: "not measured"}
    return (["target", "measured", "result", "note"],
            [[c["target"], c["measured"] if c["measured"] is not None else "–", verdict[c["pass"]], c["note"]]
             for c in report["criteria"]])


def summary_markdown(report: dict) -> str:
    """The encoder table alone, as Markdown (what the README quotes)."""
    return _markdown_table(*_table_rows(report["rows"], SUMMARY_COLUMNS))


def _markdown_table(head: list[str], body: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in body]
    return "\n".join(lines)


def _html_table(head: list[str], body: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


def _sampler(report: dict) -> str:
    """How the bench's images were sampled (reports from before `steps` existed were one-shot)."""
    c = report["meta"]["config"]
    if c.get("steps", 1) is None:  # a bundle's bench: the bundle's own sampler
        sampling = report["bundle"]["sampling"]
        shown = {k: sampling[k] for k in ("steps", "guidance", "temperature") if k in sampling} or sampling
        return "the bundle's own sampler (" + ", ".join(f"{k} {v}" for k, v in shown.items()) + ")"
    steps = c.get("steps", 1)
    how = "one-shot" if steps == 1 else f"{steps} steps"
    own = lambda k: "each generator's default" if c.get(k) is None else c.get(k)  # noqa: E731
    text = f"{how}, guidance {own('guidance')}, temperature {own('temperature')}"
    if any(r.get("generator") == "ar" for r in report.get("rows", [])):
        text = (f"masked generators: {text}; autoregressive ones: all positions one per step, guidance "
                f"{own('guidance')}, temperature {own('temperature')}")
    return text


def _meta_lines(report: dict) -> list[str]:
    m = report["meta"]
    v = m["versions"]
    return [
        f"Date: {m['date']}. Command: `{m['command']}`.",
        f"Machine: {m['machine']['cpu']}, {m['machine']['cores']} cores, Python {m['machine']['python']}, "
        f"torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}; {m['threads']} threads for every timing.",
        f"{m['captions']} test captions (one generated image each) against {m['real_test_images']} real test "
        f"paintings (of {m['test_split']}); labels: {m['label_source']}; sampling: {_sampler(report)}. "
        f"Bench time {m['seconds']:.0f} s.",
        "Weights: " + "; ".join(f"{k}: {d['weights']}" for k, d in report["encoders"].items()) + ".",
        f"Inception Score: absent — {report['fid_network']['inception_score_absent']}."
        if report["fid_network"]["inception_score_absent"] else "",
        f"Attribute judge: {report['attribute_judge']['model']} on {report['attribute_judge']['features']}, "
        f"trained on {report['attribute_judge']['trained_on']}; on real test paintings: macro accuracy "
        f"{report['attribute_judge']['macro']['accuracy']:.3f}, F1 {report['attribute_judge']['macro']['f1']:.3f}, "
        f"balanced accuracy {report['attribute_judge']['macro']['balanced_accuracy']:.3f} over "
        f"{report['attribute_judge']['adjectives']} adjectives.",
        _style_line(report.get("style_judge")),
        _precision_recall_line(report.get("precision_recall")),
        _bundle_line(report.get("bundle")),
    ]


def _style_line(judge: dict | None) -> str:
    if not judge:
        return ""
    if not judge["measured"]:
        return f"Style consistency: not measured — {judge['reason']}."
    cached = " (loaded from the workspace cache)" if judge.get("cached") else f", {judge.get('train_seconds')} s"
    unlabelled = f" with a style label ({judge['n_unlabelled']} without one left out)" if judge.get("n_unlabelled") else ""
    judged, captions = judge.get("captions_judged"), judge.get("captions")
    if judged is None or judged == captions:  # reports from before unlabelled paintings were left out judged every caption
        on = ""
    elif judged:
        on = f", judged on the {judged} of {captions} captions whose test painting has a style label"
    else:
        on = f" — {judge['reason']}"
    return (f"Style judge: {judge['model']}, trained on {judge['trained_on']}{cached}; on {judge['n_test']} real test "
            f"paintings{unlabelled}: accuracy {judge['accuracy']:.3f} over {judge['styles']} styles (chance "
            f"{judge['chance']:.3f}, commonest style {judge['majority_share']:.3f}). style_consistency: the share of "
            f"images judged of the style of the test painting whose caption prompted them{on}.")


def _precision_recall_line(pr: dict | None) -> str:
    if not pr:
        return ""
    return f"Precision / recall: {pr['method']}, k = {pr['k']}, on {pr['features']} against {pr['real']}."


def _bundle_line(bundle: dict | None) -> str:
    if not bundle:
        return ""
    return (f"Bundle bench: {bundle['path']} ({bundle.get('encoder')}, {bundle.get('generator', 'masked')} generator, "
            f"{bundle.get('precision')}, "
            f"{bundle.get('producer')}), every generated set through {bundle['runtime']}.")


def _style_rows(report: dict) -> tuple[list[str], list[list[str]]] | None:
    """Style consistency per prompted style: one row per style, the judge's accuracy on real test
    paintings of it, then each generated set and reference that was judged (None when none was)."""
    sets = [r for r in (*report["rows"], *report["references"]) if r.get("style_consistency_by_style")]
    if not sets:
        return None
    styles = sorted(set().union(*(r["style_consistency_by_style"] for r in sets)))
    judge = (report.get("style_judge") or {}).get("per_style", {})
    captions = {st: max(sum(r["style_confusion"].get(st, {}).values()) for r in sets) for st in styles}  # every set: the same captions
    head = ["prompted style", "captions", "judge on real test", *(r["name"] for r in sets)]
    body = [[st, str(captions[st]), f"{judge[st]:.2f}" if st in judge else "–",
             *(f"{r['style_consistency_by_style'][st]:.2f}" if st in r["style_consistency_by_style"] else "–" for r in sets)]
            for st in styles]
    return head, body


_STYLE_NOTE = ("The share of images judged of the style of the test painting whose caption prompted them, per "
               "that style (a low one next to a high judge accuracy is the generator's; the report.html plots "
               "which styles they were judged instead).")


def _not_measured(report: dict) -> list[str]:
    return [f"{m['what']}: {m['why']}" for m in report.get("not_measured", [])]


def render_markdown(report: dict) -> str:
    parts = ["# artgen bench", "", *[line for line in _meta_lines(report) if line], "",
             "## Encoders", "", summary_markdown(report), "",
             "## Reference rows", "", _markdown_table(*_table_rows(report["references"], REFERENCE_COLUMNS)), ""]
    if (by_style := _style_rows(report)) is not None:
        parts += ["## Style consistency by prompted style", "", _STYLE_NOTE, "", _markdown_table(*by_style), ""]
    if _not_measured(report):
        parts += ["## Not measured", "", *[f"- {line}" for line in _not_measured(report)], ""]
    parts += ["## Success criteria", "", _markdown_table(*_criteria_rows(report)), ""]
    return "\n".join(parts)


# ---------------------------------------------------------------------------- plots

def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_latency_vs_fid(report: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    # PyTorch eager where measured; a bundle's bench has only ONNX Runtime
    torch_latency = any(r.get("latency_ms_p50") is not None for r in report["rows"])
    for r in report["rows"]:
        ms = r.get("latency_ms_p50") if torch_latency else next(
            (r[k] for k in ("ort_int8_ms_p50", "ort_fp32_ms_p50", "ort_int8_autoregressive_ms_p50",
                            "ort_fp32_autoregressive_ms_p50") if r.get(k) is not None), None)
        if ms is None or r.get("fid") is None:
            continue
        ax.scatter(ms, r["fid"], s=60)
        ax.annotate(r["name"], (ms, r["fid"]), textcoords="offset points", xytext=(6, 4))
    styles = itertools.cycle(("--", ":", "-.", (0, (1, 3)), (0, (5, 2, 1, 2))))
    for ref in (r for r in report["references"] if r.get("fid") is not None):
        ax.axhline(ref["fid"], linestyle=next(styles), color="grey", linewidth=1, label=f"{ref['name']}: {ref['fid']:.1f}")
    ax.set_xlabel(f"text → image latency, batch 1, p50 (ms, {'PyTorch eager' if torch_latency else 'ONNX Runtime'})")
    ax.set_ylabel("FID vs real test paintings")
    ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:  # no reference row has an FID (a report without them)
        ax.legend(fontsize=7, loc="best")
    ax.set_title("latency vs FID per encoder")
    return _png(fig)


def plot_sizes(report: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = ("encoder_parameters", "predictor_parameters", "decoder_parameters")
    names = [r["name"] for r in report["rows"] if all(p in report["encoders"][r["name"]]["sizes"] for p in parts)]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bottom = np.zeros(len(names))
    for part in parts:
        values = np.array([report["encoders"][n]["sizes"][part] * 4 / 1e6 for n in names])
        ax.bar(names, values, bottom=bottom, label=part.replace("_parameters", ""))
        bottom += values
    ax.axhline(10, color="red", linestyle="--", linewidth=1, label="10 MB target")
    if not names:
        ax.text(0.5, 0.5, "not measured: parameter counts need the torch model", ha="center", transform=ax.transAxes)
    ax.set_ylabel("fp32 weights (MB)")
    ax.set_title("model size per encoder (encoder + predictor + decoder)")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_code_histogram(report: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    series = [(r["name"], r) for r in report["rows"]]
    series += [(r["name"], r) for r in report["references"] if "code_counts" in r and "ceiling" in r["name"]]
    for name, r in series:
        counts = np.sort(np.asarray(r["code_counts"], dtype=np.float64))[::-1]
        ax.plot(np.arange(1, len(counts) + 1), counts / max(counts.sum(), 1), label=f"{name} (ppl {r['perplexity']:.0f})")
    ax.set_xlabel("code rank")
    ax.set_ylabel("share of generated positions")
    ax.set_yscale("log")
    ax.set_title("generated-code histogram (sorted)")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_style_confusion(row: dict) -> bytes:
    """Prompted style (rows) against the style the judge sees in the generated image (columns),
    each row as shares of its captions: the diagonal is style_consistency, a bright column a style
    the generator falls back to."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = row["style_confusion"]
    prompted = sorted(confusion)
    judged = sorted(set(prompted).union(*(confusion[t] for t in prompted)))
    counts = np.array([[confusion[t].get(j, 0) for j in judged] for t in prompted], dtype=np.float64)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.42 * len(judged) + 2.2, 0.36 * len(prompted) + 1.6))
    im = ax.imshow(shares, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(judged)), judged, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(prompted)), [f"{t} ({int(c)})" for t, c in zip(prompted, counts.sum(1))], fontsize=7)
    ax.set_xlabel("style the judge sees in the generated image")
    ax.set_ylabel("style of the caption's test painting (captions)")
    ax.set_title(f"style confusion: {row['name']} (consistency {row['style_consistency']:.2f})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of the row")
    return _png(fig)


def sample_grid_png(images: np.ndarray, prompts: Sequence[str], title: str) -> bytes:
    """A labelled row of the sample prompts' images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(1.45 * n, 1.9))
    for ax, im, p in zip(np.atleast_1d(axes), images, prompts):
        ax.imshow(im, interpolation="nearest")
        ax.set_title(p.replace(", ", ",\n"), fontsize=6)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def _img_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def render_html(report: dict, plots: dict[str, bytes], grids: dict[str, bytes]) -> str:
    meta = "".join(f"<p>{html.escape(line)}</p>" for line in _meta_lines(report) if line)
    figures = "".join(f"<figure>{_img_tag(png, name)}<figcaption>{html.escape(name)}</figcaption></figure>"
                      for name, png in plots.items())
    samples = "".join(f"<h3>{html.escape(enc)}</h3>{_img_tag(png, f'sample grid {enc}')}" for enc, png in grids.items())
    missing = "".join(f"<li>{html.escape(line)}</li>" for line in _not_measured(report))
    not_measured = f"<h2>Not measured</h2><ul>{missing}</ul>" if missing else ""
    styles = _style_rows(report)
    by_style = (f"<h2>Style consistency by prompted style</h2><p>{html.escape(_STYLE_NOTE)}</p>{_html_table(*styles)}"
                if styles else "")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}"
             "figure{display:inline-block;margin:0 1em 1em 0}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>artgen bench</title><style>{style}</style>"
            f"</head><body><h1>artgen bench</h1>{meta}"
            f"<h2>Encoders</h2>{_html_table(*_table_rows(report['rows'], SUMMARY_COLUMNS))}"
            f"<h2>Reference rows</h2>{_html_table(*_table_rows(report['references'], REFERENCE_COLUMNS))}"
            f"{by_style}{not_measured}"
            f"<h2>Success criteria</h2>{_html_table(*_criteria_rows(report))}"
            f"<h2>Plots</h2>{figures}<h2>Samples: the same 8 prompts, seed {report['meta']['config']['seed']}, "
            f"{_sampler(report)}</h2>{samples}</body></html>")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(o):
    """NaN and infinities become null: report.json stays strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def write_reports(report: dict, samples: dict[str, np.ndarray], out_dir: Path) -> dict[str, Path]:
    """report.json, report.md, report.html and samples_<encoder>.png into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grids = {enc: sample_grid_png(images, SAMPLE_PROMPTS, enc) for enc, images in samples.items()}
    for enc, png in grids.items():
        atomic_write_bytes(out_dir / f"samples_{enc}.png", png)
    plots = {"latency vs FID per encoder": plot_latency_vs_fid(report),
             "model size per encoder": plot_sizes(report),
             "generated-code histogram": plot_code_histogram(report)}
    for row in report["rows"]:
        if row.get("style_confusion"):
            plots[f"style confusion: {row['name']}"] = plot_style_confusion(row)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    atomic_write_bytes(paths["json"], json.dumps(_finite(report), indent=1, default=_json_default, allow_nan=False).encode())
    atomic_write_bytes(paths["md"], render_markdown(report).encode())
    atomic_write_bytes(paths["html"], render_html(report, plots, grids).encode())
    return paths
