"""Turning data into checkpoints: the shared training loop, the VQ-VAE and text-to-codes
training runs, and the codebook metrics they report."""
