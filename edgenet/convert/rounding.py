"""Error-compensating int8 weight rounding (GPTQ): the same scales, better integer weights.

TF's converter rounds every weight to the nearest step of its per-channel scale. On the Lite
networks that rounding, not the activations, is most of the error: the float model with only its
weights rounded to int8 is no better than whole-model int16 activations (README, "Quantization
quality"). Here the scales stay and the integer values are chosen again, per operator, to
minimise the operator's output error on calibration inputs rather than each weight's own error
(Frantar et al., "GPTQ", 2022, after Optimal Brain Quantization): with ``X`` the operator's
input patches (the *quantized* model's dequantized inputs of that op, so upstream error is
accounted for) and ``H = X^T X`` (plus a small damping), the weights of each output channel are
quantized one input column at a time and each column's rounding error is spread onto the columns
not yet quantized through the Cholesky factor of ``H``'s inverse. Values are clipped to
[-127, 127].

Operators: CONV_2D (1x1 and k x k through im2col), DEPTHWISE_CONV_2D (each channel its own
k*k patch Hessian) and FULLY_CONNECTED. The float weights come from the float model's operator
that produces the same output tensor (as in :mod:`edgenet.convert.bias`). The graph is unchanged:
same operators, shapes, dtypes, scales and zero points; only int8 weight values move, so the model
stays full-integer (valid for ``--target edgetpu``) and runs exactly as fast. Bias correction
(:mod:`edgenet.convert.bias`) can follow, measured on the re-rounded model.

``target="float_output"`` (an option, not the default) aims each op at the float model's output of that op
instead of its own float weights: GPTQ on the ridge least-squares weights from the quantized inputs to the float
op on its float inputs (same samples and pixels). Each op's error against that output falls on calibration data,
but the one-shot per-op fits do not compose and the whole network is far worse (README, "Repairing the weights").

``method="adaround"`` (:data:`METHODS`, ``--rounding-method``) keeps the same ops, statistics and write-back but
learns each weight's choice between its two neighbouring integers (:func:`adaround`: a soft rounding variable per
weight, Adam on the op's output error ``tr(dW H dW^T)``, an annealed regulariser pushing each to 0 or 1). It is
layer-wise: the quantized model's own int8 activations feed ``X``, but the activation quantization *between* the
layers of an MBConv block is not in the loop.

``method="brecq"`` puts it in the loop (block reconstruction: Li et al., "BRECQ", 2021). :func:`blocks` cuts the
int8 graph where one tensor carries everything (an MBConv block: expand, depthwise, [squeeze-excite], project,
[residual ADD]; the head last). Block by block, in order, the block's input
is recorded as the quantized model computes it (dequantized, with the earlier blocks' new weights already written
back) and its target as the float model computes the same output tensor on the float model's own inputs; the block
then runs in TensorFlow with every learnt weight ``s (floor(w/s) + h(V))`` (AdaRound's rectified sigmoid and start,
TFLite's own per-channel ``s``) and every op's output fake-quantized at the int8 model's own scale and zero point
(straight-through estimator). Adam (:data:`BRECQ_ITERATIONS` steps per block, :data:`BRECQ_BATCH` samples a step)
minimises the block output's MSE, normalised by the input model's, plus AdaRound's annealed regulariser; a block
whose error would not drop keeps its weights. A block with an operator outside :data:`BLOCK_OPS` falls back to
layer-wise AdaRound for its ops (``WeightRounding.layerwise``). Time on 2 shared cores (Xeon @ 2.8 GHz): the
tests' tiny variant 10-20 s at 40 steps a block (8 blocks, 3 samples), ~40 s at the default 300; Lite0 at 300 steps
on 32 samples ~430 s (9-70 s a block; GPTQ: 35-50 s). Measured effect: docs/convert.md.

``method="qdrop"`` is BRECQ with QDrop's random dropping (Wei et al., "QDrop", ICLR 2022): while the rounding is
learnt, each element of each op's fake-quantized output is, with probability :data:`QDROP_PROB`, left in float
for that step (a fresh draw every step), so the rounding is fitted to a neighbourhood of activation noise rather
than to one exact pattern of it, which the paper found to generalise better to images the reconstruction never
saw. The errors that decide whether a block keeps its new weights are measured without dropping, as the int8
model runs. Same engine, same cost.

Calibration samples only, never the fidelity check's held-out images. Needs TensorFlow
(flatbuffer editing) and a runtime; the arithmetic is numpy (BRECQ's blocks: TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROUNDED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: Calibration samples used for the Hessians.
DEFAULT_ROUNDING_SAMPLES = 32
#: Rows (output pixels) taken per sample and operator; more only where the layer is small.
PIXELS_PER_SAMPLE = 256
#: Damping added to H's diagonal, as a fraction of its mean diagonal (GPTQ's default).
DAMPING = 0.01
#: Quantize the columns with the most input energy first (GPTQ's "act-order").
ACT_ORDER = False
#: What the integers are chosen to reproduce: "weights" (the op's float weights on the quantized inputs,
#: ``||(W_q - W) X_q||``) or "float_output" (the float model's output of the op, ``||W_q X_q - W X_f||``,
#: through the ridge least-squares target ``W* = (W X_f X_q^T + l W)(X_q X_q^T + l I)^-1``).
TARGETS = ("weights", "float_output")
DEFAULT_TARGET = "weights"
#: Ridge towards ``W`` for the "float_output" target, as a fraction of H's mean diagonal.
TARGET_RIDGE = 0.01
#: Re-measure each op's inputs on the model whose earlier ops are already re-rounded (one pass per op).
SEQUENTIAL = False
#: How the integers are chosen, one table for the API, the request and the CLI (``--rounding-method``):
#: "gptq" (column by column, each error spread onto the columns not yet quantized), "adaround" (each weight's
#: up/down decision learnt jointly by gradient descent on a soft rounding variable, Nagel et al. 2020, per op) or
#: "brecq" (the same decisions learnt per MBConv block with its activation quantization in the loop, Li et al. 2021)
#: or "qdrop" (BRECQ with QDrop's random dropping of the activation quantization while learning, Wei et al. 2022).
METHODS = ("gptq", "adaround", "brecq", "qdrop")
#: The methods that learn per MBConv block (:func:`blocks`) rather than per operator.
BLOCK_METHODS = ("brecq", "qdrop")
DEFAULT_METHOD = "gptq"
#: AdaRound: Adam steps per operator, learning rate on the rounding variables, regulariser weight (relative to
#: the normalised output error), warm-up fraction without regulariser, annealed exponent of the regulariser.
ADAROUND_ITERATIONS = 200
ADAROUND_LR = 0.05
ADAROUND_REG = 0.1
ADAROUND_WARMUP = 0.2
ADAROUND_BETA = (20.0, 2.0)
#: The rectified sigmoid's stretch: h(V) = clip(sigmoid(V) * (ZETA - GAMMA) + GAMMA, 0, 1).
ADAROUND_ZETA, ADAROUND_GAMMA = 1.1, -0.1
#: BRECQ (block reconstruction): Adam steps per block, calibration samples per step, learning rate on the rounding
#: variables, and the regulariser's weight against the block's output error (normalised by the input model's
#: error), per learnt weight (a mean, so blocks of any size weigh it alike). Warm-up, beta and h(V): AdaRound's.
#: Measured on Lite0's first block (its output MSE in the simulator, 32 samples): round-to-nearest 0.201, GPTQ
#: 0.076; regulariser 0.01 / 0.1 / 1 / 10 / 30 (lr 0.05): 0.154 / 0.121 / 0.087 / 0.076 / 0.075 (a weak one leaves
#: h(V) between 0 and 1 and the hard rounding loses what the soft one learnt; 1000 steps at 0.1: worse, 0.168);
#: 10 at lr 0.1: 0.071. Later blocks (4th, 11th) gain alike or slightly at 10 / 0.1.
BRECQ_ITERATIONS = 300
BRECQ_BATCH = 8
BRECQ_LR = 0.1
BRECQ_REG = 10.0
#: QDrop: the probability that an element of an op's output skips its fake quantization in a learning step.
QDROP_PROB = 0.5
#: A block without depthwise convs ends at the first cut once it holds this many rounded operators.
BLOCK_MAX_OPS = 6
#: Operators the block simulator runs (float TensorFlow, each output fake-quantized at the int8 model's own scale and
#: zero point). A block with any other operator falls back to layer-wise AdaRound for its rounded operators.
BLOCK_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "LOGISTIC", "MEAN", "RESHAPE", "PAD",
             "RELU", "RELU6", "QUANTIZE", "DEQUANTIZE")


@dataclass(frozen=True)
class WeightRounding:
    """What weight rounding changed."""

    ops: int  # operators whose weights were re-rounded
    weights_changed: int  # int8 values that differ from the input model's (round-to-nearest, from the converter)
    weights: int  # int8 weights of those operators
    samples: int
    error_ratio: float  # median over ops of (output error after) / (output error of the input model's weights)
    # (output tensor, error before, after): calibration MSE per op, or per block (its output tensor) with BLOCK_METHODS
    per_op: tuple[tuple[str, float, float], ...] = ()
    method: str = DEFAULT_METHOD  # METHODS
    layerwise: tuple[str, ...] = ()  # BLOCK_METHODS: ops the block simulator could not run, re-rounded by AdaRound

    def to_dict(self) -> dict:
        out = {"method": self.method, "ops": self.ops, "weights_changed": self.weights_changed, "weights": self.weights,
               "samples": self.samples, "median_output_error_ratio": round(self.error_ratio, 4)}
        if self.method in BLOCK_METHODS:
            out.update(blocks=len(self.per_op) - len(self.layerwise), layerwise_adaround_ops=len(self.layerwise))
        return out


def _pad_same(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _patches(x: np.ndarray, kh: int, kw: int, options: dict, rng) -> np.ndarray:
    """[H, W, C] input -> [P, kh, kw, C] patches at up to :data:`PIXELS_PER_SAMPLE` random output pixels
    (TFLite's SAME/VALID padding: zeros in real value)."""
    sh, sw = options.get("stride_h", 1) or 1, options.get("stride_w", 1) or 1
    dh, dw = options.get("dilation_h_factor", 1) or 1, options.get("dilation_w_factor", 1) or 1
    h, w, _ = x.shape
    if options.get("padding_name") == "SAME":
        ph, pw = _pad_same(h, kh, sh, dh), _pad_same(w, kw, sw, dw)
        x = np.pad(x, (ph, pw, (0, 0)))
    oh = (x.shape[0] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[1] - (kw - 1) * dw - 1) // sw + 1
    pixels = np.arange(oh * ow)
    if len(pixels) > PIXELS_PER_SAMPLE:
        pixels = rng.choice(len(pixels), PIXELS_PER_SAMPLE, replace=False)
    ys = (pixels // ow)[:, None, None] * sh + (np.arange(kh) * dh)[None, :, None]
    xs = (pixels % ow)[:, None, None] * sw + (np.arange(kw) * dw)[None, None, :]
    return x[ys, xs]  # [P, kh, kw, C]


def _rows(x: np.ndarray, opcode: str, shape: tuple[int, ...], options: dict, rng) -> np.ndarray:
    """The operator's input rows for one sample: [P, D] (conv, FC) or [P, C, k*k] (depthwise)."""
    if opcode == "FULLY_CONNECTED":
        return x.reshape(-1, shape[-1])
    x = x.reshape(x.shape[-3:])
    if opcode == "CONV_2D" and shape[1] == shape[2] == 1 and (options.get("stride_h", 1) or 1) == 1 \
            and (options.get("stride_w", 1) or 1) == 1:
        rows = x.reshape(-1, x.shape[-1])
        if len(rows) > PIXELS_PER_SAMPLE:
            rows = rows[rng.choice(len(rows), PIXELS_PER_SAMPLE, replace=False)]
        return rows
    kh, kw = shape[1], shape[2]
    rows = _patches(x, kh, kw, options, rng)
    if opcode == "DEPTHWISE_CONV_2D":
        return rows.reshape(len(rows), kh * kw, -1).transpose(0, 2, 1)  # [P, C, k*k]
    return rows.reshape(len(rows), -1)  # (kh, kw, C) order, as the weights [O, kh, kw, I]


def gptq(w: np.ndarray, scale: np.ndarray, h: np.ndarray, damping: float | None = None,
         act_order: bool | None = None) -> np.ndarray:
    """Integer weights for float ``w`` ([G, O, D]: G groups sharing ``h`` [G, D, D]) at per-row ``scale``
    ([G, O]), chosen column by column to minimise ``(w - q s) H (w - q s)^T`` (GPTQ); returns int8 [G, O, D].
    ``act_order``: columns with the largest ``H`` diagonal (most input energy) first (one group only).
    Defaults: :data:`DAMPING`, :data:`ACT_ORDER`."""
    damping = DAMPING if damping is None else damping
    act_order = ACT_ORDER if act_order is None else act_order
    if act_order and w.shape[0] == 1:
        perm = np.argsort(-np.diagonal(h[0]), kind="stable")
        q = gptq(w[:, :, perm], scale, h[:, perm][:, :, perm], damping, act_order=False)
        out = np.empty_like(q)
        out[:, :, perm] = q
        return out
    w = np.array(w, dtype=np.float64)
    h = np.array(h, dtype=np.float64)
    d = h.shape[-1]
    diag = np.einsum("gii->gi", h)
    dead = diag <= 0
    for g, i in zip(*np.nonzero(dead), strict=True):
        h[g, i, i] = 1.0
    mean = np.maximum(np.einsum("gii->gi", h).mean(axis=1), 1e-12)
    h[:, np.arange(d), np.arange(d)] += damping * mean[:, None]
    # Upper Cholesky factor of H^-1: row i holds how column i's error should move the later columns.
    u = np.linalg.cholesky(np.linalg.inv(h)).transpose(0, 2, 1)
    q = np.zeros(w.shape, dtype=np.int64)
    for i in range(d):
        col = w[:, :, i]
        qi = np.clip(np.round(col / scale), -127, 127)
        q[:, :, i] = qi
        err = (col - qi * scale) / u[:, i, i][:, None]
        if i + 1 < d:
            w[:, :, i + 1 :] -= err[:, :, None] * u[:, None, i, i + 1 :]
    return q.astype(np.int8)


def _soft_start(w: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AdaRound's start: ``(floor(w/s), V)`` with the rectified sigmoid ``h(V)`` equal to each weight's own
    fractional part (clipped to [0.01, 0.99]), so the soft weights start at the float weights."""
    base = np.floor(w / s)
    frac = np.clip(w / s - base, 0.01, 0.99)
    return base, -np.log((ADAROUND_ZETA - ADAROUND_GAMMA) / (frac - ADAROUND_GAMMA) - 1.0)


def _beta(t: int, iterations: int, warm: int) -> float:
    """The regulariser's exponent at Adam step ``t`` (after the warm-up ``warm``): annealed :data:`ADAROUND_BETA`."""
    return ADAROUND_BETA[1] + (ADAROUND_BETA[0] - ADAROUND_BETA[1]) * (1 - (t - warm) / max(iterations - warm, 1))


def adaround(w: np.ndarray, scale: np.ndarray, h: np.ndarray, c: np.ndarray | None = None,
             iterations: int | None = None) -> np.ndarray:
    """Integer weights for float ``w`` ([G, O, D], groups sharing ``h`` [G, D, D]) at per-row ``scale`` ([G, O]):
    each weight rounded down or up as learnt by AdaRound (Nagel et al., "Up or Down? Adaptive Rounding", 2020).

    The weights are ``s (floor(w/s) + h(V))`` with a rectified sigmoid ``h`` of a free variable ``V`` per weight
    (started at the weight's own fractional part); Adam minimises the operator's output error on its recorded
    inputs, ``tr((V_s - T) H (V_s - T)^T)`` with ``T H = w c^T`` (``c`` None: ``c = h``, the float weights on the
    same inputs; else ``c = X_q^T X_f``, the float op on the float inputs), normalised by round-to-nearest's
    error, plus ``ADAROUND_REG * sum(1 - |2h - 1|^beta)`` after a warm-up, ``beta`` annealed from 20 to 2, which
    drives every ``h`` to 0 or 1. Returns int8 [G, O, D] clipped to [-127, 127]. ``iterations`` default
    :data:`ADAROUND_ITERATIONS`."""
    iterations = ADAROUND_ITERATIONS if iterations is None else int(iterations)
    if iterations < 1:
        raise ValueError(f"adaround iterations must be at least 1, got {iterations}")
    zeta, gamma = ADAROUND_ZETA, ADAROUND_GAMMA
    w = np.asarray(w, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)[:, :, None]
    c = h if c is None else np.asarray(c, dtype=np.float64)
    target = np.matmul(w, c.transpose(0, 2, 1))  # w c^T: [G, O, D]
    base, v = _soft_start(w, s)

    def soft(v):
        sig = 1.0 / (1.0 + np.exp(-v))
        raw = sig * (zeta - gamma) + gamma
        return np.clip(raw, 0.0, 1.0), sig * (1 - sig) * (zeta - gamma) * ((raw > 0) & (raw < 1))

    # Scale of the loss: round-to-nearest's expected output error (uniform rounding noise, s^2/12 per weight).
    energy = np.einsum("gii->gi", h).mean(axis=1)[:, None]
    norm = max(float(np.sum(energy * s[:, :, 0] ** 2) * w.shape[-1] / 12.0), 1e-12)
    m = np.zeros_like(v)
    u = np.zeros_like(v)
    b1, b2, eps = 0.9, 0.999, 1e-8
    warm = int(ADAROUND_WARMUP * iterations)
    for t in range(1, iterations + 1):
        hv, dh = soft(v)
        wq = s * (base + hv)
        grad_w = 2.0 * (np.matmul(wq, h) - target) / norm
        grad = grad_w * s * dh
        if t > warm:
            beta = _beta(t, iterations, warm)
            z = 2 * hv - 1
            grad = grad + ADAROUND_REG * (-2 * beta * np.abs(z) ** (beta - 1) * np.sign(z)) * dh
        m = b1 * m + (1 - b1) * grad
        u = b2 * u + (1 - b2) * grad * grad
        v = v - ADAROUND_LR * (m / (1 - b1 ** t)) / (np.sqrt(u / (1 - b2 ** t)) + eps)
    hv, _ = soft(v)
    return np.clip(base + (hv >= 0.5), -127, 127).astype(np.int8)


def _output_mse(delta: np.ndarray, h: np.ndarray) -> float:
    """Mean squared output error ``tr(delta H delta^T)`` summed over groups and rows (H already averaged)."""
    return float(np.sum(np.matmul(delta, h) * delta))


def _grid(v: np.ndarray, depthwise: bool) -> np.ndarray:
    """Weights as GPTQ's [G, O, D]: depthwise [1, kh, kw, C] -> [C, 1, k*k]; others [O, ...] -> [1, O, D]."""
    if depthwise:
        return v.reshape(-1, v.shape[-1]).T[:, None, :]
    return v.reshape(1, len(v), -1)


def _ungrid(v: np.ndarray, shape: tuple[int, ...], depthwise: bool) -> np.ndarray:
    return v[:, 0, :].T.reshape(shape) if depthwise else v[0].reshape(shape)


def _expand(m: np.ndarray, mult: int) -> np.ndarray:
    """Per-input-channel matrices to per-output-channel (depthwise multiplier > 1)."""
    return np.repeat(m, mult, axis=0) if mult > 1 else m


def _ridge_target(w: np.ndarray, h: np.ndarray, c: np.ndarray, ridge: float) -> np.ndarray:
    """``argmin_V ||V X_q - W X_f||^2 + l ||V - W||^2 = (W X_f^T X_q + l W)(X_q^T X_q + l I)^-1`` per group,
    from ``h = X_q^T X_q``, ``c = X_q^T X_f`` (row-averaged), ``l = ridge * mean diag(h)``."""
    lam = ridge * np.maximum(np.einsum("gii->gi", h).mean(axis=1), 1e-12)[:, None, None]
    rhs = np.matmul(w, c.transpose(0, 2, 1)) + lam * w  # [G, O, D]
    a = h + lam * np.eye(h.shape[-1])[None]
    return np.linalg.solve(a, rhs.transpose(0, 2, 1)).transpose(0, 2, 1)  # a symmetric


def _float_output_mse(v: np.ndarray, w: np.ndarray, h: np.ndarray, c: np.ndarray, f: np.ndarray) -> float:
    """``||V X_q - W X_f||^2`` per row, from ``h = X_q^T X_q``, ``c = X_q^T X_f``, ``f = X_f^T X_f``."""
    return _output_mse(v, h) - 2 * float(np.sum(np.matmul(v, c) * w)) + _output_mse(w, f)


def _jobs(fgraph, qgraph, fmodel, qmodel, ops: tuple[str, ...]) -> list[tuple]:
    """(op, float weights [O, ...], int8 weights, scales [O], float op) for every op that can be re-rounded."""
    float_by_name = {t.name: t.index for t in fgraph.tensors if not t.is_constant}
    float_producer = {t: op for op in fgraph.operators for t in op.outputs if t >= 0}
    fsub, qsub = fmodel.Subgraphs(0), qmodel.Subgraphs(0)
    buffer_users: dict[int, int] = {}
    for i in range(qsub.TensorsLength()):
        b = qsub.Tensors(i).Buffer()
        buffer_users[b] = buffer_users.get(b, 0) + 1
    jobs = []
    for op in qgraph.operators:
        if op.opcode not in ops or len(op.inputs) < 2:
            continue
        weight = qgraph.tensors[op.inputs[1]]
        if weight.dtype != "int8" or not weight.quantization.scale or any(weight.quantization.zero_point):
            continue
        fop = float_producer.get(float_by_name.get(qgraph.tensors[op.outputs[0]].name, -1))
        if fop is None or fop.opcode != op.opcode:
            continue
        ftensor = fgraph.tensors[fop.inputs[1]]
        if ftensor.dtype != "float32" or tuple(ftensor.shape) != tuple(weight.shape):
            continue
        qbuffer = qsub.Tensors(op.inputs[1]).Buffer()
        fbuf = fmodel.Buffers(fsub.Tensors(fop.inputs[1]).Buffer())
        qbuf = qmodel.Buffers(qbuffer)
        if fbuf.DataIsNone() or qbuf.DataIsNone() or buffer_users[qbuffer] > 1:
            continue
        wf = fbuf.DataAsNumpy().view("<f4").reshape(weight.shape).astype(np.float64)
        wq = qbuf.DataAsNumpy().view(np.int8).reshape(weight.shape).copy()
        axis = 3 if op.opcode == "DEPTHWISE_CONV_2D" else 0
        scale = np.asarray(weight.quantization.scale, dtype=np.float64)
        if weight.quantization.axis != axis or scale.size != weight.shape[axis]:
            continue
        shaped = scale.reshape([-1 if k == axis else 1 for k in range(wf.ndim)])
        # These int8 weights must be this float op's, rounded (to nearest, or already re-rounded: most within
        # half a step); the new values are always chosen from the float weights, never from the old ones.
        if np.median(np.abs(wf - wq * shaped) / shaped) > 0.5 + 1e-3:
            continue
        jobs.append((op, wf, wq, scale, fop, qbuffer))
    return jobs


def _gram(a: np.ndarray, b: np.ndarray, opcode: str) -> np.ndarray:
    if opcode == "DEPTHWISE_CONV_2D":
        return np.matmul(a.transpose(1, 2, 0), b.transpose(1, 0, 2)).astype(np.float64)  # [C, k*k, k*k]
    return (a.T @ b).astype(np.float64)[None]


def _statistics(jobs, quant_bytes: bytes, fi, samples: np.ndarray, seed, threads: int | None) -> dict:
    """Per op: ``h = X_q^T X_q`` (and, with a float interpreter ``fi``, ``c = X_q^T X_f``, ``f = X_f^T X_f``),
    row-averaged, from the op's inputs in the quantized model ``quant_bytes`` on ``samples``. The random pixels
    are drawn from one generator seeded by ``seed``, sample by sample and op by op, and the float rows from a
    twin drawn in lockstep (the same pixels in both models)."""
    from ..runtime.activations import dequantizer, feed, preserving_interpreter

    qi = preserving_interpreter(quant_bytes, threads)
    value = dequantizer(qi)
    fvalue = dequantizer(fi) if fi is not None else None
    twins = (np.random.default_rng(seed), np.random.default_rng(seed))
    rngs = {op.index: twins for op, *_ in jobs}
    stats: dict[int, dict] = {op.index: {"n": 0} for op, *_ in jobs}
    for x in samples:
        feed(qi, x[None])
        qi.invoke()
        if fi is not None:
            feed(fi, x[None])
            fi.invoke()
        for op, wf, _, _, fop, _ in jobs:
            s, (rng, frng) = stats[op.index], rngs[op.index]
            rows = _rows(value(op.inputs[0]), op.opcode, wf.shape, op.options, rng)
            s["h"] = s.get("h", 0.0) + _gram(rows, rows, op.opcode)
            s["n"] += len(rows)
            if fi is not None:
                frows = _rows(fvalue(fop.inputs[0]), op.opcode, wf.shape, op.options, frng)
                s["c"] = s.get("c", 0.0) + _gram(rows, frows, op.opcode)
                s["f"] = s.get("f", 0.0) + _gram(frows, frows, op.opcode)
    return stats


def _round_one(job, s: dict, upstream: bool, ridge: float, method: str = DEFAULT_METHOD,
               iterations: int | None = None) -> tuple[np.ndarray, float, float]:
    """New int8 weights of one op from its statistics (``method``: :data:`METHODS`), with its output error
    before (the model's current weights) and after."""
    op, wf, wq, scale, _, _ = job
    n = max(s["n"], 1)
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    mult = wf.shape[3] // s["h"].shape[0] if depthwise else 1
    hh = _expand(s["h"] / n, mult)
    w = _grid(wf, depthwise)  # [G, O, D]
    sc = scale[:, None] if depthwise else scale[None]
    shaped = scale.reshape([-1 if k == (3 if depthwise else 0) else 1 for k in range(wf.ndim)])
    if upstream and "c" in s:
        c, f = _expand(s["c"] / n, mult), _expand(s["f"] / n, mult)
        if method == "adaround":
            q = _ungrid(adaround(w, sc, hh, c, iterations), wf.shape, depthwise)
        else:
            q = _ungrid(gptq(_ridge_target(w, hh, c, ridge), sc, hh), wf.shape, depthwise)
        e0 = _float_output_mse(_grid(wq * shaped, depthwise), w, hh, c, f)
        e1 = _float_output_mse(_grid(q * shaped, depthwise), w, hh, c, f)
    else:
        rounder = adaround(w, sc, hh, iterations=iterations) if method == "adaround" else gptq(w, sc, hh)
        q = _ungrid(rounder, wf.shape, depthwise)
        e0 = _output_mse(_grid(wf - wq * shaped, depthwise), hh)
        e1 = _output_mse(_grid(wf - q * shaped, depthwise), hh)
    return q, e0, e1


def blocks(graph) -> list[tuple[int, tuple, int]]:
    """The graph cut into reconstruction blocks: ``(input tensor, operators, output tensor)`` in execution order.

    A cut falls after an operator where a single tensor carries everything later operators need from earlier ones
    (the input of an MBConv block, its residual ADD's output, a project conv without residual). A block ends at the
    first cut made by a CONV_2D, FULLY_CONNECTED or ADD after a DEPTHWISE_CONV_2D (expand, depthwise,
    [squeeze-excite], project, [ADD]: Lite0's stem joins its first block), or :data:`BLOCK_MAX_OPS` rounded
    operators (graphs without depthwise convs); what is left after the last cut (the head) is the last block."""
    ops = graph.operators
    last = {t: len(ops) for t in graph.outputs}  # tensor -> index of its last reader
    for k, op in enumerate(ops):
        for t in op.inputs:
            if t >= 0 and not graph.tensors[t].is_constant:
                last[t] = max(last.get(t, -1), k)
    live = {t for t in graph.inputs if t in last}
    start = next(iter(live)) if len(live) == 1 else -1
    out, current, depthwise, rounded = [], [], False, 0
    for k, op in enumerate(ops):
        current.append(op)
        rounded += op.opcode in ROUNDED_OPS
        live = {t for t in live if last.get(t, -1) > k} | {t for t in op.outputs if t >= 0 and last.get(t, -1) > k}
        # An MBConv block's output is its project conv's or its residual ADD's (not the squeeze-excite's MUL).
        closes = depthwise and op.opcode in ("CONV_2D", "FULLY_CONNECTED", "ADD")
        depthwise = depthwise or op.opcode == "DEPTHWISE_CONV_2D"
        if len(live) == 1 and (closes or rounded >= BLOCK_MAX_OPS):
            (end,) = live
            out.append((start, tuple(current), end))
            start, current, depthwise, rounded = end, [], False, 0
    if current:
        out.append((start, tuple(current), graph.outputs[0] if len(graph.outputs) == 1 else -1))
    return out


def _constant(interpreter, tensor) -> np.ndarray:
    """A constant tensor's values: dequantized (per channel along its axis) when quantized, else as stored."""
    raw = interpreter.get_tensor(tensor.index)
    q = tensor.quantization
    if not q.scale or not np.issubdtype(raw.dtype, np.integer):
        return raw
    scale, zero = np.asarray(q.scale, np.float32), np.asarray(q.zero_point or (0,), np.float32)
    if scale.size > 1:
        shape = [-1 if k == q.axis else 1 for k in range(raw.ndim)]
        scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.size > 1 else zero[0]
    else:
        scale, zero = scale[0], zero[0]
    return ((raw.astype(np.float32) - zero) * scale).astype(np.float32)


_ACTIVATIONS = {"NONE": None, "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def _simulable(graph, block: tuple) -> str | None:
    """Why the block simulator cannot run ``block`` (an unsupported operator, or an input from outside), or None."""
    start, ops, end = block
    inside = {start}
    for op in ops:
        if op.opcode not in BLOCK_OPS:
            return f"{op.opcode} is not simulated"
        if op.options.get("fused_activation", "NONE") not in _ACTIVATIONS:
            return f"{op.opcode} with fused {op.options['fused_activation']} is not simulated"
        for t in op.inputs:
            if t >= 0 and not graph.tensors[t].is_constant and t not in inside:
                return f"{op.opcode} reads a tensor from outside its block"
        inside.update(t for t in op.outputs if t >= 0)
    return None if start >= 0 and end in inside else "the block has no single input and output"


def _block_forward(graph, ops: tuple, constants: dict, start: int, end: int):
    """``forward(x, weights)``: the block's operators in float TensorFlow on its dequantized input ``x`` (a batch),
    with ``weights`` (weight tensor index -> float weights, TFLite layout) replacing stored constants, and every
    operator's output fake-quantized at the int8 model's own scale and zero point (straight-through estimator):
    the block's activation quantization in the loop."""
    from .._tf import tf

    def fake_quant(y, tensor, drop, k: int):
        q = tensor.quantization
        if not q.scale or tensor.dtype not in _INT_RANGES:
            return y
        lo, hi = _INT_RANGES[tensor.dtype]
        s, z = float(q.scale[0]), float(q.zero_point[0] if q.zero_point else 0)
        yq = (tf.clip_by_value(tf.round(y / s) + z, lo, hi) - z) * s
        yq = y + tf.stop_gradient(yq - y)
        if drop is None:
            return yq
        probability, step = drop  # QDrop: this step, these elements stay float
        keep_float = tf.random.stateless_uniform(tf.shape(y), seed=tf.stack([step, k])) < probability
        return tf.where(keep_float, y, yq)

    def activate(y, options):
        lo, hi = _ACTIVATIONS[options.get("fused_activation", "NONE")] or (None, None)
        y = y if lo is None else tf.maximum(y, lo)
        return y if hi is None else tf.minimum(y, hi)

    def forward(x, weights: dict, drop=None):
        """``drop``: ``(probability, step)`` (QDrop, while learning) or ``None`` (every output quantized)."""
        values = {start: x}

        def get(t):
            if t in values:
                return values[t]
            return weights[t] if t in weights else constants[t]

        for k, op in enumerate(ops):
            o, opts, shape = op.options, op.options, graph.tensors[op.outputs[0]].shape
            ins = [get(t) if t >= 0 else None for t in op.inputs]
            strides = [1, o.get("stride_h", 1) or 1, o.get("stride_w", 1) or 1, 1]
            dilations = [1, o.get("dilation_h_factor", 1) or 1, o.get("dilation_w_factor", 1) or 1, 1]
            bias = ins[2] if len(ins) > 2 and ins[2] is not None else 0.0
            if op.opcode == "CONV_2D":
                y = tf.nn.conv2d(ins[0], tf.transpose(ins[1], [1, 2, 3, 0]), strides, o.get("padding_name", "SAME"),
                                 dilations=dilations) + bias
            elif op.opcode == "DEPTHWISE_CONV_2D":
                kh, kw = ins[1].shape[1], ins[1].shape[2]
                channels = ins[0].shape[-1]
                w = tf.reshape(ins[1], [kh, kw, channels, -1])
                y = tf.nn.depthwise_conv2d(ins[0], w, strides, o.get("padding_name", "SAME"),
                                           dilations=dilations[1:3]) + bias
            elif op.opcode == "FULLY_CONNECTED":
                y = tf.matmul(tf.reshape(ins[0], [-1, ins[1].shape[-1]]), ins[1], transpose_b=True) + bias
                y = tf.reshape(y, [-1, *shape[1:]])
            elif op.opcode == "ADD":
                y = ins[0] + ins[1]
            elif op.opcode == "MUL":
                y = ins[0] * ins[1]
            elif op.opcode == "LOGISTIC":
                y = tf.sigmoid(ins[0])
            elif op.opcode == "RELU":
                y = tf.nn.relu(ins[0])
            elif op.opcode == "RELU6":
                y = tf.nn.relu6(ins[0])
            elif op.opcode == "MEAN":
                axes = [int(a) for a in np.asarray(ins[1]).reshape(-1)]
                y = tf.reduce_mean(ins[0], axis=axes, keepdims=bool(opts.get("keep_dims")))
            elif op.opcode == "RESHAPE":
                y = tf.reshape(ins[0], [-1, *shape[1:]])
            elif op.opcode == "PAD":
                y = tf.pad(ins[0], np.asarray(ins[1]).reshape(-1, 2))  # TFLite pads int8 with the zero point: 0.0
            else:  # QUANTIZE, DEQUANTIZE: the fake quantization below is the whole op
                y = ins[0]
            values[op.outputs[0]] = fake_quant(activate(y, o), graph.tensors[op.outputs[0]], drop, k)
        return values[end]

    return forward


def _reconstruct_block(graph, block: tuple, jobs: list, interpreter, x: np.ndarray, target: np.ndarray,
                       iterations: int, seed, drop: float = 0.0) -> tuple[list, float, float]:
    """Learn the rounding of the block's re-roundable weights (``jobs``) on its recorded inputs ``x`` (the quantized
    model's, dequantized) against the float block's outputs ``target``; returns ``([(job, int8 weights)], error
    before, error after)``: the block output's mean squared error with the model's current weights and with the
    learnt ones (hard rounding), on all of ``x``. ``drop`` > 0: QDrop's probability of leaving an activation element in
    float in a learning step (the errors are measured without it)."""
    from .._tf import tf

    start, ops, end = block
    constants = {t: _constant(interpreter, graph.tensors[t]) for op in ops for t in op.inputs
                 if t >= 0 and graph.tensors[t].is_constant}
    forward = _block_forward(graph, ops, constants, start, end)
    learnt = []  # (job, weight tensor index, base, V variable, scale shaped like the weights)
    for job in jobs:
        op, wf, _, scale, _, _ = job
        axis = 3 if op.opcode == "DEPTHWISE_CONV_2D" else 0
        shaped = scale.reshape([-1 if k == axis else 1 for k in range(wf.ndim)])
        base, v = _soft_start(wf, shaped)
        learnt.append((job, op.inputs[1], tf.constant(base, tf.float32), tf.Variable(v.astype(np.float32)),
                       tf.constant(shaped, tf.float32)))
    zeta, gamma = ADAROUND_ZETA, ADAROUND_GAMMA

    def weights(hard: bool) -> dict:
        out = {}
        for _, t, base, v, s in learnt:
            h = tf.cast(v >= 0, tf.float32) if hard else tf.clip_by_value(tf.sigmoid(v) * (zeta - gamma) + gamma, 0, 1)
            out[t] = s * tf.clip_by_value(base + h, -127.0, 127.0)
        return out

    def error(over: dict) -> float:
        total = 0.0
        for i in range(0, len(x), BRECQ_BATCH):
            y = forward(tf.constant(x[i : i + BRECQ_BATCH]), over)
            total += float(tf.reduce_sum(tf.square(y - target[i : i + BRECQ_BATCH])))
        return total / target.size

    before = error({})
    norm = tf.constant(max(before, 1e-12), tf.float32)
    count = float(sum(int(np.prod(v.shape)) for *_, v, _ in learnt))
    variables = [v for *_, v, _ in learnt]
    first = [tf.Variable(tf.zeros_like(v)) for v in variables]
    second = [tf.Variable(tf.zeros_like(v)) for v in variables]
    b1, b2, eps = 0.9, 0.999, 1e-8
    drop_p = tf.constant(float(drop), tf.float32)
    seed_offset = tf.constant(int(np.random.default_rng(seed).integers(1 << 30)), tf.int32)  # per block

    @tf.function(autograph=False)  # plain Python loops over the block's weights: nothing to convert
    def step(xb, tb, beta, reg, t):
        with tf.GradientTape() as tape:
            over = weights(False)
            noisy = (drop_p, tf.cast(t, tf.int32) + seed_offset) if drop > 0 else None
            loss = tf.reduce_mean(tf.square(forward(xb, over, noisy) - tb)) / norm
            penalty = 0.0
            for *_, v, _ in learnt:
                h = tf.clip_by_value(tf.sigmoid(v) * (zeta - gamma) + gamma, 0, 1)
                penalty += tf.reduce_sum(1.0 - tf.pow(tf.abs(2.0 * h - 1.0), beta))
            loss += reg * BRECQ_REG * penalty / count
        grads = tape.gradient(loss, variables)
        for v, g, m, u in zip(variables, grads, first, second, strict=True):
            m.assign(b1 * m + (1 - b1) * g)
            u.assign(b2 * u + (1 - b2) * g * g)
            v.assign_sub(BRECQ_LR * (m / (1 - b1 ** t)) / (tf.sqrt(u / (1 - b2 ** t)) + eps))

    rng = np.random.default_rng(seed)
    batch = min(BRECQ_BATCH, len(x))
    warm = int(ADAROUND_WARMUP * iterations)
    for t in range(1, iterations + 1):
        pick = np.sort(rng.choice(len(x), batch, replace=False))
        on = t > warm
        step(tf.constant(x[pick]), tf.constant(target[pick]), tf.constant(_beta(t, iterations, warm) if on else 2.0),
             tf.constant(1.0 if on else 0.0), tf.constant(float(t)))
    hard = weights(True)
    after = error(hard)
    rounded = [(job, np.rint(hard[t].numpy() / s.numpy()).astype(np.int8)) for job, t, _, _, s in learnt]
    return rounded, before, after


def _block_rounds(graph, fgraph, jobs: list, float_bytes: bytes, current, samples: np.ndarray, *, seed,
                  threads: int | None, iterations: int, drop: float = 0.0):
    """BRECQ, block by block in execution order: yields ``(output tensor name, error before, after, [(job, int8
    weights)], layer-wise)`` per block, after reading ``current()`` (the model with the earlier blocks' weights
    written back) for the block's inputs. A block the simulator cannot run (:func:`_simulable`) or whose output has
    no float twin yields its ops one by one, re-rounded by layer-wise AdaRound (``layer-wise`` True)."""
    from ..runtime.activations import dequantizer, feed, preserving_interpreter

    by_op = {job[0].index: job for job in jobs}
    float_by_name = {t.name: t.index for t in fgraph.tensors if not t.is_constant}
    fi = preserving_interpreter(float_bytes, threads)
    fvalue = dequantizer(fi)
    parts = blocks(graph)
    wanted = {float_by_name.get(graph.tensors[end].name) for _, _, end in parts} - {None}
    targets: dict[int, list] = {t: [] for t in wanted}
    for x in samples:  # the float model's block outputs on the float model's own inputs, once
        feed(fi, x[None])
        fi.invoke()
        for t in wanted:
            targets[t].append(fvalue(t))
    for k, block in enumerate(parts):
        start, ops, end = block
        mine = [by_op[op.index] for op in ops if op.index in by_op]
        if not mine:
            continue
        ftensor = float_by_name.get(graph.tensors[end].name) if end >= 0 else None
        why = _simulable(graph, block) or (None if ftensor is not None else "its output has no float twin")
        if why is not None:
            stats = _statistics(mine, current(), None, samples, [seed, mine[0][0].index], threads)
            for job in mine:
                if stats[job[0].index]["n"]:
                    q, e0, e1 = _round_one(job, stats[job[0].index], False, TARGET_RIDGE, "adaround", iterations)
                    yield graph.tensors[job[0].outputs[0]].name, e0, e1, [(job, q)], True
            continue
        qi = preserving_interpreter(current(), threads)
        value = dequantizer(qi)
        inputs = []
        for x in samples:
            feed(qi, x[None])
            qi.invoke()
            inputs.append(value(start))
        target = np.concatenate(targets[ftensor]).astype(np.float32)
        rounded, e0, e1 = _reconstruct_block(graph, block, mine, qi, np.concatenate(inputs).astype(np.float32),
                                             target, iterations, [seed, k], drop)
        yield graph.tensors[end].name, e0, e1, rounded, False


def round_weights(float_bytes: bytes, quant_bytes: bytes, samples: np.ndarray, *,
                  threads: int | None = None, seed: int = 0,
                  ops: tuple[str, ...] = ROUNDED_OPS, target: str | None = None,
                  ridge: float | None = None, sequential: bool | None = None, method: str | None = None,
                  iterations: int | None = None) -> tuple[bytes, WeightRounding]:
    """Return ``quant_bytes`` with re-rounded int8 weights (GPTQ by default; see the module docstring).

    ``target``: :data:`TARGETS` (default :data:`DEFAULT_TARGET`); with "float_output" the float model is run on
    the same samples and each op's float inputs ``X_f`` (same pixels) give the upstream-aware target, ``ridge``
    (default :data:`TARGET_RIDGE`) its pull towards ``W``; the per-op error is then against ``W X_f``.
    ``sequential`` (default :data:`SEQUENTIAL`): ops in execution order, each one's inputs measured again on the
    model whose earlier ops are already re-rounded (one pass over the samples per op) instead of all on the
    input model at once. ``method``: :data:`METHODS` (default :data:`DEFAULT_METHOD`); ``iterations``: AdaRound's
    Adam steps per operator (default :data:`ADAROUND_ITERATIONS`) or BRECQ's per block (default
    :data:`BRECQ_ITERATIONS`; also the steps of its layer-wise fallback; "qdrop" too). "brecq" and "qdrop"
    (:data:`BLOCK_METHODS`) take no ``target``, ``ridge`` or ``sequential``: they always aim at the float block's
    output, block by block."""
    target = DEFAULT_TARGET if target is None else target
    if target not in TARGETS:
        raise ValueError(f"unknown rounding target {target!r}: one of {', '.join(TARGETS)}")
    method = DEFAULT_METHOD if method is None else method
    if method not in METHODS:
        raise ValueError(f"unknown rounding method {method!r}: one of {', '.join(METHODS)}")
    if iterations is not None and (method == "gptq" or int(iterations) < 1):
        raise ValueError(f"rounding iterations must be a whole number >= 1 and need method 'adaround', 'brecq' or "
                         f"'qdrop', got {iterations!r} with {method!r}")
    if method in BLOCK_METHODS and (target != DEFAULT_TARGET or sequential or ridge is not None):
        raise ValueError(f"target, ridge and sequential are layer-wise options: method {method!r} always aims at the "
                         "float block's output, block by block")
    ridge = TARGET_RIDGE if ridge is None else ridge
    sequential = SEQUENTIAL if sequential is None else sequential
    upstream = target == "float_output"
    from tensorflow.lite.python import schema_py_generated as schema

    from ..runtime.activations import preserving_interpreter
    from ..runtime.tflite_graph import read_graph

    data = bytearray(quant_bytes)  # patched in place: the int8 weights keep their size and offset
    fbuf = bytearray(float_bytes)
    qmodel, fmodel = schema.Model.GetRootAs(data, 0), schema.Model.GetRootAs(fbuf, 0)
    qgraph = read_graph(quant_bytes)
    fgraph = read_graph(float_bytes)
    jobs = _jobs(fgraph, qgraph, fmodel, qmodel, ops)
    used = np.asarray(samples, dtype=np.float32)
    fi = preserving_interpreter(float_bytes, threads) if upstream else None

    changed = total = rounded = 0
    ratios, per_op, layerwise = [], [], []

    def accept(name: str, e0: float, e1: float, chosen: list) -> None:
        """Record one op's (or block's) errors; write its new weights unless they are no better."""
        nonlocal changed, total, rounded
        if e1 >= e0:  # never worse than the input model's weights (round-to-nearest) on these inputs
            per_op.append((name, e0, e0))
            ratios.append(1.0)
            return
        per_op.append((name, e0, e1))
        ratios.append(e1 / e0 if e0 > 0 else 1.0)
        for job, q in chosen:
            qmodel.Buffers(job[5]).DataAsNumpy()[:] = q.astype(np.int8).reshape(-1).view(np.uint8)
            changed += int(np.count_nonzero(q != job[2]))
            total += int(q.size)
            rounded += 1

    if method in BLOCK_METHODS:
        steps = BRECQ_ITERATIONS if iterations is None else int(iterations)
        for name, e0, e1, chosen, fallback in _block_rounds(qgraph, fgraph, jobs, float_bytes, lambda: bytes(data),
                                                            used, seed=seed, threads=threads, iterations=steps,
                                                            drop=QDROP_PROB if method == "qdrop" else 0.0):
            accept(name, e0, e1, chosen)
            if fallback:
                layerwise.append(name)
    batches = [] if method in BLOCK_METHODS else [[job] for job in jobs] if sequential else [jobs]
    for batch in batches:
        stats = _statistics(batch, bytes(data), fi, used, [seed, batch[0][0].index] if sequential else seed,
                            threads)
        for job in batch:
            if stats[job[0].index]["n"] == 0:
                continue
            q, e0, e1 = _round_one(job, stats[job[0].index], upstream, ridge, method, iterations)
            accept(qgraph.tensors[job[0].outputs[0]].name, e0, e1, [(job, q)])
    return bytes(data), WeightRounding(ops=rounded, weights_changed=changed, weights=total, samples=int(len(used)),
                                       error_ratio=float(np.median(ratios)) if ratios else 1.0,
                                       per_op=tuple(per_op), method=method, layerwise=tuple(layerwise))
