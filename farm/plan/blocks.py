"""One block of a sweep: the cells one task simulates and one Zarr chunk stores.

In its own module, importing nothing but numpy, so a Ray worker that unpickles a
task does not import Hydra, OmegaConf or the design machinery of :mod:`farm.plan.design`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Block"]


@dataclass(frozen=True, eq=False)
class Block:
    """One chunk of the cube: the cells one task simulates.

    index: 0..n_blocks-1, C order over the chunk grid.
    region: cell dim -> slice of the cube, chunk-aligned (for ``to_zarr(region=...)``).
    cells: flat cell indices (C order over the cell dims) in region order, so
        ``values.reshape(region shape)`` fits the region.
    """

    index: int
    region: dict[str, slice]
    cells: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the region over the cell dims."""
        return tuple(s.stop - s.start for s in self.region.values())
