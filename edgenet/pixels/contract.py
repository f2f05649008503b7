"""The preprocessing contract: what a model expects of the pixels it is given.

One :class:`PreprocessContract` per model is the single description that calibration,
export, prediction and evaluation all read. Getting this wrong is the most common
reason an EfficientNet looks broken after quantization (Keras normalises inside the
model, Lite expects (x - 127) / 128, Edge TPU graphs fold the scale into the input
quantization), so the contract states each choice explicitly and is written into
every manifest.

edgenet's own models put the normalisation *inside* the graph (``normalization ==
"in_graph"``): they take RGB pixels in [0, 255]. For an int8 model this means the
input tensor quantizes raw pixels exactly (scale 1, zero point -128), so a device feeds
the decoded image and does no arithmetic. ``"host"`` describes models from elsewhere
whose graph expects already-normalised input; :func:`edgenet.pixels.preprocess.preprocess`
then applies ``(x - mean) / std`` itself. Never both, never neither.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# EfficientNet-Lite: (x - 127) / 128 keeps the input symmetric around zero, which suits
# int8 (tensorflow/tpu lite/efficientnet_lite_builder.py MEAN_RGB / STDDEV_RGB).
LITE_MEAN_RGB = (127.0, 127.0, 127.0)
LITE_STD_RGB = (128.0, 128.0, 128.0)


@dataclass(frozen=True)
class PreprocessContract:
    """How to turn a decoded RGB image into the model's input tensor."""

    resolution: int
    mean_rgb: tuple[float, float, float]
    std_rgb: tuple[float, float, float]
    normalization: Literal["in_graph", "host"] = "in_graph"
    # Centre crop as in tpu's eval preprocessing: crop a square of
    # resolution / (resolution + crop_padding) of the shorter side, then resize.
    crop_padding: int = 32
    resample: Literal["bicubic", "bilinear"] = "bicubic"
    input_range: tuple[float, float] = (0.0, 255.0)
    channel_order: Literal["RGB"] = "RGB"
    layout: Literal["NHWC"] = "NHWC"
    input_dtype: Literal["float32"] = "float32"
    output: Literal["logits", "probabilities"] = "logits"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessContract:
        fields = dict(data)
        for key in ("mean_rgb", "std_rgb", "input_range"):
            if key in fields:
                fields[key] = tuple(float(v) for v in fields[key])
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown preprocessing contract field(s): {', '.join(sorted(unknown))}")
        return cls(**fields)

    def describe(self) -> str:
        where = "inside the model" if self.normalization == "in_graph" else "by edgenet before the model"
        mean = "/".join(f"{m:g}" for m in self.mean_rgb)
        std = "/".join(f"{s:g}" for s in self.std_rgb)
        return (
            f"RGB {self.input_range[0]:g}..{self.input_range[1]:g}, {self.resample} resize with centre crop "
            f"(padding {self.crop_padding}) to {self.resolution}x{self.resolution}, "
            f"(x - {mean}) / {std} applied {where}; output {self.output}"
        )
