"""Exceptions that describe a user's mistake or an environment problem.

Every exception here carries a one-line message meant for the user; the CLI turns
them into click errors (exit 1 or 2, no traceback). Library code raises these and
never calls ``sys.exit``.
"""

from __future__ import annotations

import os
from typing import Literal

__all__ = [
    "EdgenetError", "InputFileError", "MissingDependencyError", "VariantError", "format_path", "one_line",
    "printable", "signal_name",
]


def signal_name(returncode: int) -> str:
    """How a child process died, from its (negative) return code: ``SIGSEGV``, else ``signal 77``."""
    import signal

    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def one_line(
    text: object, limit: int | None = 300, *, pick: Literal["all", "last", "error"] = "all", empty: str = ""
) -> str:
    """The one line a user sees of a (possibly multi-line, huge) message, cut at ``limit`` characters.

    ``pick="all"`` joins everything with single spaces (an exception's text); ``"last"`` keeps the
    last non-blank line (a child process's stderr, where the final line is the verdict); ``"error"``
    keeps the first line that says ``error:`` (a converter's log, where the cause comes before pages
    of context), else the last. ``empty`` is returned when there is nothing to show.
    """
    lines = [" ".join(line.split()) for line in str(text).splitlines() if line.strip()]
    if not lines:
        return empty
    if pick == "all":
        line = " ".join(lines)
    elif pick == "error":
        line = next((x for x in lines if "error:" in x.lower() and "converter" not in x.lower()[:20]), lines[-1])
    else:
        line = lines[-1]
    return line[:limit] if limit else line


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` safe for one terminal line: control characters escaped (``\\n``, ``\\x1b``), bytes of a
    file name that is not valid UTF-8 (surrogate escapes) shown as ``\\xNN``; ``newlines`` keeps ``\\n``."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or (newlines and ch == "\n"):
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # os.fsdecode's surrogateescape of an undecodable byte
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def format_path(path) -> str:
    """How a file name appears in a message: one line, whatever bytes the name holds."""
    return printable(os.fsdecode(path) if isinstance(path, bytes) else str(path))


class EdgenetError(Exception):
    """A failure caused by input or environment, described in one line."""


class VariantError(EdgenetError, ValueError):
    """An unknown variant name, a malformed custom spec, or a value out of range."""


class MissingDependencyError(EdgenetError, ImportError):
    """An optional dependency (an extra) is not installed."""

    def __init__(self, module: str, extra: str, purpose: str):
        self.module, self.extra = module, extra
        super().__init__(
            f"{purpose} needs {module}, which is not installed: "
            f"pip install 'edgenet[{extra}]'"
        )


class InputFileError(EdgenetError):
    """A file that is missing, unreadable or not what it claims to be."""

    def __init__(self, path, cause: str):
        self.path, self.cause = str(path), cause
        super().__init__(f"{format_path(path)}: {printable(cause)}")
