"""Sweeps over posterior draws: every cell of a grid, once per draw of the uncertain
parameters, so that each frontier comes with its parameter-uncertainty band.

``sweep.posterior_draws=N`` with ``sweep.posterior=PATH`` (a calibration's output
directory holding ``posterior.csv``, as ``farm calibrate`` writes it, or such a CSV: a
header of model parameter names, one non-implausible draw per row; its ``I_max`` and
``episode/target`` columns are ignored) appends a last cell dimension ``draw`` of length ``N``
(:data:`kernels.cubeformat.DRAW_DIM`) to a grid design. The first ``N`` rows are used
(posterior draws are exchangeable; a file with fewer rows is refused). Each uncertain
parameter becomes a coordinate along ``draw``; a cell takes the grid's axis values and
its draw's parameter values. The draws are part of the design (``design.draws``), so
they enter the cube's attrs and its configuration hash; under common seeding every draw
of a grid point sees the same paths (common random numbers: differences between draws
are the parameters', not the Monte Carlo's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from farm.errors import ConfigError
from farm.plan.blocks import block_size
from farm.plan.design import Design
from kernels.cubeformat import DRAW_DIM, grid_chunks

__all__ = ["KEY", "POSTERIOR_FILE", "read_draws", "with_draws"]

POSTERIOR_FILE = "posterior.csv"
"""The draws file inside a calibration's output directory."""
KEY = "sweep.posterior"


def _calibration_column(name: str) -> bool:
    """Columns of ``posterior.csv`` that are not parameters: ``I_max`` and the simulated
    ``episode/target`` means."""
    return name == "I_max" or "/" in name


def read_draws(path: str, n: int) -> dict[str, np.ndarray]:
    """The first ``n`` draws of the posterior at ``path``: parameter -> (n,) float64.
    ConfigError (key ``sweep.posterior`` or ``sweep.posterior_draws``) on a bad file or count."""
    from farm.plan.csvdesign import read_csv_design

    if n < 1:
        raise ConfigError("sweep.posterior_draws", n, "an integer >= 1 (with sweep.posterior=PATH)")
    p = Path(path).expanduser()
    csv = p / POSTERIOR_FILE if p.is_dir() else p
    if not csv.is_file():
        raise ConfigError(KEY, path, f"a calibration directory holding "
                          f"{POSTERIOR_FILE}, or a CSV of posterior draws")
    names, table = read_csv_design(csv, key=KEY, skip=_calibration_column)
    if table.shape[0] < n:
        raise ConfigError("sweep.posterior_draws", n,
                          f"at most the {table.shape[0]} draws in {csv}")
    return {name: table[:n, j].copy() for j, name in enumerate(names)}


def with_draws(design: Design, draws: dict[str, np.ndarray], block_cells: int,
               workers: int = 1) -> Design:
    """``design`` (a grid) with a last ``draw`` dimension over ``draws``."""
    if design.method != "grid":
        raise ConfigError("sweep.posterior_draws", len(next(iter(draws.values()))),
                          "posterior draws with a grid sweep (sweep=default, ...), not "
                          f"{design.method}")
    clash = sorted(set(draws) & set(design.axes))
    if clash:
        raise ConfigError(f"sweep.axes.{clash[0]}", "swept",
                          "an axis that is not also an uncertain parameter of the draws")
    n = len(next(iter(draws.values())))
    single = design.axes == ()  # sweep=single: the draws are the only dimension
    axes = (*design.axes, DRAW_DIM)
    dims = (DRAW_DIM,) if single else (*design.cell_dims, DRAW_DIM)
    shape = (n,) if single else (*design.shape, n)
    base = np.repeat(np.asarray(design.table), n, axis=0)  # C order: the draw is the fastest axis
    index = np.tile(np.arange(n, dtype=np.float64), design.n_cells)
    table = np.column_stack([base, index])
    coords = {} if single else dict(design.coords)
    coords[DRAW_DIM] = np.arange(n)
    coords.update(draws)
    chunks = grid_chunks(shape, block_size(block_cells, len(table), workers))
    return Design("grid", axes, dims, shape, chunks, coords, table,
                  {k: np.asarray(v, np.float64) for k, v in draws.items()})
