"""Weights: restricted checkpoint readers, name mapping, Keras weight files (arrays only)."""
