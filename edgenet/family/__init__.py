"""The model family: variant table, block table, architecture expansion, Keras builder, layout picture."""
