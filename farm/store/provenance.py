"""Provenance attrs of a cube: config, design, seeds, package versions, PRNG, git commit.

Reproducibility: the cube stores root seed, resolved config, design, package
versions, JAX PRNG implementation and git commit so a result can be reproduced bit
for bit. Every value here is JSON-serialisable (``design`` and ``versions`` are JSON
*strings*, as docs/internal-contracts.md fixes). Secrets are never stored:
:func:`redact_secrets` (:mod:`farm.secrets`, re-exported here) replaces the values of
credential-like environment variables (``AWS_SECRET_ACCESS_KEY``, ``*_TOKEN``, ...)
wherever they appear.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from farm.plan.fingerprint import kernel_fingerprint, numerics_settings
from farm.secrets import redact_secrets
from kernels.cubeformat import FARM_FORMAT

__all__ = [
    "FARM_FORMAT",
    "git_info",
    "jax_prng_info",
    "now_iso",
    "package_versions",
    "prng_attrs",
    "provenance_attrs",
    "redact_secrets",
]

log = logging.getLogger(__name__)

# The packages whose versions shape the results (recorded in the cube's ``versions``).
PACKAGES = ("jax", "jaxlib", "numpy", "scipy", "xarray", "zarr", "ray", "hydra-core", "omegaconf")


class _HasAttrs(Protocol):
    def to_attrs(self) -> dict[str, Any]: ...


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds (``2026-01-31T12:00:00+00:00``)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape the results, plus ``python``."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def jax_prng_info() -> dict[str, Any]:
    """JAX's PRNG implementation and the flags that change its bits (imports jax)."""
    try:
        import jax
    except ImportError:  # pragma: no cover - jax is a dependency
        return {"jax_prng_impl": "unavailable"}
    cfg = jax.config
    return {
        "jax_prng_impl": str(getattr(cfg, "jax_default_prng_impl", "threefry2x32")),
        "jax_threefry_partitionable": bool(getattr(cfg, "jax_threefry_partitionable", False)),
        "jax_enable_x64": bool(getattr(cfg, "jax_enable_x64", False)),
    }


def prng_attrs(reported: Iterable[Mapping[str, Any]],
               recorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The cube attrs for the PRNG settings ``reported`` by a run's workers.

    ``recorded`` is the cube's current attrs (of a resumed cube; a new cube has
    ``jax_prng_impl == ""``). Settings that differ between workers, or from an earlier
    run's, change the bits of the affected blocks: all are recorded (implementations
    joined by `` | ``, every setting in ``jax_prng_mixed``) with a warning.
    """
    seen = list({tuple(sorted(r.items())): dict(r) for r in reported}.values())
    if not seen:
        return {}
    out = dict(seen[0])
    before = {k: (recorded or {}).get(k) for k in out}
    if before.get("jax_prng_impl") and before != out:
        seen.append(before)
    if len(seen) > 1:
        impls = {i for r in seen for i in str(r.get("jax_prng_impl", "")).split(" | ")}
        log.warning("blocks of this cube were made with different JAX PRNG settings %s: "
                    "their random numbers are not comparable", seen)
        out["jax_prng_impl"] = " | ".join(sorted(impls))
        out["jax_prng_mixed"] = json.dumps(seen)
    return out


def git_info(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"git_commit": sha or "unknown", "git_dirty": bool}`` for the repository at ``path``.

    ``path`` defaults to this package's repository. Dirty means tracked files differ
    from the commit (untracked files are ignored).
    """
    cwd = Path(path) if path is not None else Path(__file__).resolve().parents[2]

    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {"git_commit": "unknown", "git_dirty": False}
    porcelain = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(porcelain)}


def provenance_attrs(
    cfg_yaml: str,
    config_hash: str,
    design: _HasAttrs,
    root_seed: int,
    seeding: str,
    n_paths: int,
    n_steps: int,
    prng: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance attrs of a new cube (docs/internal-contracts.md, "the cube").

    Parameters
    ----------
    cfg_yaml : the resolved config as YAML text (stored as ``config``, secrets redacted).
    config_hash : hash of the result-relevant config; ``farm run`` resumes only a store
        with the same hash.
    design : a :class:`farm.plan.design.Design`; ``design.to_attrs()`` is stored as JSON.
    root_seed, seeding : the root PRNG seed and ``common`` / ``independent``.
    n_paths, n_steps : Monte Carlo paths per cell and time steps per path.
    prng : :func:`jax_prng_info` of the process that makes the random numbers. ``farm
        run`` leaves it out (its driver never imports JAX) and records the workers'
        settings when the run finishes (:func:`prng_attrs`); until then it is ``""``.
    """
    design_attrs = design.to_attrs()
    attrs: dict[str, Any] = {
        "farm_format": FARM_FORMAT,
        "config": str(cfg_yaml),
        "config_hash": str(config_hash),
        "design": json.dumps(design_attrs),
        "root_seed": int(root_seed),
        "seeding": str(seeding),
        "n_paths": int(n_paths),
        "n_steps": int(n_steps),
        "kernel_sha256": kernel_fingerprint(),
        "numerics": json.dumps(numerics_settings()),
        "versions": json.dumps(package_versions()),
        **(dict(prng) if prng is not None else {"jax_prng_impl": ""}),
        **git_info(),
        "created": now_iso(),
        "failed_blocks": "{}",
    }
    json.dumps(attrs)  # fail here, not in zarr, if anything is not JSON-serialisable
    return redact_secrets(attrs)
