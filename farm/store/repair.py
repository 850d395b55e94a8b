"""Make a cube's ``status`` agree with its data again (``farm repair STORE``; also done
by ``farm run`` when it resumes a cube).

From a :class:`farm.store.verify.Verification`:

- blocks with a bad data chunk (unreadable, missing, not finite) go back to pending, so
  the next run recomputes exactly those blocks (a block's cells are computed together);
- a ``status`` array that is gone is created again, and ``status`` chunks that are
  unreadable are rewritten; their cells are rebuilt **from the data**: a cell whose
  outputs are all readable and finite is done (1; flagged, 3, when its mean
  ``capped_steps`` exceeds ``capped_limit``), any other cell pending (0);
- everything else keeps its status (failed cells, 2, stay failed).

Nothing computed is thrown away: a cell whose numbers are all there is never set back.
Call it under the store's lock (:class:`farm.store.lock.StoreLock`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
import zarr

from farm.store.layout import DesignLike, consolidate
from farm.store.provenance import now_iso
from farm.store.template import create_output_array, rewrite_coords
from farm.store.verify import COORDINATE, Verification, verify_cube
from kernels.cubeformat import (
    STATUS_DONE,
    STATUS_FLAGGED,
    STATUS_PENDING,
    STATUS_VAR,
)
from kernels.outputs import PROBABILITIES
from kernels.paramspec import SPECS

if TYPE_CHECKING:
    from farm.store.cube import Cube

__all__ = ["RepairResult", "check_and_repair", "repair_cube", "repair_store"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair_cube` changed (counts of cells and blocks)."""

    url: str
    status_recreated: bool
    cells_rebuilt: int  # cells whose status was rebuilt from the data
    blocks_reset: list[int]  # blocks set back to pending (bad data chunks)
    cells_changed: int  # cells whose status code changed

    @property
    def changed(self) -> bool:
        return self.status_recreated or self.cells_changed > 0

    def summary(self) -> str:
        parts = []
        if self.status_recreated:
            parts.append("re-created the missing status array")
        if self.cells_rebuilt:
            parts.append(f"rebuilt the status of {self.cells_rebuilt} cells from their data")
        if self.blocks_reset:
            shown = ", ".join(str(b) for b in self.blocks_reset[:20])
            more = "" if len(self.blocks_reset) <= 20 else f", ... ({len(self.blocks_reset)})"
            parts.append(f"set blocks {shown}{more} back to pending (to be recomputed)")
        return f"{self.url}: " + ("; ".join(parts) if parts else "nothing to repair")


def _capped_limit(cube: Cube, shape: tuple[int, ...]) -> np.ndarray:
    """The cells' ``capped_limit``: a swept coordinate, else the config's, else the default."""
    if "capped_limit" in cube.group:
        ds = cube.dataset()
        return np.broadcast_to(ds["capped_limit"].broadcast_like(ds[next(iter(PROBABILITIES))])
                               .values.astype(float), shape)
    try:
        model = (yaml.safe_load(str(cube.attrs.get("config", ""))) or {}).get("model") or {}
        value = float(model.get("capped_limit", SPECS["capped_limit"].default))
    except (ValueError, TypeError, yaml.YAMLError, AttributeError):
        value = float(SPECS["capped_limit"].default)
    return np.full(shape, value)


def _status_from_data(cube: Cube, v: Verification) -> np.ndarray:
    """Per cell: done (or flagged) where every output is readable and finite, else pending."""
    shape = v.cell_status.shape
    rebuilt = np.where(v.cells_complete, STATUS_DONE, STATUS_PENDING).astype(np.int8)
    with np.errstate(invalid="ignore"):
        flagged = v.cells_complete & (v.capped_mean > _capped_limit(cube, shape))
    rebuilt[flagged] = STATUS_FLAGGED
    return rebuilt


def _block_mask(blocks: list[int], shape: tuple[int, ...], chunks: tuple[int, ...]) -> np.ndarray:
    """Per-cell mask of the cells in ``blocks`` (block indices, C order over the grid)."""
    grid = tuple(-(-n // c) for n, c in zip(shape, chunks, strict=True))
    block_of_cell = np.ravel_multi_index(
        np.meshgrid(*(np.arange(n) // c for n, c in zip(shape, chunks, strict=True)),
                    indexing="ij"), grid)
    return np.isin(block_of_cell, blocks)


def repair_cube(cube: Cube, v: Verification) -> RepairResult:
    """Rewrite ``status`` from the verification ``v`` of ``cube`` (see the module doc)."""
    ref = cube._array(next(iter(PROBABILITIES)))
    shape, chunks = tuple(ref.shape), tuple(ref.chunks)
    dims = tuple(ref.metadata.dimension_names or ())
    status_blocks = sorted({p.block for p in v.problems if p.array == STATUS_VAR})
    data_blocks = sorted({p.block for p in v.problems if p.array != STATUS_VAR
                          and p.block != COORDINATE})
    rebuild = (np.ones(shape, dtype=bool) if v.status_missing
               else _block_mask(status_blocks, shape, chunks))
    new = v.cell_status.copy()
    new[rebuild] = _status_from_data(cube, v)[rebuild]
    new[_block_mask(data_blocks, shape, chunks)] = STATUS_PENDING
    changed = int((new != v.cell_status).sum())
    if v.status_missing or status_blocks or changed:
        group = zarr.open_group(cube._open_group().store, mode="r+", zarr_format=3,
                                use_consolidated=False)
        if v.status_missing:
            n_paths = int(cube.attrs.get("n_paths", 1))
            arr = create_output_array(group, STATUS_VAR, dims, shape, chunks, n_paths,
                                      overwrite=True)
        else:
            arr = group[STATUS_VAR]
        arr[...] = new
        cube._group, cube._arrays = None, {}
        consolidate(cube.url, cube.storage_options)
    result = RepairResult(cube.url, v.status_missing, int(rebuild.sum()), data_blocks, changed)
    if result.changed:
        cube._update_attrs({"repaired": now_iso(), "repair": result.summary()})
        log.warning("%s", result.summary())
    return result


def check_and_repair(cube: Cube, design: DesignLike | None = None
                     ) -> tuple[Verification, RepairResult]:
    """Verify every chunk of ``cube`` and repair its status (what ``farm run`` does when
    it resumes a cube, and ``farm repair``); under the store's lock. With the run's
    ``design``, unreadable coordinate arrays are written again from it."""
    v = verify_cube(cube)
    if v.bad_coords and design is not None:
        attrs = cube.attrs
        rewrite_coords(cube.url, design, int(attrs.get("n_paths", 1)),
                       str(attrs.get("store_paths")) == "True", v.bad_coords,
                       cube.storage_options)
        log.warning("%s: rewrote the unreadable coordinates %s from the design", cube.url,
                    ", ".join(v.bad_coords))
        cube._group, cube._arrays = None, {}
    return v, repair_cube(cube, v)


def repair_store(url: str, storage_options: Mapping[str, Any] | None = None) -> RepairResult:
    """``farm repair STORE``: take the store's lock, verify every chunk, repair the status
    and (when anything changed) record the new counts in the attrs."""
    from farm.store.cube import open_existing
    from farm.store.lock import StoreLock
    from farm.store.refusal import check_openable
    from farm.store.storage import normalize_url

    check_openable(normalize_url(url), storage_options)  # no lock beside a missing store
    with StoreLock(url, storage_options):
        cube = open_existing(url, storage_options)
        _, result = check_and_repair(cube)
        if result.changed:
            cube.finalize()
    return result
