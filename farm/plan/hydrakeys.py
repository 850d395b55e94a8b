"""Overrides of Hydra's own runtime (``hydra.run.dir=...``, ``hydra/launcher=...``): refused.

The farm composes ``conf/`` with Hydra's compose API only: there is no Hydra runtime, so
Hydra would accept ``hydra.*`` overrides and silently ignore them. Each one is refused
with a :class:`farm.errors.ConfigError` naming the key, the value and the farm's own way
to do what the user meant (``store.url`` for where the results go, ``sweep.axes`` for a
sweep, ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from farm.errors import ConfigError, show_value

__all__ = ["refuse_hydra_keys"]

# what to use instead, by the first part of the key under hydra (the longest match wins)
_INSTEAD = {
    "run": "store.url=PATH for where the results go",
    "sweep": "store.url=PATH for where the results go",
    "output_subdir": "store.url=PATH for where the results go",
    "job.name": "name=NAME (the default store is results/NAME.zarr)",
    "job.chdir": "store.url=PATH for where the results go",
    "launcher": "runtime=local or runtime=cluster (or farm submit) for where the cells run",
    "sweeper": "sweep.axes.NAME=[v1,v2,...] or sweep.method for what is swept",
    "verbose": "farm -v (more) or farm -q (less) for the log level",
    "job_logging": "farm -v (more) or farm -q (less) for the log level",
    "hydra_logging": "farm -v (more) or farm -q (less) for the log level",
    "mode": "sweep.axes.NAME=[v1,v2,...]: the farm sweeps itself",
}
_DEFAULT = "store.url=PATH for where the results go, the farm's keys for the rest"
_HYDRA_KEY = re.compile(r"^[+~]*(hydra(?:[./](?P<rest>[^=]*))?)(?:=|$)")


def _instead(rest: str) -> str:
    parts = rest.replace("/", ".").split(".")
    for n in (2, 1):
        if ".".join(parts[:n]) in _INSTEAD:
            return _INSTEAD[".".join(parts[:n])]
    return _DEFAULT


def refuse_hydra_keys(overrides: Sequence[str]) -> None:
    """Raise :class:`ConfigError` for the first override of a ``hydra.*`` key (or a
    ``hydra/GROUP`` option): the farm has no Hydra runtime for it to change."""
    for ov in overrides:
        text = str(ov).strip()
        m = _HYDRA_KEY.match(text)
        if m is None:
            continue
        key, sep, value = text.lstrip("+~").partition("=")
        allowed = _instead(m.group("rest") or "")
        shown = f"{key}={show_value(value)}" if sep else key
        raise ConfigError(key, value if sep else None, allowed,
                          f"invalid config {shown}: the farm has no Hydra runtime, so "
                          f"hydra.* keys would be ignored; allowed: {allowed}")
