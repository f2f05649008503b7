"""Quantization quality: where int8/int16 quantization hurts a model, tensor by tensor.

* :mod:`edgenet.quant.report`: per-tensor error of a quantized model against its float original on
  held-out images (``edgenet quant-report``).

The repairs are conversion steps and live with the converter: :mod:`edgenet.convert.ranges`
(percentile, MSE-optimal and auto ranges), :mod:`edgenet.convert.bias` (empirical bias
correction) and :mod:`edgenet.convert.quality` (the ``--min-agreement`` budget). Only numpy at
import time; interpreters and TensorFlow are imported where they are used.
"""
