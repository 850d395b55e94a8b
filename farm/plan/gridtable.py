"""The parameter table of a grid, computed row by row on demand.

A grid of a million cells over four axes would hold a 32 MB float64 table in the
driver; every user of the table only ever needs some rows (a block's cells, a chunk
to validate), and row ``c`` follows from the axis values by ``unravel_index``. So a
grid's ``Design.table`` is a :class:`GridTable`: indexing it like an array returns the
same numbers the full table would, and ``np.asarray`` builds the whole table only
when somebody asks for it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence

import numpy as np

HASH_ROWS = 65_536
"""Rows hashed at a time by :meth:`GridTable.sha256` (2 MB for four axes)."""


class GridTable:
    """Rows of the C-order product of ``values`` (one float64 vector per axis)."""

    dtype = np.dtype(np.float64)
    ndim = 2

    def __init__(self, values: Sequence[np.ndarray]) -> None:
        self.values = tuple(np.asarray(v, dtype=np.float64) for v in values)
        self.dims = tuple(len(v) for v in self.values)
        self.shape = (math.prod(self.dims), len(self.values))

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, cells: np.ndarray) -> np.ndarray:
        """``table[cells]``: shape ``cells.shape + (n_axes,)``."""
        cells = np.asarray(cells, dtype=np.int64)
        out = np.empty((*cells.shape, self.shape[1]))
        if cells.size:
            if cells.min() < -self.shape[0] or cells.max() >= self.shape[0]:
                raise IndexError(f"cell index out of range [0, {self.shape[0]})")
            pos = np.unravel_index(cells % max(self.shape[0], 1), self.dims)
            for j, (v, p) in enumerate(zip(self.values, pos, strict=True)):
                out[..., j] = v[p]
        return out

    def __getitem__(self, key):
        rows, cols = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows, slice):
            out = self.rows(np.arange(*rows.indices(self.shape[0])))
        elif np.ndim(rows) == 0 and not isinstance(rows, np.ndarray | list):
            out = self.rows(np.asarray([rows]))[0]
            return out[cols] if cols else out
        else:
            idx = np.asarray(rows)
            out = self.rows(np.flatnonzero(idx) if idx.dtype == bool else idx)
        return out[(slice(None), *cols)] if cols else out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self.rows(np.arange(self.shape[0]))
        return whole if dtype is None else whole.astype(dtype)

    def chunks(self, size: int = HASH_ROWS) -> Iterator[np.ndarray]:
        """The table in consecutive row blocks of at most ``size`` rows."""
        for start in range(0, self.shape[0], size):
            yield self.rows(np.arange(start, min(start + size, self.shape[0])))

    def sha256(self) -> str:
        """sha256 of the whole table (float64 little-endian, C order), block by block:
        the same digest as hashing the full array."""
        h = hashlib.sha256()
        for block in self.chunks():
            h.update(np.ascontiguousarray(block, dtype="<f8").tobytes())
        return h.hexdigest()
