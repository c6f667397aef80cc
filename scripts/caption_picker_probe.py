"""Does a caption picker (`artgen/models/caption_picker.py`: a contrastive image / words dual encoder
trained on the real train paintings and their adjectives, no style labels) keep the right candidate
more often than the bundle's code scorer? The bundle's torch-free runtime draws M candidates per
probe caption exactly as its best-of-N sampler does (candidate j on noise stream j); each rule
keeps one of the first 2 and of all M; the bench's style judge and attribute judge score the kept
images, beside the first candidate alone and the oracle (a right-style candidate whenever one was
drawn: the ceiling of any rule).

    python scripts/caption_picker_probe.py --workdir W --bundle artgen/assets/tiny [--captions 1000] [--m 4]

Rules: the scorer's (mean log-sigmoid of the asked adjectives, the shipped rule); the picker's
cosine of the decoded candidate to the asked words; the picker's cosine to the mean embedding of
the train paintings labelled with exactly the asked set (else the nearest sets by Jaccard,
"prototype"); and the scorer's rule plus the picker's (each standardised). The drawn candidates
(codes, scorer logits, decoded images, judged styles) are cached in --cache, the trained picker
in --picker-dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from ar_probe_common import probe_set
from decoder_probe import judged_setup, score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from artgen.data.corpus import decode_image, load_corpus  # noqa: E402
from artgen.models.caption_picker import PickerConfig, train_caption_picker  # noqa: E402
from artgen.workspace import Workspace  # noqa: E402
from export.runtime import Runtime, best_candidates, prompt_words  # noqa: E402


def draw(rt: Runtime, probe, m: int, batch: int, cache: Path, bundle: str):
    """(codes (C, M, h, w), scorer logits (C, M, V), images (C, M, H, W, 3), styles (C, M)), cached."""
    d = rt.meta["sampling"]
    captions, C = probe.captions, len(probe.captions)
    key = json.dumps({"bundle": str(Path(bundle).resolve()), "meta": rt.meta, "captions": captions, "m": m}, sort_keys=True)
    if cache.is_file() and (z := np.load(cache)) and str(z["key"]) == key:
        print(f"candidates from {cache}")
        return z["codes"], z["logits"], z["images"], z["styles"]
    start = time.perf_counter()
    codes = []
    for s in range(0, C, batch):
        states, mask = rt.encode(captions[s:s + batch])
        seeds = list(range(s, min(s + batch, C)))
        codes.append(np.stack([rt._sample_ar(states, mask, seeds, d["guidance"], d["temperature"], d.get("top_k", 0), j)
                               for j in range(m)], 1))
        print(f"  {min(s + batch, C)} / {C} captions, {time.perf_counter() - start:.0f} s", flush=True)
    codes = np.concatenate(codes)
    flat = codes.reshape(C * m, *codes.shape[2:])
    logits = rt.sessions["scorer"].run(None, {"codes": flat})[0].reshape(C, m, -1)
    images = np.concatenate([rt.decode(flat[s:s + 500]) for s in range(0, len(flat), 500)])
    styles = np.concatenate([probe.judge.predict(list(images[s:s + 500])) for s in range(0, len(images), 500)]).reshape(C, m)
    images = images.reshape(C, m, *images.shape[1:])
    print(f"drew {C} x {m} candidates in {time.perf_counter() - start:.0f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, codes=codes, logits=logits, images=images, styles=styles, key=key)
    return codes, logits, images, styles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--bundle", default="artgen/assets/tiny")
    ap.add_argument("--captions", type=int, default=1000)
    ap.add_argument("--m", type=int, default=4, help="candidates drawn per caption, at least 2")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=PickerConfig.epochs)
    ap.add_argument("--widths", default=",".join(map(str, PickerConfig.widths)), help="the image tower's conv stages")
    ap.add_argument("--input-size", type=int, default=PickerConfig.input_size)
    ap.add_argument("--partial-share", type=float, default=PickerConfig.partial_share,
                    help="share of training rows whose words are cut to a random part (prompts of one or two words)")
    ap.add_argument("--seeds", type=int, default=1, help="train this many pickers (seeds 0..n-1) and add the rule of their mean cosine")
    ap.add_argument("--cache", default=None, help="the .npz of drawn candidates (default: W/cache/caption_picker.npz)")
    args = ap.parse_args()
    if args.m < 2:
        raise SystemExit("--m must be at least 2: the probe compares picks among candidates")
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    probe = probe_set(ws, args.captions)
    rt = Runtime(args.bundle)
    if "scorer" not in rt.sessions:
        raise SystemExit(f"{args.bundle} has no scorer graph (the probe compares pickers with the code scorer's rule): export "
                         "one with --candidates 2 in a workspace with `artgen train scorer` and no caption picker")
    adjectives, synonyms = rt.meta["scorer"]["adjectives"], rt.meta["scorer"].get("synonyms", {})
    captions, C, M = probe.captions, len(probe.captions), args.m
    cache = Path(args.cache) if args.cache else ws.root / "cache" / "caption_picker.npz"
    codes, logits, images, styles = draw(rt, probe, M, args.batch, cache, args.bundle)

    train = load_corpus(ws.data)["train"]
    train_images = np.stack([decode_image(im) for im in train["image"]])
    train_sets = [[a for a in words if a in adjectives] for words in train["gt_adjectives"]]
    pickers = []
    for seed in range(args.seeds):
        picker, record = train_caption_picker(train_images, train_sets, adjectives, PickerConfig(
            epochs=args.epochs, widths=tuple(int(w) for w in args.widths.split(",")), input_size=args.input_size, seed=seed,
            partial_share=args.partial_share),
            show_progress=True)
        print(f"picker (seed {seed}): {record['train_seconds']} s, final loss {record['final_loss']:.3f}, "
              f"{sum(p.numel() for p in picker.parameters()) / 1e3:.0f}k parameters")
        pickers.append(picker)
    picker = pickers[0]

    asked_sets = [prompt_words(c, adjectives, synonyms) for c in captions]
    asked = picker.multi_hot(asked_sets).numpy()
    flat_images = images.reshape(C * M, *images.shape[2:])
    cosine = picker.score(flat_images, np.repeat(asked, M, axis=0)).reshape(C, M)
    with torch.no_grad():  # prototypes: the mean image embedding of the train paintings of each set
        emb = torch.cat([picker.image(picker.pixels(train_images[s:s + 500])) for s in range(0, len(train_images), 500)]).numpy()
        cand = torch.cat([picker.image(picker.pixels(flat_images[s:s + 500])) for s in range(0, len(flat_images), 500)]).numpy()
    by_set: dict[frozenset, list[int]] = {}
    for i, words in enumerate(train_sets):
        by_set.setdefault(frozenset(words), []).append(i)
    sets = list(by_set)

    def prototype(s: frozenset) -> np.ndarray:
        if s not in by_set:
            near = max(len(s & k) / max(len(s | k), 1) for k in sets)
            members = [i for k in sets if len(s & k) / max(len(s | k), 1) == near for i in by_set[k]]
        else:
            members = by_set[s]
        p = emb[members].mean(0)
        return p / (np.linalg.norm(p) + 1e-9)

    protos = np.stack([prototype(frozenset(s)) for s in asked_sets])
    proto_score = (cand.reshape(C, M, -1) * protos[:, None]).sum(-1)
    shipped = np.stack([best_candidates(logits[:, :n].transpose(1, 0, 2), captions, adjectives, synonyms) for n in (2, M)])
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    lp = -np.logaddexp(0.0, -logits)
    asked_mean = (lp * asked[:, None]).sum(-1) / np.maximum(asked.sum(-1), 1)[:, None]
    rules = {"picker: cosine to the asked words": cosine, "picker: cosine to the train prototype of the set": proto_score,
             "scorer + picker (standardised)": z(asked_mean) + z(cosine)}
    if len(pickers) > 1:
        rules[f"{len(pickers)} pickers (seeds): mean cosine to the asked words"] = np.mean(
            [p.score(flat_images, np.repeat(asked, M, axis=0)).reshape(C, M) for p in pickers], axis=0)

    hit = styles == np.array(probe.targets)[:, None]
    attr_judge, requested, _ = judged_setup(ws, probe)
    rows = np.arange(C)
    d = rt.meta["sampling"]
    print(f"bundle {args.bundle}: guidance {d['guidance']}, temperature {d['temperature']}; {C} test captions, {M} candidates; "
          "each candidate alone: " + ", ".join(f"{h:.3f}" for h in hit.mean(0)))
    print("| candidates | kept by | style consistency | seen attributes | styles covered | top style share | oracle |\n"
          "|---|---|---|---|---|---|---|")
    for n in sorted({1, 2, M}):
        if n == 1:
            picks = {"the first": np.zeros(C, dtype=int)}
        else:
            picks = {"scorer: mean log p of the asked adjectives (shipped)": shipped[0 if n == 2 else 1]}
            picks.update({name: s[:, :n].argmax(1) for name, s in rules.items()})
        for how, best in picks.items():
            accuracy, style, _ = score(images[rows, best], attr_judge, requested, probe.judge, probe.targets)
            counts = Counter(styles[rows, best])
            print(f"| {n} | {how} | {style:.3f} | {accuracy:.3f} | {len(counts)} | {counts.most_common(1)[0][1] / C:.2f} "
                  f"| {hit[:, :n].any(1).mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
