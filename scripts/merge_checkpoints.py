"""Weight-space merges of text-to-codes checkpoints of one architecture: a soup (the mean of
several fine-tunes of one model, Wortsman et al. 2022) or an extrapolation past a fine-tune
away from its start (coefficients that sum to 1, one of them negative: 1.5 x aligned - 0.5 x
cross-entropy moves half again as far as the alignment went; Zheng et al. 2024, "ExPO").

    python scripts/merge_checkpoints.py --out DIR A:0.5 B:0.5
    python scripts/merge_checkpoints.py --out DIR ALIGNED:1.5 CE:-0.5

The first checkpoint's config.json, encoder description and tokenizer go with the merge (its
sampling defaults too); the config records the merge under "summary" "merged_from". A probe:
read the merge with `scripts/ar_sampling_sweep.py --checkpoint DIR`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from artgen.models.text_to_codes import TextToCodes  # noqa: E402


def parse_part(text: str) -> tuple[str, float]:
    directory, _, coefficient = text.rpartition(":")
    try:
        return directory, float(coefficient)
    except ValueError:
        raise SystemExit(f"{text!r} is not DIR:coefficient (e.g. checkpoints/tiny-ar:0.5)") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="a new folder (refused if it exists)")
    ap.add_argument("parts", nargs="+", help="DIR:coefficient, the coefficients summing to 1")
    args = ap.parse_args()
    parts = [parse_part(p) for p in args.parts]
    if any(not d for d, _ in parts):
        raise SystemExit("every part is DIR:coefficient (e.g. checkpoints/tiny-ar:0.5)")
    if abs(sum(c for _, c in parts) - 1) > 1e-6:
        raise SystemExit(f"the coefficients sum to {sum(c for _, c in parts):g}, not 1")
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists: name a new folder (a merge never overwrites a checkpoint)")
    models = [(TextToCodes.from_pretrained(d), c) for d, c in parts]
    (first, config), _ = models[0]
    for (model, cfg), _ in models[1:]:
        if cfg["predictor"] != config["predictor"] or model.state_dict().keys() != first.state_dict().keys():
            raise SystemExit("the checkpoints are not of one architecture")
    merged = {k: sum(c * m.state_dict()[k].double() for (m, _), c in models).to(v.dtype) if v.is_floating_point() else v
              for k, v in first.state_dict().items()}
    first.load_state_dict(merged)
    config = {**config, "summary": {**config["summary"], "merged_from": [[d, c] for d, c in parts]}}
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    first.save_pretrained(partial, config)  # weights, config, the encoder's description and tokenizer
    partial.rename(out)
    print(f"merged {', '.join(f'{c:g} x {d}' for d, c in parts)} into {out} (sampling: {json.dumps(config.get('sampling', {}))})")


if __name__ == "__main__":
    main()
