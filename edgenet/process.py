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

Python worker processes (``multiprocessing``) come from :func:`worker_pool`: the same guarantees
(own session, death with the parent, stopped at once when the command is interrupted). A library
that installs its own handlers while it starts (Ray does, in ``ray.init``) runs inside
:func:`keep_signal_handlers`, so edgenet's handling stays in force. Temporary folders named with
the pid of the process that made them are removed by :func:`remove_orphaned` once that process is
gone (a SIGKILL skips every ``finally``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "TERMINATING_SIGNALS",
    "Interrupted",
    "die_with_parent",
    "install_signal_handlers",
    "keep_signal_handlers",
    "popen",
    "remove_orphaned",
    "run",
    "signal_name",
    "stop",
    "stop_all",
    "worker_pool",
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


def die_with_parent() -> None:
    """In a Python child (a ``multiprocessing`` worker's initializer): lead a session of its own and die
    with the parent, even one killed with SIGKILL, so nothing it started outlives the command."""
    with contextlib.suppress(OSError):
        os.setsid()
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the prctl: follow it now
        os._exit(1)


def _end_group(pid: int | None, sig: int) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@contextlib.contextmanager
def worker_pool(max_workers: int = 1) -> Iterator:
    """A spawn-context :class:`~concurrent.futures.ProcessPoolExecutor` whose workers die with edgenet
    (:func:`die_with_parent`). Leaving the block normally waits for the work, as the executor does;
    leaving it by an exception (a terminating signal, :class:`Interrupted`) ends the workers at once
    (SIGTERM, then SIGKILL after :data:`GRACE_S`) instead of waiting for them to finish."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent)
    try:
        yield pool
    except BaseException:
        workers = list((getattr(pool, "_processes", None) or {}).values())
        for worker in workers:
            _end_group(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                _end_group(worker.pid, signal.SIGKILL)
                worker.join(GRACE_S)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)


@contextlib.contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Run a library's start-up (``ray.init``) without letting it replace the handlers of
    :data:`TERMINATING_SIGNALS`: its attempts are ignored while the block runs, and edgenet's handlers
    are put back afterwards in any case, so a signal still ends the command in one line."""
    saved = {sig: signal.getsignal(sig) for sig in TERMINATING_SIGNALS}
    original = signal.signal

    def guarded(sig, handler):
        if sig in TERMINATING_SIGNALS:
            return signal.getsignal(sig)
        return original(sig, handler)

    signal.signal = guarded
    try:
        yield
    finally:
        signal.signal = original
        for sig, handler in saved.items():
            if handler is not None:
                with contextlib.suppress(ValueError, OSError, TypeError):
                    original(sig, handler)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphaned(root: str | os.PathLike, prefix: str) -> int:
    """Remove the folders ``root/<prefix><pid>-*`` whose process ``pid`` is gone (killed before its
    ``finally`` could clean up). Returns how many were removed; never raises."""
    removed = 0
    with contextlib.suppress(OSError):
        for path in Path(root).glob(f"{prefix}*"):
            head = path.name[len(prefix):].split("-", 1)[0]
            if head.isdigit() and not _alive(int(head)) and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed
