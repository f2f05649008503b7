"""Child processes and termination signals: one mechanism for the whole project.

edgenet runs native code on a user's model (the converter, the interpreter) and remote commands
(ssh, scp) in child processes. Every such child is started here, by :func:`popen` or :func:`run`:

* in its own session and process group, so a terminal's Ctrl-C reaches only edgenet, which
  then stops its children in order, and so stopping a child also stops whatever it started;
* with ``PR_SET_PDEATHSIG`` (Linux), so a child never outlives a parent killed with SIGKILL;
* registered while it runs, so :func:`stop_all` can end every child on the way out.

:func:`install_signal_handlers` (called by the CLI group) turns SIGTERM and SIGHUP into the path
SIGINT takes: an :class:`Interrupted` exception (a ``KeyboardInterrupt``) unwinds the stack, every
``finally`` removes its temporaries and stops its child, and the CLI prints one line and exits
with the conventional ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

__all__ = [
    "TERMINATING_SIGNALS",
    "Interrupted",
    "install_signal_handlers",
    "popen",
    "run",
    "signal_name",
    "stop",
    "stop_all",
]

#: The signals that end an edgenet command cleanly (children stopped, temporaries removed).
TERMINATING_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: How long a child gets between SIGTERM and SIGKILL.
GRACE_S = 2.0

_CHILDREN: set[subprocess.Popen] = set()


class Interrupted(KeyboardInterrupt):
    """A terminating signal arrived; unwinds like Ctrl-C (``except KeyboardInterrupt`` sees it too)."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(signal_name(signum))

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; a negative return code of a child (``-11``) names its signal too."""
    from .errors import signal_name as from_returncode

    return from_returncode(-abs(int(signum)))


def _on_signal(signum, frame) -> None:
    # The first signal unwinds the stack; later ones (a second Ctrl-C while cleaning up) must not
    # interrupt the cleanup itself, which is bounded by GRACE_S per child.
    for sig in TERMINATING_SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` (main thread only; a no-op elsewhere)."""
    for sig in TERMINATING_SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main thread, or not settable
            signal.signal(sig, _on_signal)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(prctl) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the child between fork and exec
        # Die with the parent even if it is killed with SIGKILL. Only a system call here: libc was
        # loaded in the parent, before the fork. (Signal handlers need no reset: exec does that.)
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return setup


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def popen(argv: Sequence[str], **kwargs) -> subprocess.Popen:
    """Start a registered child in its own process group (arguments as :class:`subprocess.Popen`)."""
    kwargs.setdefault("start_new_session", True)
    prctl = _prctl()
    if prctl is not None:
        kwargs.setdefault("preexec_fn", _die_with_parent(prctl))
    proc = subprocess.Popen(list(argv), **kwargs)
    _CHILDREN.add(proc)
    return proc


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the child leads its own group: pgid == pid
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        proc.send_signal(sig)


def stop(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """End ``proc`` and its process group: SIGTERM, then SIGKILL after ``grace_s``. Never raises."""
    try:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
        # Whatever the child started in its group goes too, even when the child itself is gone.
        _signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    finally:
        _CHILDREN.discard(proc)


def stop_all(grace_s: float = GRACE_S) -> None:
    """Stop every registered child (on the way out of an interrupted command)."""
    for proc in list(_CHILDREN):
        stop(proc, grace_s)


def run(argv: Sequence[str], *, input: str | bytes | None = None, timeout_s: float | None = None,
        **kwargs) -> subprocess.CompletedProcess:
    """Like :func:`subprocess.run` (output captured), but the whole process group is ended on a timeout
    or an interruption. Raises :class:`subprocess.TimeoutExpired` after ending it."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    started = time.monotonic()
    proc = popen(argv, **kwargs)
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop(proc, grace_s=0.5)
        raise subprocess.TimeoutExpired(list(argv), time.monotonic() - started) from None
    finally:
        stop(proc)  # a no-op for a child that ended; otherwise (interrupted) ends it and its group
    return subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)
