"""The paintings and their words: the vocabulary, the procedural and imported corpus, captions
and image statistics, the corpus as pixel tensors and its cache of VQ-VAE code grids."""
