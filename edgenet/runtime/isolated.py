"""A user's .tflite model run by a child process: a crash in native code costs one line, not the command.

:class:`IsolatedTFLiteModel` has the surface of :class:`~edgenet.runtime.interpreter.TFLiteModel` that
``predict`` and ``eval`` use (``run``, ``input_shape``, ``input_quant``, ``model_bytes``, ``runtime``), but
the interpreter lives in ``python -m edgenet.runtime.isolated``, started through :mod:`edgenet.process`
(own process group, stopped on SIGINT/SIGTERM, dies with its parent). A model that makes the
interpreter abort or segfault ends in one :class:`~edgenet.errors.InputFileError`:
``MODEL.tflite: the interpreter crashed (SIGSEGV); the model is malformed``.

Protocol on the child's stdin/stdout, never pickle (the child runs untrusted native code, so the
parent trusts nothing it sends): a JSON line, optionally followed by one array in NumPy's ``.npy``
format read with ``allow_pickle=False``.

* parent -> child: ``{"threads": n, "source": path}`` + the model bytes as a uint8 array; then per
  batch ``{"op": "run"}`` + a float32 array;
* child -> parent: ``{"ok": true, ...model facts}`` or ``{"error": "one line"}``; per batch
  ``{"ok": true}`` + the float32 output, or ``{"error": ...}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .. import process
from ..errors import EdgenetError, InputFileError
from ..fsutil import read_input_bytes
from .delegates import EDGETPU_LIBRARY
from .interpreter import QuantParams, RuntimeInfo

__all__ = ["IsolatedTFLiteModel"]

MODULE = "edgenet.runtime.isolated"


#: Largest array either side accepts (a lying peer cannot make the other allocate more).
MAX_ARRAY_BYTES = 1 << 31


def _send(stream, header: dict, array: np.ndarray | None = None) -> None:
    stream.write(json.dumps(header).encode("utf-8") + b"\n")
    if array is not None:
        # The .npy header, then the raw bytes straight from the array (numpy's own writer uses
        # tofile() on real files, which pipes refuse).
        array = np.ascontiguousarray(array)
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, np.lib.format.header_data_from_array_1_0(array))
        stream.write(header.getbuffer())
        stream.write(memoryview(array).cast("B"))
    stream.flush()


def _widen_pipe(stream) -> None:
    """1 MiB pipe buffers (Linux F_SETPIPE_SZ): a 224 px float image crosses in one write."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        import fcntl

        fcntl.fcntl(stream.fileno(), 1031, 1 << 20)


def _receive_header(stream) -> dict | None:
    line = stream.readline(1 << 20)
    if not line:
        return None
    header = json.loads(line)
    if not isinstance(header, dict):
        raise ValueError("not a JSON object")
    return header


def _receive_array(stream) -> np.ndarray:
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject or fortran_order:
        raise ValueError("unexpected array layout")
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dtype.itemsize
    if count < 0 or nbytes > MAX_ARRAY_BYTES:
        raise ValueError(f"array of {nbytes} bytes refused")
    out = np.empty(shape, dtype=dtype)
    view = memoryview(out).cast("B") if nbytes else memoryview(b"")
    got = 0
    while got < nbytes:
        n = stream.readinto(view[got:])
        if not n:
            raise ValueError("truncated array")
        got += n
    return out


class _RuntimeView:
    """What ``eval`` records of the runtime (``.info``), as reported by the child."""

    def __init__(self, info: RuntimeInfo):
        self.info = info


class IsolatedTFLiteModel:
    """A .tflite file loaded in a child process; ``run(batch_float) -> float32 outputs``."""

    def __init__(self, path: str | os.PathLike, *, threads: int = 1, python: str = sys.executable,
                 delegate: str = "cpu", edgetpu_lib: str = EDGETPU_LIBRARY):
        self.path = Path(path)
        self.source = str(path)
        self.model_bytes = read_input_bytes(self.path, "a .tflite model")
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            self._proc = process.popen([python, "-m", MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=self._stderr, env=env)
        except OSError as exc:
            raise EdgenetError(f"{self.source}: cannot start the model process: {exc.strerror or exc}") from None
        _widen_pipe(self._proc.stdin)
        _widen_pipe(self._proc.stdout)
        model_array = np.frombuffer(self.model_bytes, dtype=np.uint8)
        try:
            reply = self._exchange({"threads": int(threads), "source": self.source, "delegate": delegate,
                                    "edgetpu_lib": edgetpu_lib}, model_array, expect_array=False)[0]
        except BaseException:
            self.close()
            raise
        self.input_shape = tuple(int(d) for d in reply["input_shape"])
        q = reply["input_quant"]
        self.input_quant = QuantParams(float(q["scale"]), int(q["zero_point"]), np.dtype(q["dtype"]))
        self.runtime = _RuntimeView(RuntimeInfo(reply["runtime"]["name"], reply["runtime"]["version"]))

    def run(self, batch_float: np.ndarray) -> np.ndarray:
        return self._exchange({"op": "run"}, np.asarray(batch_float, dtype=np.float32), expect_array=True)[1]

    def close(self) -> None:
        process.stop(self._proc, grace_s=1.0)
        self._pass_on_stderr(crashed=False)
        self._stderr.close()

    def _pass_on_stderr(self, crashed: bool) -> None:
        """What the child printed, as edgenet.logs decides: everything with ``--verbose``; otherwise the
        lines that are not known native chatter, and nothing after a crash (its one line says it all)."""
        from ..logs import is_noise, verbose

        if self._stderr.closed:
            return
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
            self._stderr.seek(0)
            self._stderr.truncate()  # said once (or dropped), never again at close()
        except (OSError, ValueError):
            return
        if crashed and not verbose():
            return
        kept = [line for line in text.splitlines(keepends=True) if verbose() or not is_noise(line)]
        if kept:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write("".join(kept))
                sys.stderr.flush()

    def __enter__(self) -> IsolatedTFLiteModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _exchange(self, header: dict, array: np.ndarray | None, expect_array: bool):
        proc = self._proc
        try:
            _send(proc.stdin, header, array)
            reply = _receive_header(proc.stdout)
            if reply is not None and reply.get("ok") and expect_array:
                return reply, _receive_array(proc.stdout)
        except (OSError, ValueError):
            reply = None
        if reply is None or not reply.get("ok"):
            if reply is not None and isinstance(reply.get("error"), str):
                raise EdgenetError(" ".join(reply["error"].split())[:500])
            raise self._died()
        return reply, None

    def _died(self) -> EdgenetError:
        """The child stopped answering: say how it ended, in one line."""
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.close_quietly()
        tail = self._stderr_tail()
        self._pass_on_stderr(crashed=True)
        if code is not None and code < 0:
            return InputFileError(self.path, f"the interpreter crashed ({process.signal_name(code)}); "
                                             "the model is malformed")
        return InputFileError(self.path, f"the model process failed ({tail or f'exit code {code}'})")

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            lines = [ln.strip() for ln in self._stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1][:300] if lines else ""

    def close_quietly(self) -> None:
        process.stop(self._proc, grace_s=0.5)


def _serve() -> int:
    """The child: load the model, then answer batches until stdin closes."""
    # Keep the real stdout for the protocol; point fd 1 (native code prints there too) at stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    from .heap import retain_freed_memory
    from .interpreter import TFLiteModel

    retain_freed_memory()  # one image after another: no fresh pages per temporary

    request = _receive_header(inp)
    if request is None:
        return 0
    data = _receive_array(inp)
    source = str(request.get("source", "<model>"))
    try:
        model = TFLiteModel(data.tobytes(), threads=int(request.get("threads", 1)), source=source,
                            delegate=request.get("delegate") or "cpu",
                            edgetpu_lib=request.get("edgetpu_lib") or EDGETPU_LIBRARY)
    except EdgenetError as exc:
        _send(out, {"error": str(exc)})
        return 0
    q = model.input_quant
    _send(out, {"ok": True, "input_shape": list(model.input_shape),
                "input_quant": {"scale": q.scale, "zero_point": q.zero_point, "dtype": q.dtype.str},
                "runtime": model.runtime.info.to_dict()})
    while _receive_header(inp) is not None:
        batch = _receive_array(inp)
        try:
            outputs = model.run(batch)
        except EdgenetError as exc:
            _send(out, {"error": str(exc)})
            continue
        _send(out, {"ok": True}, np.asarray(outputs, dtype=np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
