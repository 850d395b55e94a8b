"""The identity of a sweep's numbers: what a cube stores about its configuration.

:func:`config_hash` digests what determines the numbers (model, sweep, seed, the
kernel's code and the numerics settings of :mod:`farm.plan.fingerprint`), so a store is
never resumed with numbers from another configuration; runtime and store settings are
left out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from farm.plan.fingerprint import kernel_fingerprint, numerics_settings

__all__ = ["HASH_VERSION", "config_hash", "hash_payload", "kernel_fingerprint", "model_values",
           "numerics_settings", "to_yaml"]

HASH_VERSION = 2


def model_values(model: Any) -> dict[str, Any]:
    """Mapping of ModelParams fields from ``cfg.model`` (a DictConfig/Mapping/ModelParams).

    Drops ``t_dof`` (passed to the kernel separately); lists stay lists.
    """
    from kernels.params import ModelParams

    if isinstance(model, ModelParams):
        return model._asdict()
    if OmegaConf.is_config(model):
        model = OmegaConf.to_container(model, resolve=True)
    if not isinstance(model, Mapping):
        raise TypeError(f"expected a model mapping, got {type(model).__name__}")
    return {k: v for k, v in model.items() if k != "t_dof"}


def to_yaml(cfg: DictConfig) -> str:
    """The resolved configuration as YAML (what the cube stores in its attrs)."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def _file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_payload(cfg: DictConfig) -> dict[str, Any]:
    """The parts of ``cfg`` that determine the cube's numbers, canonicalised.

    Model, sweep (only the keys its method uses; axis values as floats; a CSV
    design by its content's sha256, not its path) and the root seed. Runtime and
    store settings, and ``name``, are not included.
    """
    sweep = OmegaConf.to_container(cfg.sweep, resolve=True)
    assert isinstance(sweep, dict)
    method = sweep.get("method")
    axes = {str(k): ([float(x) for x in v] if isinstance(v, list | tuple) else v)
            for k, v in (sweep.get("axes") or {}).items()}
    canon: dict[str, Any] = {"method": method, "axes": axes}
    if method in ("lhs", "sobol"):
        canon["n_samples"] = sweep.get("n_samples")
    if method == "adaptive":  # what decides the waves (budgets only stop them)
        from farm.plan.adaptivespec import BUDGET_KEYS

        canon["adaptive"] = {k: v for k, v in sorted((sweep.get("adaptive") or {}).items())
                             if k not in BUDGET_KEYS}
    if method == "csv":
        path = sweep.get("csv")
        canon["csv_sha256"] = _file_sha256(path) if path and Path(path).is_file() else path
    for key in ("paths", "steps", "seeding"):
        canon[key] = sweep.get(key)
    if sweep.get("posterior_draws"):  # the draws by their file's content, not its path
        canon["posterior_draws"] = int(sweep["posterior_draws"])
        path = Path(str(sweep.get("posterior"))).expanduser()
        path = path / "posterior.csv" if path.is_dir() else path
        canon["posterior_sha256"] = _file_sha256(path) if path.is_file() else str(path)
    return {
        "hash_version": HASH_VERSION,
        "kernel": kernel_fingerprint(),
        "numerics": numerics_settings(),
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "sweep": canon,
        "seed": int(cfg.seed),
    }


def config_hash(cfg: DictConfig) -> str:
    """sha256 (hex) of the canonical YAML of model, sweep and seed (see :func:`hash_payload`)."""
    text = OmegaConf.to_yaml(OmegaConf.create(hash_payload(cfg)))
    return hashlib.sha256(text.encode()).hexdigest()
