"""Re-simulate one cell of a cube from its provenance (for fan charts and drill-down).

The cube stores statistics, not price paths. :func:`resimulate` rebuilds a cell's
parameters and key from the cube's attrs (resolved config, root seed, seeding,
paths, steps) and runs the kernel for that cell alone. Because the kernel computes
every cell through the same compiled body, the re-simulated statistics are
bit-identical to the stored ones (tested), so the fan chart shows exactly the
paths behind the numbers in the cube.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .cube import cell_table
from .paths import CellSpec, cell_parameters

__all__ = ["report_fan", "resimulate"]


def resimulate(ds: xr.Dataset, point: dict[str, float] | None = None, *,
               cell: int | None = None, n_paths: int | None = None) -> tuple[Any, CellSpec]:
    """Run the cell nearest to ``point`` (or flat index ``cell``) again.

    Returns ``(result, spec)``: ``result`` is a ``kernels.BlockResult`` for one cell
    with ``stats``, ``probs``, per-path outputs and ``prices`` (log prices,
    ``(1, n_steps, n_paths, 3)``). ``n_paths`` defaults to the cube's (required for
    bit-identical statistics; fewer paths give the first paths of the same draws).
    """
    from kernels import make_params, simulate_block, stack_params
    from kernels.keys import cell_keys, root_key

    spec = cell_parameters(ds, point, cell=cell)
    model = dict(spec.model)
    t_dof = int(model.pop("t_dof", 4))
    params = stack_params([make_params(model)])
    seed = int(spec.root_seed or 0)
    if spec.seeding == "independent":
        X, _, _ = cell_table(ds)
        key = cell_keys(seed, np.asarray(X, float)[[spec.cell_index]])
    else:
        key = root_key(seed)
    res = simulate_block(params, key=key, n_paths=int(n_paths or spec.n_paths),
                         n_steps=int(spec.n_steps), t_dof=t_dof, return_paths=True,
                         return_prices=True)
    return res, spec


def report_fan(ds: xr.Dataset, max_paths: int = 256) -> dict[str, Any]:
    """The report's fan chart, re-simulated: the cell at the reference values (leverage
    at least 1, today's), as ``build_report`` keywords ``fan_paths`` (asset -> (n_paths,
    n_steps + 1) prices relative to the start), ``fan_times`` (hours) and ``fan_cell``
    (the cell's swept values)."""
    from .paths import price_paths
    from .report_headlines import neutral_values

    point = neutral_values(ds)
    if "leverage" in point:
        point["leverage"] = max(point["leverage"], 1.0)
    res, spec = resimulate(ds, point, n_paths=min(int(ds.attrs.get("n_paths", 64)), max_paths))
    times, paths = price_paths(res.prices[0], float(spec.model.get("step_hours", 0.25)))
    return {"fan_paths": paths, "fan_times": times, "fan_cell": spec.axis_values}
