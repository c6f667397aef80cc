"""Embed artgen in an app: one bundle folder, ONNX Runtime, no torch.

    python examples/app_embed.py BUNDLE_DIR "warm, chaotic, vivid" out.png

BUNDLE_DIR is what `artgen export --int8` wrote (or omit it to use the model shipped
inside the artgen package). Only onnxruntime, numpy, the tokenizer library and Pillow load.
"""

import sys

from export.runtime import Runtime, save_png

if len(sys.argv) == 4:
    bundle, prompt, out = sys.argv[1:]
elif len(sys.argv) == 3:
    bundle, (prompt, out) = None, sys.argv[1:]
else:
    sys.exit(__doc__)

runtime = Runtime(bundle, threads=2)  # load once at app start
images = runtime.generate(prompt, seed=0)  # (1, 64, 64, 3) uint8; the bundle's default sampling
save_png(images, out, scale=4)
print(f"{prompt!r} -> {out} ({images.shape[1]}x{images.shape[2]} px, bundle {runtime.bundle})")
