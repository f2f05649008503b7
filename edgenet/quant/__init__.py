"""Quantization quality: where int8/int16 quantization hurts a model, and repairs that keep it full-integer.

* :mod:`edgenet.quant.report`: per-tensor error of a quantized model against its float original on
  held-out images (``edgenet quant-report``);
* :mod:`edgenet.quant.ranges`: range choices beyond min/max (percentile, MSE-optimal, auto) from
  histograms the calibrator collects;
* :mod:`edgenet.quant.bias`: empirical bias correction folded into the int32 biases.

Only numpy at import time; interpreters and TensorFlow are imported where they are used.
"""
