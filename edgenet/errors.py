"""Exceptions that describe a user's mistake or an environment problem.

Every exception here carries a one-line message meant for the user; the CLI turns
them into click errors (exit 1 or 2, no traceback). Library code raises these and
never calls ``sys.exit``.
"""

from __future__ import annotations

import os


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
