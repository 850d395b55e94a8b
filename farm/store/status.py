"""``farm status STORE``: a human summary of a cube's design, progress and provenance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from farm.store.cube import (
    DONE_STATUSES,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_FLAGGED,
    STATUS_PENDING,
    DamagedCubeError,
    NotACubeError,
    open_existing,
)
from farm.store.layout import block_status_of
from farm.store.lock import STALE_AFTER_S, lock_state, read_lock
from farm.store.verify import Verification, verify_cube

__all__ = ["NotACubeError", "store_summary"]

MAX_PROBLEMS_SHOWN = 40


def _json_attr(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _lock_line(url: str, storage_options: Mapping[str, Any] | None) -> str:
    try:
        info = read_lock(url, storage_options)
    except Exception as exc:  # a status report must not fail on an unreadable lock
        return f"unknown ({type(exc).__name__}: {exc})"
    return lock_state(info, STALE_AFTER_S)  # a malformed record: "(treated as stale)"


def store_summary(url: str, storage_options: Mapping[str, Any] | None = None, *,
                  verify: bool = False) -> str:
    """A multi-line summary of the cube at ``url``; :class:`NotACubeError` if it is none.

    Shows the design (method, axes, cells), blocks done/failed/pending with the failed
    blocks' messages (naming failed cells), cells done/flagged/failed, paths/steps/seed,
    created/finished times and the writer lock; what is damaged and how to fix it. With
    ``verify``, every chunk is read (:func:`farm.store.verify.verify_cube`) and each bad
    one named with its block.
    """
    cube = open_existing(url, storage_options, read_only=True)
    attrs = cube.attrs
    design = _json_attr(attrs.get("design", {}))
    design = design if isinstance(design, dict) else {}
    dims, shape, chunks = cube.cell_dims, cube.shape, cube.chunks
    verification = verify_cube(cube) if verify else None
    try:
        cell_status = cube.cell_status()
    except DamagedCubeError as exc:  # the data may all be there: say how to get it back
        cell_status = None if verification is None else verification.cell_status
        damage = str(exc)
    else:
        damage = ""
    if cell_status is None:
        cell_status = np.zeros(shape, dtype=np.int8)
    blocks = block_status_of(cell_status, chunks)
    failed_msgs = cube.failed_blocks()

    axes = list(design.get("axes") or ([] if dims == ("cell",) else dims))
    if dims == ("cell",):
        layout = f"{shape[0]} sampled cells (dim 'cell')"
    else:
        layout = " x ".join(f"{d}[{n}]" for d, n in zip(dims, shape, strict=True))
    n_cells = int(np.prod(shape))
    counts = {k: int((blocks == k).sum()) for k in (STATUS_DONE, STATUS_FAILED, STATUS_PENDING)}
    cells_done = int(np.isin(cell_status, DONE_STATUSES).sum())
    cells_flagged = int((cell_status == STATUS_FLAGGED).sum())
    cells_failed = int((cell_status == STATUS_FAILED).sum())

    lines = [
        f"store:     {cube.url}",
        f"method:    {design.get('method', '?')}   axes: {', '.join(axes) or '(none)'}",
        f"cells:     {n_cells} = {layout}; chunks {tuple(chunks)}",
        f"blocks:    unknown of {blocks.size}: the status is damaged (see below)" if damage else
        f"blocks:    {counts[STATUS_DONE]} done, {counts[STATUS_FAILED]} failed, "
        f"{counts[STATUS_PENDING]} pending (of {blocks.size}); cells done {cells_done}/{n_cells}"
        f" ({cells_flagged} flagged), {cells_failed} failed",
    ]
    if cells_flagged:
        lines.append(f"  flagged:  {cells_flagged} cells (status {STATUS_FLAGGED}) are done but "
                     "their cascade hit max_rounds on more than capped_limit of the "
                     "path-steps: their numbers are not converged")
    failed = [int(i) for i in np.flatnonzero(blocks == STATUS_FAILED)]
    for i in failed[:20]:
        lines.append(f"  failed block {i}: {failed_msgs.get(i, '(no message recorded)')}")
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more failed blocks")
    lines += [
        f"paths:     {attrs.get('n_paths', '?')}   steps: {attrs.get('n_steps', '?')}   "
        f"seed: {attrs.get('root_seed', '?')} ({attrs.get('seeding', '?')})"
        + ("   per-path outputs stored" if attrs.get("store_paths") else ""),
        f"config:    hash {str(attrs.get('config_hash', '?'))[:16]}   "
        f"git {str(attrs.get('git_commit', '?'))[:12]}"
        + (" (dirty)" if attrs.get("git_dirty") else "")
        + f"   prng {attrs.get('jax_prng_impl') or '?'}",
        f"created:   {attrs.get('created', '?')}",
    ]
    lines += _adaptive_lines(attrs)
    if attrs.get("run_started"):
        lines.append(f"run start: {attrs['run_started']}")
    if attrs.get("finished"):
        done = "complete" if attrs.get("complete") else "incomplete"
        lines.append(f"finished:  {attrs['finished']} ({done})")
    else:
        lines.append("finished:  not yet (running or interrupted)")
    lines.append(f"lock:      {_lock_line(cube.url, storage_options)}")
    lines += _damage_lines(cube.url, attrs, blocks, damage, verification)
    return "\n".join(lines)


def _damage_lines(url: str, attrs: Mapping[str, Any], blocks: np.ndarray, damage: str,
                  verification: Verification | None) -> list[str]:
    """What is wrong with the store and how to fix it: a damaged status, attrs that
    disagree with the status, and (with ``--verify``) every bad chunk."""
    lines = []
    if damage:
        lines.append(f"DAMAGED:   {damage}")
    not_done = int((blocks != STATUS_DONE).sum())
    if str(attrs.get("complete")) == "True" and not_done and not damage:
        lines.append(f"MISMATCH:  the attrs say complete but {not_done} of {blocks.size} blocks "
                     "are not done: run `farm run` with the same config to finish them")
    if verification is not None:
        if verification.status_missing:
            lines.append(f"verify:    {int(verification.cells_complete.sum())} of "
                         f"{verification.cells_complete.size} cells have all their outputs; "
                         f"`farm repair {url}` rebuilds the status from them")
        if verification.ok:
            lines.append(f"verify:    all chunks of {verification.arrays_checked} arrays "
                         f"readable and finite ({verification.seconds:.1f} s)")
        for p in verification.problems[:MAX_PROBLEMS_SHOWN]:
            lines.append(f"  bad chunk: {p}")
        if len(verification.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(verification.problems) - MAX_PROBLEMS_SHOWN} more")
        if verification.problems:
            lines.append(f"verify:    {len(verification.problems)} bad chunks in "
                         f"{len(verification.bad_blocks)} blocks; `farm run` with the same "
                         f"config recomputes exactly those blocks (`farm repair {url}` marks "
                         "them pending now and rebuilds a lost status from the data)")
    return lines


def _adaptive_lines(attrs: Mapping[str, Any]) -> list[str]:
    """An adaptive sweep's waves (its ``adaptive`` attr, docs/adaptive.md), or nothing."""
    import json

    raw = attrs.get("adaptive")
    try:
        state = json.loads(raw) if isinstance(raw, str) else None
        waves, settings = state["waves"], state["settings"]
    except (TypeError, ValueError, KeyError):
        return []
    if not waves:
        return []
    last = waves[-1]
    stopped = state.get("stopped") or "not yet (rerun the same command to go on)"
    return [f"waves:     {len(waves)} of {settings.get('var')} = {settings.get('level')}: "
            f"{last.get('stop')} cells at {last.get('points') or '?'} points"
            + ("" if last.get("done") else f" (wave {last.get('k')} not finished)"),
            f"stopped:   {stopped}"]
