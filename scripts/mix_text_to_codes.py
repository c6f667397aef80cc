"""A text-to-codes checkpoint whose text encoder's weights come from one weights file and whose
generator's from another: which half of a model makes the difference between two trainings?

    python scripts/mix_text_to_codes.py --like CKPT --encoder-weights A.safetensors \\
        --predictor-weights B.safetensors --out NEW_CKPT

`--like` gives everything else (config, tokenizer, metrics); both weights files must hold a
complete model of that config (e.g. a checkpoint's `model.safetensors`, which holds the
moving average when training kept one, and its `train_state/model.safetensors`, the raw
weights). Read NEW_CKPT with `scripts/ar_sampling_sweep.py --checkpoint NEW_CKPT`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--like", required=True, type=Path)
    ap.add_argument("--encoder-weights", required=True, type=Path)
    ap.add_argument("--predictor-weights", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    enc, pred = load_file(str(args.encoder_weights)), load_file(str(args.predictor_weights))
    if set(enc) != set(pred):
        raise SystemExit(f"the two weights files hold different tensors ({len(set(enc) ^ set(pred))} differ): "
                         "give two trainings of the same config")
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: give a new directory")
    shutil.copytree(args.like, args.out, ignore=shutil.ignore_patterns("train_state", "train_state.old"))
    mixed = {k: (enc if k.startswith("encoder.") else pred)[k] for k in enc}
    save_file(mixed, str(args.out / "model.safetensors"))
    n_enc = sum(k.startswith("encoder.") for k in mixed)
    print(f"{args.out}: {n_enc} encoder tensors from {args.encoder_weights}, {len(mixed) - n_enc} generator "
          f"tensors from {args.predictor_weights}")


if __name__ == "__main__":
    main()
