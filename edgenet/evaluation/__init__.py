"""Inference on images: classifiers over Keras or .tflite models, predict, labels, accuracy evaluation."""
