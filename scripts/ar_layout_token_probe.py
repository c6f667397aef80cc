"""Would a global "layout" latent, drawn once from the text before the codes, keep the
autoregressive generator's paintings in one style? (A probe of the idea, not the product.)

The pictures drift: a gradient asked for often turns into another style halfway down the
grid. Here every train grid gets a layout id, a k-means cluster (k = --clusters; unsupervised,
no style labels) of its painting's measured image statistics (`--features stats`, standardised
`artgen.data.image_stats`: colour, edges and their orientation, symmetry, texture, rhythm; a
mirror image takes its painting's id) or of its code histogram (`--features codes`, Hellinger:
square roots of the code frequencies), and the default AR preset (tiny encoder) trains with it: the id's embedding is one more text
token the generator reads (dropped with the text, for guidance), and a linear head on the
pooled text learns p(layout | text). Sampling draws the layout from that head, then the codes.
Also reported: the same model given each test painting's true layout (the ceiling of the idea)
and the layouts' purity in the corpus's styles (how far unsupervised layouts are styles).

    python scripts/ar_layout_token_probe.py --workdir W [--steps 2000] [--clusters 64] [--features stats|codes] [--captions 300]

W needs the corpus, gt annotations and the VQ-VAE latents; the model trains into a folder of
its own (W/checkpoints/tiny-ar-layout) and is scored like `ar_sampling_sweep.py --no-fid`
(the same 300 captions), to set beside the plain model at the same steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys

import numpy as np
import torch
import torch.nn.functional as F
from ar_probe_common import probe_set
from safetensors.torch import load_file
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from torch import nn

import artgen.training.predictor as training
from artgen.data.corpus import load_corpus
from artgen.data.latents import FLIPPED, load_latents, painting_id
from artgen.generate import gumbel, pick_codes
from artgen.models.text_to_codes import TextToCodes
from artgen.models.vqvae import VQVAE
from artgen.sampling import AR_DEFAULT_GUIDANCE, AR_DEFAULT_TEMPERATURE, AR_NOISE_STREAM
from artgen.workspace import Workspace

LAYOUTS: dict = {}  # filled before training: "train" (N,) ids of the train grids in load order, "k"


def stats_of(ws: Workspace, images) -> np.ndarray:
    from artgen.data.corpus import decode_image
    from bench.run import _cached_stats

    return _cached_stats(ws, [decode_image(im) for im in images])


def hellinger(codes: np.ndarray, k: int) -> np.ndarray:
    flat = codes.reshape(len(codes), -1).astype(np.int64)
    hist = np.stack([np.bincount(row, minlength=k) for row in flat]).astype(np.float32) / flat.shape[1]
    return np.sqrt(hist)


class LayoutTextToCodes(TextToCodes):
    """TextToCodes with a layout id read as one more text token, and p(layout | text)."""

    def __init__(self, encoder, predictor):
        super().__init__(encoder, predictor)
        k = LAYOUTS["k"]
        self.layout_emb = nn.Embedding(k, encoder.width)
        self.layout_head = nn.Linear(encoder.width, k)

    def states_with_layout(self, states, text_mask, layouts):
        extra = self.layout_emb(layouts)[:, None]                       # (B, 1, d)
        keep = text_mask.any(1, keepdim=True)                           # the layout drops with the text
        return torch.cat([states, extra], 1), torch.cat([text_mask, keep], 1)

    def layout_logits(self, states, mask):
        m = mask.float()[..., None]
        return self.layout_head((states * m).sum(1) / m.sum(1).clamp(min=1))

    def forward(self, codes, ids, mask, text_mask, layouts=None):
        states = self.encoder(ids, mask)
        if layouts is None:
            return self.predictor(codes, states, text_mask)
        aug, aug_mask = self.states_with_layout(states, text_mask, layouts)
        return self.predictor(codes, aug, aug_mask), self.layout_logits(states, mask)


class LayoutTask(training.PredictorTask):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.train_layouts = torch.from_numpy(LAYOUTS["train"]).long()

    def batch(self, step, generator, batch_size):
        b = super().batch(step, generator, batch_size)
        rows = b["rows"].tolist()
        return {**b, "layouts": self.train_layouts[b["rows"]],
                "has_text": torch.tensor([bool(self.train_labels[i]) for i in rows])}

    def loss(self, model, b):
        logits, layout_logits = model(b["inputs"], b["ids"], b["mask"], b["text_mask"], b["layouts"])
        ce = F.cross_entropy(logits.transpose(1, 2), b["codes"])
        has = b["has_text"]
        layout_ce = F.cross_entropy(layout_logits[has], b["layouts"][has]) if bool(has.any()) else ce * 0
        with torch.no_grad():
            acc = (logits.argmax(-1) == b["codes"]).float().mean()
            layout_acc = (layout_logits[has].argmax(-1) == b["layouts"][has]).float().mean()
        return ce + layout_ce, {"acc": acc, "layout_ce": layout_ce.detach(), "layout_acc": layout_acc}


@torch.no_grad()
def draw(model: LayoutTextToCodes, captions, seeds, layouts=None, guidance=AR_DEFAULT_GUIDANCE,
         temperature=AR_DEFAULT_TEMPERATURE) -> torch.Tensor:
    """The runtime's guided sampler with a layout drawn first (or given)."""
    P = model.predictor
    N, K, B = P.cfg.positions, P.cfg.codebook_size, len(captions)
    tokens = model.encoder.tokenize(list(captions))
    states, mask = model.encoder.encode(tokens)
    if layouts is None:
        probs = model.layout_logits(states, mask).softmax(-1)
        g = torch.Generator().manual_seed(int(seeds[0]) + 12345)
        layouts = torch.multinomial(probs, 1, generator=g)[:, 0]
    aug, aug_mask = model.states_with_layout(states, mask, layouts)
    drop = torch.zeros_like(aug_mask)
    context = P.context(torch.cat([aug, aug]), torch.cat([aug_mask, drop]))
    past_k, past_v = P.empty_cache(2 * B)
    noise = torch.from_numpy(np.stack([gumbel(s, AR_NOISE_STREAM, (N, K)) for s in seeds]).astype(np.float32))
    token = torch.full((2 * B, 1), P.cfg.start_id, dtype=torch.long)
    codes = torch.empty((B, N), dtype=torch.long)
    for t in range(N):
        logits, past_k, past_v = P.step(token, past_k, past_v, *context)
        cond, uncond = logits.chunk(2)
        codes[:, t] = pick_codes(uncond + guidance * (cond - uncond), noise[:, t], temperature, 0)
        token = codes[:, t:t + 1].repeat(2, 1)
    return codes.view(B, P.cfg.grid, P.cfg.grid)


def style_row(name, images, probe, n) -> str:
    drawn = probe.judge.predict(list(images))
    hits = float(np.mean([d == t for d, t in zip(drawn, probe.targets)]))
    counts = np.unique(drawn, return_counts=True)[1]
    return f"| {name} | {hits:.3f} | {len(counts)} / {counts.max() / n:.2f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--clusters", type=int, default=64)
    ap.add_argument("--features", choices=["stats", "codes"], default="stats")
    ap.add_argument("--captions", type=int, default=300)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--skip-training", action="store_true", help="score the model already in the folder")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    k = VQVAE.from_pretrained(ws.checkpoint("vqvae")).cfg.quantizer.codebook_size
    train_ids, train_codes = load_latents(ws, "train")
    flip_ids, flip_codes = load_latents(ws, FLIPPED)
    all_codes = np.concatenate([train_codes, flip_codes])        # the order the AR preset (flipped) trains on
    corpus = load_corpus(ws.data)
    if args.features == "codes":
        km = KMeans(args.clusters, n_init=1, random_state=0).fit(hellinger(all_codes, k))
        labels = km.labels_

        def test_layouts(rows, codes):
            return km.predict(hellinger(codes, k))
    else:
        scaler = StandardScaler().fit(stats_of(ws, corpus["train"]["image"]))
        train_stats = scaler.transform(stats_of(ws, corpus["train"]["image"]))
        km = KMeans(args.clusters, n_init=1, random_state=0).fit(train_stats)
        by_id = dict(zip(corpus["train"]["id"], km.labels_))
        labels = np.array([by_id[painting_id(i)] for i in train_ids + flip_ids])

        def test_layouts(rows, codes):
            return km.predict(scaler.transform(stats_of(ws, rows["image"])))
    LAYOUTS.update(train=labels.astype(np.int64), k=args.clusters)
    styles = dict(zip(corpus["train"]["id"], corpus["train"]["style"]))
    by_cluster: dict[int, list[str]] = {}
    for pid, c in zip(train_ids, labels[:len(train_ids)]):
        by_cluster.setdefault(int(c), []).append(styles.get(pid, "?"))
    purity = sum(max(np.unique(v, return_counts=True)[1]) for v in by_cluster.values()) / len(train_ids)
    print(f"{args.clusters} layouts over {len(all_codes)} train grids; purity in the corpus's styles {purity:.3f}")

    folder = ws.checkpoint("tiny-ar-layout")
    if not args.skip_training:
        # a `kill` must still put the plain model back (the finally below)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        training.TextToCodes, training.PredictorTask = LayoutTextToCodes, LayoutTask
        plain = ws.checkpoint("tiny-ar")
        backup = plain.with_name("tiny-ar.before-layout-probe")
        if plain.exists():
            shutil.move(plain, backup)
        try:
            training.train_predictor(ws, "tiny", preset="default", annotations="gt", generator="ar", steps=args.steps)
            if folder.exists():
                shutil.rmtree(folder)
            shutil.move(plain, folder)
        finally:
            if backup.exists():
                shutil.move(backup, plain)

    config = json.loads((folder / "config.json").read_text())
    from artgen.models.encoders import encoder_from_directory
    from artgen.models.generators import generator_kind

    kind = generator_kind("ar")
    model = LayoutTextToCodes(encoder_from_directory(folder, load_weights=False), kind.build(kind.config(**config["predictor"])))
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    model.eval()
    vq = VQVAE.from_pretrained(ws.checkpoint("vqvae"))
    probe = probe_set(ws, args.captions)
    n = len(probe.captions)
    test_ids, test_codes = load_latents(ws, "test")
    row_of = {pid: i for i, pid in enumerate(test_ids)}
    true_layouts = torch.from_numpy(test_layouts(probe.rows, test_codes[[row_of[i] for i in probe.rows["id"]]])).long()
    final = json.loads((folder / "metrics.json").read_text())
    print(f"{n} test captions; test CE {final['ce']:.3f} with text vs {final['ce_no_text']:.3f} without (the layout "
          f"token not given), {final['steps']} steps in {final['train_seconds_this_run'] / 60:.1f} min")
    print("| sampler | style consistency | styles / top share |\n|---|---|---|")
    for name, given in (("layout drawn from p(layout | text)", None), ("the test painting's true layout", true_layouts)):
        codes = torch.cat([draw(model, probe.captions[s:s + args.batch], list(range(s, min(s + args.batch, n))),
                                None if given is None else given[s:s + args.batch])
                           for s in range(0, n, args.batch)])
        images = (vq.decode_indices(codes) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        print(style_row(name, images, probe, n), flush=True)


if __name__ == "__main__":
    main()
