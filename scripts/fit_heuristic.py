"""Refit the offline annotator's thresholds and linear scores on a corpus's TRAIN split.

    artgen data synth                      # or: ARTGEN_HOME=/tmp/w artgen data synth
    python scripts/fit_heuristic.py        # writes annotate/heuristic_model.json

Only the train split is read, so `artgen annotate report` on the test split measures
held-out quality. The shipped model was fitted on the default corpus (9,735 paintings,
seed 0, 64 px).
"""

from __future__ import annotations

import argparse
import time

from annotate.heuristic import MODEL_PATH, RULES, fit_model
from artgen.data.corpus import decode_image, load_corpus
from artgen.data.image_stats import statistics_matrix
from artgen.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=None, help="workspace holding data/ (default: ARTGEN_HOME or ./artgen-work)")
    ap.add_argument("--out", default=str(MODEL_PATH))
    args = ap.parse_args()
    ws = Workspace.resolve(args.workdir)
    train = load_corpus(ws.data)["train"]
    t0 = time.perf_counter()
    stats = statistics_matrix([decode_image(im) for im in train["image"]])
    labels = list(train["gt_adjectives"])
    model = fit_model(stats, labels, fitted_on=f"train split, {len(labels)} paintings")
    model.save(args.out)
    print(f"fitted on {len(labels)} train paintings in {time.perf_counter() - t0:.1f} s -> {args.out}")
    for adj, stat, direction in RULES:
        print(f"  {adj:12s} {stat} {'>=' if direction > 0 else '<='} {model.thresholds[adj]:.3f}")
    print(f"  linear scores for {len(model.words)} adjectives: {', '.join(model.words)}")


if __name__ == "__main__":
    main()
