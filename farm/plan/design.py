"""Expand a sweep into cells and blocks (docs/internal-contracts.md, farm.plan.design).

A *cell* is one combination of swept model parameter values; a *block* is the
set of cells one task simulates and one Zarr chunk stores.

- ``grid``: cartesian product of the axis lists, axis order as written in the
  config, cells in C order (last axis fastest). Cube dims = the axes.
- ``lhs`` / ``sobol``: ``n_samples`` points of :mod:`scipy.stats.qmc` seeded
  with the root seed, scaled from the unit cube to ``[lo, hi]`` per axis
  (Sobol' rounds ``n_samples`` up to a power of two, with a logged note).
  Cube dim ``cell``; the parameters are per-cell coordinates.
- ``csv``: one cell per row of a CSV file whose header names model parameters.

A grid with no axes (``sweep=single``) is one cell: dims ``("cell",)``, shape ``(1,)``.
Chunking: grid - take trailing axes whole while the product stays
<= ``runtime.block_cells``, then the next axis split into equal parts of at most
``floor(block_cells / product)``, 1 on the axes before; sampled - the cells split into
equal parts of at most ``block_cells`` (:func:`kernels.cubeformat.balanced_chunk`: the
last block is never a sliver padded to a full block). One block == one chunk; the
block size itself is :func:`block_size`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from farm.errors import ConfigError
from farm.plan.blocks import Block, block_size
from farm.plan.gridtable import GridTable
from kernels.cubeformat import DRAW_DIM, balanced_chunk, grid_chunks

__all__ = [
    "Block",
    "Design",
    "SweepSpec",
    "adaptive_design",
    "cell_params",
    "grid_chunks",
    "make_design",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Design:
    """The expanded sweep: cells, their parameter values and the chunk grid.

    ``table[c, j]`` is the value of ``axes[j]`` in flat cell ``c`` (float64, model units);
    a grid's table is a :class:`~farm.plan.gridtable.GridTable` (rows on demand).
    """

    method: str
    axes: tuple[str, ...]
    cell_dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    coords: dict[str, np.ndarray]
    table: np.ndarray | GridTable
    # posterior draws (farm.plan.draws): parameter -> value per draw, the last cell dim
    draws: dict[str, np.ndarray] = field(default_factory=dict)
    n_cells: int = field(init=False)
    n_blocks: int = field(init=False)

    def __post_init__(self) -> None:
        if len(self.shape) != len(self.cell_dims) or len(self.chunks) != len(self.shape):
            raise ValueError("shape, chunks and cell_dims must have the same length")
        if any(c < 1 for c in self.chunks):
            raise ValueError(f"chunks must be >= 1, got {self.chunks}")
        n = math.prod(self.shape)
        if self.table.shape != (n, len(self.axes)):
            raise ValueError(f"table has shape {self.table.shape}, expected {(n, len(self.axes))}")
        object.__setattr__(self, "n_cells", n)
        object.__setattr__(self, "n_blocks", math.prod(self.chunk_grid))

    def rechunk(self, chunks: Sequence[int]) -> Design:
        """The same cells with another chunk (= block) shape, e.g. an existing store's."""
        chunks = tuple(int(c) for c in chunks)
        if len(chunks) != len(self.shape):
            raise ValueError(f"chunks {chunks} do not match the design's dims {self.cell_dims}")
        return Design(self.method, self.axes, self.cell_dims, self.shape, chunks, self.coords,
                      self.table, self.draws)

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        """Number of chunks along each cell dim."""
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunks, strict=True))

    def block(self, i: int) -> Block:
        """Block ``i`` (C order over the chunk grid)."""
        i = int(i)
        if not 0 <= i < self.n_blocks:
            raise IndexError(f"block index {i} out of range [0, {self.n_blocks})")
        pos = np.unravel_index(i, self.chunk_grid)
        ranges, region = [], {}
        for dim, p, c, s in zip(self.cell_dims, pos, self.chunks, self.shape, strict=True):
            lo, hi = int(p) * c, min((int(p) + 1) * c, s)
            region[dim] = slice(lo, hi)
            ranges.append(np.arange(lo, hi))
        mesh = np.meshgrid(*ranges, indexing="ij")
        cells = np.ravel_multi_index(tuple(mesh), self.shape).ravel().astype(np.int64)
        return Block(index=i, region=region, cells=cells)

    def blocks(self) -> Iterator[Block]:
        """All blocks in index order."""
        for i in range(self.n_blocks):
            yield self.block(i)

    def table_sha256(self) -> str:
        """sha256 of the parameter table (float64 little-endian, C order)."""
        if isinstance(self.table, GridTable):
            return self.table.sha256()
        table = np.ascontiguousarray(self.table, dtype="<f8")
        if table.size == 0:  # a single cell with no axes: memoryview cannot cast it
            return hashlib.sha256(b"").hexdigest()
        return hashlib.sha256(memoryview(table).cast("B")).hexdigest()  # no copy

    def to_attrs(self) -> dict[str, Any]:
        """JSON-able description (grid axis values inline; sampled tables by sha256)."""
        out: dict[str, Any] = {
            "method": self.method,
            "axes": list(self.axes),
            "cell_dims": list(self.cell_dims),
            "shape": list(self.shape),
            "chunks": list(self.chunks),
            "n_cells": self.n_cells,
            "n_blocks": self.n_blocks,
            "table_sha256": self.table_sha256(),
        }
        if self.method == "grid":
            out["coords"] = {a: [float(v) for v in self.coords[a]] for a in self.axes}
        if self.draws:
            out["draws"] = {p: [float(v) for v in vals] for p, vals in self.draws.items()}
        return out


def _grid(axes: dict[str, list[Any]], block_cells: int, workers: int) -> Design:
    if not axes:  # one cell with the model's own values
        return Design("grid", (), ("cell",), (1,), (1,), {"cell": np.arange(1)},
                      np.zeros((1, 0)))
    names = tuple(axes)
    values = []
    for name in names:
        vals = axes[name]
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"sweep.axes.{name}", vals, "a non-empty list of values")
        values.append(np.asarray([float(v) for v in vals], dtype=np.float64))
    shape = tuple(len(v) for v in values)
    table = GridTable(values)  # rows on demand: a million cells hold no 32 MB table
    coords = dict(zip(names, values, strict=True))
    chunks = grid_chunks(shape, block_size(block_cells, len(table), workers))
    return Design("grid", names, names, shape, chunks, coords, table)


def _sampled(method: str, names: tuple[str, ...], table: np.ndarray, block_cells: int,
             workers: int) -> Design:
    n = table.shape[0]
    coords = {"cell": np.arange(n)}
    coords.update({a: table[:, j].copy() for j, a in enumerate(names)})
    chunk = balanced_chunk(n, block_size(block_cells, n, workers))
    return Design(method, names, ("cell",), (n,), (chunk,), coords, table)


def adaptive_design(names: Sequence[str], table: np.ndarray, wave: np.ndarray,
                    replicate: np.ndarray, chunk: int) -> Design:
    """An adaptive sweep's cells: ``table``, the ``wave`` adding each cell and its
    ``replicate`` (r > 0: more paths at a point, :func:`kernels.keys.replicate_seed`)."""
    table = np.ascontiguousarray(table, dtype=np.float64)
    coords = {"cell": np.arange(len(table)), "wave": np.asarray(wave, np.int32),
              "replicate": np.asarray(replicate, np.int32)}
    coords.update({a: table[:, j].copy() for j, a in enumerate(names)})
    return Design("adaptive", tuple(names), ("cell",), (len(table),), (int(chunk),), coords,
                  table)


def _box(axes: dict[str, list[Any]], method: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = [], []
    for name, v in axes.items():
        if not isinstance(v, list) or len(v) != 2 or not float(v[0]) < float(v[1]):
            raise ConfigError(f"sweep.axes.{name}", v, f"[lo, hi] with lo < hi for method={method}")
        lo.append(float(v[0]))
        hi.append(float(v[1]))
    return np.asarray(lo), np.asarray(hi)


def initial_unit_design(n: int, d: int, seed: int) -> np.ndarray:
    """``n`` scrambled Sobol' points in the unit cube (any ``n``: no balance warning)."""
    from scipy.stats import qmc

    return qmc.Sobol(d=d, scramble=True, rng=seed).random_base2(max(0, (n - 1).bit_length()))[:n]


def _qmc(method: str, axes: dict[str, list[Any]], n_samples: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    if n_samples < 1:
        raise ConfigError("sweep.n_samples", n_samples, "an integer >= 1")
    lo, hi = _box(axes, method)
    d = len(lo)
    if method == "lhs":
        unit = qmc.LatinHypercube(d=d, rng=seed).random(n_samples)
    else:
        m = max(0, math.ceil(math.log2(n_samples)))
        if 2**m != n_samples:
            log.info("sobol: sweep.n_samples=%d rounded up to %d (a power of two keeps the "
                     "Sobol' sequence balanced)", n_samples, 2**m)
        unit = qmc.Sobol(d=d, scramble=True, rng=seed).random_base2(m)
    return np.ascontiguousarray(qmc.scale(unit, lo, hi), dtype=np.float64)


@dataclass(frozen=True)
class SweepSpec:
    """What a design is made of (plain values, no config object): ``method`` grid | lhs |
    sobol | csv, ``axes`` name -> values (grid) or ``[lo, hi]`` (lhs, sobol), ``n_samples``,
    ``csv`` (path, for method csv), ``block_cells``, the root ``seed`` (lhs/sobol) and the
    ``workers`` an automatic block size is made for."""

    method: str
    axes: dict[str, list[Any]]
    n_samples: int
    csv: str | None
    block_cells: int
    seed: int
    workers: int = 1
    adaptive: dict[str, Any] | None = None  # sweep.adaptive (method adaptive)


def make_design(spec: SweepSpec, *, chunks: Sequence[int] | None = None) -> Design:
    """Expand a sweep into its :class:`Design`. ``chunks`` forces the chunk shape (e.g. an
    existing store's, on resume). Raises ConfigError for a malformed sweep."""
    block_cells = int(spec.block_cells)
    if block_cells < 0:
        raise ConfigError("runtime.block_cells", block_cells, "an integer >= 0 (0 = automatic)")
    method = str(spec.method)
    axes = {str(k): v for k, v in dict(spec.axes).items()}
    if method == "grid":
        design = _grid(axes, block_cells, spec.workers)
    elif method in ("lhs", "sobol"):
        if not axes:
            raise ConfigError("sweep.axes", {}, f"at least one axis [lo, hi] for method={method}")
        table = _qmc(method, axes, int(spec.n_samples), int(spec.seed))
        design = _sampled(method, tuple(axes), table, block_cells, spec.workers)
    elif method == "adaptive":  # wave 1, Sobol' points (farm.adaptive adds the others)
        a, (lo, hi), n = dict(spec.adaptive or {}), _box(axes, method), 0
        table = lo + initial_unit_design(int(a["initial_cells"]), len(lo), spec.seed) * (hi - lo)
        n = len(table)
        design = adaptive_design(tuple(axes), table, np.ones(n), np.zeros(n), a["block_cells"])
    elif method == "csv":
        if not spec.csv:
            raise ConfigError("sweep.csv", spec.csv, "the path of a CSV file for method=csv")
        from farm.plan.csvdesign import read_csv_design

        names, table = read_csv_design(spec.csv)
        design = _sampled("csv", names, table, block_cells, spec.workers)
    else:
        raise ConfigError("sweep.method", method, "grid | lhs | sobol | csv | adaptive")
    if chunks is not None:
        design = design.rechunk(chunks)
    log.debug("design %s: %d cells, %d blocks of %s", method, design.n_cells, design.n_blocks,
              design.chunks)
    return design


def cell_params(model: Any, design: Design, cells: np.ndarray, *,
                validate: bool = False) -> Any:
    """Stacked :class:`~kernels.params.ModelParams` for ``cells`` (leading cells axis).

    ``model`` is a ModelParams (or a mapping of its fields): the model's values, with
    the swept axes replaced by each cell's values. Every leaf is float64 with shape
    ``(len(cells),)`` (vector fields ``(len(cells), k)``). ``validate=True`` range-checks
    the block (``kernels.params.validate_params``).
    """
    from kernels.params import ModelParams, make_params, repeat_params, validate_params

    idx = np.asarray(cells, dtype=np.int64).ravel()
    if idx.size == 0:
        raise ValueError("cell_params needs at least one cell")
    if idx.min() < 0 or idx.max() >= design.n_cells:
        raise IndexError(f"cell indices must be in [0, {design.n_cells})")
    base = model if isinstance(model, ModelParams) else make_params(
        {k: v for k, v in dict(model).items() if k != "t_dof"}, validate=False)
    block = repeat_params(base, idx.size)
    swept = {a: design.table[idx, j].copy() for j, a in enumerate(design.axes)}
    if design.draws:  # the draw axis (farm.plan.draws): a cell takes its draw's values
        index = swept.pop(DRAW_DIM).astype(np.int64)
        swept.update({name: values[index] for name, values in design.draws.items()})
    params = block._replace(**swept)
    return validate_params(params) if validate else params
