"""Layout of the result cube and the low-level Zarr operations behind :mod:`farm.store.cube`.

Layout (docs/internal-contracts.md, "the cube"): ``VAR(cell_dims..., stat)`` float32
for VAR in :data:`kernels.outputs.PATH_OUTPUTS`, ``p_*(cell_dims...)`` float32,
``status(cell_dims...)`` int8 (:data:`STATUS_MEANINGS`: 0 pending, 1 done, 2 failed, 3
done but flagged) and, with ``store_paths=True``, ``VAR_paths(cell_dims..., path)``
float32 per-path values. Cell dims are chunked exactly like the design's blocks (one
block == one chunk); ``stat`` and ``path`` are whole. Unwritten data reads NaN,
unwritten status 0. Units are the outputs' own (:mod:`kernels.outputs`: US dollars,
positive fractions, ...).

The template is written once (:mod:`farm.store.template`), then the metadata is
consolidated. Blocks are written by
direct zarr slicing of chunk-aligned regions (:func:`region_index`), so concurrent
writers never share a chunk; a block's arrays are written concurrently
(:func:`write_concurrently`).
"""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import zarr

from farm.store.storage import filesystem, zarr_store
from kernels.cubeformat import (
    DONE_STATUSES,
    PATH_DIM,
    STAT_DIM,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_FLAGGED,
    STATUS_MEANINGS,
    STATUS_PENDING,
    STATUS_VAR,
    block_status_of,
    path_var_name,
)
from kernels.outputs import PATH_OUTPUTS, PROBABILITIES, STATS

__all__ = [
    "DONE_STATUSES",
    "PATH_DIM",
    "STATUS_DONE",
    "STATUS_FAILED",
    "STATUS_FLAGGED",
    "STATUS_MEANINGS",
    "STATUS_PENDING",
    "STATUS_VAR",
    "STAT_DIM",
    "BlockLike",
    "DesignLike",
    "block_status_of",
    "block_values",
    "consolidate",
    "has_content",
    "path_var_name",
    "prepare_values",
    "read_root_attrs",
    "region_index",
    "write_concurrently",
    "zarr_sync",
]



class BlockLike(Protocol):
    index: int
    region: Mapping[str, slice]
    cells: np.ndarray


class DesignLike(Protocol):
    cell_dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    coords: Mapping[str, np.ndarray]
    n_blocks: int

    def blocks(self) -> Iterator[BlockLike]: ...


def read_root_attrs(url: str, storage_options: Mapping[str, Any] | None = None) -> dict | None:
    """The root group's attrs of a Zarr v3 store, or None when there is no ``zarr.json``."""
    fs, path = filesystem(url, storage_options)
    try:
        raw = fs.cat_file(f"{path}/zarr.json")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("node_type") != "group":
        return None
    return dict(meta.get("attributes") or {})


def has_content(url: str, storage_options: Mapping[str, Any] | None) -> bool:
    """True when anything exists at ``url`` (a non-empty directory/prefix or a file)."""
    fs, path = filesystem(url, storage_options)
    fs.invalidate_cache()
    try:
        return bool(fs.ls(path)) if fs.isdir(path) else fs.exists(path)
    except FileNotFoundError:
        return False


def consolidate(url: str, storage_options: Mapping[str, Any] | None) -> None:
    """Consolidate the store's metadata (root ``zarr.json``), silencing zarr's v3 caveat.

    Done at creation too, so readers open the cube without fallback warnings while it is
    being filled; attrs updates keep it (array metadata never changes after creation).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        zarr.consolidate_metadata(zarr_store(url, storage_options), zarr_format=3)


def region_index(block: BlockLike, dims: tuple[str, ...], shape: tuple[int, ...],
                 chunks: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """``(index, sub)``: the block's region as slices of the cell dims and its shape;
    refuses a region that is not exactly one chunk of the cube."""
    if set(block.region) != set(dims):
        raise ValueError(f"block {block.index}: region dims {list(block.region)} != {dims}")
    index, sub = [], []
    for dim, n, c in zip(dims, shape, chunks, strict=True):
        s = block.region[dim]
        start = 0 if s.start is None else int(s.start)
        stop = n if s.stop is None else int(s.stop)
        if s.step not in (None, 1) or start % c or stop != min(start + c, n):
            raise ValueError(
                f"block {block.index}: region {dim}={start}:{stop} is not one chunk "
                f"(chunk {c}, size {n}); blocks must align with the cube's chunks"
            )
        index.append(slice(start, stop))
        sub.append(stop - start)
    if len(block.cells) != math.prod(sub):
        raise ValueError(f"block {block.index}: {len(block.cells)} cells, region {sub}")
    return tuple(index), tuple(sub)


def prepare_values(what: str, values: Mapping[str, Any], names: Iterable[str],
                   row_shape: tuple[int, ...], n: int, sub: tuple[int, ...]) -> list:
    """``[(name, float32 array shaped sub + row_shape)]`` for exactly ``names`` of
    ``values`` (each flat ``(n, *row_shape)`` over the block's cells)."""
    names = list(names)
    if set(values) != set(names):
        extra, lack = sorted(set(values) - set(names)), sorted(set(names) - set(values))
        raise ValueError(f"{what}: unexpected {extra}, missing {lack}")
    out = []
    for name in names:
        arr = np.asarray(values[name], dtype=np.float32)
        if arr.shape != (n, *row_shape):
            raise ValueError(f"{what}[{name!r}] has shape {arr.shape}, want {(n, *row_shape)}")
        out.append((name, arr.reshape(sub + row_shape)))
    return out


def block_values(url: str, stats: Mapping[str, Any], probs: Mapping[str, Any],
                 paths: Mapping[str, Any] | None, n_paths: int | None,
                 sub: tuple[int, ...]) -> list:
    """``[(array name, values shaped sub + ...)]`` of a block's data; ``paths`` required
    exactly when the cube stores per-path outputs (``n_paths`` not None)."""
    n = math.prod(sub)
    todo = prepare_values("stats", stats, PATH_OUTPUTS, (len(STATS),), n, sub)
    todo += prepare_values("probs", probs, PROBABILITIES, (), n, sub)
    if n_paths is not None:
        if paths is None:
            raise ValueError(f"{url} stores per-path outputs: pass paths=")
        for name, arr in prepare_values("paths", paths, PATH_OUTPUTS, (n_paths,), n, sub):
            todo.append((path_var_name(name), arr))
    elif paths is not None:
        raise ValueError(f"{url} does not store per-path outputs (store.paths=false)")
    return todo


def zarr_sync() -> Callable[[Coroutine[Any, Any, Any]], Any] | None:
    """zarr's private ``zarr.core.sync.sync`` (None if a zarr release dropped it).

    It runs a coroutine on zarr's own event loop, where its stores' sessions live (an
    s3fs session is bound to that loop: ``asyncio.run`` with a new loop fails on S3), and
    returns the result in the calling thread. zarr 3 has no public way to await several
    arrays' writes together from synchronous code: public ``Array.async_array`` and
    ``AsyncArray.setitem`` make the coroutines, only this runs them. The public
    alternative, one thread per array (``array[sel] = value``), measured 1.6x slower per
    block on a local disk (2 CPUs; about the same on S3). This is the farm's one use of
    it; tests/farm/test_cube.py::test_zarr_private_sync_is_still_there pins it by name.
    """
    try:
        from zarr.core.sync import sync
    except ImportError:  # pragma: no cover - the pinning test fails first
        return None
    return sync


_POOL: ThreadPoolExecutor | None = None


def _write_in_threads(writes: list[tuple[zarr.Array, tuple[slice, ...], np.ndarray]]) -> None:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="farm-zarr-write")
    for done in [_POOL.submit(arr.__setitem__, sel, value) for arr, sel, value in writes]:
        done.result()


def write_concurrently(writes: list[tuple[zarr.Array, tuple[slice, ...], np.ndarray]]) -> None:
    """Write ``array[selection] = value`` for all ``writes`` at once: the ~26 small chunks
    of a block are encoded and stored concurrently in one pass of zarr's event loop (one
    round trip to an object store instead of 26; ~2x faster on a local disk), through
    :func:`zarr_sync`; with public API only (threads) if that is gone."""
    sync = zarr_sync()
    if sync is None:
        _write_in_threads(writes)
        return

    async def _all() -> None:
        await asyncio.gather(*(a.async_array.setitem(sel, v) for a, sel, v in writes))

    sync(_all())
