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
layers of an MBConv block is not in the loop (BRECQ's block reconstruction is not built).

Calibration samples only, never the fidelity check's held-out images. Needs TensorFlow
(flatbuffer editing) and a runtime; the arithmetic is numpy.
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
#: "gptq" (column by column, each error spread onto the columns not yet quantized) or "adaround" (each weight's
#: up/down decision learnt jointly by gradient descent on a soft rounding variable, Nagel et al. 2020).
METHODS = ("gptq", "adaround")
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


@dataclass(frozen=True)
class WeightRounding:
    """What weight rounding changed."""

    ops: int  # operators whose weights were re-rounded
    weights_changed: int  # int8 values that differ from the input model's (round-to-nearest, from the converter)
    weights: int  # int8 weights of those operators
    samples: int
    error_ratio: float  # median over ops of (output error after) / (output error of the input model's weights)
    per_op: tuple[tuple[str, float, float], ...] = ()  # (output tensor, error before, after): calibration MSE
    method: str = DEFAULT_METHOD  # METHODS

    def to_dict(self) -> dict:
        return {"method": self.method, "ops": self.ops, "weights_changed": self.weights_changed, "weights": self.weights,
                "samples": self.samples, "median_output_error_ratio": round(self.error_ratio, 4)}


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
    base = np.floor(w / s)
    frac = np.clip(w / s - base, 0.01, 0.99)
    v = -np.log((zeta - gamma) / (frac - gamma) - 1.0)  # h(v) = frac

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
            beta = ADAROUND_BETA[1] + (ADAROUND_BETA[0] - ADAROUND_BETA[1]) * (
                1 - (t - warm) / max(iterations - warm, 1))
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


def round_weights(float_bytes: bytes, quant_bytes: bytes, samples: np.ndarray, *,
                  threads: int | None = None, seed: int = 0,
                  ops: tuple[str, ...] = ROUNDED_OPS, target: str | None = None,
                  ridge: float | None = None, sequential: bool | None = None, method: str | None = None,
                  iterations: int | None = None) -> tuple[bytes, WeightRounding]:
    """Return ``quant_bytes`` with GPTQ-rounded int8 weights (see the module docstring).

    ``target``: :data:`TARGETS` (default :data:`DEFAULT_TARGET`); with "float_output" the float model is run on
    the same samples and each op's float inputs ``X_f`` (same pixels) give the upstream-aware target, ``ridge``
    (default :data:`TARGET_RIDGE`) its pull towards ``W``; the per-op error is then against ``W X_f``.
    ``sequential`` (default :data:`SEQUENTIAL`): ops in execution order, each one's inputs measured again on the
    model whose earlier ops are already re-rounded (one pass over the samples per op) instead of all on the
    input model at once. ``method``: :data:`METHODS` (default :data:`DEFAULT_METHOD`); ``iterations``: AdaRound's
    Adam steps per operator (default :data:`ADAROUND_ITERATIONS`)."""
    target = DEFAULT_TARGET if target is None else target
    if target not in TARGETS:
        raise ValueError(f"unknown rounding target {target!r}: one of {', '.join(TARGETS)}")
    method = DEFAULT_METHOD if method is None else method
    if method not in METHODS:
        raise ValueError(f"unknown rounding method {method!r}: one of {', '.join(METHODS)}")
    if iterations is not None and (method != "adaround" or int(iterations) < 1):
        raise ValueError(f"rounding iterations must be a whole number >= 1 and need method 'adaround', "
                         f"got {iterations!r} with {method!r}")
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
    jobs = _jobs(read_graph(float_bytes), qgraph, fmodel, qmodel, ops)
    used = np.asarray(samples, dtype=np.float32)
    fi = preserving_interpreter(float_bytes, threads) if upstream else None

    changed = total = 0
    ratios, per_op = [], []
    batches = [[job] for job in jobs] if sequential else [jobs]
    for batch in batches:
        stats = _statistics(batch, bytes(data), fi, used, [seed, batch[0][0].index] if sequential else seed,
                            threads)
        for job in batch:
            op, wq = job[0], job[2]
            if stats[op.index]["n"] == 0:
                continue
            q, e0, e1 = _round_one(job, stats[op.index], upstream, ridge, method, iterations)
            name = qgraph.tensors[op.outputs[0]].name
            if e1 >= e0:  # never worse than the input model's weights (round-to-nearest) on these inputs
                per_op.append((name, e0, e0))
                ratios.append(1.0)
                continue
            per_op.append((name, e0, e1))
            ratios.append(e1 / e0 if e0 > 0 else 1.0)
            qmodel.Buffers(job[5]).DataAsNumpy()[:] = q.astype(np.int8).reshape(-1).view(np.uint8)
            changed += int(np.count_nonzero(q != wq))
            total += int(q.size)
    rounded = sum(1 for _, e0, e1 in per_op if e1 < e0)
    return bytes(data), WeightRounding(ops=rounded, weights_changed=changed, weights=total, samples=int(len(used)),
                                       error_ratio=float(np.median(ratios)) if ratios else 1.0,
                                       per_op=tuple(per_op), method=method)
