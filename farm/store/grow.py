"""Append cells to a cube along its ``cell`` dimension (an adaptive sweep's next wave).

:func:`grow_cube` resizes every array over ``cell`` to the design's cell count (the new
cells' data are empty, their ``status`` pending), writes the cell coordinates of the
whole design (the parameter values, ``wave``, ``replicate``), records the design in the
attrs and consolidates the metadata. Appends are chunk-aligned: the cube's cells before
the new ones fill whole chunks, so a new block never shares a chunk with an old one.
Idempotent: growing a cube to the size it already has rewrites the same coordinates
(a run killed between a resize and the next step is grown again on resume).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import zarr

from farm.store.cube import Cube
from farm.store.layout import consolidate

__all__ = ["cell_lengths", "grow_cube", "truncate_cube"]

log = logging.getLogger(__name__)

CELL_DIM = "cell"


def _cell_arrays(cube: Cube, mode: str) -> list[tuple[str, zarr.Array]]:
    """Every array over ``cell`` with its own metadata (not the consolidated copy, which
    an interrupted grow leaves stale)."""
    group = zarr.open_group(cube._open_group().store, mode=mode, zarr_format=3,
                            use_consolidated=False)
    return [(name, arr) for name, arr in group.arrays()
            if tuple(arr.metadata.dimension_names or ())[:1] == (CELL_DIM,)]


def _record_design(cube: Cube, design: Any) -> None:
    """Record ``design`` in the attrs and consolidate the metadata (the new shapes)."""
    cube._update_attrs({"design": json.dumps(design.to_attrs())})
    cube._arrays, cube._group = {}, None  # handles with the old shape are stale
    consolidate(cube.url, cube.storage_options or None)


def grow_cube(cube: Cube, design: Any) -> int:
    """Grow ``cube`` to hold ``design``'s cells (the cube's cells must be the design's
    first ones, in whole chunks); returns the number of cells added (0 when none)."""
    old, new = int(cube.shape[0]), int(design.n_cells)
    chunk = int(cube.chunks[0])
    if tuple(cube.cell_dims) != (CELL_DIM,) or tuple(design.cell_dims) != (CELL_DIM,):
        raise ValueError(f"{cube.url}: only a cube over one {CELL_DIM!r} dimension grows")
    if new < old:
        raise ValueError(f"{cube.url} holds {old} cells; the design has only {new}")
    if old % chunk and new > old:
        raise ValueError(f"{cube.url}: {old} cells do not fill whole chunks of {chunk}")
    if int(design.chunks[0]) != chunk:
        raise ValueError(f"design chunks {design.chunks} differ from the cube's {cube.chunks}")
    for name, arr in _cell_arrays(cube, "r+"):
        if arr.shape[0] != new:
            arr.resize((new, *arr.shape[1:]))
        if name in design.coords:  # a coordinate: laid out from the design
            arr[...] = np.asarray(design.coords[name]).astype(arr.dtype)
    _record_design(cube, design)
    if new > old:
        log.info("%s: %d cells appended (%d -> %d)", cube.url, new - old, old, new)
    return new - old


def cell_lengths(cube: Cube) -> set[int]:
    """The lengths along ``cell`` of every array over it, read from each array's own
    metadata (not the consolidated copy): one length unless a grow was interrupted."""
    return {int(arr.shape[0]) for _, arr in _cell_arrays(cube, "r")}


def truncate_cube(cube: Cube, design: Any) -> int:
    """Cut every array over ``cell`` back to ``design``'s cells (the cube's first ones):
    undoes an append that was interrupted before its wave was recorded (those cells were
    never computed). Records the design, consolidates; returns the cells removed."""
    n = int(design.n_cells)
    removed = 0
    for _, arr in _cell_arrays(cube, "r+"):
        if arr.shape[0] > n:
            removed = max(removed, int(arr.shape[0]) - n)
            arr.resize((n, *arr.shape[1:]))
    _record_design(cube, design)
    if removed:
        log.warning("%s: %d appended cells of an unrecorded wave removed (never computed)",
                    cube.url, removed)
    return removed

