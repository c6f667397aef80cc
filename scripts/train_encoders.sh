#!/bin/sh
# Train the three text encoders + predictor as the README reports them, one after another
# (they share 2 CPU cores): tiny with the default preset, clip and distilbert with quick.
# Usage: ARTGEN_HOME=DIR sh scripts/train_encoders.sh   (needs `artgen data synth` first;
# trains a quick VQ-VAE when none exists). Captions come from the corpus ground truth.
set -e
ARTGEN=${ARTGEN:-.venv/bin/artgen}
$ARTGEN train --encoder tiny --preset "${TINY_PRESET:-default}" --annotations gt
$ARTGEN train --encoder clip --preset quick --annotations gt
$ARTGEN train --encoder distilbert --preset quick --annotations gt
$ARTGEN encoders
