"""A design read from a CSV file: one cell per row, the header names the swept parameters."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from farm.errors import ConfigError
from farm.plan.axes import check_axis_name
from farm.plan.limits import MAX_CELLS

__all__ = ["read_csv_design"]


def _read_rows(p: Path, key: str, shown: str) -> list[list[str]]:
    """The non-empty rows of a UTF-8 CSV file (``utf-8-sig``: a BOM is dropped)."""
    rows: list[list[str]] = []
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            for row in csv.reader(fh):
                if row and any(c.strip() for c in row):
                    rows.append(row)
                    if len(rows) > MAX_CELLS + 1:  # the header and MAX_CELLS cells
                        raise ConfigError(key, shown, f"at most {MAX_CELLS:,} rows of cells",
                                          f"invalid config {key}={shown!r}: more than "
                                          f"{MAX_CELLS:,} rows; allowed: at most "
                                          f"{MAX_CELLS:,} cells per run (split the sweep)")
    except UnicodeDecodeError as exc:
        raise ConfigError(key, shown, "UTF-8 text",
                          f"invalid config {key}={shown!r}: the file is not UTF-8 text "
                          f"(byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                          "allowed: a CSV file that is UTF-8 text (save it as UTF-8)"
                          ) from None
    except csv.Error as exc:
        raise ConfigError(key, shown, "a well-formed CSV file",
                          f"invalid config {key}={shown!r}: not a well-formed CSV file "
                          f"({exc}); allowed: a CSV file of numbers under a header") from None
    except OSError as exc:
        raise ConfigError(key, shown, "a readable CSV file",
                          f"invalid config {key}={shown!r}: cannot read it "
                          f"({exc.strerror or exc}); allowed: a readable CSV file") from None
    return rows


def read_csv_design(path: str | Path, key: str = "sweep.csv",
                    skip: Callable[[str], bool] | None = None
                    ) -> tuple[tuple[str, ...], np.ndarray]:
    """(axis names, (n_cells, n_axes) float64 table) from a CSV design file.

    The file is UTF-8 text (a byte-order mark is accepted); the header row names model
    parameters (scalar fields); every further non-empty row is one cell, at most
    :data:`farm.plan.limits.MAX_CELLS`. Columns whose name ``skip`` accepts are ignored
    (e.g. a calibration's ``I_max``). Raises ConfigError (naming ``key``) on problems.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, str(path), "the path of an existing CSV file")
    rows = _read_rows(p, key, str(path))
    if not rows:
        raise ConfigError(key, str(path), "a CSV file with a header of parameter names")
    full = tuple(c.strip() for c in rows[0])
    keep = [j for j, h in enumerate(full) if not (skip and h and skip(h))]  # columns used
    rows = [rows[0], *([r[j] for j in keep] if len(r) == len(full) else r for r in rows[1:])]
    header = tuple(full[j] for j in keep)
    if not header or any(not h for h in header):
        raise ConfigError(key, str(path), "a header of model parameter names (no empty column)")
    for name in header:
        check_axis_name(name, key)
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ConfigError(key, str(path), "each parameter once in the header",
                          f"invalid config {key}={str(path)!r}: column {dup[0]} appears twice; "
                          "allowed: each parameter once in the header")
    if len(rows) < 2:
        raise ConfigError(key, str(path), "at least one row of values below the header")
    table = np.empty((len(rows) - 1, len(header)))
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ConfigError(key, str(path), f"{len(full)} values per row",
                              f"invalid config {key}={str(path)!r}: row {i} has {len(row)} "
                              f"values; allowed: {len(full)} per row (one per header name)")
        for j, cell in enumerate(row):
            try:
                table[i - 2, j] = float(cell)
            except ValueError:
                raise ConfigError(key, str(path), "numbers",
                                  f"invalid config {key}={str(path)!r}: row {i}, column "
                                  f"{header[j]} holds {cell.strip()!r}; allowed: numbers"
                                  ) from None
            if not math.isfinite(table[i - 2, j]):
                raise ConfigError(key, str(path), "finite numbers",
                                  f"invalid config {key}={str(path)!r}: row {i}, column "
                                  f"{header[j]} is {cell.strip()}; allowed: finite numbers")
    return header, table
