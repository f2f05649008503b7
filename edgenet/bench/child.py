"""Entry point of the per-model benchmark process: ``python -m edgenet.bench.child``.

Protocol: one JSON request on stdin ``{"model_path": str, "params": BenchParams.to_dict()}``;
one JSON line on stdout ``{"result": BenchResult.to_dict()}``. With ``"task": "profile"`` (and
``rounds``, ``runs``) the answer is ``{"profile": ...}`` (:mod:`edgenet.bench.profile`) or
``{"error": "one line"}``. Anything the interpreter prints
(e.g. "INFO: Created TensorFlow Lite XNNPACK delegate") is diverted to stderr so stdout carries
only the result.

Test-only hook: ``EDGENET_TEST_CHILD_SLEEP_S`` (seconds, float) makes the child sleep before doing
anything, to simulate a hung model so the tests can check the parent's timeout. It is read here and
nowhere else; it has no effect on the parent or on in-process runs.
"""

from __future__ import annotations

import json
import os
import sys
import time

SLEEP_ENV = "EDGENET_TEST_CHILD_SLEEP_S"


def main() -> int:
    # Keep the real stdout for the result; point fd 1 (used by native code too) at stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sleep_s = os.environ.get(SLEEP_ENV)
    if sleep_s:
        time.sleep(float(sleep_s))

    from ..errors import one_line
    from .params import BenchParams
    from .result import BenchResult
    from .runner import run_in_process

    try:
        request = json.loads(sys.stdin.read())
        params = BenchParams.from_dict(request["params"])
        if request.get("task") == "profile":
            return _profile(request, params, result_fd)
        result = run_in_process(request["model_path"], params)
    except Exception as exc:  # noqa: BLE001 - report anything as the one line the parent prints
        message = one_line(f"{type(exc).__name__}: {exc}", None)
        path = request.get("model_path", "?") if isinstance(locals().get("request"), dict) else "?"
        params = locals().get("params") or BenchParams()
        result = BenchResult(str(path), params, error=f"{path}: {message}")
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps({"result": result.to_dict()}) + "\n")
    return 0


def _profile(request: dict, params, result_fd: int) -> int:
    """``task: profile``: answer ``{"profile": ...}`` or ``{"error": "one line"}``."""
    from ..errors import EdgenetError
    from .profile import profile_in_process

    path = request.get("model_path", "?")
    try:
        payload = {"profile": profile_in_process(path, params, int(request.get("rounds", 10)),
                                                 int(request.get("runs", 20)), request.get("stat", "min"))}
    except EdgenetError as exc:
        payload = {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one line for the parent
        payload = {"error": f"{path}: " + " ".join(f"{type(exc).__name__}: {exc}".split())}
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(payload) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
