"""The stated limits of a run (README "Sweeps", docs/configuration.md "Limits").

A configuration beyond one of them is refused before anything is built or written
(:class:`farm.errors.ConfigError`: the key, the value and the limit), instead of failing
later with ``MemoryError``, a wrapped-around integer or a run that cannot end. The limits
bound what one driver holds in memory (the design table: cells x axes float64 values, the
cube's per-cell status), what a cube holds (cells x paths per-path values) and the
integer ranges of the kernel (path indices are 32-bit there) and what a worker draws
for one cell (all its paths' normals at once: 4 bytes each).
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from farm.errors import ConfigError, show_value

__all__ = ["MAX_CELLS", "MAX_CELL_DRAWS", "MAX_CELL_PATHS", "MAX_NAME", "MAX_PATHS",
           "MAX_STEPS", "MAX_STORED_PATHS", "MAX_TABLE_VALUES", "RUNTIME_MAX",
           "check_cell_draws", "check_design_size", "check_name", "check_text",
           "estimate_cube_bytes", "sampled_cells"]

MAX_CELLS = 10_000_000  # cells of one design (grid product, n_samples, CSV rows)
MAX_TABLE_VALUES = 50_000_000  # cells x swept axes in the design table (400 MB of float64)
MAX_PATHS = 100_000_000  # sweep.paths: Monte Carlo paths of one cell
MAX_STEPS = 1_000_000  # sweep.steps: time steps of one path (~28 years of 15 minutes)
MAX_CELL_PATHS = 10**11  # cells x paths of a run (path-simulations)
MAX_CELL_DRAWS = 500_000_000  # paths x steps x (3 + t_dof) normals a worker draws per cell
MAX_STORED_PATHS = 10**9  # cells x paths kept with store.paths=true (~100 GB of float32)
MAX_NAME = 100  # characters of `name`
RUNTIME_MAX = {  # upper bound of each runtime integer
    "runtime.workers": 100_000,
    "runtime.block_cells": MAX_CELLS,
    "runtime.max_in_flight": 1_000_000,
    "runtime.retries": 100,
    "runtime.cpus_per_task": 1024,
}

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def check_name(value: Any) -> None:
    """``name`` is one safe file name (the default store is ``results/<name>.zarr``):
    letters, digits, ``.``, ``_``, ``-``, not starting with ``.`` or ``-``, at most
    :data:`MAX_NAME` characters."""
    text = str(value)
    if not _NAME.fullmatch(text) or len(text) > MAX_NAME:
        raise ConfigError("name", value, f"a file name of 1 to {MAX_NAME} letters, digits, "
                          "'.', '_' or '-', not starting with '.' or '-' (no '/', no spaces)")


def check_text(key: str, value: Any) -> None:
    """A path, URL or address holds no control character (Unicode category C)."""
    if value is None:
        return
    text = str(value)
    if not text.isprintable() and any(unicodedata.category(c)[0] == "C" for c in text):
        raise ConfigError(key, value, "text without control characters")


def sampled_cells(method: str, n_samples: int) -> int:
    """Cells of an lhs/sobol design of ``n_samples`` points (Sobol' rounds up to 2**m)."""
    if method == "sobol":
        return 2 ** max(0, math.ceil(math.log2(n_samples)))
    return n_samples


def check_cell_draws(paths: int, steps: int, t_dof: int) -> None:
    """A worker draws ``paths x steps x (3 + t_dof)`` float32 normals for one cell."""
    draws = paths * steps * (3 + t_dof)
    if draws > MAX_CELL_DRAWS:
        raise ConfigError("sweep.paths", paths, f"paths x steps x (3 + t_dof) <= "
                          f"{MAX_CELL_DRAWS:,}",
                          f"invalid config sweep.paths={paths}: {paths:,} paths x {steps:,} "
                          f"steps x (3 + model.t_dof={t_dof}) = {draws:,} normals per cell "
                          f"({draws * 4 / 2**30:.1f} GiB in a worker); allowed: at most "
                          f"{MAX_CELL_DRAWS:,} (fewer paths or sweep.steps)")


def check_design_size(key: str, value: Any, n_cells: int, n_axes: int, *, paths: int,
                      store_paths: bool) -> None:
    """Refuse a design beyond the limits; ``key``/``value`` name what makes its cells
    (``sweep.axes`` with the grid's shape, ``sweep.n_samples``, ``sweep.csv``)."""
    shown = show_value(value)
    if n_cells > MAX_CELLS:
        raise ConfigError(key, value, f"at most {MAX_CELLS:,} cells",
                          f"invalid config {key}={shown}: {n_cells:,} cells"
                          + (" (Sobol' rounds up to a power of two)" if n_cells != value
                             and key == "sweep.n_samples" else "") + "; allowed: at "
                          f"most {MAX_CELLS:,} cells per run (split the sweep)")
    if n_cells * n_axes > MAX_TABLE_VALUES:
        raise ConfigError(key, value, f"cells x axes <= {MAX_TABLE_VALUES:,}",
                          f"invalid config {key}={shown}: {n_cells:,} cells x {n_axes} axes "
                          f"= {n_cells * n_axes:,} design values; allowed: at most "
                          f"{MAX_TABLE_VALUES:,} (fewer axes or cells)")
    limit, what = ((MAX_STORED_PATHS, "with store.paths=true") if store_paths
                   else (MAX_CELL_PATHS, "per run"))
    if n_cells * paths > limit:
        raise ConfigError("sweep.paths", paths, f"cells x paths <= {limit:,}",
                          f"invalid config sweep.paths={paths}: {n_cells:,} cells x {paths:,} "
                          f"paths = {n_cells * paths:,}; allowed: cells x paths at most "
                          f"{limit:,} {what}")


def estimate_cube_bytes(design: Any, n_paths: int, store_paths: bool = False) -> int:
    """Uncompressed size of the cube's data variables in bytes (float32 stats and
    probabilities, int8 status, plus float32 per-path outputs when ``store_paths``)."""
    from kernels.outputs import PATH_OUTPUTS, PROBABILITIES, STATS

    per_cell = 4 * (len(PATH_OUTPUTS) * len(STATS) + len(PROBABILITIES)) + 1
    if store_paths:
        per_cell += 4 * len(PATH_OUTPUTS) * int(n_paths)
    return design.n_cells * per_cell
