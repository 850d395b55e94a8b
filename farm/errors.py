"""The farm's user errors: one hierarchy, caught once by the CLI (exit status 2, one line,
no traceback). Anything else is a failure of the farm (exit status 1).

- :class:`ConfigError`: a bad configuration, naming the key, the value and what is allowed;
- :class:`StoreRefusedError`: a store the farm will not use (exists, differs, locked, not a
  cube, not visible to every node), subclassed in :mod:`farm.store` and :mod:`farm.run`;
- :class:`SubmitError`: a cluster that cannot be reached or refuses a job.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "StoreRefusedError", "SubmitError", "UserError", "show_value"]


class UserError(Exception):
    """A mistake of the user's, reported in one line (``str(err)``) with exit status 2."""

    exit_status = 2


def show_value(value: Any) -> str:
    """Short text of a config value for messages (config containers print as plain data)."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 120 else text[:117] + "..."


class ConfigError(UserError, ValueError):
    """A user error in the configuration.

    Attributes: ``key`` (dotted config path, e.g. ``sweep.axes.leverage``), ``value`` (the
    offending value), ``allowed`` (text saying what is allowed). ``str(err)`` is a single
    line naming all three.
    """

    def __init__(self, key: str, value: Any, allowed: str, message: str | None = None):
        self.key = key
        self.value = value
        self.allowed = allowed
        if message is None:
            message = f"invalid config {key}={show_value(value)}; allowed: {allowed}"
        super().__init__(" ".join(str(message).split()))


class StoreRefusedError(UserError):
    """The farm refuses to use a store (exists, differs, locked, not a cube): a user error."""


class SubmitError(UserError, RuntimeError):
    """The cluster cannot be reached or refused the request (a one-line message)."""
