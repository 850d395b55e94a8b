"""What a run records in its cube's root attrs: the driver-only half of :class:`Cube`.

These operations rewrite the root attrs, so only the driver calls them (one writer per
store, under :class:`farm.store.lock.StoreLock`): failed blocks' messages (secrets
redacted, :func:`farm.secrets.redact_secrets`), the run's start and finish with the
block and cell counts, and whether a new configuration may resume the cube
(:mod:`farm.store.refusal`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.secrets import redact_secrets
from farm.store.layout import (
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_FLAGGED,
    STATUS_PENDING,
    BlockLike,
    block_status_of,
    consolidate,
)
from farm.store.provenance import now_iso
from farm.store.refusal import compatibility, incompatible

__all__ = ["MAX_MESSAGE_CHARS", "RunRecord"]

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000


class RunRecord:
    """The driver-only operations of :class:`farm.store.cube.Cube` (a base class of it)."""

    if TYPE_CHECKING:  # provided by Cube
        url: str
        storage_options: dict[str, Any]
        _group: Any
        _arrays: dict[str, Any]

        @property
        def attrs(self) -> dict[str, Any]: ...
        @property
        def chunks(self) -> tuple[int, ...]: ...
        def _update_attrs(self, new: Mapping[str, Any], remove: Iterable[str] = ()) -> None: ...
        def _set_status(self, block: BlockLike, value: Any) -> None: ...
        def cell_status(self) -> np.ndarray: ...

    def mark_failed(self, block: BlockLike, message: str) -> None:
        """Set the block's cells to failed (2) and record ``message`` in attrs."""
        self._set_status(block, STATUS_FAILED)
        self.record_failure(block.index, message)

    def record_failure(self, index: int, message: str) -> None:
        """Record block ``index``'s failure ``message`` in attrs ``failed_blocks`` (its
        failed cells' status is written by whoever found them)."""
        failed = self.failed_blocks()
        failed[int(index)] = redact_secrets(str(message))[:MAX_MESSAGE_CHARS]
        self._update_attrs({"failed_blocks": json.dumps({str(k): v for k, v in failed.items()})})
        log.error("block %d failed: %s", index, message)

    def failed_blocks(self) -> dict[int, str]:
        """Recorded failure messages by block index (attrs ``failed_blocks``)."""
        raw = self.attrs.get("failed_blocks") or "{}"
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return {int(k): str(v) for k, v in data.items()}

    def compatible(self, config_hash: str, config_yaml: str | None = None) -> tuple[bool, str]:
        """Whether the cube was made with ``config_hash``; else a message naming what differs
        (:func:`farm.store.refusal.compatibility`)."""
        return compatibility(self.url, self.attrs, config_hash, config_yaml)

    def check_compatible(self, config_hash: str, config_yaml: str | None = None) -> None:
        """Raise :class:`farm.store.refusal.IncompatibleStoreError` unless :meth:`compatible`."""
        ok, msg = self.compatible(config_hash, config_yaml)
        if not ok:
            raise incompatible(msg)

    def begin_run(self) -> None:
        """Record that a (resumed) run started: sets ``run_started``, clears ``finished``."""
        self._update_attrs({"run_started": now_iso()}, remove=("finished", "complete"))

    def finalize(self, attrs: Mapping[str, Any] | None = None) -> np.ndarray:
        """Record completion, prune stale failure messages, consolidate metadata.

        Sets attrs ``finished`` (UTC ISO time), ``complete``, the block counts, the failed
        and flagged cell counts and any extra ``attrs`` (e.g. the workers' PRNG
        settings); returns the status per block (``Cube.block_status``).
        """
        cells = self.cell_status()
        status = block_status_of(cells, self.chunks)
        failed = {k: v for k, v in self.failed_blocks().items()
                  if k < status.size and status[k] == STATUS_FAILED}
        self._update_attrs({
            "finished": now_iso(),
            "complete": bool((status == STATUS_DONE).all()),
            "blocks_done": int((status == STATUS_DONE).sum()),
            "blocks_failed": int((status == STATUS_FAILED).sum()),
            "blocks_pending": int((status == STATUS_PENDING).sum()),
            "cells_failed": int((cells == STATUS_FAILED).sum()),
            "cells_flagged": int((cells == STATUS_FLAGGED).sum()),
            "failed_blocks": json.dumps({str(k): v for k, v in sorted(failed.items())}),
            **dict(attrs or {}),
        })
        consolidate(self.url, self.storage_options)
        self._group, self._arrays = None, {}
        return status
