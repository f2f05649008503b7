"""Pixels: the preprocessing contract of each model, image decoding, the one preprocess()."""
