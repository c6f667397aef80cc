"""Annotation quality: compare an annotation file with the corpus ground truth (or with
another annotation file). Writes `reports/annotation/report.json` (the source of truth,
top-level `micro_f1`), `report.md` rendered from it, and `f1_per_adjective.png`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from artgen.data.vocabulary import ADJECTIVES, BY_WORD, FACETS
from artgen.errors import ArtgenError
from artgen.workspace import Workspace


def _read_file(path: Path) -> dict[str, list[str]]:
    from artgen.data.captions import read_labels

    if not path.exists():
        raise ArtgenError(f"no annotation file at {path}: give an existing JSONL file written by `artgen annotate`")
    if path.is_dir():  # a pipe or /dev/fd/N (process substitution) is read as a file
        raise ArtgenError(f"{path} is a folder, not an annotation file: give a JSONL file such as {path / 'heuristic.jsonl'}")
    return read_labels(path)


def _labels(ws: Workspace, source: str) -> tuple[dict[str, list[str]], str]:
    from artgen.data.captions import load_labels

    if source in ("auto", "heuristic", "openai", "gt"):
        return load_labels(ws, source)
    return _read_file(Path(source)), str(source)


def _split_ids(ws: Workspace, split: str) -> set[str] | None:
    """Ids of the split, or None (no filter) for `all`."""
    from artgen.data.corpus import load_corpus

    if split not in ("train", "test", "all"):
        raise ArtgenError(f"unknown split {split!r}: use --split train, test or all")
    if split == "all":
        return None
    return set(load_corpus(ws.data)[split]["id"])


def facet_label(adjectives: list[str], facet: str) -> str:
    """The image's word in one facet (the first, in vocabulary order), or 'none'."""
    for a in ADJECTIVES:
        if BY_WORD[a].facet == facet and a in adjectives:
            return a
    return "none"


def compare(pred: dict[str, list[str]], ref: dict[str, list[str]], ids: list[str]) -> dict:
    """Agreement of `pred` with `ref` on `ids` (present in both)."""
    from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

    yp = np.array([[a in pred[i] for a in ADJECTIVES] for i in ids], dtype=np.int8)  # (N, V)
    yr = np.array([[a in ref[i] for a in ADJECTIVES] for i in ids], dtype=np.int8)
    p, r, f, support = precision_recall_fscore_support(yr, yp, average=None, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(yr, yp, average="micro", zero_division=0)
    present = (yr.sum(0) + yp.sum(0)) > 0  # macro over adjectives either side uses
    macro_f1 = float(f[present].mean()) if present.any() else 0.0
    per_adjective = {
        a: {"facet": BY_WORD[a].facet, "precision": round(float(p[j]), 4), "recall": round(float(r[j]), 4),
            "f1": round(float(f[j]), 4), "support": int(support[j]), "predicted": int(yp[:, j].sum())}
        for j, a in enumerate(ADJECTIVES) if present[j]
    }
    kappa = {}
    for facet in FACETS:
        a = [facet_label(ref[i], facet) for i in ids]
        b = [facet_label(pred[i], facet) for i in ids]
        if len(set(a) | set(b)) < 2:
            kappa[facet] = None  # one label everywhere: kappa is undefined
            continue
        kappa[facet] = round(float(cohen_kappa_score(a, b)), 4)
    return {
        "n_images": len(ids), "micro_precision": round(float(mp), 4), "micro_recall": round(float(mr), 4),
        "micro_f1": round(float(mf), 4), "macro_f1": round(macro_f1, 4),
        "mean_adjectives": {"labels": round(float(yp.sum(1).mean()), 3), "against": round(float(yr.sum(1).mean()), 3)},
        "kappa_per_facet": kappa, "per_adjective": per_adjective,
        "label_frequency": {a: {"labels": m["predicted"], "against": m["support"]} for a, m in per_adjective.items()},
    }


def render_markdown(rep: dict) -> str:
    lines = [
        "# Annotation quality", "",
        f"`{rep['labels']}` compared with `{rep['against']}` on the {rep['split']} split: "
        f"{rep['n_images']} images ({rep['n_missing']} of the split have no label and are left out).", "",
        "| metric | value |", "|---|---|",
        f"| micro-F1 | {rep['micro_f1']:.3f} |", f"| micro precision | {rep['micro_precision']:.3f} |",
        f"| micro recall | {rep['micro_recall']:.3f} |", f"| macro-F1 | {rep['macro_f1']:.3f} |",
        f"| adjectives per image | {rep['mean_adjectives']['labels']:.2f} (reference {rep['mean_adjectives']['against']:.2f}) |",
        "", "## Cohen's kappa per facet", "", "| facet | kappa |", "|---|---|",
    ]
    for facet, k in rep["kappa_per_facet"].items():
        lines.append(f"| {facet} | {'n/a' if k is None else f'{k:.3f}'} |")
    lines += ["", "## Per adjective (label frequency: `support` in the reference, `predicted` in the labels)", "",
              "| adjective | facet | precision | recall | F1 | support | predicted |", "|---|---|---|---|---|---|---|"]
    for a, m in sorted(rep["per_adjective"].items(), key=lambda kv: -kv[1]["support"]):
        lines.append(f"| {a} | {m['facet']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
                     f"| {m['support']} | {m['predicted']} |")
    lines += ["", f"![per-adjective F1]({Path(rep['paths']['png']).name})", ""]
    return "\n".join(lines)


def plot_f1(rep: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(rep["per_adjective"].items(), key=lambda kv: kv[1]["f1"])
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(items) + 1.2))
    ax.barh([a for a, _ in items], [m["f1"] for _, m in items], color="#4a78a8")
    ax.axvline(rep["micro_f1"], color="#c0504d", ls="--", lw=1, label=f"micro-F1 {rep['micro_f1']:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title(f"{rep['labels']} vs {rep['against']} ({rep['split']}, {rep['n_images']} images)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)


def write_report(ws: Workspace, labels: str = "auto", against: str = "gt", split: str = "test") -> dict:
    """Compare, write report.json / report.md / f1_per_adjective.png; returns the report dict."""
    pred, pred_name = _labels(ws, labels)
    ref, ref_name = _labels(ws, against)
    keep = _split_ids(ws, split)
    universe = [i for i in ref if keep is None or i in keep]
    ids = [i for i in universe if i in pred]
    if not ids:
        raise ArtgenError(f"{pred_name} and {ref_name} share no {split} images: annotate that split first "
                          f"(`artgen annotate --split {split}`)")
    rep = {"labels": pred_name, "against": ref_name, "split": split, **compare(pred, ref, ids),
           "n_missing": len(universe) - len(ids)}
    out_dir = ws.reports / "annotation"
    out_dir.mkdir(parents=True, exist_ok=True)
    rep["paths"] = {"json": str(out_dir / "report.json"), "md": str(out_dir / "report.md"),
                    "png": str(out_dir / "f1_per_adjective.png")}
    plot_f1(rep, out_dir / "f1_per_adjective.png")
    (out_dir / "report.md").write_text(render_markdown(rep))
    tmp = out_dir / "report.json.tmp"
    tmp.write_text(json.dumps(rep, indent=1) + "\n")
    tmp.replace(out_dir / "report.json")
    return rep
