"""Runtime: interpreter resolution (LiteRT, tflite_runtime, tf.lite), the .tflite reader, device fingerprint."""
