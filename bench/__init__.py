"""The benchmark harness: size, latency, FID, codebook usage and attribute control."""
