"""The result cube's format, shared by the farm (which writes cubes) and the analysis
(which reads them), so that neither imports the other.

A cube is a Zarr group with the attr ``farm_format`` (:data:`FARM_FORMAT`). Its cell
dimensions are the sweep axes (grid designs; a sweep over posterior draws adds a last
``draw`` dimension) or one ``cell`` dimension (sampled designs); every per-path output
has a ``stat`` dimension, per-path variables (when stored) a ``path`` dimension;
``status`` holds one code per cell. Cells are written in blocks, one Zarr chunk each,
laid out by :func:`grid_chunks`. This module needs only NumPy: it is part of the output
contract, like :mod:`kernels.outputs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "CELL_DIM",
    "DONE_STATUSES",
    "DRAW_DIM",
    "FARM_FORMAT",
    "PATH_DIM",
    "STATUS_DONE",
    "STATUS_FAILED",
    "STATUS_FLAGGED",
    "STATUS_MEANINGS",
    "STATUS_PENDING",
    "STATUS_VAR",
    "STAT_DIM",
    "NotACubeError",
    "balanced_chunk",
    "block_status_of",
    "grid_chunks",
    "path_var_name",
    "unfinished_blocks",
]

FARM_FORMAT = 1
"""Version of this format, stored in every cube's attrs as ``farm_format``."""

STAT_DIM, PATH_DIM, CELL_DIM, STATUS_VAR = "stat", "path", "cell", "status"
DRAW_DIM = "draw"
"""The last cell dim of a sweep over posterior draws; each uncertain parameter is a
coordinate along it (``depth_btc(draw)``)."""

STATUS_PENDING, STATUS_DONE, STATUS_FAILED, STATUS_FLAGGED = 0, 1, 2, 3
STATUS_MEANINGS = {
    STATUS_PENDING: "pending",
    STATUS_DONE: "done",
    STATUS_FAILED: "failed: non-finite outputs or an error; a rerun redoes it",
    STATUS_FLAGGED: "done, flagged: the cascade hit max_rounds on more than capped_limit of "
                    "the path-steps",
}
DONE_STATUSES = (STATUS_DONE, STATUS_FLAGGED)
"""Codes that count as done: a flagged cell is done (resume skips it, ``complete`` holds,
its numbers are read)."""


class NotACubeError(ValueError):
    """The store holds no farm cube (missing, not Zarr, or no ``farm_format`` attr)."""


def path_var_name(var: str) -> str:
    """The name of the per-path variable of output ``var`` (``drawdown_btc_paths``)."""
    return f"{var}_paths"


def grid_chunks(shape: Sequence[int], block_cells: int) -> tuple[int, ...]:
    """Chunk (= block) shape of a grid of ``shape``: whole trailing axes while their
    product fits in ``block_cells``, then as much of the next axis as fits, 1 before.

    The partial axis is split into equal parts (``ceil(n / ceil(n / fit))``), so the
    last block along it is not a sliver padded to a full block: a 10 x 129 grid with
    ``block_cells=128`` gets chunks (1, 65), computing 1,300 cells instead of 2,560."""
    if block_cells < 1:
        raise ValueError(f"block_cells must be >= 1, got {block_cells}")
    chunks = [1] * len(shape)
    prod = 1
    for i in range(len(shape) - 1, -1, -1):
        if prod * shape[i] <= block_cells:
            chunks[i] = int(shape[i])
            prod *= int(shape[i])
        else:
            fit = max(1, block_cells // prod)
            chunks[i] = balanced_chunk(int(shape[i]), fit)
            break
    return tuple(chunks)


def balanced_chunk(n: int, most: int) -> int:
    """The chunk length that splits ``n`` into as few parts of at most ``most`` as
    possible, all of nearly equal length (the padding of the last part is minimal)."""
    parts = math.ceil(n / max(1, most))
    return max(1, math.ceil(n / parts))


def _split(status: np.ndarray, chunks: Sequence[int], fill: int) -> tuple[np.ndarray, tuple]:
    grid = [math.ceil(n / c) for n, c in zip(status.shape, chunks, strict=True)]
    padded = np.full([g * c for g, c in zip(grid, chunks, strict=True)], fill, dtype=np.int8)
    padded[tuple(slice(0, n) for n in status.shape)] = status
    split = padded.reshape([x for g, c in zip(grid, chunks, strict=True) for x in (g, c)])
    return split, tuple(range(1, 2 * len(grid), 2))


def block_status_of(status: np.ndarray, chunks: Sequence[int]) -> np.ndarray:
    """Per-block status in C order over the chunk grid: failed if any cell failed, done
    if every cell is done (1 or flagged 3), else pending."""
    status = np.asarray(status)
    if status.ndim == 0:
        status = status.reshape(1)
        chunks = (1,)
    split, axes = _split(status, tuple(chunks)[: status.ndim], STATUS_DONE)
    out = np.zeros(split.shape[::2], dtype=np.int8)
    out[np.isin(split, DONE_STATUSES).all(axis=axes)] = STATUS_DONE
    out[(split == STATUS_FAILED).any(axis=axes)] = STATUS_FAILED
    return out.ravel()


def unfinished_blocks(status: np.ndarray, chunks: Sequence[int]) -> int:
    """Number of blocks holding at least one cell that is not done."""
    return int(np.sum(block_status_of(status, chunks) != STATUS_DONE))
