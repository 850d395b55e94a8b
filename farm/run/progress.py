"""A progress bar for sweeps: cells done / total, paths per second, ETA.

On resume it starts from the cells already done; the rate counts only cells
run in this session.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    """tqdm on stderr with a paths/s postfix; disabled when ``enabled=False``."""

    def __init__(self, total_cells: int, done_cells: int, paths_per_cell: int, *,
                 enabled: bool = True):
        self.paths_per_cell = paths_per_cell
        self.start = time.perf_counter()
        self.cells_now = 0
        self.failed = 0
        self.bar = tqdm(total=total_cells, initial=done_cells, unit="cell", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True, smoothing=0.1,
                        desc="cells", mininterval=0.5)

    def update(self, cells: int, *, failed: int = 0) -> None:
        self.cells_now += cells
        self.failed += failed
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.cells_now * self.paths_per_cell / elapsed
        post = {"paths/s": f"{rate:,.0f}"}
        if self.failed:
            post["failed"] = str(self.failed)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(cells + failed)

    def close(self) -> None:
        self.bar.close()
