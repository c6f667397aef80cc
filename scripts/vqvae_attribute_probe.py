"""Which adjectives does a VQ-VAE keep? For the probe set's test captions (as
`decoder_probe.py`): attribute accuracy and style consistency of the real test paintings and
of their reconstructions by each VQ-VAE checkpoint given, with each adjective's share found.
Unlike `decoder_probe.py` it needs no text-to-codes model, so it compares VQ-VAEs whose codes
differ (e.g. one trained without mirror images).

    python scripts/vqvae_attribute_probe.py --workdir W --vqvae DIR [--vqvae DIR2 ...] [--captions 600]
"""

from __future__ import annotations

import argparse

import torch
from ar_probe_common import probe_set
from decoder_probe import decode_all, judged_setup, score

from artgen.data.pixels import to_float
from artgen.models.vqvae import VQVAE
from artgen.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--vqvae", action="append", required=True, help="a VQ-VAE checkpoint directory (repeatable)")
    ap.add_argument("--captions", type=int, default=600)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ws = Workspace.resolve(args.workdir)
    probe = probe_set(ws, args.captions)
    judge, requested, real = judged_setup(ws, probe)
    pixels = to_float(torch.from_numpy(real).permute(0, 3, 1, 2).contiguous())
    rows, per = [], {}
    acc, style, per["real"] = score(real, judge, requested, probe.judge, probe.targets)
    rows.append(("real test paintings", acc, style))
    for d in args.vqvae:
        vq = VQVAE.from_pretrained(d)
        with torch.no_grad():
            codes = torch.cat([vq.encode_indices(pixels[s:s + 100]) for s in range(0, len(pixels), 100)])
        name = f"{d} ({vq.decoder_source})"
        acc, style, per[name] = score(decode_all(vq, codes), judge, requested, probe.judge, probe.targets)
        rows.append((f"reconstructions: {name}", acc, style))
    print(f"{len(probe.captions)} test captions")
    print("| images | attribute accuracy | style consistency |\n|---|---|---|")
    for name, acc, style in rows:
        print(f"| {name} | {acc:.3f} | {style:.3f} |")
    names = list(per)
    print("\n| adjective | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for adj in sorted(per["real"], key=lambda a: per["real"][a] - per[names[-1]].get(a, 0), reverse=True):
        print(f"| {adj} | " + " | ".join(f"{per[n].get(adj, float('nan')):.2f}" for n in names) + " |")


if __name__ == "__main__":
    main()
