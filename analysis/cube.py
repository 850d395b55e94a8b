"""Open farm cubes and read their layout (docs/internal-contracts.md, "the cube").

A farm cube is a Zarr store written by ``farm.store.cube``: one dimension per sweep axis
(grid designs) or a single ``cell`` dimension with per-cell parameter coordinates
(sampled designs: lhs, sobol, csv), a ``stat`` dimension on the per-path outputs,
``p_*`` probabilities (each ``p_x`` with its Wilson 95 % bounds ``p_x_lo``/``p_x_hi`` in
cubes written since the bounds exist), and a per-cell ``status``: 0 pending, 1 done,
2 failed (an error, or NaN/inf outputs), 3 done but flagged (the cascade hit
``max_rounds`` on more than ``capped_limit`` of the cell's path-steps). Flagged cells
count as done everywhere; :func:`cube_info` counts them. Provenance lives in the attrs;
``design``, ``versions`` and ``failed_blocks`` are JSON strings, decoded by
:func:`cube_info`.

This module never imports ``farm``; the format (names, status codes, chunk rule) is
:mod:`kernels.cubeformat`, shared with the farm that writes cubes.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
import zarr
import zarr.errors

from kernels.cubeformat import (
    DONE_STATUSES,
    PATH_DIM,
    STAT_DIM,
    STATUS_FAILED,
    STATUS_FLAGGED,
    STATUS_PENDING,
    NotACubeError,
    unfinished_blocks,
)

__all__ = [
    "CubeInfo",
    "IncompleteCubeError",
    "NotAFarmCubeError",
    "axes_of",
    "cell_dims_of",
    "cell_table",
    "cell_values",
    "cube_info",
    "is_adaptive",
    "is_grid",
    "open_cube",
]

log = logging.getLogger(__name__)

_NON_CELL_DIMS = (STAT_DIM, PATH_DIM)

NotAFarmCubeError = NotACubeError
"""The store is not a Zarr group written by the farm (no ``farm_format`` attr); the
cube format's :class:`kernels.cubeformat.NotACubeError`."""


class IncompleteCubeError(RuntimeError):
    """Some cells of the cube are pending or failed."""


def _decode(value: Any) -> Any:
    """Decode a JSON-string attr; pass through values already decoded (dict, list, number)."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _design(ds: xr.Dataset) -> dict[str, Any]:
    design = _decode(ds.attrs.get("design", {}))
    return design if isinstance(design, dict) else {}


def cell_dims_of(ds: xr.Dataset) -> tuple[str, ...]:
    """The cell dimensions: the sweep axes (grid) or ``("cell",)`` (sampled designs)."""
    dims = _design(ds).get("cell_dims")
    if dims is not None and all(d in ds.dims for d in dims):
        return tuple(dims)
    if "status" in ds:
        return tuple(ds["status"].dims)
    return tuple(d for d in ds.dims if d not in _NON_CELL_DIMS)


def is_grid(ds: xr.Dataset) -> bool:
    """True for grid cubes (one dimension per axis), False for sampled cubes (``cell`` dim)."""
    return "cell" not in cell_dims_of(ds)


def is_adaptive(ds: xr.Dataset) -> bool:
    """True for an adaptive sweep's cube (``sweep.method=adaptive``: cells in waves)."""
    return _design(ds).get("method") == "adaptive"


def axes_of(ds: xr.Dataset) -> tuple[str, ...]:
    """The swept parameter names, in design order."""
    axes = _design(ds).get("axes")
    if axes is not None and all(a in ds.coords for a in axes):
        return tuple(axes)
    cdims = cell_dims_of(ds)
    if "cell" not in cdims:
        return cdims
    return tuple(str(c) for c, v in ds.coords.items() if v.dims == ("cell",) and c != "cell")


@dataclass(frozen=True)
class CubeInfo:
    """Decoded provenance and completion state of a cube (attrs described in the contract)."""

    farm_format: Any
    method: str
    axes: tuple[str, ...]
    cell_dims: tuple[str, ...]
    n_cells: int
    n_done: int  # done, flagged included
    n_pending: int
    n_failed: int
    n_paths: int | None
    n_steps: int | None
    root_seed: int | None
    seeding: str | None
    design: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    failed_blocks: dict[int, str] = field(default_factory=dict)
    config: str = ""
    config_hash: str = ""
    git_commit: str = ""
    created: str = ""
    jax_prng_impl: str = ""
    n_flagged: int = 0  # done but flagged (status 3): max_rounds hit too often

    @property
    def is_grid(self) -> bool:
        return "cell" not in self.cell_dims

    @property
    def complete(self) -> bool:
        return self.n_done == self.n_cells


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def cube_info(ds: xr.Dataset) -> CubeInfo:
    """Decode the cube's attrs (JSON ``design``/``versions``/``failed_blocks``) and count cells."""
    a = ds.attrs
    design = _design(ds)
    status = np.asarray(ds["status"].values) if "status" in ds else None
    n_cells = int(status.size) if status is not None else int(design.get("n_cells", 0))
    failed = _decode(a.get("failed_blocks", {})) or {}
    versions = _decode(a.get("versions", {})) or {}
    return CubeInfo(
        farm_format=a.get("farm_format"),
        method=str(design.get("method", "grid" if is_grid(ds) else "unknown")),
        axes=axes_of(ds),
        cell_dims=cell_dims_of(ds),
        n_cells=n_cells,
        n_done=int(np.isin(status, DONE_STATUSES).sum()) if status is not None else n_cells,
        n_pending=int((status == STATUS_PENDING).sum()) if status is not None else 0,
        n_failed=int((status == STATUS_FAILED).sum()) if status is not None else 0,
        n_paths=_as_int(a.get("n_paths")),
        n_steps=_as_int(a.get("n_steps")),
        root_seed=_as_int(a.get("root_seed")),
        seeding=a.get("seeding"),
        design=design,
        versions=versions if isinstance(versions, dict) else {},
        failed_blocks={int(k): str(v) for k, v in dict(failed).items()},
        config=str(a.get("config", "")),
        config_hash=str(a.get("config_hash", "")),
        git_commit=str(a.get("git_commit", "")),
        created=str(a.get("created", "")),
        jax_prng_impl=str(a.get("jax_prng_impl", "")),
        n_flagged=int((status == STATUS_FLAGGED).sum()) if status is not None else 0,
    )


def _chunk_shape(ds: xr.Dataset, cdims: tuple[str, ...]) -> tuple[int, ...]:
    chunks = _design(ds).get("chunks")
    if chunks is None:
        chunks = ds["status"].encoding.get("chunks") or ds["status"].shape
    return tuple(max(1, int(c)) for c in chunks)


def _open_store(path_or_url: Any, storage_options: dict | None) -> xr.Dataset:
    kwargs: dict[str, Any] = {"storage_options": storage_options}
    if importlib.util.find_spec("dask") is None:
        kwargs["chunks"] = None  # lazy backend arrays without dask
    try:
        return xr.open_zarr(path_or_url, consolidated=True, **kwargs)
    except ValueError as err:
        if "onsolidated" not in str(err):
            raise
    return xr.open_zarr(path_or_url, consolidated=False, **kwargs)


def _mask_unfinished(ds: xr.Dataset, done: xr.DataArray) -> xr.Dataset:
    """NaN every data variable on the cell dims where the cell is not done (status not
    1 or 3).

    Stat and probability variables are small and masked in memory. Variables with a
    ``path`` dimension are masked lazily when dask backs them; without dask they are
    left as stored (unwritten chunks read as the fill value) to avoid loading them.
    """
    out = ds.copy()
    cdims = set(done.dims)
    for name, da in ds.data_vars.items():
        if name == "status" or not cdims.issubset(da.dims):
            continue
        if "path" in da.dims and not hasattr(da.data, "dask"):
            log.warning("variable %s has a path dim and no dask: not masked", name)
            continue
        masked = da.where(done)
        masked.attrs = da.attrs
        masked.encoding = da.encoding
        out[name] = masked
    return out


def open_cube(
    path_or_url: Any,
    *,
    allow_incomplete: bool = False,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """Open a farm cube lazily (``xr.open_zarr``, consolidated metadata when present).

    Parameters
    ----------
    path_or_url:
        local path or fsspec URL (``s3://``, ``gs://``, ...) of the Zarr store.
    allow_incomplete:
        open a cube with pending or failed cells; their data variables are NaN
        (masked where the status is not done, 1, or flagged, 3). Without it such a cube
        raises. Flagged cells are done: they are kept, and counted in a warning.
    storage_options:
        passed to fsspec for remote stores.

    Raises
    ------
    FileNotFoundError: nothing at ``path_or_url``.
    NotAFarmCubeError: not a Zarr group, or a group without the ``farm_format`` attr.
    IncompleteCubeError: cells are pending/failed and ``allow_incomplete`` is False;
        the message counts the missing cells and blocks.
    """
    try:
        ds = _open_store(path_or_url, storage_options)
    except zarr.errors.NodeNotFoundError as err:
        raise NotAFarmCubeError(f"{path_or_url} holds no Zarr group: not a farm cube") from err
    except FileNotFoundError:
        raise
    except Exception as err:  # zarr raises several types for "not a group"
        raise NotAFarmCubeError(
            f"{path_or_url} is not a Zarr store written by the farm: {err}"
        ) from err
    if "farm_format" not in ds.attrs:
        raise NotAFarmCubeError(
            f"{path_or_url} is a Zarr store but not a farm cube (no 'farm_format' attribute)"
        )
    if "status" not in ds:
        raise NotAFarmCubeError(f"{path_or_url} has no 'status' variable; not a farm cube")
    status = ds["status"].load()
    done = status.isin(DONE_STATUSES)
    info = cube_info(ds)
    if info.n_flagged:
        log.warning(
            "cube %s: %d of %d cells are flagged (status %d): their cascade hit max_rounds "
            "on more than capped_limit of the path-steps, so their numbers are not converged",
            path_or_url, info.n_flagged, info.n_cells, STATUS_FLAGGED,
        )
    if bool(done.all()):
        return ds
    n_missing = info.n_cells - info.n_done
    n_blocks = unfinished_blocks(status.values, _chunk_shape(ds, cell_dims_of(ds)))
    failed = sorted(info.failed_blocks)
    detail = (
        f"{n_missing} of {info.n_cells} cells ({n_blocks} blocks) are not done: "
        f"{info.n_pending} pending, {info.n_failed} failed"
        + (f" (failed blocks: {failed})" if failed else "")
        + (f"; {info.n_flagged} cells are flagged" if info.n_flagged else "")
    )
    if not allow_incomplete:
        raise IncompleteCubeError(
            f"cube {path_or_url} is incomplete: {detail}. Run `farm run` on it again to "
            "resume, or pass allow_incomplete=True to open it with those cells as NaN."
        )
    log.warning("opening incomplete cube %s: %s; unfinished cells are NaN", path_or_url, detail)
    return _mask_unfinished(ds, done)


def cell_values(ds: xr.Dataset, var: str, stat: str | None = None) -> xr.DataArray:
    """``var`` as a DataArray over the cell dims only.

    Variables with a ``stat`` dimension are reduced to one statistic (default ``mean``);
    a ``path`` dimension is averaged (NaN-skipping). Probabilities need no ``stat``.
    """
    if var not in ds:
        raise KeyError(f"variable {var!r} not in cube; have {sorted(map(str, ds.data_vars))}")
    da = ds[var]
    if "stat" in da.dims:
        stat = stat or "mean"
        labels = [str(s) for s in da["stat"].values]
        if stat not in labels:
            raise KeyError(f"stat {stat!r} not in {labels}")
        da = da.sel(stat=stat)
    elif stat not in (None, "mean"):
        raise ValueError(f"variable {var!r} has no stat dimension (asked for stat={stat!r})")
    if "path" in da.dims:
        da = da.mean("path", skipna=True)
    return da


def cell_table(
    ds: xr.Dataset, var: str | None = None, stat: str | None = None
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Flatten the cube to ``(X, y, axes)``: X is (n_cells, n_axes) parameter values in axis
    units, y the (n_cells,) values of ``var`` (None when ``var`` is None), C order over cells."""
    axes = axes_of(ds)
    if is_grid(ds):
        grids = np.meshgrid(*[np.asarray(ds[a].values, float) for a in axes], indexing="ij")
        X = np.stack([g.ravel() for g in grids], axis=1) if axes else np.zeros((1, 0))
        order: list[str] = list(axes)
    else:
        cols = [np.asarray(ds[a].values, float) for a in axes]
        X = np.stack(cols, axis=1) if cols else np.zeros((ds.sizes["cell"], 0))
        order = ["cell"]
    y = None
    if var is not None:
        da = cell_values(ds, var, stat)
        y = np.asarray(da.transpose(*order).values if da.ndim else da.values, float).ravel()
    return X, y, axes
