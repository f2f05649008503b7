"""The Keras builder: the only code that turns an :class:`Architecture` into layers.

Layer names follow Keras applications (``block2a_expand_conv``...), so weight files saved
from ``keras.applications.EfficientNetB*`` load by name, and TFLite op names and
quantization reports stay readable.

This module imports TensorFlow/Keras; import it only where models are built.
"""

from __future__ import annotations

from typing import Literal

from .._tf import keras
from ..pixels.contract import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
from .architecture import Architecture, BlockPlan, architecture
from .variants import Variant

layers = keras.layers

BN_EPSILON = 1e-3  # as tensorflow/tpu and Keras; also what checkpoints were trained with
CONV_INIT = {"class_name": "VarianceScaling",
             "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
DENSE_INIT = {"class_name": "VarianceScaling",
              "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"}}


def _activation(variant: Variant):
    if variant.activation == "relu6":
        return keras.activations.relu6
    if variant.activation == "relu":
        return keras.activations.relu
    return keras.activations.swish


def _input_normalization(x, variant: Variant):
    """Normalise in the graph, so the model takes RGB pixels in [0, 255] (see contract.py)."""
    if variant.family == "lite":
        # (x - 127) / 128 as one weightless affine layer: it folds into the input
        # quantization of an int8 model (scale 1/128, zero point 127 on uint8).
        return layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="rescaling")(x)
    # B variants: Keras applications' layout (Rescaling then Normalization with stored
    # mean/variance), so Keras and published ImageNet weight files load unchanged.
    # The statistics are weights (set in _set_imagenet_normalization), not constants,
    # exactly as in Keras, so its weight files load including them.
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
    return layers.Normalization(axis=-1, name="normalization")(x)


def _set_imagenet_normalization(model) -> None:
    """Give the Normalization layer the ImageNet statistics (variance = std**2)."""
    import numpy as np

    layer = model.get_layer("normalization")
    mean = np.array([m / 255.0 for m in IMAGENET_MEAN_RGB], dtype="float32")
    variance = np.array([(s / 255.0) ** 2 for s in IMAGENET_STD_RGB], dtype="float32")
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    layer.set_weights([mean.reshape(shapes[0]), variance.reshape(shapes[1]), np.zeros(shapes[2], "int64")])


def _mbconv(x, block: BlockPlan, activation, name_prefix: str):
    name = name_prefix
    inputs = x
    if block.expand_ratio != 1:
        x = layers.Conv2D(block.expanded, 1, padding="same", use_bias=False,
                          kernel_initializer=CONV_INIT, name=name + "expand_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "expand_bn")(x)
        x = layers.Activation(activation, name=name + "expand_activation")(x)
    # TensorFlow "same" padding for stride 2 equals Keras's explicit ZeroPadding2D
    # (correct_pad) numerically, but keeps the padding inside the conv: one TFLite op
    # fewer per stride-2 block (no PAD), which edge runtimes prefer.
    x = layers.DepthwiseConv2D(block.kernel_size, strides=block.strides, padding="same", use_bias=False,
                               depthwise_initializer=CONV_INIT, name=name + "dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "bn")(x)
    x = layers.Activation(activation, name=name + "activation")(x)
    if block.se_filters:
        se = layers.GlobalAveragePooling2D(name=name + "se_squeeze")(x)
        se = layers.Reshape((1, 1, block.expanded), name=name + "se_reshape")(se)
        se = layers.Conv2D(block.se_filters, 1, padding="same", activation=activation,
                           kernel_initializer=CONV_INIT, name=name + "se_reduce")(se)
        se = layers.Conv2D(block.expanded, 1, padding="same", activation="sigmoid",
                           kernel_initializer=CONV_INIT, name=name + "se_expand")(se)
        x = layers.multiply([x, se], name=name + "se_excite")
    x = layers.Conv2D(block.filters_out, 1, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name=name + "project_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "project_bn")(x)
    if block.skip:
        if block.drop_rate > 0:
            # Drop-connect (stochastic depth): drops the whole residual branch per sample.
            x = layers.Dropout(block.drop_rate, noise_shape=(None, 1, 1, 1), name=name + "drop")(x)
        x = layers.add([x, inputs], name=name + "add")
    return x


def build_from_architecture(
    arch: Architecture,
    *,
    pooling: Literal["avg", "max"] | None = None,
    classifier_activation: str | None = None,
    batch_size: int | None = None,
):
    """Build the Keras model of ``arch`` (see :func:`build_model`)."""
    variant = arch.variant
    activation = _activation(variant)
    inputs = layers.Input(shape=(arch.resolution, arch.resolution, 3), batch_size=batch_size, name="input_layer")
    x = _input_normalization(inputs, variant)
    x = layers.Conv2D(arch.stem_filters, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="stem_bn")(x)
    x = layers.Activation(activation, name="stem_activation")(x)
    for block in arch.blocks:
        x = _mbconv(x, block, activation, block.name + "_")
    x = layers.Conv2D(arch.head_filters, 1, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="top_bn")(x)
    x = layers.Activation(activation, name="top_activation")(x)
    if arch.include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if variant.dropout > 0:
            x = layers.Dropout(variant.dropout, name="top_dropout")(x)
        x = layers.Dense(arch.num_classes, activation=classifier_activation,
                         kernel_initializer=DENSE_INIT, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=variant.name.replace("=", "").replace(",", "_"))
    if variant.family == "efficientnet":
        _set_imagenet_normalization(model)
    return model


def build_model(
    variant: Variant,
    *,
    include_top: bool = True,
    num_classes: int = 1000,
    pooling: Literal["avg", "max"] | None = None,
    resolution: int | None = None,
    classifier_activation: str | None = None,
    batch_size: int | None = None,
):
    """Build ``variant`` as a Keras functional model taking RGB pixels in [0, 255].

    The output is logits unless ``classifier_activation`` says otherwise (``"softmax"``
    matches Keras applications). ``batch_size=1`` gives the static batch an Edge TPU
    needs. Reference models (``mobilenetv2``, ``resnet50``) come from Keras applications
    with their preprocessing moved into the graph.
    """
    if variant.family == "baseline":
        return _build_baseline(variant, include_top=include_top, num_classes=num_classes, pooling=pooling,
                               resolution=resolution, classifier_activation=classifier_activation,
                               batch_size=batch_size)
    arch = architecture(variant, resolution=resolution, num_classes=num_classes, include_top=include_top)
    return build_from_architecture(arch, pooling=pooling, classifier_activation=classifier_activation,
                                   batch_size=batch_size)


def _build_baseline(variant, *, include_top, num_classes, pooling, resolution, classifier_activation, batch_size):
    res = int(resolution or variant.resolution)
    inputs = layers.Input(shape=(res, res, 3), batch_size=batch_size, name="input_layer")
    if variant.name == "mobilenetv2":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(inputs)
        app = keras.applications.MobileNetV2
    else:
        # Caffe preprocessing: RGB -> BGR, subtract the ImageNet mean.
        x = layers.Lambda(lambda t: t[..., ::-1], name="rgb_to_bgr")(inputs)
        x = layers.Rescaling(1.0, offset=[-103.939, -116.779, -123.68], name="rescaling")(x)
        app = keras.applications.ResNet50
    net = app(include_top=include_top, weights=None, input_shape=(res, res, 3), classes=num_classes,
              pooling=pooling, classifier_activation=classifier_activation)
    return keras.Model(inputs, net(x), name=variant.name)
