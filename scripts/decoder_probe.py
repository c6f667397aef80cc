"""How much of the attribute and style match is lost in the VQ-VAE's decoder? For the probe
set's test captions: attribute accuracy (the bench's judge: the caption's adjectives found in
the image) and style consistency (the bench's style judge) of the real test paintings, of
their reconstructions, and of the autoregressive generator's images (default sampler) —
decoded by the workspace VQ-VAE's squared-error decoder, by its adversarial decoder
(`artgen train decoder`) when it has one, and by every other VQ-VAE checkpoint given
(`--decoder`), whose encoder and codebook must be the workspace's (the same codes).

    python scripts/decoder_probe.py --workdir W [--decoder DIR ...] [--captions 600] [--per-adjective]

The generated codes are drawn once (image i with seed i) and decoded by each decoder, so the
rows differ by the decoder alone. The attribute judge is the bench's: logistic regressions on
image statistics, trained on every real train painting with ground-truth labels.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from ar_probe_common import add_probe_args, open_probe

from artgen.data.corpus import decode_image, load_corpus
from artgen.data.pixels import to_float
from artgen.models.vqvae import DECODER_FILE, VQVAE
from bench.attributes import AttributeAccuracy, AttributeClassifier, AttributeConfig, image_features, requested_adjectives
from bench.run import _cached_stats, _vqvae_decode
from bench.style import StyleConsistency


def attribute_judge(ws) -> AttributeClassifier:
    train = load_corpus(ws.data)["train"]
    labels = list(train["gt_adjectives"])
    images = [decode_image(im) for im in train["image"]]
    return AttributeClassifier(AttributeConfig()).fit(_cached_stats(ws, images), labels)


def judged_setup(ws, probe) -> tuple[AttributeClassifier, list, np.ndarray]:
    """What every attribute probe starts from: the bench's attribute judge, the adjectives each
    probe caption asks for, and the real test paintings (N, H, W, 3) uint8 behind the captions."""
    return (attribute_judge(ws), requested_adjectives(probe.captions),
            np.stack([decode_image(im) for im in probe.rows["image"]]))


def decode_all(vqvae: VQVAE, codes: torch.Tensor, batch: int = 100) -> np.ndarray:
    """(N, H, W, 3) uint8 images of (N, h, w) code grids, as the bench decodes its reference rows."""
    return _vqvae_decode(vqvae, codes, batch)


def same_code_space(a: VQVAE, b: VQVAE) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    keys = [k for k in sa if not k.startswith("decoder.")]
    return all(k in sb and sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in keys)


def score(images, judge, requested, style_judge, targets) -> tuple[float, float, dict]:
    metric = AttributeAccuracy(judge)
    metric.update(image_features(list(images)), requested)
    out = metric.compute()
    style = StyleConsistency(style_judge)
    style.update(list(images), targets)
    return out["accuracy"], style.compute()["style_consistency"], out["per_adjective"]


@torch.no_grad()
def decoder_ms(vqvae: VQVAE, grid: int, runs: int = 30) -> float:
    codes = torch.zeros((1, grid, grid), dtype=torch.long)
    for _ in range(3):
        vqvae.decode_indices(codes)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        vqvae.decode_indices(codes)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(ap)
    ap.add_argument("--decoder", action="append", default=[], help="another VQ-VAE checkpoint directory (repeatable)")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--per-adjective", action="store_true", help="also each adjective's share found")
    args = ap.parse_args()
    ws, gen, probe = open_probe(args)
    grid = gen.predictor.cfg.grid
    judge, requested, real = judged_setup(ws, probe)
    pixels = torch.from_numpy(real).permute(0, 3, 1, 2).contiguous()
    real_codes = torch.cat([gen.vqvae.encode_indices(to_float(pixels[s:s + 100])) for s in range(0, len(pixels), 100)])
    start = time.perf_counter()
    n = len(probe.captions)
    drawn = torch.cat([gen.sample_codes(probe.captions[s:s + args.batch], seeds=list(range(s, min(s + args.batch, n))))
                       for s in range(0, n, args.batch)])  # the default sampler
    print(f"{n} test captions; generated codes drawn in {time.perf_counter() - start:.0f} s by the default sampler")
    vq_dir = ws.checkpoint("vqvae")
    decoders = [("squared-error decoder", VQVAE.from_pretrained(vq_dir, adversarial_decoder=False))]
    if (vq_dir / DECODER_FILE).is_file():
        decoders.append(("adversarial decoder", VQVAE.from_pretrained(vq_dir)))
    for d in args.decoder:
        other = VQVAE.from_pretrained(d)
        if not same_code_space(decoders[0][1], other):
            raise SystemExit(f"{d}: its encoder or codebook differs from the workspace's VQ-VAE, so its codes are not the same")
        decoders.append((f"{Path(d)} ({other.decoder_source})", other))
    rows, per = [], {}
    acc, style, per["real"] = score(real, judge, requested, probe.judge, probe.targets)
    rows.append(("real test paintings", "–", "–", acc, style))
    for name, vq in decoders:
        params = sum(p.numel() for p in vq.decoder.parameters())
        ms = decoder_ms(vq, grid)
        acc, style, per[f"recon: {name}"] = score(decode_all(vq, real_codes), judge, requested, probe.judge, probe.targets)
        rows.append((f"reconstructions: {name}", f"{params / 1e6:.2f}M", f"{ms:.1f}", acc, style))
        acc, style, per[f"generated: {name}"] = score(decode_all(vq, drawn), judge, requested, probe.judge, probe.targets)
        rows.append((f"generated: {name}", f"{params / 1e6:.2f}M", f"{ms:.1f}", acc, style))
    print("| images | decoder parameters | decoder ms (torch fp32, 1 image) | attribute accuracy | style consistency |")
    print("|---|---|---|---|---|")
    for name, params, ms, acc, style in rows:
        print(f"| {name} | {params} | {ms} | {acc:.3f} | {style:.3f} |")
    if args.per_adjective:
        names = list(per)
        print("\n| adjective | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for adj in sorted(per["real"], key=lambda a: per["real"][a] - per[names[-1]].get(a, 0), reverse=True):
            print(f"| {adj} | " + " | ".join(f"{per[n].get(adj, float('nan')):.2f}" for n in names) + " |")


if __name__ == "__main__":
    main()
