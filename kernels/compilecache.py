"""A persistent compilation cache for the block kernel, shared by every process of a user.

A farm worker pays the kernel's XLA compile (several seconds) once per process; with
JAX's persistent cache a second run with the same shapes loads the executable from disk
instead (:data:`COMPILE_COUNTER` tells compiles from loads).

Where it lives: ``$FARM_JAX_CACHE`` if set, else ``$XDG_CACHE_HOME/farm/jax``, else
``~/.cache/farm/jax``; ``FARM_JAX_CACHE=off`` turns it off. How it is invalidated: JAX
keys each entry by a hash of the compiled program (the kernel's HLO, so any change of
the kernel's code or of a static shape), the compile options, the backend and device,
and the jax/jaxlib versions; a changed kernel simply misses and writes a new entry. The
cache is capped at :data:`MAX_BYTES` (least recently used entries are evicted); deleting
the folder is always safe.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "FARM_JAX_CACHE"
OFF = ("off", "0", "false", "none", "")
MAX_BYTES = 2 * 1024**3
"""Size cap of the cache folder (a 16-cell block's executable is ~1-3 MB)."""

COMPILE_COUNTER = {"simulate_block": 0, "compiled": 0, "loaded": 0}
"""Per process: block kernel traces, XLA compiles, and executables loaded from the
persistent cache (a trace is followed by exactly one of the two)."""

_CACHE_HITS = {"n": 0}
_enabled: dict[str, str | None] = {}


def cache_dir() -> Path | None:
    """The cache folder this process uses, or None when it is turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "farm" / "jax"


def enable() -> Path | None:
    """Point JAX at :func:`cache_dir` (once per process; later calls are free)."""
    if "dir" in _enabled:
        return None if _enabled["dir"] is None else Path(_enabled["dir"])
    import jax
    from jax import monitoring

    path = cache_dir()
    _enabled["dir"] = None if path is None else str(path)
    monitoring.register_event_listener(_on_event)
    if path is None:
        log.debug("persistent compilation cache off (%s)", ENV)
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only home: compile every time, say so once
        log.warning("compilation cache %s unusable (%s); compiling in every process", path, exc)
        _enabled["dir"] = None
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    log.debug("persistent compilation cache at %s", path)
    return path


def _on_event(event: str, **_kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _CACHE_HITS["n"] += 1


class count_compile:
    """Context around one call of the jitted block: attributes a trace to a compile or
    to a load from the cache."""

    def __enter__(self):
        self.traces, self.hits = COMPILE_COUNTER["simulate_block"], _CACHE_HITS["n"]
        return self

    def __exit__(self, *exc):
        if COMPILE_COUNTER["simulate_block"] > self.traces:
            key = "loaded" if _CACHE_HITS["n"] > self.hits else "compiled"
            COMPILE_COUNTER[key] += 1
        return False
