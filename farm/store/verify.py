"""Read every chunk of a cube and name each one that is unreadable or missing.

A *done* cell (status 1, or 3 flagged) has finite numbers in every output, by the
farm's contract (a cell with a NaN or inf output is failed, status 2). So a chunk is

- **unreadable** when zarr cannot decode it (its CRC-32C checksum or its compression
  fails: bytes changed on disk);
- **missing** when its done cells read as the fill value (NaN) because the chunk's
  object is gone;
- **not finite** when the chunk exists but some of its done cells hold NaN or inf.

A ``status`` chunk that is unreadable is a problem of its block too (its cells count as
pending), and a ``status`` array that is gone altogether is reported as such
(:attr:`Verification.status_missing`): :mod:`farm.store.repair` rebuilds it from the data.

Arrays are read whole when small (:data:`WHOLE_READ_BYTES`) and chunk by chunk
otherwise, and always chunk by chunk once a whole read fails, to name the bad chunks.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.store.storage import filesystem
from kernels.cubeformat import DONE_STATUSES, STATUS_PENDING, STATUS_VAR, path_var_name
from kernels.outputs import PATH_OUTPUTS, PROBABILITIES

if TYPE_CHECKING:
    from farm.store.cube import Cube

__all__ = ["WHOLE_READ_BYTES", "ChunkProblem", "Verification", "require_sound", "verify_cube"]

log = logging.getLogger(__name__)

WHOLE_READ_BYTES = 256 * 2**20
"""Arrays up to this size (bytes, decoded) are read in one call; larger ones by chunk."""

MAX_NAMED = 8  # problems named in a one-line summary
COORDINATE = -1  # ChunkProblem.block of a coordinate array's chunk


@dataclass(frozen=True)
class ChunkProblem:
    """One bad chunk: the array, the chunk's key in the store, its block and what is wrong."""

    array: str
    key: str  # e.g. "p_systemic/c/0/1/0/0"
    block: int  # block index (C order over the cube's chunk grid)
    kind: str  # "unreadable", "missing", "not finite" or "array missing"
    detail: str = ""

    def __str__(self) -> str:
        tail = f": {self.detail}" if self.detail else ""
        where = "coordinate" if self.block == COORDINATE else f"block {self.block}"
        return f"{self.key} ({where}) {self.kind}{tail}"


@dataclass
class Verification:
    """What :func:`verify_cube` found."""

    url: str
    cell_status: np.ndarray  # as read; cells of an unreadable status chunk: pending (0)
    cells_complete: np.ndarray  # bool per cell: every output readable and finite
    capped_mean: np.ndarray  # mean capped_steps per cell (NaN where unreadable)
    problems: list[ChunkProblem] = field(default_factory=list)
    status_missing: bool = False
    arrays_checked: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.status_missing

    @property
    def bad_blocks(self) -> list[int]:
        """Blocks with a problem in any array (to be recomputed)."""
        return sorted({p.block for p in self.problems if p.block >= 0})

    @property
    def bad_coords(self) -> list[str]:
        """Coordinate arrays that cannot be read (rewritten from the design by a run)."""
        return sorted({p.array for p in self.problems if p.block == COORDINATE})

    def summary(self) -> str:
        """One line: how many chunks are bad, the first few named, and their blocks."""
        if self.ok:
            return f"{self.url}: all chunks of {self.arrays_checked} arrays readable"
        parts = []
        if self.status_missing:
            parts.append("the status array is missing")
        if self.problems:
            named = "; ".join(str(p) for p in self.problems[:MAX_NAMED])
            more = len(self.problems) - MAX_NAMED
            parts.append(f"{len(self.problems)} bad chunks in blocks {_ranges(self.bad_blocks)}: "
                         f"{named}" + (f"; and {more} more" if more > 0 else ""))
        return f"{self.url}: " + "; ".join(parts)


def _ranges(blocks: list[int]) -> str:
    shown = ", ".join(str(b) for b in blocks[:20])
    return shown + (f", ... ({len(blocks)} blocks)" if len(blocks) > 20 else "")


def _short(exc: BaseException) -> str:
    """A decode error in a few words (its first sentence): ``ValueError: Stored and
    computed checksum do not match``."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0].split(". ")[0][:160]


def _chunk_grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.ceil(n / c) for n, c in zip(shape, chunks, strict=True))


def _chunk_coords(arr: Any) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(g) for g in _chunk_grid(arr.shape, arr.chunks)))


def _cell_slices(coords: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunks, strict=False))


class _Checker:
    """Reads the arrays of one cube and collects problems (state of one verification)."""

    def __init__(self, cube: Cube) -> None:
        self.cube = cube
        ref = cube._array(next(iter(PROBABILITIES)))  # cell dims only, like status
        self.ndim = len(ref.shape)
        self.shape = tuple(ref.shape)
        self.cell_chunks = tuple(ref.chunks)
        self.grid = _chunk_grid(self.shape, self.cell_chunks)
        self.fs, self.root = filesystem(cube.url, cube.storage_options)
        self.problems: list[ChunkProblem] = []

    def block_of(self, coords: tuple[int, ...]) -> int:
        return int(np.ravel_multi_index(coords[: self.ndim], self.grid))

    def key(self, name: str, arr: Any, coords: tuple[int, ...]) -> str:
        return f"{name}/{arr.metadata.encode_chunk_key(coords)}"

    def exists(self, name: str, arr: Any, coords: tuple[int, ...]) -> bool:
        return bool(self.fs.exists(f"{self.root}/{self.key(name, arr, coords)}"))

    def read(self, name: str, arr: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(values, readable)``: the array (fill where unreadable) and a per-cell mask of
        the cells whose chunk decoded; unreadable chunks are recorded as problems."""
        readable = np.ones(arr.shape[: self.ndim], dtype=bool)
        nbytes = math.prod(arr.shape) * arr.dtype.itemsize
        if nbytes <= WHOLE_READ_BYTES:
            try:
                return np.asarray(arr[...]), readable
            except Exception as exc:  # any decode error: find the chunks
                log.info("%s: whole read failed (%s); reading chunk by chunk", name, exc)
        values = np.full(arr.shape, arr.fill_value, dtype=arr.dtype)
        for coords in _chunk_coords(arr):
            sel = _cell_slices(coords, tuple(arr.chunks))
            try:
                values[sel] = arr.blocks[coords]
            except Exception as exc:  # a chunk zarr cannot decode
                readable[sel[: self.ndim]] = False
                detail = _short(exc)
                self.problems.append(ChunkProblem(name, self.key(name, arr, coords),
                                                  self.block_of(coords), "unreadable", detail))
        return values, readable

    def check_finite(self, name: str, arr: Any, finite: np.ndarray, readable: np.ndarray,
                     done: np.ndarray) -> None:
        """Record chunks whose done (and readable) cells are not finite."""
        bad = done & readable & ~finite
        if not bad.any():
            return
        cells_per_chunk = np.zeros(self.grid, dtype=np.int64)
        np.add.at(cells_per_chunk, tuple(ix // c for ix, c in
                                         zip(np.nonzero(bad), self.cell_chunks, strict=True)), 1)
        extra = (0,) * (len(arr.shape) - self.ndim)
        for cell_coords in zip(*np.nonzero(cells_per_chunk), strict=True):
            coords = tuple(int(i) for i in cell_coords) + extra
            n = int(cells_per_chunk[cell_coords])
            kind = "not finite" if self.exists(name, arr, coords) else "missing"
            detail = f"{n} done cells read NaN" if kind == "missing" else f"{n} done cells NaN/inf"
            self.problems.append(ChunkProblem(name, self.key(name, arr, coords),
                                              self.block_of(coords), kind, detail))


def data_names(cube: Cube) -> list[str]:
    """The cube's data arrays (outputs, probabilities and, if stored, per-path outputs)."""
    names = [*PATH_OUTPUTS, *PROBABILITIES]
    if cube.has_paths:
        names += [path_var_name(v) for v in PATH_OUTPUTS]
    return names


def verify_cube(cube: Cube) -> Verification:
    """Read every chunk of ``cube``; name the unreadable, missing and non-finite ones.

    Works on a cube whose ``status`` array is gone (``status_missing``; every cell
    counts as pending then, and the data are still checked for readability).
    """
    t0 = time.perf_counter()
    status_missing = not cube.has_status()
    checker = _Checker(cube)
    if status_missing:
        status = np.full(checker.shape, STATUS_PENDING, dtype=np.int8)
    else:
        status, ok = checker.read(STATUS_VAR, cube._array(STATUS_VAR))
        status = np.where(ok, status, STATUS_PENDING).astype(np.int8)
    done = np.isin(status, DONE_STATUSES)
    complete = np.ones(status.shape, dtype=bool)
    capped = np.full(status.shape, np.nan)
    names = data_names(cube)
    for name in names:
        arr = cube._array(name)
        values, readable = checker.read(name, arr)
        extra_axes = tuple(range(checker.ndim, values.ndim))
        finite = np.isfinite(values).all(axis=extra_axes) if extra_axes else np.isfinite(values)
        checker.check_finite(name, arr, finite, readable, done)
        complete &= finite & readable
        if name == "capped_steps":
            from kernels.outputs import STAT_INDEX

            capped = np.where(readable, values[..., STAT_INDEX["mean"]], np.nan)
    for name, arr in cube.group.arrays():  # coordinates: laid out from the design
        if name in names or name == STATUS_VAR:
            continue
        try:
            np.asarray(arr[...])
        except Exception as exc:  # any decode error
            detail = _short(exc)
            checker.problems.append(ChunkProblem(name, name, COORDINATE, "unreadable", detail))
    problems = sorted(checker.problems, key=lambda p: (p.block, p.array))
    out = Verification(cube.url, status, complete, capped, problems, status_missing,
                       len(names) + (0 if status_missing else 1), time.perf_counter() - t0)
    log.info("verified %s in %.2f s: %s", cube.url, out.seconds, out.summary())
    return out


def require_sound(url: str, storage_options: Mapping[str, Any] | None = None) -> Verification:
    """Verify the cube at ``url`` read-only; :class:`farm.store.refusal.DamagedCubeError`
    (one line naming the bad chunks) unless every chunk is sound (``farm report``)."""
    from farm.store.cube import open_existing
    from farm.store.refusal import DamagedCubeError

    v = verify_cube(open_existing(url, storage_options, read_only=True))
    if not v.ok:
        raise DamagedCubeError(f"{v.summary()}; `farm run` with the same config recomputes "
                               f"those blocks (`farm repair {v.url}` rebuilds a lost status)")
    return v
