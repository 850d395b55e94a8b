"""The result cube: an xarray Dataset in a Zarr v3 store, filled block by block.

Its layout and template are :mod:`farm.store.layout`'s; the stores the farm refuses,
:mod:`farm.store.refusal`'s. A block's ``status`` is set only after its data (per
cell: 1 done, 3 flagged, 2 for a cell whose outputs are not finite).

Driver-only operations (they rewrite the root attrs): :meth:`Cube.mark_failed`,
:meth:`Cube.record_failure`, :meth:`Cube.begin_run`, :meth:`Cube.finalize`.
:meth:`Cube.write_block` is safe on workers (a :class:`Cube` pickles to its URL and
reopens lazily).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from farm.secrets import option_secrets, redact_secrets
from farm.store.configdiff import describe_difference
from farm.store.layout import (
    DONE_STATUSES,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_FLAGGED,
    STATUS_PENDING,
    STATUS_VAR,
    BlockLike,
    DesignLike,
    block_status_of,
    block_values,
    consolidate,
    path_var_name,
    read_root_attrs,
    region_index,
    write_concurrently,
)
from farm.store.provenance import FARM_FORMAT, now_iso
from farm.store.refusal import (
    DamagedCubeError,
    IncompatibleStoreError,
    NotACubeError,
    StoreExistsError,
    check_creatable,
    check_openable,
    cube_exists,
)
from farm.store.runrecord import RunRecord
from farm.store.storage import (
    filesystem,
    normalize_url,
    remove_store,
    zarr_store,
)
from farm.store.template import write_template
from kernels.outputs import PATH_OUTPUTS, PROBABILITIES

__all__ = [
    "DONE_STATUSES", "STATUS_DONE", "STATUS_FAILED", "STATUS_FLAGGED", "STATUS_PENDING",
    "Cube", "DamagedCubeError", "IncompatibleStoreError", "NotACubeError",
    "StoreExistsError", "create_cube", "cube_exists", "describe_difference",
    "open_existing", "path_var_name", "read_root_attrs"
]

if TYPE_CHECKING:  # xarray is imported where needed: workers only write with zarr
    import xarray as xr

log = logging.getLogger(__name__)

LAYOUT_VAR = next(iter(PROBABILITIES))  # an array over the cell dims only, like status


def create_cube(
    url: str,
    design: DesignLike,
    attrs: Mapping[str, Any],
    *,
    store_paths: bool = False,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Cube:
    """Write an empty cube (template) for ``design`` and return it.

    ``attrs`` are the provenance attrs (:func:`farm.store.provenance.provenance_attrs`); they
    must hold ``config_hash`` and ``n_paths``. With ``overwrite=True`` an existing farm
    cube at ``url`` is removed first (anything else there is refused, never deleted:
    :func:`farm.store.refusal.check_creatable`). Values of credential-like
    ``storage_options`` and environment variables are redacted from the attrs.
    """
    url = normalize_url(url)
    missing = {"config_hash", "n_paths"} - set(attrs)
    if missing:
        raise ValueError(f"cube attrs lack {sorted(missing)} (use farm.provenance_attrs)")
    if check_creatable(url, storage_options, overwrite):
        log.warning("overwriting the existing cube at %s", url)
        remove_store(url, storage_options)
    dims, shape, chunks = tuple(design.cell_dims), tuple(design.shape), tuple(design.chunks)
    if not (len(dims) == len(shape) == len(chunks)) or min(chunks, default=0) < 1:
        raise ValueError(f"bad design layout: dims {dims}, shape {shape}, chunks {chunks}")
    n_paths = int(attrs["n_paths"])
    full_attrs = {"farm_format": FARM_FORMAT, "created": now_iso(), "failed_blocks": "{}"}
    full_attrs.update(redact_secrets(dict(attrs), extra=option_secrets(storage_options)))
    full_attrs["store_paths"] = bool(store_paths)
    json.dumps(full_attrs)  # JSON-serialisable, or fail before writing anything

    write_template(url, design, full_attrs, n_paths, store_paths, storage_options)
    consolidate(url, storage_options)
    log.info("created cube %s: dims %s shape %s chunks %s", url, dims, shape, chunks)
    return Cube(url, storage_options)


def open_existing(
    url: str, storage_options: Mapping[str, Any] | None = None, *, read_only: bool = False
) -> Cube:
    """Open an existing farm cube; :class:`NotACubeError` when there is none at ``url``."""
    url = normalize_url(url)
    check_openable(url, storage_options)
    cube = Cube(url, storage_options, read_only=read_only)
    try:
        cube.shape  # noqa: B018 - opens a data array (the layout)
    except (KeyError, FileNotFoundError) as exc:
        raise NotACubeError(f"{url} has no {LAYOUT_VAR!r} array: not a complete cube") from exc
    return cube


class Cube(RunRecord):
    """An open farm cube. Cheap to pickle (URL and storage options; zarr reopens lazily).

    The driver-only operations (failures, run start and finish, compatibility) are
    :class:`farm.store.runrecord.RunRecord`'s."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None, *,
                 read_only: bool = False) -> None:
        self.url = normalize_url(url)
        self.storage_options = dict(storage_options or {})
        self.read_only = read_only
        self._group: zarr.Group | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self._has_paths: bool | None = None

    def __repr__(self) -> str:
        return f"Cube({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group": None, "_arrays": {}}

    # ---- zarr access --------------------------------------------------------------
    def _open_group(self) -> zarr.Group:
        store = zarr_store(self.url, self.storage_options, read_only=self.read_only)
        mode = "r" if self.read_only else "r+"
        return zarr.open_group(store, mode=mode, zarr_format=3, use_consolidated=None)

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            self._group = self._open_group()
        return self._group

    def _array(self, name: str) -> zarr.Array:
        arr = self._arrays.get(name)
        if arr is None:
            node = self.group[name]
            if not isinstance(node, zarr.Array):
                raise NotACubeError(f"{self.url}: {name!r} is not an array")
            arr = self._arrays[name] = node
        return arr

    @property
    def attrs(self) -> dict[str, Any]:
        """The root attrs, read fresh from the store."""
        return self._open_group().attrs.asdict()

    def _update_attrs(self, new: Mapping[str, Any], remove: Iterable[str] = ()) -> None:
        group = self._open_group()
        for key in remove:
            if key in group.attrs:
                del group.attrs[key]
        group.attrs.update(dict(new))
        self._group = None  # its cached attrs are stale; array handles stay valid

    # the cell layout is read from a probability (cell dims only, like status), so a cube
    # whose status array was lost still opens and can be repaired (farm.store.repair)
    @property
    def cell_dims(self) -> tuple[str, ...]:
        return tuple(self._array(LAYOUT_VAR).metadata.dimension_names or ())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array(LAYOUT_VAR).shape)

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self._array(LAYOUT_VAR).chunks)

    def has_status(self) -> bool:
        """Whether the ``status`` array's metadata is in the store (its consolidated copy
        in the root metadata outlives a deleted array, so this asks the store itself)."""
        fs, path = filesystem(self.url, self.storage_options)
        fs.invalidate_cache()
        return bool(fs.exists(f"{path}/{STATUS_VAR}/zarr.json"))

    @property
    def n_blocks(self) -> int:
        return math.prod(math.ceil(n / c) for n, c in zip(self.shape, self.chunks, strict=True))

    @property
    def has_paths(self) -> bool:
        """Whether the cube stores per-path outputs (``VAR_paths``)."""
        if self._has_paths is None:
            self._has_paths = path_var_name(next(iter(PATH_OUTPUTS))) in self.group
        return self._has_paths

    def dataset(self, **kwargs: Any) -> xr.Dataset:
        """The cube as a lazy xarray Dataset (``xarray.open_zarr``)."""
        import xarray as xr

        fs, path = filesystem(self.url, self.storage_options)
        consolidated = bool(json.loads(fs.cat_file(f"{path}/zarr.json")).get(
            "consolidated_metadata"))  # always, unless written by something else
        store = zarr_store(self.url, self.storage_options, read_only=True)
        return xr.open_zarr(store, zarr_format=3, **{"consolidated": consolidated, **kwargs})

    # ---- blocks -------------------------------------------------------------------
    def _index(self, block: BlockLike) -> tuple[tuple[slice, ...], tuple[int, ...]]:
        return region_index(block, self.cell_dims, self.shape, self.chunks)

    def write_block_data(
        self, block: BlockLike, stats: Mapping[str, Any], probs: Mapping[str, Any],
        paths: Mapping[str, Any] | None = None,
    ) -> None:
        """Write a block's data (not its status). Inputs are flat over ``block.cells``.

        ``stats[var]``: (n, len(STATS)); ``probs[name]``: (n,); ``paths[var]``: (n, n_paths),
        required exactly when the cube stores paths. Cast to float32.
        """
        index, sub = self._index(block)
        n_paths = (self._array(path_var_name(next(iter(PATH_OUTPUTS)))).shape[-1]
                   if self.has_paths else None)
        todo = block_values(self.url, stats, probs, paths, n_paths, sub)
        writes = [(self._array(name), index + (slice(None),) * (arr.ndim - len(sub)), arr)
                  for name, arr in todo]
        write_concurrently(writes)

    def _set_status(self, block: BlockLike, value: Any) -> None:
        index, sub = self._index(block)
        codes = np.broadcast_to(np.asarray(value, dtype=np.int8), (math.prod(sub),))
        self._array(STATUS_VAR)[index] = codes.reshape(sub)

    def mark_done(self, block: BlockLike, status: Any = STATUS_DONE) -> None:
        """Set the block's cell status (call only after its data is written): 1 done, or
        per cell (flat over ``block.cells``) 1 done, 3 flagged, 2 failed."""
        self._set_status(block, status)

    def write_block(
        self, block: BlockLike, stats: Mapping[str, Any], probs: Mapping[str, Any],
        paths: Mapping[str, Any] | None = None, status: Any = STATUS_DONE,
    ) -> None:
        """Write a block's data, then its ``status`` (see :meth:`write_block_data`,
        :meth:`mark_done`)."""
        self.write_block_data(block, stats, probs, paths)
        self.mark_done(block, status)

    def cell_status(self) -> np.ndarray:
        """The per-cell status array (int8, shape over the cell dims).

        :class:`DamagedCubeError` when the array is gone or a chunk of it cannot be read
        (``farm repair STORE`` rebuilds it from the data)."""
        if not self.has_status():
            raise DamagedCubeError(f"{self.url}: the {STATUS_VAR!r} array is missing; "
                                   "`farm repair STORE` rebuilds it from the data")
        try:
            return np.asarray(self._array(STATUS_VAR)[...])
        except Exception as exc:  # any decode error of a chunk
            raise DamagedCubeError(
                f"{self.url}: the {STATUS_VAR!r} array cannot be read ({type(exc).__name__}); "
                "`farm status --verify STORE` names the bad chunks, `farm repair STORE` "
                "rebuilds them from the data") from None

    def block_status(self, design: DesignLike | None = None) -> np.ndarray:
        """Status per block (C order over the chunk grid): 0 pending, 1 done, 2 failed.

        A block is done only when all its cells are done (1, or 3 flagged), failed when
        any is 2. With
        ``design`` given, its shape and chunks must match the cube's.
        """
        want = (self.shape, self.chunks)
        got = None if design is None else (tuple(design.shape), tuple(design.chunks))
        if got is not None and got != want:
            raise ValueError(f"design (shape, chunks) {got} does not match the cube "
                             f"{self.url}: {want}")
        return block_status_of(self.cell_status(), self.chunks)
