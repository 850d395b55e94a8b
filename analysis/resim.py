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

__all__ = ["resimulate"]


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
