"""The annotation pipeline: backends that label paintings with vocabulary adjectives."""
