"""Range and design checks behind :func:`farm.plan.make_plan`.

Each check raises :class:`farm.errors.ConfigError` naming the config key, the
value and what is allowed. Model ranges are those declared in
:mod:`kernels.paramspec` and enforced by :func:`kernels.params.validate_params`; their
messages ("model parameter fund_capital=0 is out of range; allowed: [1e+06, 1e+14]
(USD)") are reused, mapped to ``model.<name>`` (or ``sweep.axes.<name>`` when a swept
value is out of range). A cross-parameter message is mapped to the parameter it names
first (a treasury covenant breach names ``leverage``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from farm.errors import ConfigError
from farm.plan.axes import check_axis_name
from farm.plan.identity import model_values
from farm.plan.limits import (
    MAX_CELLS,
    MAX_PATHS,
    MAX_STEPS,
    RUNTIME_MAX,
    check_cell_draws,
    check_design_size,
    check_name,
    check_text,
    sampled_cells,
)
from farm.plan.schema import METHODS, SEEDINGS
from kernels.keys import SEED_MAX

__all__ = ["VALIDATE_CHUNK", "check_axis_name", "check_cells", "params_error",
           "validate_config"]

log = logging.getLogger(__name__)

VALIDATE_CHUNK = 4096  # cells validated per stacked call (bounds memory for huge designs)
T_DOF_RANGE = (3, 1000)  # Student-t nu: > 2 for unit variance; nu normals drawn per shock


def _min_int(key: str, value: Any, low: int, what: str = "", high: int | None = None) -> None:
    """An integer in ``[low, high]`` (``high`` None: no upper bound)."""
    if (isinstance(value, bool) or not isinstance(value, int) or value < low
            or (high is not None and value > high)):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high:,}]"
        raise ConfigError(key, value, allowed + what)


def validate_config(cfg: DictConfig) -> None:
    """Validate a composed config in place (no changes) up to its design: everything but
    the cells (:func:`check_cells`, once the design is built); raise ConfigError."""
    _check_top(cfg)
    _check_model(cfg)
    _check_runtime(cfg)
    _check_store(cfg)
    _check_sweep(cfg)


def _check_top(cfg: DictConfig) -> None:
    seed = cfg.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError("seed", seed, f"an integer in [0, {SEED_MAX}]")
    check_name(cfg.name)


def params_error(exc: ValueError, key_for: Callable[[str], str],
                 value_for: Callable[[str], Any] | None = None) -> ConfigError:
    """Map a kernels.params ValueError to a ConfigError.

    ``key_for(param) -> config key``; ``value_for(param)`` supplies the value when
    the message does not show one (e.g. a sum of weights). A constraint between
    parameters is mapped to the one it names first and lists the keys of all it names
    (``(keys involved: model.leverage, model.treasury_ltv, ...)``), so the key the user
    set is named whichever of them it was.
    """
    from kernels.paramspec import SPECS

    text = " ".join(str(exc).split())
    named = [n for n in dict.fromkeys(re.findall(r"\b[a-z][a-z0-9_]*\b", text)) if n in SPECS]
    if len(named) > 1:
        text += f" (keys involved: {', '.join(key_for(n) for n in named)})"
    m = re.search(r"model parameters? '?(\w+)'?", text)
    name = m.group(1) if m else "model"
    key = key_for(name)
    vm = re.search(rf"\b{re.escape(name)}=([^\s,;]+)", text)
    value: Any = None
    if vm:
        try:
            value = float(vm.group(1))
        except ValueError:
            value = vm.group(1)
    elif value_for is not None:
        try:
            value = value_for(name)
        except Exception:
            value = None
    am = re.search(r"allowed: (.*)$", text)
    if am:
        return ConfigError(key, value, am.group(1), f"invalid config {key}: {text}")
    i = text.find(" must ")
    if i < 0:
        body, allowed = text, "a value in the parameter's range (see kernels/paramspec.py)"
    else:
        j = max(text.rfind("; ", 0, i), text.rfind(": ", 0, i))
        body, allowed = (text[:j], text[j + 2:]) if j >= 0 else (text[:i], text[i + 1:])
    return ConfigError(key, value, allowed, f"invalid config {key}: {body}; allowed: {allowed}")


def _check_model(cfg: DictConfig) -> None:
    """t_dof and the model on its own (it is a scenario: ``sweep=single`` runs it).

    Swept values are checked jointly with the model in :func:`_check_cells`.
    """
    from kernels.params import make_params

    t_dof = cfg.model.t_dof
    lo, hi = T_DOF_RANGE
    if isinstance(t_dof, bool) or not isinstance(t_dof, int) or not lo <= t_dof <= hi:
        raise ConfigError("model.t_dof", t_dof, f"an integer in [{lo}, {hi}]")
    try:
        make_params(model_values(cfg.model))
    except ValueError as exc:
        raise params_error(exc, lambda n: f"model.{n}", lambda n: cfg.model[n]) from None


def _check_runtime(cfg: DictConfig) -> None:
    rt, top = cfg.runtime, RUNTIME_MAX
    _min_int("runtime.workers", rt.workers, 0, " (0 = all cores)", top["runtime.workers"])
    _min_int("runtime.block_cells", rt.block_cells, 0, " (0 = automatic)",
             top["runtime.block_cells"])
    _min_int("runtime.max_in_flight", rt.max_in_flight, 0, " (0 = 2 x workers)",
             top["runtime.max_in_flight"])
    _min_int("runtime.retries", rt.retries, 0, "", top["runtime.retries"])
    _min_int("runtime.cpus_per_task", rt.cpus_per_task, 1, "", top["runtime.cpus_per_task"])
    check_text("runtime.address", rt.address)


def _check_store(cfg: DictConfig) -> None:
    if not str(cfg.store.url or "").strip():
        raise ConfigError("store.url", cfg.store.url, "a local path or an fsspec URL")
    check_text("store.url", cfg.store.url)
    endpoint = cfg.store.endpoint_url
    if endpoint is not None and str(endpoint) != "" and not re.fullmatch(
            r"https?://[^\s/]+(/\S*)?", str(endpoint)):
        raise ConfigError("store.endpoint_url", endpoint,
                          "an http:// or https:// URL (e.g. http://127.0.0.1:9000) or null")
    check_text("store.endpoint_url", endpoint)


def _number(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        raise ConfigError(key, v, "finite numbers")
    return float(v)


def _check_sweep(cfg: DictConfig) -> None:
    sw = cfg.sweep
    if sw.method not in METHODS:
        raise ConfigError("sweep.method", sw.method, " | ".join(METHODS))
    if sw.seeding not in SEEDINGS:
        raise ConfigError("sweep.seeding", sw.seeding, " | ".join(SEEDINGS))
    _min_int("sweep.paths", sw.paths, 1, "", MAX_PATHS)
    _min_int("sweep.steps", sw.steps, 1, "", MAX_STEPS)
    check_cell_draws(sw.paths, sw.steps, cfg.model.t_dof)
    _min_int("sweep.n_samples", sw.n_samples, 1, "", MAX_CELLS)  # lhs/sobol; sane everywhere
    check_text("sweep.csv", sw.csv)
    if sw.steps <= cfg.model.jump_step:
        log.warning("sweep.steps=%d <= model.jump_step=%g: the trigger jump never happens",
                    sw.steps, cfg.model.jump_step)
    axes = OmegaConf.to_container(sw.axes, resolve=True) or {}
    assert isinstance(axes, dict)
    if sw.method == "csv":
        if axes:
            raise ConfigError("sweep.axes", axes, "{} for method=csv (the CSV header names "
                              "the swept parameters)")
        if not sw.csv:
            raise ConfigError("sweep.csv", sw.csv, "the path of a CSV file for method=csv")
        return
    if sw.method == "adaptive":
        from farm.plan.adaptivespec import adaptive_spec

        adaptive_spec(OmegaConf.to_container(sw.adaptive, resolve=True), int(sw.paths))
    if sw.method in ("lhs", "sobol", "adaptive"):
        if not axes:
            raise ConfigError("sweep.axes", axes, f"at least one axis [lo, hi] for "
                              f"method={sw.method}")
    for name, values in axes.items():
        key = f"sweep.axes.{name}"
        check_axis_name(str(name), key)
        if sw.method == "grid":
            _check_grid_axis(key, values)
        else:
            _check_box_axis(key, values, sw.method)
    size = {"paths": sw.paths, "store_paths": bool(cfg.store.paths)}
    if sw.method == "grid":  # checked before the grid (or its table) exists
        shape = " x ".join(str(len(values)) for values in axes.values())
        check_design_size("sweep.axes", shape or "{}", math.prod(len(v) for v in axes.values()),
                          len(axes), **size)
    elif sw.method == "adaptive":
        check_design_size("sweep.adaptive.max_cells", sw.adaptive.max_cells,
                          int(sw.adaptive.max_cells), len(axes), **size)
    else:
        check_design_size("sweep.n_samples", sw.n_samples,
                          sampled_cells(sw.method, sw.n_samples), len(axes), **size)


def _check_grid_axis(key: str, values: Any) -> None:
    if not isinstance(values, list):
        raise ConfigError(key, values, "a list of values [v1, v2, ...]")
    if not values:
        raise ConfigError(key, values, "a non-empty list of values [v1, v2, ...]",
                          f"invalid config {key}=[]: the axis is empty; allowed: a non-empty "
                          "list of values [v1, v2, ...] (remove the axis with ~" + key + ")")
    nums = [_number(key, v) for v in values]
    seen: set[float] = set()
    for v in nums:
        if v in seen:
            raise ConfigError(key, values, "distinct values",
                              f"invalid config {key}={_short(values)}: the value {v:g} appears "
                              "more than once; allowed: distinct values")
        seen.add(v)


def _check_box_axis(key: str, values: Any, method: str) -> None:
    allowed = f"[lo, hi] with lo < hi for method={method}"
    if not isinstance(values, list) or len(values) != 2:
        raise ConfigError(key, values, allowed)
    lo, hi = (_number(key, v) for v in values)
    if not lo < hi:
        raise ConfigError(key, values, allowed)


def _short(values: Any) -> str:
    text = str(values)
    return text if len(text) <= 80 else text[:77] + "..."


def check_cells(model: Any, design: Any, *, csv: bool, value_for: Callable[[str], Any]) -> None:
    """Validate every cell's parameters (the model with the design's values, in chunks of
    :data:`VALIDATE_CHUNK`); errors name ``sweep.axes.<p>``, ``sweep.csv`` or ``model.<p>``."""
    from farm.plan.design import cell_params
    from kernels.params import validate_params

    csv_cols = set(design.axes) if csv else set()

    def key_for(name: str) -> str:
        if name in csv_cols:
            return "sweep.csv"
        if name in design.draws:
            return "sweep.posterior"
        return f"sweep.axes.{name}" if name in design.axes else f"model.{name}"

    for start in range(0, design.n_cells, VALIDATE_CHUNK):
        cells = np.arange(start, min(start + VALIDATE_CHUNK, design.n_cells))
        params = cell_params(model, design, cells)
        try:
            validate_params(params)
        except ValueError as exc:
            raise params_error(exc, key_for, value_for) from None
    log.debug("validated %d cells of a %s design", design.n_cells, design.method)
