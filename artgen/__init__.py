"""artgen: a lightweight, on-device generator of abstract art from a few adjectives."""

__version__ = "0.1.0"
