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


SMALL_BLOCK, LARGE_BLOCK, LARGE_SWEEP = 128, 4096, 131_072
"""Automatic block size (``runtime.block_cells=0``): 128 cells per block (about a second
of kernel work at 256 paths x 96 steps, so a sweep of a few thousand cells spreads over
many tasks), and 4,096 for sweeps of 131,072 cells or more, so that each statistic's
chunk holds 128 KB (8 float32 statistics per cell) and a block writes its ~36 chunk
files for 4,096 cells (~9 files per 1,000 cells instead of ~280), with 32 blocks or
more to share among the workers. A sweep too small for that gets smaller blocks, at
least two per worker (``runtime.workers``, or this machine's cores when 0), so that no
worker sits idle: 4 cells on 2 workers run as 4 one-cell blocks."""


def block_size(block_cells: int, n_cells: int, workers: int = 1) -> int:
    """Cells per block: ``block_cells``, or the automatic size when it is 0 (and then
    never so large that a small sweep leaves a worker idle: at least two blocks per
    worker; the numbers never depend on the block size)."""
    if block_cells > 0:  # the user's
        return block_cells
    size = LARGE_BLOCK if n_cells >= LARGE_SWEEP else SMALL_BLOCK
    return max(1, min(size, -(-n_cells // (2 * max(workers, 1)))))
