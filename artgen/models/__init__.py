"""The networks, one per file: the VQ-VAE and its quantiser, the text encoders, the masked and
autoregressive predictors, and the layers they share. Nothing here reads a workspace."""
