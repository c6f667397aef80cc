"""Which rule should the bundle's code scorer keep a candidate by? A probe of the pick itself, not
of the scorer: the bundle's torch-free runtime draws M candidates per probe caption exactly as
its best-of-N sampler does (candidate j on noise stream j), its own scorer graph (scorer.onnx)
scores each, and several picking rules over the same logits are compared by the bench's style
judge and attribute judge, beside the first candidate alone and the oracle (a candidate of the
right style whenever one is drawn: the ceiling of any rule).

Rules over the scorer's adjective probabilities p (sigmoid of its logits) and the asked words A
(the prompt's adjectives, `export.runtime.prompt_words`):
- asked: mean log p over A (the shipped rule, `best_candidates`);
- caption: the Bernoulli log-likelihood of the whole caption, log p over A plus log(1 - p) over
  every other adjective — a candidate that also shows words nobody asked for loses;
- asked+w*unasked: the mean over A plus w times the mean log(1 - p) over the other adjectives;
- prototype: the cosine between the candidate's standardised logits and the mean of those of
  the train grids (and mirror images) labelled with exactly A, else with the sets nearest A
  (Jaccard) — "looks like the paintings of these words" to the scorer;
- with --checkpoint (the bundle's torch model): the generator's own text agreement, teacher
  forced, sum over the grid of log p(code | text) - log p(code | no text), alone and added to
  the shipped rule (each standardised over all candidates).

    python scripts/rerank_rule_probe.py --workdir W --bundle artgen/assets/tiny [--captions 1000] [--m 4] [--checkpoint DIR]

The drawn candidates, their scorer logits and judged styles are cached in --cache (an .npz), so
rules can be added and re-read without drawing again.
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
from ar_probe_common import labelled_grids, probe_set
from decoder_probe import judged_setup, score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from artgen.workspace import Workspace  # noqa: E402
from export.runtime import Runtime, prompt_words  # noqa: E402


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def rules(logits: np.ndarray, asked: np.ndarray, weights: list[float]) -> dict[str, np.ndarray]:
    """Rule name -> (C, M) score of each candidate; `logits` (C, M, V), `asked` (C, V) multi-hot."""
    lp, lq = log_sigmoid(logits), log_sigmoid(-logits)  # log p, log (1 - p)
    a = asked[:, None, :]
    n_asked = np.maximum(a.sum(-1), 1)
    n_other = np.maximum((1 - a).sum(-1), 1)
    asked_mean = (lp * a).sum(-1) / n_asked
    other_mean = (lq * (1 - a)).sum(-1) / n_other
    out = {"asked (shipped)": asked_mean, "caption": (lp * a).sum(-1) + (lq * (1 - a)).sum(-1)}
    for w in weights:
        out[f"asked + {w:g} x unasked"] = asked_mean + w * other_mean
    return out


def prototype_scores(rt: Runtime, ws: Workspace, logits: np.ndarray, asked: list[frozenset], adjectives: list[str]) -> np.ndarray:
    """(C, M): cosine of each candidate's standardised scorer logits to the mean of the train grids'
    labelled with the caption's adjective set (else the nearest sets by Jaccard)."""
    grids = labelled_grids(ws)
    codes = grids.train_codes.astype(np.int64)
    train = np.concatenate([rt.sessions["scorer"].run(None, {"codes": codes[s:s + 500]})[0] for s in range(0, len(codes), 500)])
    mu, sd = train.mean(0), train.std(0) + 1e-6
    by_set: dict[frozenset, list[int]] = {}
    for i, words in enumerate(grids.train_labels):
        if key := frozenset(a for a in words if a in adjectives):
            by_set.setdefault(key, []).append(i)
    sets = list(by_set)

    def members(s: frozenset) -> list[int]:
        if s in by_set:
            return by_set[s]
        near = max(len(s & k) / len(s | k) for k in sets)
        return [i for k in sets if len(s & k) / len(s | k) == near for i in by_set[k]]

    proto = np.stack([((train[members(s)] - mu) / sd).mean(0) for s in asked])[:, None]  # (C, 1, V)
    q = (logits - mu) / sd
    return (q * proto).sum(-1) / np.linalg.norm(q, axis=-1) / np.linalg.norm(proto, axis=-1)


def text_agreement(checkpoint: str, captions: list[str], codes: np.ndarray, batch: int = 50) -> np.ndarray:
    """(C, M): sum over each candidate's grid of log p(code | caption) - log p(code | no text), teacher forced."""
    from artgen.models.generators import generator_kind
    from artgen.models.text_to_codes import TextToCodes

    model, _ = TextToCodes.from_pretrained(checkpoint)
    model.eval()
    kind, C, M = generator_kind("ar"), *codes.shape[:2]
    out = np.zeros((C, M))
    with torch.no_grad():
        for s in range(0, C, batch):
            tokens = model.encoder.tokenize(captions[s:s + batch])
            states = model.encoder(tokens.ids, tokens.mask)
            for j in range(M):
                x = torch.from_numpy(codes[s:s + batch, j].reshape(len(tokens.ids), -1)).long()
                inputs = kind.evaluation_inputs(x, model.predictor.cfg)
                with_text, without = (model.predictor(inputs, states, m).log_softmax(-1).gather(2, x[..., None]).sum((1, 2))
                                      for m in (tokens.mask, torch.zeros_like(tokens.mask)))
                out[s:s + batch, j] = (with_text - without).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--bundle", default="artgen/assets/tiny")
    ap.add_argument("--captions", type=int, default=1000)
    ap.add_argument("--m", type=int, default=4, help="candidates drawn per caption, at least 2 (picks compared at 2 and at m)")
    ap.add_argument("--weights", default="0.5,1,2,4", help="w of the asked + w x unasked rules")
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--checkpoint", default=None, help="the bundle's torch model: adds the rules of its own text agreement")
    ap.add_argument("--cache", default=None, help="the .npz of drawn candidates (default: W/cache/rerank_rules.npz)")
    args = ap.parse_args()
    if args.m < 2:
        raise SystemExit("--m must be at least 2: the probe compares picks among candidates")
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    probe = probe_set(ws, args.captions)
    rt = Runtime(args.bundle)
    if "scorer" not in rt.sessions:
        raise SystemExit(f"{args.bundle} has no scorer graph: export it with --candidates 2")
    meta = rt.meta
    adjectives, synonyms = meta["scorer"]["adjectives"], meta["scorer"].get("synonyms", {})
    d = meta["sampling"]
    captions, C, M = probe.captions, len(probe.captions), args.m
    cache = Path(args.cache) if args.cache else ws.root / "cache" / "rerank_rules.npz"
    key = json.dumps({"bundle": str(Path(args.bundle).resolve()), "meta": meta, "captions": captions}, sort_keys=True)
    if cache.is_file() and (z := np.load(cache)) and "key" in z and str(z["key"]) == key and z["codes"].shape[:2] == (C, M):
        codes, logits, styles = z["codes"], z["logits"], z["styles"]
        print(f"candidates from {cache}")
    else:
        start = time.perf_counter()
        codes = []
        for s in range(0, C, args.batch):
            states, mask = rt.encode(captions[s:s + args.batch])
            seeds = list(range(s, min(s + args.batch, C)))
            codes.append(np.stack([rt._sample_ar(states, mask, seeds, d["guidance"], d["temperature"], d.get("top_k", 0), j)
                                   for j in range(M)], 1))
        codes = np.concatenate(codes)  # (C, M, h, w)
        flat = codes.reshape(C * M, *codes.shape[2:])
        logits = rt.sessions["scorer"].run(None, {"codes": flat})[0].reshape(C, M, -1)
        styles = np.concatenate([probe.judge.predict(list(rt.decode(flat[s:s + 500]))) for s in range(0, len(flat), 500)]).reshape(C, M)
        print(f"drew {C} x {M} candidates in {time.perf_counter() - start:.0f} s")
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, codes=codes, logits=logits, styles=styles, key=key)
    asked = np.zeros((C, len(adjectives)))
    for i, c in enumerate(captions):
        for a in prompt_words(c, adjectives, synonyms):
            asked[i, adjectives.index(a)] = 1.0
    hit = styles == np.array(probe.targets)[:, None]
    attr_judge, requested, _ = judged_setup(ws, probe)
    rows = np.arange(C)
    print(f"bundle {args.bundle}: guidance {d['guidance']}, temperature {d['temperature']}; {C} test captions, "
          f"{M} candidates; each candidate alone: " + ", ".join(f"{h:.3f}" for h in hit.mean(0)))
    print("| candidates | kept by | style consistency | seen attributes | styles covered | top style share | oracle |\n"
          "|---|---|---|---|---|---|---|")
    weights = [float(w) for w in args.weights.split(",") if w]
    scores = rules(logits, asked, weights)
    asked_sets = [frozenset(a for a, on in zip(adjectives, row) if on) for row in asked]
    scores["prototype"] = prototype_scores(rt, ws, logits, asked_sets, adjectives)
    if args.checkpoint:
        z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
        agreement = text_agreement(args.checkpoint, captions, codes)
        scores["own text agreement"] = agreement
        scores["asked + own text agreement"] = z(scores["asked (shipped)"]) + z(agreement)
    for n in sorted({1, 2, M}):
        picks = {"the first": np.zeros(C, dtype=int)} if n == 1 else {name: s[:, :n].argmax(1) for name, s in scores.items()}
        for how, best in picks.items():
            images = rt.decode(codes[rows, best])
            accuracy, style, _ = score(images, attr_judge, requested, probe.judge, probe.targets)
            counts = Counter(styles[rows, best])
            print(f"| {n} | {how} | {style:.3f} | {accuracy:.3f} | {len(counts)} | {counts.most_common(1)[0][1] / C:.2f} "
                  f"| {hit[:, :n].any(1).mean():.3f} |", flush=True)
    targets = np.array(probe.targets)
    print("\n| style asked | captions | its share of all candidates | a hit among them | drawn instead, most often |\n"
          "|---|---|---|---|---|")
    for style in sorted(set(targets)):
        mine = styles[targets == style]
        instead = Counter(mine[mine != style].tolist()).most_common(3)
        print(f"| {style} | {len(mine)} | {np.mean(mine == style):.2f} | {np.mean((mine == style).any(1)):.2f} | "
              + ", ".join(f"{s} ({k})" for s, k in instead) + " |")


if __name__ == "__main__":
    main()
