"""The identity of a sweep's numbers: what a cube stores about its configuration.

:func:`config_hash` digests what determines the numbers (model, sweep, seed and the
kernel's code), so a store is never resumed with numbers from another configuration;
runtime and store settings are left out. :func:`kernel_fingerprint` digests the kernel's
code, not its comments or docstrings, nor the NumPy reference (``kernels/reference.py``)
or the cube-format and key modules' docs: editing a comment does not block a resume;
changing an equation does.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = ["HASH_VERSION", "config_hash", "hash_payload", "kernel_fingerprint", "model_values",
           "numerics_settings", "to_yaml"]

HASH_VERSION = 2
NOT_IN_FINGERPRINT = ("reference.py",)
"""Kernel files that never change a cube's numbers (the NumPy reference implementation)."""
NUMERICS_ENV = ("KERNELS_PATH_CHUNK", "JAX_ENABLE_X64", "JAX_DEFAULT_PRNG_IMPL")
"""Environment settings that can change the bits of a cube (recorded and hashed)."""


def _code_only(source: str) -> str:
    """The source's abstract syntax tree without docstrings, as text: comments, docstrings
    and formatting do not count, code does."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


@functools.cache
def kernel_fingerprint() -> str:
    """sha256 (hex, 16 chars) of the kernel's code (every module of ``kernels/`` but the
    NumPy reference), ignoring comments and docstrings."""
    import kernels

    root = Path(kernels.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.name in NOT_IN_FINGERPRINT:
            continue
        h.update(str(path.relative_to(root)).encode())
        h.update(_code_only(path.read_text()).encode())
    return h.hexdigest()[:16]


def numerics_settings() -> dict[str, str]:
    """The settings besides the configuration that can change a cube's bits: the JAX backend
    the workers will use (the default of this process) and :data:`NUMERICS_ENV`."""
    out = {k: os.environ[k] for k in NUMERICS_ENV if os.environ.get(k)}
    out["jax_platforms"] = os.environ.get("JAX_PLATFORMS", "") or "default"
    return out


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
    if method == "csv":
        path = sweep.get("csv")
        canon["csv_sha256"] = _file_sha256(path) if path and Path(path).is_file() else path
    for key in ("paths", "steps", "seeding"):
        canon[key] = sweep.get(key)
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
