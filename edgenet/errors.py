"""Exceptions that describe a user's mistake or an environment problem.

Every exception here carries a one-line message meant for the user; the CLI turns
them into click errors (exit 1 or 2, no traceback). Library code raises these and
never calls ``sys.exit``.
"""

from __future__ import annotations


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
        super().__init__(f"{path}: {cause}")
