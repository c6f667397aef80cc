"""The fixed prompts of every bench run: the sample grids, the interpolation walks and the
latency measurements read the same text for every encoder, so their numbers compare."""

# The same 8 prompts for every encoder's sample grid (the last uses held-out synonyms only).
SAMPLE_PROMPTS: tuple[str, ...] = (
    "warm, chaotic, vivid", "cool, calm, minimal", "dark, dramatic, textured", "bright, soft, gradient",
    "geometric, blocky, contrasting", "organic, fluid, curved", "circular, symmetric, rhythmic",
    "fiery, turbulent, gritty",
)
INTERPOLATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("warm, calm, smooth", "cool, chaotic, textured"),
    ("bright, minimal, geometric", "dark, dense, organic"),
    ("vivid, circular", "muted, linear"),
    ("symmetric, calm", "splattered, energetic"),
)
LATENCY_PROMPT = "warm, chaotic, vivid"
