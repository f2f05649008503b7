"""Native log chatter off by default: a command's output is edgenet's own.

TensorFlow and LiteRT log from C++ straight to file descriptor 2, past ``sys.stderr``:
``I0000 ... port.cc:153] oneDNN custom operations are on`` and
``WARNING: All log messages before absl::InitializeLog() ...`` when TensorFlow is imported, and
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` when an interpreter is built.
``TF_CPP_MIN_LOG_LEVEL`` no longer silences the first two (TensorFlow 2.21 logs through absl before
it reads the variable) and LiteRT's Python API has no log-severity setting, so the noisy calls run
inside :func:`native_stderr_filtered`: fd 2 is pointed at a temporary file for their duration and
what they wrote is passed on afterwards minus the known informational lines. Anything else
(a native ``ERROR:`` line, a Python warning) still reaches the user.

``edgenet --verbose`` (or ``EDGENET_VERBOSE=1`` in the environment, which child processes inherit)
turns the filter off and shows everything.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["VERBOSE_ENV", "NOISE", "is_noise", "native_stderr_filtered", "set_verbose", "verbose"]

VERBOSE_ENV = "EDGENET_VERBOSE"

#: Informational native log lines (never errors): absl/glog INFO and WARNING lines (``I0000``,
#: ``W0000`` + time + thread + ``file:line]``), absl's pre-initialisation notice, and TFLite's
#: ``INFO:`` lines about delegates and the runtime.
NOISE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|INFO: (?:Created TensorFlow Lite|Initialized TensorFlow Lite runtime|TfLiteFlexDelegate|Replacing \d+ out of))"
)


def verbose() -> bool:
    """True when the user asked to see native logs (``--verbose`` / ``EDGENET_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(on: bool) -> None:
    """Show (or hide) native logs in this process and the child processes it starts."""
    if on:
        os.environ[VERBOSE_ENV] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.pop(VERBOSE_ENV, None)


def is_noise(line: str) -> bool:
    return bool(NOISE.match(line))


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Run the body with fd 2 captured; afterwards write what it printed, minus :data:`NOISE`.

    A no-op in verbose mode and where fd 2 cannot be duplicated (e.g. an embedding host closed it).
    """
    if verbose():
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not is_noise(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
