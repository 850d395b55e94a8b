"""The empty cube: coordinates, attrs and one empty zarr v3 array per output.

Written once when a cube is created (:func:`write_template`): coordinates and attrs by
``xarray.Dataset.to_zarr``, data variables as empty zarr v3 arrays with
``dimension_names`` (metadata only: no chunk is stored until a block writes it, so
creating a million-cell cube is instant; ``to_zarr(compute=False)`` would need dask,
which the farm does not use).

Every chunk is stored with a CRC-32C checksum after its Zstandard compression
(:func:`chunk_codecs`, zarr v3's ``crc32c`` codec): a chunk whose bytes changed on disk
fails to decode instead of reading as other numbers, and
:mod:`farm.store.verify` names it. :func:`create_output_array` also re-creates one array
of an existing cube (:mod:`farm.store.repair` puts back a deleted ``status`` array).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from farm.store.layout import DesignLike
from farm.store.storage import zarr_store
from kernels.cfunits import udunits, unit_note
from kernels.cubeformat import (
    DRAW_DIM,
    PATH_DIM,
    STAT_DIM,
    STATUS_MEANINGS,
    STATUS_PENDING,
    STATUS_VAR,
    path_var_name,
)
from kernels.outputs import PATH_OUTPUTS, PROBABILITIES, STATS

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["CHUNK_CHECKSUM", "chunk_codecs", "create_output_array", "output_arrays",
           "rewrite_coords", "write_template"]

CHUNK_CHECKSUM = "crc32c"
"""Recorded in the cube's attrs ``chunk_checksum``: every chunk carries this checksum."""


def chunk_codecs() -> tuple[Any, ...]:
    """The bytes-to-bytes codecs of every array: zarr's default Zstandard, then CRC-32C."""
    return (ZstdCodec(level=0, checksum=False), Crc32cCodec())


def cf_attrs(spec: Any, suffix: str = "") -> dict[str, str]:
    """CF-style attributes of an output: ``long_name`` (what it is, with what a
    dimensionless unit stands for) and UDUNITS ``units``."""
    note = unit_note(spec.units)
    return {"long_name": spec.description + suffix + (f" ({note})" if note else ""),
            "units": udunits(spec.units)}


def output_arrays(n_paths: int, store_paths: bool) -> dict[str, tuple[dict, str, Any, dict]]:
    """``{name: (extra_dims, dtype, fill_value, attributes)}`` of every array of a cube,
    ``extra_dims`` being ``{dim: length}`` after the cell dims."""
    out: dict[str, tuple[dict, str, Any, dict]] = {}
    for var, spec in PATH_OUTPUTS.items():
        out[var] = ({STAT_DIM: len(STATS)}, "float32", np.nan, cf_attrs(spec))
    for name, spec in PROBABILITIES.items():
        out[name] = ({}, "float32", np.nan, {**cf_attrs(spec), "valid_range": [0.0, 1.0]})
    if store_paths:
        for var, spec in PATH_OUTPUTS.items():
            meta = cf_attrs(spec, " (per path)")
            out[path_var_name(var)] = ({PATH_DIM: int(n_paths)}, "float32", np.nan, meta)
    out[STATUS_VAR] = ({}, "int8", STATUS_PENDING, {
        "units": "1", "long_name": "cell status",
        "description": "cell status: " + "; ".join(f"{k} {v}" for k, v in STATUS_MEANINGS.items()),
        "flag_values": list(STATUS_MEANINGS),
        "flag_meanings": "pending done failed done_flagged",
    })
    return out


def create_output_array(group: zarr.Group, name: str, dims: tuple[str, ...],
                        shape: tuple[int, ...], chunks: tuple[int, ...], n_paths: int,
                        *, overwrite: bool = False) -> zarr.Array:
    """Create the empty array ``name`` of a cube whose cells have ``dims``/``shape``/
    ``chunks`` (one chunk per block; the ``stat`` and ``path`` dims whole)."""
    extra, dtype, fill, meta = output_arrays(n_paths, True)[name]
    return group.create_array(
        name, shape=shape + tuple(extra.values()), chunks=chunks + tuple(extra.values()),
        dtype=dtype, fill_value=fill, dimension_names=dims + tuple(extra),
        attributes=meta, compressors=chunk_codecs(), overwrite=overwrite,
    )


def _template_dataset(design: DesignLike, n_paths: int, store_paths: bool) -> xr.Dataset:
    import xarray as xr

    dims, shape = tuple(design.cell_dims), tuple(int(n) for n in design.shape)
    reserved = {STAT_DIM, PATH_DIM, *output_arrays(n_paths, True)}
    coords: dict[str, Any] = {}
    for name, values in design.coords.items():
        if name in reserved:
            raise ValueError(f"design coordinate {name!r} clashes with a cube variable or dim")
        arr = np.asarray(values)
        if name in dims:
            if arr.shape != (shape[dims.index(name)],):
                raise ValueError(f"coordinate {name!r} has shape {arr.shape}, dim is {shape}")
            coords[name] = ((name,), arr)
        elif arr.shape == shape:
            coords[name] = (dims, arr)
        elif DRAW_DIM in dims and arr.shape == (shape[dims.index(DRAW_DIM)],):
            coords[name] = ((DRAW_DIM,), arr)  # an uncertain parameter, per draw
        else:
            raise ValueError(f"coordinate {name!r} of shape {arr.shape} fits no cell dims {dims}")
    for dim, n in zip(dims, shape, strict=True):
        coords.setdefault(dim, ((dim,), np.arange(n)))
    coords[STAT_DIM] = ((STAT_DIM,), np.array(STATS, dtype=object))
    if store_paths:
        coords[PATH_DIM] = ((PATH_DIM,), np.arange(int(n_paths)))
    return xr.Dataset(coords={k: (*v, coord_attrs(k)) for k, v in coords.items()})


_INDEX_NAMES = {"cell": "cell index of a sampled design", STAT_DIM: "statistic over paths",
                PATH_DIM: "Monte Carlo path index", DRAW_DIM: "posterior draw index"}


def coord_attrs(name: str) -> dict[str, str]:
    """CF-style ``long_name`` and UDUNITS ``units`` of a cube coordinate (a model
    parameter's own description and unit, or an index)."""
    from kernels.paramspec import SPECS

    if name in SPECS:
        spec = SPECS[name]
        note = unit_note(spec.unit)
        return {"long_name": spec.description + (f" ({note})" if note else ""),
                "units": udunits(spec.unit)}
    if name == STAT_DIM:
        return {"long_name": _INDEX_NAMES[name]}
    return {"long_name": _INDEX_NAMES.get(name, name), "units": "1"}


def rewrite_coords(url: str, design: DesignLike, n_paths: int, store_paths: bool,
                   names: list[str], storage_options: Mapping[str, Any] | None) -> None:
    """Write the coordinate arrays ``names`` of an existing cube again, from ``design``
    (a coordinate whose chunk was damaged: coordinates are not computed, only laid out)."""
    ds = _template_dataset(design, n_paths, store_paths)
    group = zarr.open_group(zarr_store(url, storage_options), mode="r+", zarr_format=3,
                            use_consolidated=False)
    for name in names:
        group[name][...] = np.asarray(ds[name].values).astype(group[name].dtype)


def global_attrs(attrs: Mapping[str, Any]) -> dict[str, str]:
    """CF global attributes: ``Conventions``, ``title``, ``source``, ``history``."""
    import re

    found = re.search(r"^name: *(.+)$", str(attrs.get("config", "")), re.MULTILINE)
    name = found.group(1).strip().strip("'\"") if found else "sweep"
    kernel = str(attrs.get("kernel_sha256", ""))[:12]
    return {"Conventions": "CF-1.10",
            "title": f"{name}: crypto-crisis cascade, Monte Carlo statistics per cell",
            "source": f"farm scenario farm, JAX cascade kernel {kernel}".strip(),
            "history": f"{attrs.get('created', '')} created by farm run".strip()}


def write_template(
    url: str, design: DesignLike, attrs: Mapping[str, Any], n_paths: int, store_paths: bool,
    storage_options: Mapping[str, Any] | None,
) -> None:
    """Write the empty cube at ``url`` (nothing there yet): coords, attrs, empty arrays."""
    dims, shape, chunks = tuple(design.cell_dims), tuple(design.shape), tuple(design.chunks)
    ds = _template_dataset(design, n_paths, store_paths)
    ds.attrs = {**dict(attrs), "chunk_checksum": CHUNK_CHECKSUM, **global_attrs(attrs)}
    store = zarr_store(url, storage_options)
    encoding = {name: {"compressors": chunk_codecs()} for name in ds.coords}
    ds.to_zarr(store, mode="w-", zarr_format=3, consolidated=False, encoding=encoding)
    group = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
    for name in output_arrays(n_paths, store_paths):
        create_output_array(group, name, dims, shape, chunks, n_paths)
