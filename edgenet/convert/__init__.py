"""Conversion to TFLite: API, child worker, calibration set, calibrator, fidelity, manifest."""
